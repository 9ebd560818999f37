/**
 * chatstate.js holds the chat page's logic that needs no DOM, so Node tests can check
 * it: which room names are valid, which rooms the list shows, what the connection
 * badge and the presence line say, how a message's time is written, the
 * presence of a room as `presence` / `user_joined` / `user_left` events change it,
 * which rooms stay open (followed on the page's one connection, with unread counts),
 * and what a page of older messages adds when scrolling back; and (issue 21) what is
 * unread where (`Unread`, from the server's read positions and live messages), the
 * tab title, where the "new messages" divider goes, direct-message rooms and the
 * mention format the server recognises.
 */

/** The hub's rule for a room name: 1-64 of A-Z a-z 0-9 _ - ., starting with a letter or digit. */
const ROOM_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Rooms only the server writes (directory events, created rooms): not offered as chat rooms. */
const HIDDEN_ROOMS = new Set(['directory', 'rooms', 'online']);

/** A direct-message room as the hub names it: `dm:A:B`, the smaller id first. */
const DIRECT_ROOM = /^dm:([1-9][0-9]*):([1-9][0-9]*)$/;

export const DEFAULT_ROOM = 'general';

export function isRoomName(name) {
  return typeof name === 'string' && ROOM_NAME.test(name);
}

/**
 * The rooms the list shows: those `GET /api/rooms` knows (minus server-only ones),
 * plus `general`, the current room and the other open ones even before they have a
 * message; by name.
 * @param {{name: string, present?: number}[]} rooms
 * @param {string} current
 * @param {string[]} [open]
 * @returns {{name: string, present: number}[]}
 */
export function roomsToShow(rooms, current, open = []) {
  const byName = new Map();
  for (const room of rooms ?? []) {
    if (!room || !isRoomName(room.name) || HIDDEN_ROOMS.has(room.name)) continue;
    byName.set(room.name, { name: room.name, present: Number(room.present) || 0 });
  }
  for (const name of [DEFAULT_ROOM, current, ...open]) {
    if (isRoomName(name) && !byName.has(name)) byName.set(name, { name, present: 0 });
  }
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
}

const TRANSPORT_NAMES = { websocket: 'WebSocket', sse: 'SSE', longpoll: 'long polling' };

/**
 * What the connection badge says for realtime.js's `onStatus(status, transport)`,
 * and the `data-state` it styles by (`live`, `pending` or `down`).
 */
export function connectionLabel(status, transport) {
  const via = TRANSPORT_NAMES[transport] ?? transport ?? '';
  switch (status) {
    case 'connected':
      return { state: 'live', text: `Live · ${via}` };
    case 'connecting':
      return { state: 'pending', text: via ? `Connecting · ${via}…` : 'Connecting…' };
    case 'reconnecting':
      return { state: 'pending', text: 'Reconnecting…' };
    case 'unsupported':
      return { state: 'down', text: 'Live updates unsupported' };
    default:
      return { state: 'down', text: 'Offline' };
  }
}

/**
 * Who is in a room: the server's snapshot (`presence {count, users}`) amended by
 * `user_joined` / `user_left` (`{user, count}`); `count` always comes from the server,
 * while the names are what the snapshot listed plus later joins.
 */
export class Presence {
  constructor() {
    this.count = 0;
    /** user id -> name */
    this.users = new Map();
  }

  snapshot({ count, users } = {}) {
    this.users = new Map((users ?? []).map((u) => [u.id, u.name]));
    this.count = Number.isFinite(count) ? count : this.users.size;
  }

  joined({ user, count } = {}) {
    if (user) this.users.set(user.id, user.name);
    this.count = Number.isFinite(count) ? count : this.users.size;
  }

  left({ user, count } = {}) {
    if (user) this.users.delete(user.id);
    this.count = Number.isFinite(count) ? count : this.users.size;
  }

  /** Names by name, the viewer (`meId`) first as "you". */
  names(meId) {
    const others = [...this.users]
      .filter(([id]) => id !== meId)
      .map(([, name]) => name)
      .sort((a, b) => a.localeCompare(b));
    return this.users.has(meId) ? ['you', ...others] : others;
  }

  /**
   * The presence line, "3 here: you, Ann, Bob" (and "and N more" past the listed
   * names), in parts: the page puts each name in an element of its own, so a name's
   * direction cannot reorder the names after it.
   */
  describe(meId) {
    if (this.count === 0) return { count: 'Nobody here', names: [], more: 0 };
    const names = this.names(meId);
    return { count: `${this.count} here`, names, more: Math.max(0, this.count - names.length) };
  }
}

/**
 * A message's time for the list: "14:05" today, "3 Dec, 14:05" on another day
 * (in the viewer's locale and time zone).
 */
export function formatTime(ts, now = new Date(), locale = undefined) {
  const date = new Date(ts);
  if (Number.isNaN(date.getTime())) return '';
  const time = date.toLocaleTimeString(locale, { hour: '2-digit', minute: '2-digit' });
  if (date.toDateString() === now.toDateString()) return time;
  const day = date.toLocaleDateString(locale, { day: 'numeric', month: 'short' });
  return `${day}, ${time}`;
}

/** Whether the composer's text is worth sending (the hub trims and refuses blanks). */
export function sendable(text) {
  return typeof text === 'string' && text.trim().length > 0;
}

/** Rooms followed at once by one page (the hub allows more per connection). */
export const MAX_OPEN_ROOMS = 8;

/**
 * The rooms a page keeps open: every room opened in it stays followed (on the page's
 * one connection) until closed, so its new messages count as unread while another room
 * is shown. Past `max`, the room viewed longest ago closes.
 */
export class OpenRooms {
  constructor(max = MAX_OPEN_ROOMS) {
    this.max = Math.max(1, max);
    /** Least recently viewed first. */
    this.order = [];
    /** room -> messages that arrived while it was not shown */
    this.unread = new Map();
  }

  get rooms() {
    return [...this.order];
  }

  has(room) {
    return this.order.includes(room);
  }

  /** `room` is shown now: it is open, read, and the most recently viewed; returns the rooms closed to make space. */
  view(room) {
    this.order = this.order.filter((r) => r !== room);
    this.order.push(room);
    this.unread.delete(room);
    const closed = [];
    while (this.order.length > this.max) {
      const oldest = this.order.shift();
      this.unread.delete(oldest);
      closed.push(oldest);
    }
    return closed;
  }

  /** Stops following `room`; false if it was not open. */
  close(room) {
    if (!this.has(room)) return false;
    this.order = this.order.filter((r) => r !== room);
    this.unread.delete(room);
    return true;
  }

  /** A message arrived in `room` while `current` is shown. */
  arrived(room, current) {
    if (room === current || !this.has(room)) return;
    this.unread.set(room, (this.unread.get(room) ?? 0) + 1);
  }

  unreadIn(room) {
    return this.unread.get(room) ?? 0;
  }
}

/** Messages per page of history, the first one and each older one. */
export const HISTORY_PAGE = 50;

/**
 * What a page of older messages (`GET /api/rooms/{room}/messages?before=`) adds above
 * the shown ones: those not shown yet, oldest first; and whether anything older may
 * remain (a short page, or one reaching message 1, is the start of the room).
 * @param {{id: number}[]} page
 * @param {Set<number>} shown ids already in the list
 * @param {number} limit the page size asked for
 */
export function olderPage(page, shown, limit = HISTORY_PAGE) {
  const list = Array.isArray(page) ? page : [];
  const add = list
    .filter((m) => m && Number.isFinite(Number(m.id)) && !shown.has(Number(m.id)))
    .sort((a, b) => Number(a.id) - Number(b.id));
  const oldest = list.reduce((min, m) => Math.min(min, Number(m?.id) || Infinity), Infinity);
  return { add, more: list.length >= limit && oldest > 1 };
}

// ---- unread, direct messages, mentions (issue 21) -------------------------------------

export function isDirectRoom(name) {
  const match = typeof name === 'string' && DIRECT_ROOM.exec(name);
  return Boolean(match) && Number(match[1]) < Number(match[2]);
}

/** A room the chat page may show: a public room or a direct message. */
export function isChatRoom(name) {
  return isRoomName(name) || isDirectRoom(name);
}

/**
 * The direct-message rooms of a `GET /api/rooms` answer, by the other person's name.
 * @returns {{name: string, peer: {id: number, name: string}}[]}
 */
export function directRooms(rooms) {
  return (rooms ?? [])
    .filter((room) => room && isDirectRoom(room.name) && room.peer)
    .map((room) => ({ name: room.name, peer: { id: Number(room.peer.id), name: String(room.peer.name ?? '') } }))
    .sort((a, b) => a.peer.name.localeCompare(b.peer.name));
}

/** How a room is named on the page: `#general`, or `@Ann` for a direct message with Ann. */
export function roomLabel(name, rooms = []) {
  if (!isDirectRoom(name)) return `#${name}`;
  const entry = (rooms ?? []).find((room) => room?.name === name);
  return entry?.peer?.name ? `@${entry.peer.name}` : 'Direct message';
}

/** The mention the server recognises for a person, whatever their name holds: `@[Ann Lee]`. */
export function mention(name) {
  return `@[${String(name).replace(/[[\]\n]/g, ' ').trim()}]`;
}

/**
 * What is unread where, for one person: each room's read position, newest id, unread
 * count and unread mentions, as `GET /api/rooms` gave them, then moved on by live
 * messages and by `read` markers (from this tab or another).
 */
export class Unread {
  constructor() {
    /** room -> {readId, lastId, unread, mentions, live: ids counted unread as they arrived} */
    this.rooms = new Map();
  }

  /**
   * The server's list (entries `{name, read_id, last_id, unread, mentions}`) replaces
   * what was known, except what is newer than it: a list answered just before a
   * message was stored, and applied just after it arrived live, must not un-count it.
   */
  load(entries) {
    const before = this.rooms;
    this.rooms = new Map();
    for (const entry of entries ?? []) {
      if (!entry || typeof entry.name !== 'string') continue;
      const room = {
        readId: Number(entry.read_id) || 0,
        lastId: Number(entry.last_id) || 0,
        unread: Number(entry.unread) || 0,
        mentions: Number(entry.mentions) || 0,
        live: [],
      };
      const known = before.get(entry.name);
      if (known) {
        room.live = known.live.filter((id) => id > room.lastId && id > room.readId);
        room.unread += room.live.length;
        room.lastId = Math.max(room.lastId, known.lastId);
        if (known.readId > room.readId) {
          room.readId = known.readId;
          if (room.readId >= room.lastId) {
            room.unread = 0;
            room.mentions = 0;
          }
        }
      }
      this.rooms.set(entry.name, room);
    }
  }

  #room(name) {
    if (!this.rooms.has(name)) this.rooms.set(name, { readId: 0, lastId: 0, unread: 0, mentions: 0, live: [] });
    return this.rooms.get(name);
  }

  /**
   * A message arrived live; `seen`: it is on screen for someone looking. Unread when
   * someone else wrote it after the read position and it was not seen. True when a
   * count changed.
   */
  arrived(message, me, seen) {
    const room = this.#room(message.room);
    const id = Number(message.id) || 0;
    if (id <= room.lastId && id <= room.readId) return false;
    room.lastId = Math.max(room.lastId, id);
    if (seen || message.user?.id === me || id <= room.readId) return false;
    room.unread += 1;
    room.live.push(id);
    return true;
  }

  /** A mention of the viewer in `name` (a `mention` notification) that is not read yet. */
  mentioned(name, messageId) {
    const room = this.#room(name);
    if (Number(messageId) <= room.readId) return false;
    room.mentions += 1;
    return true;
  }

  /**
   * `name` was read through `through` (here or on another device). Returns false when
   * messages after it may still be unread, which only the server can count.
   */
  read(name, through) {
    const room = this.#room(name);
    room.readId = Math.max(room.readId, Number(through) || 0);
    room.live = room.live.filter((id) => id > room.readId);
    if (room.readId >= room.lastId) {
      room.unread = 0;
      room.mentions = 0;
      return true;
    }
    return false;
  }

  readId(name) {
    return this.rooms.get(name)?.readId ?? 0;
  }

  count(name) {
    return this.rooms.get(name)?.unread ?? 0;
  }

  mentionsIn(name) {
    return this.rooms.get(name)?.mentions ?? 0;
  }

  /** Unread messages in every room but `except` (the one on screen). */
  total(except) {
    let sum = 0;
    for (const [name, room] of this.rooms) if (name !== except) sum += room.unread;
    return sum;
  }
}

/** The tab's title: `(3) #general · Chat · Switchboard` while 3 messages are unread elsewhere. */
export function titleFor(label, unread) {
  const base = `${label} · Chat · Switchboard`;
  if (!(unread > 0)) return base;
  return `(${unread > 99 ? '99+' : unread}) ${base}`;
}

/**
 * Where the "new messages" divider goes: before the first message after the read
 * position that someone else wrote (the id), or null when there is none.
 */
export function firstUnread(messages, readId, me) {
  for (const message of messages ?? []) {
    if (Number(message?.id) > readId && message.user?.id !== me) return Number(message.id);
  }
  return null;
}
