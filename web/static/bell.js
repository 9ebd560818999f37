/**
 * bell.js is the header's notifications bell, on every signed-in page: the unread
 * count, live, and a panel of the recent notifications, each linking to what it is
 * about (a mention: `/chat?room=R#m-ID`, which the chat scrolls to and highlights).
 *
 * - the count and the read position come from `GET /api/notifications/unread`;
 * - the recent ones from `GET /api/notifications?since=` (ids in a room are gapless,
 *   so "the last 20" is `since = last_id - 20`);
 * - live from the SSE stream `/notifications?since=last_id` (the browser resumes it by
 *   `Last-Event-ID` after a drop); on the chat page, from the chat's own connection
 *   instead (notifybus.js), so that page holds one realtime connection;
 * - opening the panel marks everything shown read (`POST /api/notifications/read`).
 *   The server appends a `read` marker to the notification room, which every other tab
 *   and device hears on the same stream: they fetch the count again and it drops to 0.
 *
 * Keyboard: the bell is a button (Enter/Space opens the panel and moves focus into
 * it), Escape closes it and gives focus back to the bell. No JavaScript, no bell.
 */
import client from './ajax.js';
import { el } from './dom.js';
import { chatCarriesBell, followNotifications } from './notifybus.js';

const RECENT = 20;

const host = document.getElementById('bell');
if (host) start(host);

function start(root) {
  // `newSince`: while the panel is open, what was unread when it opened stays marked
  // as new (it has just been marked read, but the person has not looked yet).
  const state = { readId: 0, lastId: 0, unread: 0, items: [], open: false, newSince: 0 };

  const count = el('span', { className: 'bell-count', 'aria-hidden': 'true' });
  const button = el(
    'button',
    {
      type: 'button',
      id: 'bell-button',
      className: 'bell-button ghost',
      'aria-expanded': 'false',
      'aria-controls': 'bell-panel',
    },
    bellIcon(),
    count,
  );
  const list = el('ul', { className: 'bell-list', id: 'bell-list' });
  const markAll = el('button', { type: 'button', className: 'small secondary', id: 'bell-mark-read' }, 'Mark all read');
  const panel = el(
    'div',
    { id: 'bell-panel', className: 'bell-panel', role: 'region', 'aria-labelledby': 'bell-title', tabindex: '-1' },
    el('div', { className: 'bell-head' }, el('h2', { id: 'bell-title' }, 'Notifications'), markAll),
    list,
  );
  panel.hidden = true;
  root.replaceChildren(button, panel);
  root.dataset.ready = 'false';

  function render() {
    count.textContent = state.unread > 0 ? (state.unread > 99 ? '99+' : String(state.unread)) : '';
    count.hidden = state.unread === 0;
    root.dataset.unread = String(state.unread);
    button.setAttribute(
      'aria-label',
      state.unread === 0 ? 'Notifications, none unread' : `Notifications, ${state.unread} unread`,
    );
    markAll.disabled = state.unread === 0;
    const shown = state.items.slice(-RECENT).reverse();
    if (shown.length === 0) {
      list.replaceChildren(el('li', { className: 'bell-empty' }, 'No notifications yet.'));
      return;
    }
    const newAfter = state.open ? Math.min(state.newSince, state.readId) : state.readId;
    list.replaceChildren(...shown.map((n) => item(n, n.id > newAfter)));
  }

  async function refresh() {
    const read = await client.get('/api/notifications/unread', { cache: false });
    state.readId = read.read_id;
    state.lastId = Math.max(state.lastId, read.last_id);
    state.unread = read.unread;
    render();
    return read;
  }

  async function loadRecent(lastId) {
    const since = Math.max(0, lastId - RECENT);
    const messages = await client.get(`/api/notifications?since=${since}&limit=${RECENT}`, { cache: false });
    for (const m of messages) remember(m);
  }

  function remember(message) {
    if (message.event?.type === 'read') return;
    if (state.items.some((n) => n.id === message.id)) return;
    state.items.push(message);
    state.items.sort((a, b) => a.id - b.id);
    if (state.items.length > RECENT) state.items.splice(0, state.items.length - RECENT);
  }

  async function markRead() {
    if (state.unread === 0) return;
    // What this tab has seen, not what may have arrived since on the server.
    const through = state.lastId;
    state.unread = 0;
    state.readId = Math.max(state.readId, through);
    render();
    try {
      const read = await client.post('/api/notifications/read', { through });
      state.readId = read.read_id;
      state.unread = read.unread;
      render();
    } catch {
      await refresh().catch(() => {});
    }
  }

  /** A live notification (from the bell's own stream, or the chat's connection). */
  function arrived(message) {
    state.lastId = Math.max(state.lastId, message.id);
    if (message.event?.type === 'read') {
      // Read on another tab or device (or this one): the server says how far.
      refresh().catch(() => {});
      return;
    }
    remember(message);
    if (message.id > state.readId && message.user?.id !== Number(root.dataset.userId)) state.unread += 1;
    render();
    if (state.open) markRead();
  }

  /** Older than the history kept: start again from where the server stands. */
  function reset() {
    state.items = [];
    boot().catch(() => {});
  }

  function follow(since) {
    if (chatCarriesBell()) {
      followNotifications({ since, onMessage: arrived, onReset: reset });
      return;
    }
    const events = new EventSource(`/notifications?since=${since}`);
    events.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      arrived(message);
    };
    events.addEventListener('reset', () => {
      events.close();
      reset();
    });
  }

  function open() {
    state.open = true;
    state.newSince = state.readId;
    panel.hidden = false;
    button.setAttribute('aria-expanded', 'true');
    panel.focus();
    markRead();
  }

  function close({ focus = true } = {}) {
    if (!state.open) return;
    state.open = false;
    panel.hidden = true;
    button.setAttribute('aria-expanded', 'false');
    if (focus) button.focus();
    render();
  }

  button.addEventListener('click', () => (state.open ? close() : open()));
  markAll.addEventListener('click', () => markRead());
  panel.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      event.preventDefault();
      close();
    }
  });
  button.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && state.open) close();
  });
  document.addEventListener('click', (event) => {
    if (state.open && !root.contains(event.target)) close({ focus: false });
  });

  async function boot() {
    const read = await refresh();
    await loadRecent(read.last_id);
    render();
    follow(read.last_id);
    root.dataset.ready = 'true';
  }
  render();
  boot().catch(() => {
    root.dataset.ready = 'error';
  });
}

/** Where a notification leads: the message a mention is about, or your account. */
export function linkOf(notification) {
  const event = notification.event ?? {};
  if (event.type === 'mention' && event.room && event.message_id) {
    return `/chat?room=${encodeURIComponent(event.room)}#m-${event.message_id}`;
  }
  if (event.type === 'account_changed') return '/account';
  return null;
}

function item(notification, unread) {
  const href = linkOf(notification);
  const when = new Date(notification.ts);
  const time = el('time', { datetime: notification.ts }, Number.isNaN(when.getTime()) ? '' : when.toLocaleString());
  const text = el('span', { className: 'bell-text', dir: 'auto' }, notification.text);
  const body = href ? el('a', { href }, text) : text;
  return el(
    'li',
    { className: unread ? 'bell-item unread' : 'bell-item', dataset: { id: String(notification.id) } },
    body,
    time,
    ...(unread ? [el('span', { className: 'visually-hidden' }, ' (new)')] : []),
  );
}

function bellIcon() {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('width', '20');
  svg.setAttribute('height', '20');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  const path = document.createElementNS(ns, 'path');
  path.setAttribute(
    'd',
    'M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3a1.5 1.5 0 0 0-3 0v1.16A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2Z',
  );
  path.setAttribute('fill', 'currentColor');
  svg.append(path);
  return svg;
}
