/**
 * chat.js is the composition root of the chat page (`/chat`). The server renders the
 * shell (web/templates/chat.html); this module:
 * - lists the rooms (`GET /api/rooms`) and opens or creates one by name (a room exists
 *   from its first message), keeping `?room=` in the address bar;
 * - draws the room's recent messages (`GET /api/rooms/{room}/messages`), then follows
 *   the room with realtime.js from the `Switchboard-Position` that answer carried, so
 *   nothing is missed or shown twice;
 * - keeps every room opened in the page open (up to MAX_OPEN_ROOMS, each with a Close
 *   button in the list) and followed on the page's ONE realtime connection, counting
 *   messages that arrive in a room not shown as unread;
 * - loads older messages (`?before=` the first shown) when the log is scrolled to the
 *   top (or with "Load older messages"), keeping what was on screen where it was;
 * - shows who is present (`presence`, `user_joined`, `user_left`; long polling carries
 *   no presence, so then it is read from `GET /api/rooms/{room}/presence`);
 * - sends from the composer (Enter sends, Shift+Enter is a new line), showing the
 *   message as "sending" until the hub echoes it, and failures in the toast region;
 * - says in a badge whether it is Connected, Reconnecting… or Offline (badge.js), the
 *   transport in its tooltip;
 * - reloads the room when the hub says `reset` (our position is older than retention).
 * Sends go through realtime.js (the WebSocket, or a POST through ajax.js), each with one
 * client_id kept in outbox.js, which sends a failed message again on reconnect.
 * Messages are drawn by messages.js (links, groups, day dividers, times) with DOM APIs
 * and text only: no user text is parsed as HTML. The composer offers `@` mentions
 * (combobox.js); on a phone the room list is a drawer ("phones and keyboards" below);
 * the header bell's notifications ride on the page's connection (notifybus.js).
 * - (issue 21, the "unread, live rooms, direct messages" section) shows what is unread
 *   in each room and in the tab title from the server's read positions, marks the shown
 *   room read, draws a "New messages" divider, lists direct messages, and follows the
 *   server's `rooms` log and the viewer's notification room on the same connection so
 *   created rooms, new direct messages and reads on other tabs show at once.
 */
import client from './ajax.js';
import { connect } from './realtime.js';
import { toast } from './toasts.js';
import { bdi, el } from './dom.js';
import {
  HISTORY_PAGE, OpenRooms, Presence, Unread, directRooms, firstUnread, isChatRoom, isRoomName,
  olderPage, roomLabel, roomsToShow, sendable, titleFor,
} from './chatstate.js';
import { arrange, buildMessage as drawMessage, buildPending, mentionAt, mentionHandle } from './messages.js';
import { Outbox } from './outbox.js';
import { badgeFor } from './badge.js';
import { attachCombobox } from './combobox.js';
import { provideNotifications } from './notifybus.js';

const ROOMS_EVERY_MS = 30_000;
const PRESENCE_EVERY_MS = 15_000;
/** Within this many pixels of the bottom, a new message scrolls the list down. */
const STICK_PX = 80;
/** Within this many pixels of the top, the log loads older messages. */
const OLDER_PX = 120;

const root = document.getElementById('chat');
const me = Number(root.dataset.userId);
/** Who the viewer is to a mention: messages naming them are marked. */
const viewer = { name: root.dataset.userName ?? '', email: root.dataset.userEmail ?? '' };
const roomList = document.getElementById('room-list');
const roomForm = document.getElementById('room-form');
const roomInput = document.getElementById('room-name');
const title = document.getElementById('room-title');
const badge = document.getElementById('connection');
const presenceCount = document.getElementById('presence-count');
const presenceNames = document.getElementById('presence-names');
const log = document.getElementById('message-log'); // the scrolling live region
const list = document.getElementById('messages'); // the <ol> of messages in it
const older = document.getElementById('older'); // "Load older messages" / "Loading…" / the start
const composer = document.getElementById('composer');
const textInput = document.getElementById('composer-text');
const sendButton = document.getElementById('composer-send');
const composerLabel = composer.querySelector('label[for="composer-text"]');
const leaveButton = document.getElementById('leave-room');

let room = root.dataset.room;
/** The page's one realtime connection, following every open room. */
let live = null;
/** Bumped whenever a room is (re)opened: answers of an older one are ignored. */
let generation = 0;
let knownRooms = [];
const open = new OpenRooms();
/** room -> who is in it (kept for every open room, from the events of the one connection). */
const presences = new Map();
const presenceOf = (name) => {
  if (!presences.has(name)) presences.set(name, new Presence());
  return presences.get(name);
};
/** client_id -> the "sending" list item shown until the hub echoes the message. */
const pending = new Map();
/** Every message on its way out, with its one client_id (retried on reconnect). */
const outbox = new Outbox((target, text, clientId) => live.send(target, text, clientId), drawOutgoing);
/** While the shown room's history loads, its live messages wait here (then shown, de-duplicated). */
let arriving = null;
/** Scrolling back: whether older messages may remain, and the page being read. */
const scrollBack = { more: false, loading: false };

const roomUrl = (name) => `/chat?${new URLSearchParams({ room: name })}`;
const api = (name, rest) => `/api/rooms/${encodeURIComponent(name)}/${rest}`;

// ---- the room list -----------------------------------------------------------------

function renderRooms() {
  const publicRooms = roomsToShow(knownRooms, room, open.rooms).map(({ name, present }) => ({ name, present, label: `#${name}` }));
  const direct = directRooms(knownRooms).map(({ name, peer }) => ({ name, present: 0, label: `@${peer.name}` }));
  if (isChatRoom(room) && !isRoomName(room) && !direct.some((r) => r.name === room)) direct.push({ name: room, present: 0, label: roomLabel(room, knownRooms) });
  const items = [...publicRooms, ...direct].map(({ name, present, label }) => {
    const link = el('a', { href: roomUrl(name), dataset: { room: name } }, el('span', { className: 'room-name' }, label));
    if (name === room) link.setAttribute('aria-current', 'page');
    link.append(...roomBadges(name, present));
    const item = el('li', { dataset: { open: String(open.has(name)), kind: isRoomName(name) ? 'room' : 'direct' } }, link);
    if (open.has(name) && name !== room) {
      item.append(el('button', { type: 'button', className: 'room-close', dataset: { close: name }, 'aria-label': `Close ${label}`, title: `Close ${label}` }, '×'));
    }
    return item;
  });
  roomList.replaceChildren(...items);
}

async function loadRooms() {
  try {
    const { data, headers } = await client.get('/api/rooms', { meta: true, cache: false });
    applyRoomList(data, headers);
  } catch {
    // The list is a convenience: the open room works without it.
  }
}

roomList.addEventListener('click', (event) => {
  const close = event.target.closest('button[data-close]');
  if (close) {
    closeRoom(close.dataset.close);
    return;
  }
  const link = event.target.closest('a[data-room]');
  if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  // A public room chosen from the list joins the viewer's list of rooms.
  if (isRoomName(link.dataset.room)) client.post('/api/rooms', { name: link.dataset.room }).catch(() => {});
  chooseRoom(link.dataset.room);
});

roomForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const name = roomInput.value.trim();
  if (!isRoomName(name)) {
    roomInput.setAttribute('aria-invalid', 'true');
    toast('A room name is 1-64 letters, digits, “_”, “-” or “.”, starting with a letter or digit.', 'error');
    roomInput.focus();
    return;
  }
  roomInput.removeAttribute('aria-invalid');
  roomInput.value = '';
  // The server finds the room without regard to case, or creates it.
  openNamedRoom(name);
  setDrawer(false);
  textInput.focus();
});

window.addEventListener('popstate', () => {
  const name = new URLSearchParams(location.search).get('room') || 'general';
  if (isChatRoom(name) && name !== room) openRoom(name, { push: false });
});

// ---- presence ------------------------------------------------------------------------

function renderPresence() {
  const presence = presenceOf(room);
  const { count, names, more } = presence.describe(me);
  presenceCount.textContent = count;
  const parts = names.flatMap((name, i) => [i ? ', ' : ': ', bdi(name)]);
  if (more > 0) parts.push(`${names.length ? ' and ' : ': '}${more} more`);
  presenceNames.replaceChildren(...parts);
  // The room list's count for this room follows too.
  const entry = knownRooms.find((r) => r.name === room);
  if (entry && entry.present !== presence.count) {
    entry.present = presence.count;
    renderRooms();
  }
}

async function loadPresence(gen) {
  const name = room;
  try {
    const snapshot = await client.get(api(name, 'presence'), { cache: false });
    presenceOf(name).snapshot(snapshot);
    if (gen === generation) renderPresence();
  } catch {
    // Presence is a nicety; the next event or refresh fixes it.
  }
}

// ---- messages --------------------------------------------------------------------------

function nearBottom() {
  return log.scrollHeight - log.scrollTop - log.clientHeight < STICK_PX;
}

function scrollToBottom() {
  log.scrollTop = log.scrollHeight;
}

// `id="m-N"`: a notification links to `/chat?room=R#m-N` (see highlightLinked).
const buildMessage = (message) => drawMessage(message, me, viewer);

/** The message the address points at (`#m-N`, from a notification): scrolled to the
 * middle of the log, highlighted, and focused so a screen reader reads it. */
function highlightLinked() {
  const match = /^#m-(\d+)$/.exec(location.hash);
  const item = match && document.getElementById(`m-${match[1]}`);
  if (!item) return;
  item.classList.add('highlight');
  item.setAttribute('tabindex', '-1');
  item.scrollIntoView({ block: 'center' });
  item.focus({ preventScroll: true });
}

/** Appends after the stored messages, before any still being sent. */
function insert(item) {
  const firstPending = list.querySelector('li.pending');
  list.insertBefore(item, firstPending);
}

function showMessage(message) {
  const stick = nearBottom() || message.user?.id === me;
  const waiting = message.client_id && pending.get(message.client_id);
  if (waiting) {
    waiting.remove();
    pending.delete(message.client_id);
  }
  if (list.querySelector(`li[data-id="${CSS.escape(String(message.id))}"]`)) return;
  insert(buildMessage(message));
  arrange(list);
  if (stick) scrollToBottom();
}

const shownIds = () => new Set([...list.querySelectorAll('li.msg[data-id]')].map((item) => Number(item.dataset.id)));

/** The line above the messages: a button while older ones may remain, "Loading…" while they load. */
function renderOlder() {
  // Keyboard users who pressed the button keep their place when it is drawn again.
  const hadFocus = older.contains(document.activeElement);
  older.dataset.state = scrollBack.loading ? 'loading' : scrollBack.more ? 'more' : 'start';
  log.setAttribute('aria-busy', String(scrollBack.loading));
  if (scrollBack.loading) {
    older.replaceChildren('Loading older messages…');
  } else if (scrollBack.more) {
    older.replaceChildren(el('button', { type: 'button', className: 'small secondary', id: 'load-older' }, 'Load older messages'));
  } else {
    older.replaceChildren(list.querySelector('li.msg') ? `This is the start of ${roomLabel(room, knownRooms)}.` : '');
  }
  if (hadFocus) (older.querySelector('button') ?? log).focus({ preventScroll: true });
}

/**
 * Adds the page before the first shown message above it, keeping what is on screen
 * where it is: the first message's distance from the top of the log is the same after.
 */
async function loadOlder() {
  if (scrollBack.loading || !scrollBack.more) return;
  const first = list.querySelector('li.msg[data-id]');
  if (!first) return;
  const gen = generation;
  const name = room;
  scrollBack.loading = true;
  renderOlder();
  try {
    const page = await client.get(`${api(name, 'messages')}?${new URLSearchParams({ before: first.dataset.id, limit: String(HISTORY_PAGE) })}`, { cache: false });
    if (gen !== generation) return;
    const { add, more } = olderPage(page, shownIds(), HISTORY_PAGE);
    const offset = first.getBoundingClientRect().top - log.getBoundingClientRect().top;
    scrollBack.more = more;
    scrollBack.loading = false;
    renderOlder();
    // Old messages are not news: the log's live region must not read them all out.
    log.setAttribute('aria-live', 'off');
    list.prepend(...add.map(buildMessage));
    arrange(list);
    log.scrollTop += first.getBoundingClientRect().top - log.getBoundingClientRect().top - offset;
    setTimeout(() => log.setAttribute('aria-live', 'polite'), 0);
  } catch (error) {
    if (gen !== generation) return;
    scrollBack.loading = false;
    renderOlder();
    toast(`Could not load older messages: ${error.error ?? error}`, 'error');
    return;
  }
  // Still at the top (a tall window, short messages): keep going.
  if (log.scrollTop < OLDER_PX) loadOlder();
}

log.addEventListener('scroll', () => {
  if (log.scrollTop < OLDER_PX) loadOlder();
}, { passive: true });
older.addEventListener('click', (event) => {
  if (event.target.closest('#load-older')) loadOlder();
});

function describeEmpty() {
  if (list.children.length > 0) return;
  list.append(el('li', { className: 'msg-empty' }, `No messages in ${roomLabel(room, knownRooms)} yet. Say hello!`));
}

// ---- the connection --------------------------------------------------------------------

function setBadge(status, transport) {
  const { state, text, title: tooltip } = badgeFor(status, transport);
  badge.dataset.state = state;
  badge.textContent = text;
  badge.title = tooltip;
  root.dataset.status = status;
  root.dataset.transport = transport ?? '';
}

// The network is back: reconnect now rather than at the end of the backoff.
window.addEventListener('online', () => live?.retryNow());

/** A message for any open room: shown if it is the shown room, counted as unread otherwise. */
function arrived(message) {
  // The viewer's notification room feeds the bell and the room list alike.
  const forBell = carryNotification(message);
  if (listsHeard(message) || forBell) return;
  noteArrival(message);
  if (message.room !== room) {
    // One's own messages (sent from another tab, or echoed after switching) are read.
    if (message.user?.id !== me) {
      open.arrived(message.room, room);
      renderRooms();
    }
    return;
  }
  if (arriving) {
    arriving.push(message);
    return;
  }
  list.querySelector('li.msg-empty')?.remove();
  showMessage(message);
}

/** Starts the page's one connection, following `name` from `position`. */
function connectLive(name, position) {
  live = connect({
    rooms: { [name]: position ?? null, ...notificationRooms() },
    onMessage: arrived,
    onPresence: (snapshot) => {
      presenceOf(snapshot.room).snapshot(snapshot);
      if (snapshot.room === room) renderPresence();
    },
    onJoined: (change) => {
      presenceOf(change.room).joined(change);
      if (change.room === room) renderPresence();
    },
    onLeft: (change) => {
      presenceOf(change.room).left(change);
      if (change.room === room) renderPresence();
    },
    // Our position is older than what the hub keeps: the shown room is drawn again
    // (and followed from its new position); another open room is just followed on.
    onReset: (data) => {
      if (data.room === notifications.room) notifications.request?.onReset();
      if (data.room === room) openRoom(room, { push: false, reload: true });
    },
    onNotice: (notice) => {
      if (notice.type === 'error') toast(notice.error ?? 'The server refused that.', 'error');
    },
    onStatus: (status, transport) => {
      setBadge(status, transport);
      if (status === 'connected' && transport === 'longpoll') loadPresence(generation);
      // What failed while the connection was away goes again, with its client_id.
      if (status === 'connected') outbox.retryFailed();
    },
  });
}

/** Stops following an open room that is not shown. */
function closeRoom(name) {
  if (name === room || !open.close(name)) return;
  live?.leave(name);
  presences.delete(name);
  renderRooms();
  roomList.querySelector(`a[data-room="${CSS.escape(room)}"]`)?.focus();
}

/**
 * Shows room `name`: its recent messages, then live from where they end. A room
 * already open is followed already: only its history is drawn again. `reload`: the
 * hub reset our position, so the room is followed again from the new one.
 */
async function openRoom(name, { push, reload = false }) {
  const gen = ++generation;
  room = name;
  root.dataset.room = name;
  root.dataset.ready = 'false';
  if (push) history.pushState(null, '', roomUrl(name));
  const label = roomLabel(name, knownRooms);
  title.textContent = label;
  composerLabel.textContent = `Message ${label}`;
  textInput.placeholder = `Message ${label}`;
  describeLeave(label);
  updateTitle();
  // A room watched for its unread count is followed again as shown (present there).
  const watched = live?.watches(name) === true;
  const following = !reload && !watched && live?.rooms.includes(name) === true;
  if (reload || watched) live?.leave(name);
  for (const closed of open.view(name)) {
    live?.leave(closed);
    presences.delete(closed);
  }
  renderRooms();
  live?.focus(name);
  for (const item of pending.values()) item.remove();
  pending.clear();
  renderPresence();
  log.setAttribute('aria-busy', 'true');
  list.replaceChildren();
  scrollBack.more = false;
  scrollBack.loading = false;
  older.replaceChildren();
  arriving = [];

  let position = null;
  let loaded = false;
  try {
    const [{ data, headers }, read] = await Promise.all([
      client.get(`${api(name, 'messages')}?limit=${HISTORY_PAGE}`, { meta: true, cache: false }),
      client.get(api(name, 'read'), { cache: false }).catch(() => null),
    ]);
    if (gen !== generation) return;
    list.replaceChildren(...data.map(buildMessage));
    arrange(list);
    scrollBack.more = olderPage(data, new Set(), HISTORY_PAGE).more;
    if (read) await reachFirstUnread(data, read.read_id, gen);
    if (gen !== generation) return;
    if (read) showDivider([...shownMessages()], read.read_id);
    const header = headers.get('Switchboard-Position');
    position = header === null ? null : Number(header);
    loaded = true;
  } catch (error) {
    if (gen !== generation) return;
    toast(`Could not load #${name}: ${error.error ?? error}`, 'error');
  }
  // What arrived live meanwhile: shown unless the history had it already.
  const waiting = arriving;
  arriving = null;
  for (const message of waiting) showMessage(message);
  describeEmpty();
  renderOlder();
  scrollToBottom();
  if (!location.hash) scrollToDivider();
  highlightLinked();
  markShownRead();
  // A window taller than the history (or a linked message near its top): fill it.
  if (log.scrollTop < OLDER_PX) loadOlder();
  // Presence comes with the subscription (WebSocket and SSE send a snapshot on join);
  // long polling has none, so then it is read by REST (see onStatus).
  if (!live) connectLive(name, position);
  else if (!following) {
    // Watched meanwhile (the list loaded during the history's request): follow it as shown.
    if (live.watches(name)) live.leave(name);
    live.join(name, loaded ? position : null);
  }
  else if (live.transport === 'longpoll') loadPresence(gen);
  root.dataset.ready = 'true';
}

// ---- unread, live rooms, direct messages (issue 21) -----------------------------------
// What is unread comes from the server (`GET /api/rooms`: each room's read position,
// unread and mention counts), moves on with the messages this page receives, and is
// corrected by `read` markers in the viewer's notification room (written when any of
// their tabs or devices reads a room). The same connection follows the server's `rooms`
// log, so a room created anywhere appears at once.

const unread = new Unread();
/** The viewer's notification room, and whether the page follows it and `rooms` yet. */
const personalRoom = `user:${me}`;
let followingLists = false;
/** A room list reload asked for by live news, gathered into one request. */
let reloadSoon = null;
/** The pending "mark the shown room read" request. */
let readSoon = null;

function applyRoomList(data, headers) {
  knownRooms = Array.isArray(data) ? data : [];
  unread.load(knownRooms);
  // What is on screen is read, whatever the list says about it.
  const shownLast = lastShownId();
  if (shownLast > 0 && !document.hidden) unread.read(room, shownLast);
  renderRooms();
  const label = roomLabel(room, knownRooms);
  title.textContent = label;
  composerLabel.textContent = `Message ${label}`;
  textInput.placeholder = `Message ${label}`;
  updateTitle();
  if (!followingLists && live) {
    followingLists = true;
    const at = (name) => {
      const value = headers?.get(name);
      return value === null || value === undefined ? null : Number(value);
    };
    live.join('rooms', at('Switchboard-Position'));
    live.join(personalRoom, at('Switchboard-Notifications-Position'));
  }
  followDirectRooms();
  watchListedRooms();
}

/** Direct messages followed so their new messages count as unread at once (the first few). */
const MAX_FOLLOWED_DIRECT = 10;

function followDirectRooms() {
  if (!live || !followingLists) return;
  let followed = live.rooms.filter((name) => !isRoomName(name) && name !== personalRoom).length;
  for (const { name } of directRooms(knownRooms)) {
    if (followed >= MAX_FOLLOWED_DIRECT) break;
    if (live.rooms.includes(name)) continue;
    // From what the list counted: later messages arrive live and are counted here.
    const entry = knownRooms.find((r) => r.name === name);
    live.join(name, Number(entry?.last_id) || 0);
    followed += 1;
  }
}

/**
 * Public rooms of the viewer's list that are not open here, followed on the same
 * connection with `watch` (no presence: their members are not told the viewer is
 * there), so their unread counts move as messages arrive rather than at the next
 * list reload. At most this many, within the server's rooms per connection (50).
 */
const MAX_WATCHED_ROOMS = 20;

function watchListedRooms() {
  if (!live || !followingLists) return;
  let watching = live.rooms.filter((name) => live.watches(name)).length;
  for (const entry of knownRooms) {
    if (watching >= MAX_WATCHED_ROOMS) break;
    const { name } = entry;
    // The shown room and the open ones are followed as such (present), even while
    // their history is still loading and they are not joined yet.
    if (!entry.member || !isRoomName(name) || name === room || open.has(name) || live.rooms.includes(name)) continue;
    live.join(name, Number(entry.last_id) || 0, { watch: true });
    watching += 1;
  }
}

function reloadRoomsSoon() {
  if (reloadSoon) return;
  reloadSoon = setTimeout(() => {
    reloadSoon = null;
    loadRooms();
  }, 200);
}

/** Messages of the two logs the page follows for its lists; true when `message` was one. */
function listsHeard(message) {
  if (message.room === 'rooms') {
    if (message.event?.type === 'room_created') reloadRoomsSoon();
    return true;
  }
  if (message.room !== personalRoom) return false;
  const event = message.event ?? {};
  if (event.type === 'read' && event.room) {
    // Read here or elsewhere: the server knows what is left when it was not all.
    if (!unread.read(event.room, event.through)) reloadRoomsSoon();
    renderRooms();
    updateTitle();
  } else if (event.type === 'mention' && event.room && event.room !== room) {
    unread.mentioned(event.room, event.message_id);
    renderRooms();
    // The room may not be followed here: the server counts its unread messages.
    reloadRoomsSoon();
  } else if (event.type === 'direct_created') {
    reloadRoomsSoon();
  }
  return true;
}

/** A message of a followed room: unread unless it is on screen for someone looking. */
function noteArrival(message) {
  const seen = message.room === room && !document.hidden;
  if (unread.arrived(message, me, seen)) {
    renderRooms();
    updateTitle();
  }
  if (message.room === room && !document.hidden) markShownRead();
}

function roomBadges(name, present) {
  const badges = [];
  if (present > 0) {
    // Presence as presence: a dot and "N here", not a number that reads as unread.
    badges.push(el('span', { className: 'room-present', title: `${present} here` },
      el('span', { className: 'presence-dot', 'aria-hidden': 'true' }), ` ${present}`, el('span', { className: 'visually-hidden' }, ' here')));
  }
  const mentions = unread.mentionsIn(name);
  if (mentions > 0 && name !== room) {
    badges.push(el('span', { className: 'room-mentions', title: `${mentions} mentioning you` }, `@${mentions}`, el('span', { className: 'visually-hidden' }, ' mentioning you')));
  }
  const count = name === room ? 0 : unread.count(name);
  if (count > 0) {
    badges.push(el('span', { className: 'room-unread' }, count > 99 ? '99+' : String(count), el('span', { className: 'visually-hidden' }, ' unread')));
  }
  return badges;
}

function updateTitle() {
  // While the tab is hidden the shown room's new messages count too.
  document.title = titleFor(roomLabel(room, knownRooms), unread.total(document.hidden ? undefined : room));
}

function lastShownId() {
  const items = list.querySelectorAll('li.msg[data-id]');
  return items.length ? Number(items[items.length - 1].dataset.id) : 0;
}

/** Marks the shown room read through its newest shown message, once things settle. */
function markShownRead() {
  if (readSoon || document.hidden) return;
  readSoon = setTimeout(async () => {
    readSoon = null;
    const name = room;
    const through = lastShownId();
    if (through <= unread.readId(name)) return;
    unread.read(name, through);
    renderRooms();
    updateTitle();
    try {
      await client.post(api(name, 'read'), { through });
    } catch {
      // Kept for the next message or visit: reading is not worth an error toast.
    }
  }, 300);
}

document.addEventListener('visibilitychange', () => {
  updateTitle();
  if (!document.hidden) markShownRead();
});

/** Most pages read back to find the first unread message (5 × HISTORY_PAGE messages). */
const MAX_UNREAD_PAGES = 5;

/** The shown stored messages as {id, user}, oldest first (for `firstUnread`). */
function* shownMessages() {
  for (const item of list.querySelectorAll('li.msg[data-id]')) {
    yield { id: Number(item.dataset.id), user: { id: Number(item.dataset.userId) } };
  }
}

/**
 * When every message of the first page is unread and older ones exist, the first
 * unread one is further back: older pages are drawn (above, a few at most) until it
 * is among them, so the "New messages" line can be drawn above it.
 */
async function reachFirstUnread(page, readId, gen) {
  if (readId <= 0) return; // never read: everything is new, no line to draw
  for (let pages = 0; pages < MAX_UNREAD_PAGES && scrollBack.more; pages += 1) {
    const first = list.querySelector('li.msg[data-id]');
    if (!first || Number(first.dataset.id) <= readId + 1) return;
    const older = await client.get(`${api(room, 'messages')}?${new URLSearchParams({ before: first.dataset.id, limit: String(HISTORY_PAGE) })}`, { cache: false });
    if (gen !== generation) return;
    const { add, more } = olderPage(older, shownIds(), HISTORY_PAGE);
    scrollBack.more = more;
    list.prepend(...add.map(buildMessage));
    arrange(list);
  }
}

/** The "New messages" line above the first message someone else wrote after `readId`. */
function showDivider(messages, readId) {
  list.querySelector('li.unread-divider')?.remove();
  const first = firstUnread(messages, readId, me);
  if (first === null) return;
  // The whole page is unread and older messages exist: the unread ones begin further
  // back, so no line here (and no jump to the top, which would load older pages).
  if (first === Number(messages[0]?.id) && scrollBack.more) return;
  const item = list.querySelector(`li[data-id="${first}"]`);
  item?.before(el('li', { className: 'unread-divider', role: 'separator' }, el('span', {}, 'New messages')));
  // The first unread message shows its author and time, even within a group.
  item?.classList.remove('grouped');
}

function scrollToDivider() {
  const divider = list.querySelector('li.unread-divider');
  if (divider) divider.scrollIntoView({ block: 'start' });
}

// ---- leaving a room --------------------------------------------------------------------

/** Every room but the default one can be left: out of the viewer's list, no longer followed. */
function describeLeave(label) {
  leaveButton.hidden = room === 'general';
  leaveButton.setAttribute('aria-label', `Leave ${label}`);
}

leaveButton.addEventListener('click', async () => {
  const name = room;
  const label = roomLabel(name, knownRooms);
  leaveButton.disabled = true;
  try {
    await client.delete(api(name, 'membership'));
  } catch (error) {
    // Not in the list (opened, never joined): leaving it is still closing it here.
    if (error.status !== 404) {
      toast([`Could not leave ${label}: `, String(error.error ?? error)], 'error');
      leaveButton.disabled = false;
      return;
    }
  } finally {
    leaveButton.disabled = false;
  }
  toast(`Left ${label}.`, 'success');
  await openRoom('general', { push: true });
  open.close(name);
  live?.leave(name);
  presences.delete(name);
  unread.read(name, Number.MAX_SAFE_INTEGER);
  knownRooms = knownRooms.filter((r) => r.name !== name || isRoomName(name));
  renderRooms();
  updateTitle();
  loadRooms();
  textInput.focus();
});

/** Opens a public room by name: the server finds it without regard to case, or creates it. */
async function openNamedRoom(name) {
  try {
    const opened = await client.post('/api/rooms', { name });
    await openRoom(opened.name, { push: true });
    if (opened.created) reloadRoomsSoon();
  } catch (error) {
    toast(`Could not open #${name}: ${error.error ?? error}`, 'error');
  }
}

/** `/chat?with=ID` (from a person's row in the directory): the direct message with them. */
async function openDirectFromAddress() {
  const params = new URLSearchParams(location.search);
  const withId = Number(params.get('with'));
  if (!Number.isInteger(withId) || withId <= 0) return false;
  try {
    const opened = await client.post('/api/rooms/direct', { user_id: withId });
    history.replaceState(null, '', roomUrl(opened.name));
    await openRoom(opened.name, { push: false });
    return true;
  } catch (error) {
    toast(`Could not open the conversation: ${error.error ?? error}`, 'error');
    return false;
  }
}

/**
 * The first room: a direct message asked for by the address, or the page's room,
 * which the server finds without regard to case (or creates) and keeps in the
 * viewer's list.
 */
async function start() {
  if (await openDirectFromAddress()) return;
  let name = room;
  if (isRoomName(name)) {
    try {
      const opened = await client.post('/api/rooms', { name });
      if (opened.name !== name) history.replaceState(null, '', roomUrl(opened.name));
      name = opened.name;
    } catch {
      // Opening it through the log still works; the list may miss it until its first message.
    }
  }
  await openRoom(name, { push: false });
}

// ---- the composer ------------------------------------------------------------------------

function updateComposer() {
  sendButton.disabled = !sendable(textInput.value);
}

textInput.addEventListener('input', updateComposer);
// Before the keydown below: Enter on a highlighted mention picks it (and sends nothing).
attachMentions();
textInput.addEventListener('keydown', (event) => {
  if (event.key !== 'Enter' || event.shiftKey || event.isComposing || event.defaultPrevented) return;
  // On a touch screen Return is a new line, as in other messengers there: Send sends.
  if (touchOnly()) return;
  event.preventDefault();
  if (sendable(textInput.value)) composer.requestSubmit();
});

/** Draws an outgoing message's state: "Sending…", "Not sent." with Retry, or gone once stored. */
function drawOutgoing(entry) {
  const item = pending.get(entry.clientId);
  if (!item) return;
  const state = item.querySelector('.msg-state');
  item.querySelector('.msg-retry')?.remove();
  if (entry.state === 'sending') {
    item.classList.remove('failed');
    state.textContent = 'Sending…';
  } else if (entry.state === 'sent') {
    // Over SSE or long polling the POST may answer before the stream delivers it.
    state.textContent = 'Sent';
  } else if (entry.state === 'failed') {
    item.classList.add('failed');
    state.textContent = 'Not sent.';
    const retry = el('button', { type: 'button', className: 'small secondary msg-retry' }, 'Retry');
    retry.addEventListener('click', () => outbox.retry(entry.clientId));
    item.querySelector('.msg-meta').append(retry);
    // A refusal will not go by itself; a lost connection is retried when it is back.
    const later = entry.refused ? '' : ' It will be sent again when the connection is back.';
    toast(`Your message was not sent: ${entry.error?.message ?? entry.error}.${later}`, 'error');
  }
}

composer.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = textInput.value.trim();
  if (!sendable(text) || !live) return;
  list.querySelector('li.msg-empty')?.remove();
  const clientId = globalThis.crypto?.randomUUID?.() ?? `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  const item = buildPending(text, clientId);
  pending.set(clientId, item);
  list.append(item);
  scrollToBottom();
  textInput.value = '';
  updateComposer();
  outbox.add(room, text, clientId);
});

// ---- the bell on the chat's connection -------------------------------------------------------

/** The header bell's notification room, followed on the chat's one connection (notifybus.js). */
const notifications = { room: `user:${me}`, request: null };

/** The bell's room for the first connection, if the bell has asked already. */
function notificationRooms() {
  return notifications.request ? { [notifications.room]: notifications.request.since } : {};
}

provideNotifications((request) => {
  const again = notifications.request !== null;
  notifications.request = request;
  if (!live) return; // connectLive follows it
  if (again) live.leave(notifications.room); // after a reset: from the bell's new position
  live.join(notifications.room, request.since);
});

/** A notification is the bell's, not a chat message: true if it was one. */
function carryNotification(message) {
  if (message.room !== notifications.room) return false;
  notifications.request?.onMessage(message);
  return true;
}

// ---- phones and keyboards: the room drawer, touch hints, focus ------------------------------

const roomsPanel = document.getElementById('chat-rooms');
const roomsToggle = document.getElementById('rooms-toggle');
const roomsToggleUnread = document.getElementById('rooms-toggle-unread');
const narrow = window.matchMedia('(max-width: 699px)');
const coarse = window.matchMedia('(pointer: coarse)');
const fine = window.matchMedia('(any-pointer: fine)');

/** A phone or tablet with no mouse or trackpad: no keyboard shortcuts to speak of. */
function touchOnly() {
  return coarse.matches && !fine.matches;
}

/** The composer's hint fits the device: keys on a keyboard, taps on a touch screen. */
function describeComposer() {
  document.getElementById('composer-hint').textContent = touchOnly()
    ? 'Return starts a new line; tap Send to send. Type @ to mention someone.'
    : 'Enter sends; Shift+Enter starts a new line. Type @ to mention someone.';
}

/** What the open drawer made inert, to be given back when it closes. */
let madeInert = [];

/**
 * Opens or closes the room drawer. Open (on a phone, over the page), the rest of the
 * page is `inert`: neither Tab nor a screen reader wanders behind it. The "Rooms"
 * button stays usable, to close it again.
 */
function setDrawer(open) {
  root.dataset.drawer = open ? 'open' : 'closed';
  roomsToggle.setAttribute('aria-expanded', String(open));
  for (const node of madeInert) node.inert = false;
  madeInert = [];
  if (!open || !narrow.matches) return;
  // Every sibling along the way from the drawer (and the button) up to <body>.
  const keep = new Set();
  for (const start of [roomsPanel, roomsToggle]) {
    for (let node = start; node && node !== document.body; node = node.parentElement) keep.add(node);
  }
  for (const node of keep) {
    for (const sibling of node.parentElement?.children ?? []) {
      if (!keep.has(sibling) && !sibling.inert && sibling.tagName !== 'SCRIPT') {
        sibling.inert = true;
        madeInert.push(sibling);
      }
    }
  }
}

/** On a narrow screen the room list is a drawer behind the "Rooms" button; on a wide one, a column. */
function layoutRooms() {
  roomsToggle.hidden = !narrow.matches;
  setDrawer(false);
}

/** The "Rooms" button shows how many messages wait in the rooms behind it. */
function countBehindToggle() {
  const waiting = [...roomList.querySelectorAll('a:not([aria-current]) .room-unread')]
    .reduce((sum, badge) => sum + (Number.parseInt(badge.textContent, 10) || 0), 0);
  roomsToggleUnread.hidden = waiting === 0;
  roomsToggleUnread.textContent = waiting === 0 ? '' : ` ${waiting > 99 ? '99+' : waiting}`;
  roomsToggle.setAttribute('aria-label', waiting === 0 ? 'Rooms' : `Rooms, ${waiting} unread`);
}

roomsToggle.addEventListener('click', () => {
  const open = root.dataset.drawer !== 'open';
  setDrawer(open);
  if (open) (roomList.querySelector('a[aria-current="page"]') ?? roomList.querySelector('a') ?? roomInput).focus();
});
// On the whole page, not only the drawer: a list re-drawn under the focused room
// (a live unread count) drops focus to the body, and Escape must still close it
// (the page behind is inert while the drawer is open, so nothing else wants it).
document.addEventListener('keydown', (event) => {
  if (event.key !== 'Escape' || root.dataset.drawer !== 'open') return;
  event.preventDefault();
  setDrawer(false);
  roomsToggle.focus();
});
// A tap beside the open drawer closes it.
document.addEventListener('click', (event) => {
  if (root.dataset.drawer === 'open' && !roomsPanel.contains(event.target) && !roomsToggle.contains(event.target)) setDrawer(false);
});
narrow.addEventListener('change', layoutRooms);
coarse.addEventListener('change', describeComposer);
new MutationObserver(countBehindToggle).observe(roomList, { childList: true, subtree: true, characterData: true });

/** A room chosen from the list or the form: shown, the drawer closed, and the composer focused to write in it. */
function chooseRoom(name) {
  openRoom(name, { push: true });
  setDrawer(false);
  textInput.focus();
}

// ---- @ mentions in the composer -------------------------------------------------------------

/** People to mention for what follows the `@`: those in the room first, then the directory. */
async function suggestMentions(query) {
  const found = new Map(); // handle (lower case) -> option
  const offer = (user, here) => {
    const handle = mentionHandle(user);
    if (!handle || user.id === me || found.has(handle.toLowerCase())) return;
    found.set(handle.toLowerCase(), { value: handle, label: `${user.name} · ${handle}${here ? ' · here' : ''}` });
  };
  const here = presenceOf(room).users;
  const wanted = query.toLowerCase();
  for (const [id, name] of here) if (name.toLowerCase().startsWith(wanted)) offer({ id, name }, true);
  if (query.length > 0) {
    const people = await client.get(`/api/search?${new URLSearchParams({ q: query, limit: '8' })}`, { supersede: 'mention' });
    for (const person of people) offer(person, here.has(person.id));
  }
  return [...found.values()].slice(0, 8);
}

/** Puts `handle` and a space where the `@` term is, the caret after them. */
function insertMention(handle) {
  const caret = textInput.selectionStart;
  const term = mentionAt(textInput.value, caret);
  if (!term) return;
  const after = textInput.value.slice(caret).replace(/^\s/, '');
  textInput.value = `${textInput.value.slice(0, term.start)}${handle} ${after}`;
  const at = term.start + handle.length + 1;
  textInput.setSelectionRange(at, at);
  updateComposer();
}

function attachMentions() {
  attachCombobox(textInput, document.getElementById('mention-list'), {
    suggest: suggestMentions,
    apply: insertMention,
    term: (field) => mentionAt(field.value, field.selectionStart)?.query ?? null,
    minChars: 0,
    delay: 120,
    clearOnEscape: false,
    expanded: false,
  });
}

// ---- start ---------------------------------------------------------------------------------

layoutRooms();
describeComposer();

setInterval(() => {
  if (!document.hidden) loadRooms();
}, ROOMS_EVERY_MS);
setInterval(() => {
  if (!document.hidden && live?.transport === 'longpoll') loadPresence(generation);
}, PRESENCE_EVERY_MS);

updateComposer();
start().then(loadRooms);
root.dataset.enhanced = 'true';
