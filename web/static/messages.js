/**
 * messages.js owns how the chat page draws messages (chat.js decides which and when):
 * - a message's text with its http(s) URLs as links (`rel="noopener noreferrer"`,
 *   a new tab) and every other scheme left as text; built with DOM nodes and text
 *   only, never markup, so no message can inject HTML;
 * - its time, short on screen ("14:05") and in full for hover (`title`) and for
 *   screen readers (`<time datetime>` with the full date as its hidden text);
 * - the layout of the list: consecutive messages of one author within GROUP_MS are
 *   grouped (the name and time are drawn once), and a divider ("Today", "Yesterday",
 *   "Monday 30 November") starts each day;
 * - the `@` mention a pick in the composer inserts (see mentionHandle).
 * The pure functions (linkParts, layout, dayKey, dayLabel, mentionHandle) need no DOM,
 * so Node tests check them; the DOM builders use the page's `document`.
 */
import { el } from './dom.js';

/** Consecutive messages of one author at most this far apart are one group. */
export const GROUP_MS = 5 * 60 * 1000;

// A URL ends at whitespace or at a character no URL written in text has unescaped.
const URL_CANDIDATE = /\bhttps?:\/\/[^\s<>"'`\u00a0]+/giu;
/** Punctuation that ends a sentence rather than the URL. */
const TRAILING = /[.,;:!?'"*_)\]}>]+$/u;

/**
 * Splits `text` into text and link parts: `{text}` or `{text, href}`. Only http and
 * https URLs become links (any case of the scheme; the href is the parsed, normalized
 * URL); `javascript:`, `data:` and every other scheme stay text.
 * @param {string} text
 * @returns {({text: string}|{text: string, href: string})[]}
 */
export function linkParts(text) {
  const source = String(text ?? '');
  const parts = [];
  let at = 0;
  for (const match of source.matchAll(URL_CANDIDATE)) {
    let candidate = match[0];
    // "(see https://x.org/a_(b))" keeps its balanced parentheses; a sentence's ")" or "." does not.
    for (;;) {
      const trimmed = candidate.replace(TRAILING, (tail) => keepBalanced(candidate, tail));
      if (trimmed === candidate) break;
      candidate = trimmed;
    }
    const href = safeHref(candidate);
    if (!href) continue;
    if (match.index > at) parts.push({ text: source.slice(at, match.index) });
    parts.push({ text: candidate, href });
    at = match.index + candidate.length;
  }
  if (at < source.length) parts.push({ text: source.slice(at) });
  return parts;
}

/** Of a trailing run, what belongs to the URL: a ")" closing a "(" inside it stays. */
function keepBalanced(url, tail) {
  const body = url.slice(0, url.length - tail.length);
  let open = (body.match(/\(/g) ?? []).length - (body.match(/\)/g) ?? []).length;
  let kept = '';
  for (const char of tail) {
    if (char === ')' && open > 0) {
      open -= 1;
      kept += char;
    } else {
      break;
    }
  }
  return kept;
}

/** The normalized href of an http(s) URL with a host, or null. */
export function safeHref(candidate) {
  let url;
  try {
    url = new URL(candidate);
  } catch {
    return null;
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname) return null;
  return url.href;
}

/** The message text as nodes: text nodes and safe links. */
export function textNodes(text) {
  return linkParts(text).map((part) =>
    part.href
      ? el('a', { href: part.href, rel: 'noopener noreferrer', target: '_blank', className: 'msg-link' }, part.text)
      : document.createTextNode(part.text));
}

/** The local calendar day of a timestamp ("2026-12-07"), or null if it is not a date. */
export function dayKey(ts) {
  const date = new Date(ts);
  if (Number.isNaN(date.getTime())) return null;
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/** What a day divider says: "Today", "Yesterday", or the weekday and date. */
export function dayLabel(ts, now = new Date(), locale = undefined) {
  const date = new Date(ts);
  if (Number.isNaN(date.getTime())) return '';
  const key = dayKey(date);
  if (key === dayKey(now)) return 'Today';
  const yesterday = new Date(now);
  yesterday.setDate(now.getDate() - 1);
  if (key === dayKey(yesterday)) return 'Yesterday';
  const options = { weekday: 'long', day: 'numeric', month: 'long' };
  if (date.getFullYear() !== now.getFullYear()) options.year = 'numeric';
  return date.toLocaleDateString(locale, options);
}

/** The full date and time, for hover and screen readers ("Monday, 7 December 2026 at 14:05"). */
export function fullTime(ts, locale = undefined) {
  const date = new Date(ts);
  if (Number.isNaN(date.getTime())) return '';
  return date.toLocaleString(locale, { dateStyle: 'full', timeStyle: 'short' });
}

/** The short time on screen ("14:05"): the day is in the divider above. */
export function shortTime(ts, locale = undefined) {
  const date = new Date(ts);
  if (Number.isNaN(date.getTime())) return '';
  return date.toLocaleTimeString(locale, { hour: '2-digit', minute: '2-digit' });
}

/**
 * The layout of a run of messages, in order: for each one, the day divider to draw
 * before it (its day key, or null) and whether it continues the previous message's
 * group (same author, same day, at most GROUP_MS after it).
 * @param {{ts?: string, userId?: string|number|null}[]} entries
 * @returns {{divider: string|null, grouped: boolean}[]}
 */
export function layout(entries) {
  let previous = null;
  return entries.map((entry) => {
    const day = dayKey(entry.ts);
    const divider = day && (!previous || previous.day !== day) ? day : null;
    const gap = previous ? Date.parse(entry.ts) - Date.parse(previous.ts) : Infinity;
    const grouped = Boolean(
      previous && !divider && day && entry.userId != null && entry.userId !== ''
        && String(entry.userId) === String(previous.userId) && gap >= 0 && gap <= GROUP_MS,
    );
    if (day) previous = { day, ts: entry.ts, userId: entry.userId };
    return { divider, grouped };
  });
}

/**
 * The handles `text` mentions, folded to lower case, as the server reads them
 * (`mentions` in src/hub/message.rs): `@word` (letters, digits, ".", "_", "-"; a
 * trailing "." is the sentence's) or `@[Any Name]`, not inside a word (an address).
 */
export function mentionedHandles(text) {
  const found = new Set();
  for (const match of String(text ?? '').matchAll(/(^|[^\p{L}\p{N}])@(?:\[([^\]\n]{1,100})\]|([\p{L}\p{N}._-]+))/gu)) {
    const handle = (match[2] ?? match[3].replace(/\.+$/, '')).trim().toLowerCase();
    if (handle) found.add(handle);
  }
  return found;
}

/**
 * Whether `text` mentions `viewer` ({name, email}): by their whole name (folded) or
 * by their email's part before the "@", as the server finds whom to notify.
 */
export function mentionsViewer(text, viewer) {
  if (!viewer) return false;
  const handles = mentionedHandles(text);
  const name = String(viewer.name ?? '').trim().toLowerCase();
  const local = String(viewer.email ?? '').split('@')[0].toLowerCase();
  return (name !== '' && handles.has(name)) || (local !== '' && handles.has(local));
}

/**
 * A stored message as a list item (`id="m-N"`: notifications link to `#m-N`). With
 * `viewer` ({name, email}), a message of someone else's that mentions the viewer is
 * marked (`mentions-me`, and said to screen readers).
 */
export function buildMessage(message, me, viewer = null) {
  const mine = message.user?.id === me;
  const mentioned = !mine && mentionsViewer(message.text, viewer);
  const full = fullTime(message.ts);
  const time = el('time', { datetime: message.ts ?? '', title: full, className: 'msg-time' },
    el('span', { 'aria-hidden': 'true' }, shortTime(message.ts)),
    el('span', { className: 'visually-hidden' }, full));
  return el('li', {
    id: `m-${message.id}`,
    className: mine ? 'msg mine' : mentioned ? 'msg mentions-me' : 'msg',
    dataset: { id: String(message.id), userId: String(message.user?.id ?? ''), ts: message.ts ?? '' },
  },
  el('div', { className: 'msg-meta' }, el('bdi', { className: 'msg-author' }, message.user?.name ?? 'Someone'), ' ', time,
    ...(mentioned ? [' ', el('span', { className: 'msg-mention-tag' }, '@you', el('span', { className: 'visually-hidden' }, ' (mentions you)'))] : [])),
  // Message text may hold bidi controls: `dir=auto` keeps them inside the message.
  el('p', { className: 'msg-text', dir: 'auto' }, ...textNodes(message.text ?? '')));
}

/** A message of one's own still being sent (no id, no time yet). */
export function buildPending(text, clientId) {
  return el('li', { className: 'msg mine pending', dataset: { clientId } },
    el('div', { className: 'msg-meta' }, el('span', { className: 'msg-author' }, 'You'), ' ', el('span', { className: 'msg-state' }, 'Sending…')),
    el('p', { className: 'msg-text', dir: 'auto' }, ...textNodes(text)));
}

/**
 * Brings `list`'s day dividers and groups in line with its stored messages, after
 * any insertion. Dividers that are still right stay in place (the log is a live
 * region: a divider taken out and put back would be read again).
 * @param {HTMLOListElement} list
 */
export function arrange(list, now = new Date()) {
  const items = [...list.querySelectorAll(':scope > li.msg[data-id]')];
  const plan = layout(items.map((item) => ({ ts: item.dataset.ts, userId: item.dataset.userId })));
  const keep = new Set();
  items.forEach((item, i) => {
    const { divider, grouped } = plan[i];
    item.classList.toggle('grouped', grouped);
    if (!divider) return;
    let before = item.previousElementSibling;
    if (!(before?.classList.contains('day-divider') && before.dataset.day === divider)) {
      before = el('li', { className: 'day-divider', dataset: { day: divider } },
        el('time', { datetime: divider }, dayLabel(item.dataset.ts, now)));
      list.insertBefore(before, item);
    }
    keep.add(before);
  });
  for (const divider of list.querySelectorAll(':scope > li.day-divider')) {
    if (!keep.has(divider)) divider.remove();
  }
}

/** One word a handle may be: letters, digits, ".", "_" and "-" (as src/hub/message.rs reads them). */
const HANDLE = /^[\p{L}\p{N}._-]+$/u;

/**
 * The text a mention of `user` ({name, email}) inserts: `@Name` when the name is one
 * word, else `@` and the email's part before the "@" (`@dana.scully`); the server
 * recognises either as that person's handle.
 */
export function mentionHandle(user) {
  const name = String(user?.name ?? '').trim();
  if (HANDLE.test(name) && !name.endsWith('.')) return `@${name}`;
  const local = String(user?.email ?? '').split('@')[0].replace(/\.+$/, '');
  if (local && HANDLE.test(local)) return `@${local}`;
  return null;
}

/**
 * The `@` term being typed at the caret: `{start, query}` (start: the index of the
 * `@`), or null. An `@` inside a word (an email address) starts no mention.
 */
export function mentionAt(text, caret) {
  const before = String(text ?? '').slice(0, caret);
  const match = /(^|[^\p{L}\p{N}])@([\p{L}\p{N}._-]{0,40})$/u.exec(before);
  if (!match) return null;
  return { start: before.length - match[2].length - 1, query: match[2] };
}
