/**
 * toasts.js owns the page's short messages: one line each, in the `aria-live` region
 * `#toasts` (so screen readers read them), gone after a few seconds. Text only: the
 * message is set with textContent, so server or user text can never become markup.
 */

const DEFAULT_MS = 5000;

/**
 * @param {string} message
 * @param {'info'|'success'|'error'} [kind]
 * @param {{timeout?: number}} [options]
 */
export function toast(message, kind = 'info', { timeout = kind === 'error' ? 8000 : DEFAULT_MS } = {}) {
  const region = document.getElementById('toasts');
  if (!region) return null;
  const item = document.createElement('div');
  item.className = `toast ${kind}`;
  item.dataset.kind = kind;
  item.textContent = message;
  region.append(item);
  setTimeout(() => item.remove(), timeout);
  return item;
}
