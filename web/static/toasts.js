/**
 * toasts.js owns the page's short messages: one line each, in the `aria-live` region
 * `#toasts` (so screen readers read them), gone after a few seconds. Text and nodes
 * only: strings become text nodes, so server or user text can never become markup;
 * a name goes in as its own `<bdi>` (dom.js) so its direction stays inside it.
 */

const DEFAULT_MS = 5000;

/**
 * @param {string|Array<string|Node>} message
 * @param {'info'|'success'|'error'} [kind]
 * @param {{timeout?: number}} [options]
 */
export function toast(message, kind = 'info', { timeout = kind === 'error' ? 8000 : DEFAULT_MS } = {}) {
  const region = document.getElementById('toasts');
  if (!region) return null;
  const item = document.createElement('div');
  item.className = `toast ${kind}`;
  item.dataset.kind = kind;
  item.append(...(Array.isArray(message) ? message : [message]));
  region.append(item);
  setTimeout(() => item.remove(), timeout);
  return item;
}
