/**
 * realtime.js owns the browser's live connection to the Switchboard hub: it connects by
 * WebSocket, falls back to Server-Sent Events (+ POST to send) and then to HTTP long
 * polling, reconnects with backoff and jitter, and resumes every room from the last
 * message id it delivered, so the page sees each message once and in order whatever
 * the transport did (dropped, replayed, reconnected).
 *
 * Plain ES module; the browser APIs it uses (WebSocket, EventSource, fetch, timers)
 * can be injected, so Node tests drive it with doubles.
 *
 * @example
 *   import { connect } from '/static/realtime.js';
 *   const live = connect({
 *     rooms: { general: 0 },                  // room -> last id already shown
 *     onMessage: (m) => show(m),              // {room, id, user:{id,name}, text, ts, client_id?}
 *     onPresence: (p) => showWho(p),          // {room, count, users}
 *     onReset: ({ room }) => reloadRoom(room),
 *     onStatus: (status, transport) => badge(status, transport),
 *   });
 *   await live.send('general', 'hello');
 */

export const TRANSPORTS = ['websocket', 'sse', 'longpoll'];

/** A transport that never opened this many times in a row is given up for the next. */
const FAILURES_BEFORE_FALLBACK = 2;
const PING_EVERY_MS = 25_000;
const PONG_WITHIN_MS = 10_000;
const POLL_TIMEOUT_S = 25;

/** Delay before reconnect attempt `n` (0-based): exponential, capped, with jitter. */
export function backoff(n, random = Math.random, baseMs = 500, capMs = 30_000) {
  const ceiling = Math.min(capMs, baseMs * 2 ** n);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

function randomId() {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === 'function') return c.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

function readCookie(name, doc = globalThis.document) {
  const jar = doc && typeof doc.cookie === 'string' ? doc.cookie : '';
  for (const part of jar.split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return decodeURIComponent(rest.join('='));
  }
  return null;
}

/**
 * Opens the live connection. Options (all optional but `rooms`):
 *  - rooms: {room: lastSeenId} or an array of room names (start from now);
 *  - onMessage, onPresence, onJoined, onLeft, onReset, onNotice, onStatus: callbacks;
 *  - transports: the order to try (default TRANSPORTS);
 *  - base: the server origin (default: this page's);
 *  - WebSocket, EventSource, fetch, setTimeout, clearTimeout, random: injectable.
 */
export function connect(options) {
  const env = {
    WebSocket: options.WebSocket ?? globalThis.WebSocket,
    EventSource: options.EventSource ?? globalThis.EventSource,
    fetch: options.fetch ?? globalThis.fetch?.bind(globalThis),
    setTimeout: options.setTimeout ?? globalThis.setTimeout.bind(globalThis),
    clearTimeout: options.clearTimeout ?? globalThis.clearTimeout.bind(globalThis),
    random: options.random ?? Math.random,
    base: options.base ?? globalThis.location?.origin ?? 'http://localhost',
  };
  const on = {
    message: options.onMessage ?? (() => {}),
    presence: options.onPresence ?? (() => {}),
    joined: options.onJoined ?? (() => {}),
    left: options.onLeft ?? (() => {}),
    reset: options.onReset ?? (() => {}),
    notice: options.onNotice ?? (() => {}),
    status: options.onStatus ?? (() => {}),
  };
  const order = (options.transports ?? TRANSPORTS).filter((t) => available(t, env));

  /** room -> highest id delivered (null: deliver from whatever the server sends next). */
  const positions = new Map();
  const initial = Array.isArray(options.rooms)
    ? options.rooms.map((r) => [r, null])
    : Object.entries(options.rooms ?? {});
  for (const [room, id] of initial) positions.set(room, id == null ? null : Number(id));

  let index = 0; // into `order`
  let failures = 0; // consecutive attempts of the current transport that never opened
  let attempt = 0; // consecutive reconnects, for the backoff
  let current = null; // {close(), send?(frame)}
  let closed = false;
  let retryTimer = null;
  const pendingSends = new Map(); // client_id -> {resolve, reject} (WebSocket echoes)

  function setStatus(status) {
    on.status(status, order[index] ?? null);
  }

  /** Delivers a message once and in order; a gap means our position is stale: resync. */
  function deliver(message) {
    const room = message.room;
    if (!positions.has(room)) return;
    const last = positions.get(room);
    const id = Number(message.id);
    if (last != null && id <= last) return; // a replay overlap: already shown
    if (last != null && id > last + 1) {
      // Missed some (e.g. a dropped frame): reconnecting resumes from `last`.
      reconnect('gap');
      return;
    }
    positions.set(room, id);
    if (message.client_id && pendingSends.has(message.client_id)) {
      pendingSends.get(message.client_id).resolve(message);
      pendingSends.delete(message.client_id);
    }
    on.message(message);
  }

  function handleEvent(type, data) {
    switch (type) {
      case 'message':
        deliver(data);
        break;
      case 'presence':
        on.presence(data);
        break;
      case 'user_joined':
        on.joined(data);
        break;
      case 'user_left':
        on.left(data);
        break;
      case 'reset':
        // The server no longer has everything after our position: start from now and
        // let the page reload its state.
        if (positions.has(data.room)) positions.set(data.room, null);
        on.reset(data);
        break;
      case 'error':
        // A refused send (it names its client_id): fail it now, not at the timeout.
        if (data.client_id && pendingSends.has(data.client_id)) {
          const error = new Error(data.error || 'Sending failed');
          error.code = data.code;
          pendingSends.get(data.client_id).reject(error);
          pendingSends.delete(data.client_id);
          break;
        }
        on.notice({ type, ...data });
        break;
      default:
        on.notice({ type, ...data });
    }
  }

  function opened() {
    failures = 0;
    attempt = 0;
    setStatus('connected');
  }

  /** The transport ended (`wasOpen`: it had worked): reconnect or fall back. */
  function ended(wasOpen) {
    if (closed) return;
    current = null;
    if (!wasOpen) {
      failures += 1;
      if (failures >= FAILURES_BEFORE_FALLBACK && index < order.length - 1) {
        index += 1;
        failures = 0;
        attempt = 0;
        start();
        return;
      }
    }
    schedule();
  }

  function schedule() {
    setStatus('reconnecting');
    const delay = backoff(attempt, env.random);
    attempt += 1;
    retryTimer = env.setTimeout(() => {
      retryTimer = null;
      start();
    }, delay);
  }

  function reconnect(reason) {
    if (!current) return;
    const old = current;
    current = null;
    old.close(reason);
    start();
  }

  function start() {
    if (closed || order.length === 0) {
      if (order.length === 0) setStatus('unsupported');
      return;
    }
    setStatus('connecting');
    const kind = order[index];
    const hooks = { opened, ended, handleEvent, positions, env };
    current =
      kind === 'websocket' ? openWebSocket(hooks) : kind === 'sse' ? openSse(hooks) : openLongPoll(hooks);
  }

  async function postSend(room, text, clientId) {
    const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
    const csrf = readCookie('csrftoken');
    if (csrf) headers['X-CSRFToken'] = csrf;
    const response = await env.fetch(`${env.base}/api/send`, {
      method: 'POST',
      credentials: 'same-origin',
      headers,
      body: JSON.stringify({ room, text, client_id: clientId }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error(body.error || `Sending failed (HTTP ${response.status})`);
      error.status = response.status;
      error.code = body.code;
      throw error;
    }
    return body;
  }

  start();

  return {
    get transport() {
      return order[index] ?? null;
    },
    /** The last id delivered per room (what a reconnect resumes from). */
    positions() {
      return Object.fromEntries(positions);
    },
    /**
     * Sends `text` to `room`; resolves with the stored message. A retry after a lost
     * answer carries the same client_id, so the server stores it once.
     */
    send(room, text, clientId = randomId()) {
      if (current?.send && current.isOpen()) {
        return new Promise((resolve, reject) => {
          pendingSends.set(clientId, { resolve, reject });
          current.send({ type: 'send', room, text, client_id: clientId });
          // No echo in time (the socket died): fall back to the idempotent POST.
          env.setTimeout(() => {
            if (!pendingSends.has(clientId)) return;
            pendingSends.delete(clientId);
            postSend(room, text, clientId).then(resolve, reject);
          }, PONG_WITHIN_MS);
        });
      }
      return postSend(room, text, clientId);
    },
    /** Follows another room, from `since` (an id already shown) or from now. */
    join(room, since = null) {
      if (positions.has(room)) return;
      positions.set(room, since);
      reconnect('join');
    },
    leave(room) {
      if (!positions.delete(room)) return;
      reconnect('leave');
    },
    close() {
      closed = true;
      if (retryTimer) env.clearTimeout(retryTimer);
      current?.close('closed');
      current = null;
      setStatus('closed');
    },
  };
}

function available(kind, env) {
  if (kind === 'websocket') return typeof env.WebSocket === 'function';
  if (kind === 'sse') return typeof env.EventSource === 'function' && typeof env.fetch === 'function';
  return typeof env.fetch === 'function';
}

function wsUrl(base) {
  return `${base.replace(/^http/, 'ws')}/ws`;
}

/** A transport whose constructor threw: reported as never opened, on the next tick. */
function failedAttempt(ended, env) {
  let cancelled = false;
  env.setTimeout(() => {
    if (!cancelled) ended(false);
  }, 0);
  return {
    isOpen: () => false,
    close() {
      cancelled = true;
    },
  };
}

/** `/ws` JSON protocol: join each room with its position, then frames tagged by type. */
function openWebSocket({ opened, ended, handleEvent, positions, env }) {
  let socket;
  try {
    socket = new env.WebSocket(wsUrl(env.base));
  } catch {
    // Refused outright (e.g. a URL the page's CSP blocks): a failed attempt like any other.
    return failedAttempt(ended, env);
  }
  let isOpen = false;
  let finished = false;
  let pingTimer = null;
  let pongTimer = null;

  const finish = () => {
    if (finished) return;
    finished = true;
    env.clearTimeout(pingTimer);
    env.clearTimeout(pongTimer);
    ended(isOpen);
  };
  const write = (frame) => socket.send(JSON.stringify(frame));
  const heartbeat = () => {
    pingTimer = env.setTimeout(() => {
      write({ type: 'ping' });
      // A socket that cannot answer a ping is dead even if the browser has not noticed.
      pongTimer = env.setTimeout(() => socket.close(4000, 'no pong'), PONG_WITHIN_MS);
    }, PING_EVERY_MS);
  };

  socket.onopen = () => {
    isOpen = true;
    for (const [room, since] of positions) {
      write(since == null ? { type: 'join', room } : { type: 'join', room, since });
    }
    opened();
    heartbeat();
  };
  socket.onmessage = (event) => {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return; // not ours
    }
    const { type, ...data } = frame;
    if (type === 'pong') {
      env.clearTimeout(pongTimer);
      heartbeat();
      return;
    }
    if (type === 'welcome') return;
    handleEvent(type, data);
  };
  socket.onerror = () => {}; // always followed by close
  socket.onclose = finish;

  return {
    isOpen: () => isOpen && !finished,
    send: write,
    close(reason) {
      finished = true;
      env.clearTimeout(pingTimer);
      env.clearTimeout(pongTimer);
      socket.onclose = null;
      socket.close(1000, reason);
    },
  };
}

/** One EventSource per room; the browser resends Last-Event-ID on its own reconnects. */
function openSse({ opened, ended, handleEvent, positions, env }) {
  const sources = [];
  let isOpen = false;
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    for (const source of sources) source.close();
    ended(isOpen);
  };
  for (const [room, since] of positions) {
    const query = since == null ? '' : `?since=${encodeURIComponent(since)}`;
    let source;
    try {
      source = new env.EventSource(
        `${env.base}/api/rooms/${encodeURIComponent(room)}/events${query}`,
        { withCredentials: true },
      );
    } catch {
      env.setTimeout(finish, 0);
      break;
    }
    source.onopen = () => {
      if (!isOpen) {
        isOpen = true;
        opened();
      }
    };
    const handler = (type) => (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      const kind = data && typeof data.type === 'string' && type === 'message' ? data.type : type;
      if (data && typeof data === 'object' && 'type' in data) delete data.type;
      handleEvent(kind, { room, ...data });
    };
    source.onmessage = handler('message');
    for (const type of ['presence', 'reset', 'user_joined', 'user_left', 'notification']) {
      source.addEventListener(type, handler(type));
    }
    // The browser retries by itself while the stream is CONNECTING; CLOSED means it
    // gave up (e.g. a 401 or 404), and our own reconnect resumes from our position.
    source.onerror = () => {
      if (source.readyState === 2 || !isOpen) finish();
    };
    sources.push(source);
  }
  if (sources.length === 0) env.setTimeout(finish, 0);
  return {
    isOpen: () => false, // sends go by POST
    close() {
      finished = true;
      for (const source of sources) source.close();
    },
  };
}

/** `GET /api/poll` per room, again as soon as it answers; woken by the server. */
function openLongPoll({ opened, ended, handleEvent, positions, env }) {
  const controller = typeof AbortController === 'function' ? new AbortController() : null;
  let isOpen = false;
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    controller?.abort();
    ended(isOpen);
  };
  const loop = async (room) => {
    // The first poll answers at once (timeout 0), so the page learns quickly that
    // long polling works; the next ones wait for news.
    let first = true;
    while (!finished && positions.has(room)) {
      const last = positions.get(room);
      const query = new URLSearchParams({ room, timeout: String(first ? 0 : POLL_TIMEOUT_S) });
      first = false;
      if (last != null) query.set('last_id', String(last));
      let response;
      try {
        response = await env.fetch(`${env.base}/api/poll?${query}`, {
          credentials: 'same-origin',
          headers: { Accept: 'application/json' },
          signal: controller?.signal,
        });
      } catch {
        finish();
        return;
      }
      if (response.status === 410) {
        // The position is older than the log keeps (or ahead of it): the page reloads
        // the room and follows it again; polling this room from here would repeat it.
        const body = await response.json().catch(() => ({}));
        if (!isOpen) {
          isOpen = true;
          opened();
        }
        handleEvent('reset', { room, reason: body.code ?? 'reset' });
        return;
      }
      if (!response.ok) {
        finish();
        return;
      }
      const messages = await response.json().catch(() => null);
      if (!Array.isArray(messages)) {
        finish();
        return;
      }
      if (!isOpen) {
        isOpen = true;
        opened();
      }
      for (const message of messages) handleEvent('message', { room, ...message });
    }
  };
  const rooms = [...positions.keys()];
  for (const room of rooms) loop(room);
  if (rooms.length === 0) env.setTimeout(finish, 0);
  return {
    isOpen: () => false,
    close() {
      finished = true;
      controller?.abort();
    },
  };
}
