/**
 * theme.js keeps every open page of this browser in the theme the person chose: the
 * server renders each page with `<html data-theme>` from their settings, and when the
 * account page changes it (account.js), the other tabs hear it here and switch at once
 * instead of at their next load. Loaded by every signed-in page (base.html).
 */

const CHANNEL = 'switchboard-theme';
const THEMES = new Set(['system', 'light', 'dark']);

const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(CHANNEL) : null;
channel?.addEventListener('message', (event) => {
  if (THEMES.has(event.data)) document.documentElement.dataset.theme = event.data;
});

/** Tells the other tabs of this browser that the theme is now `theme`. */
export function announceTheme(theme) {
  channel?.postMessage(theme);
}
