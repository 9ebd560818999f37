/**
 * realtime.js owns the browser's live connection to the Switchboard hub: it connects by
 * WebSocket, falls back to Server-Sent Events (+ POST to send) and then to HTTP long
 * polling, reconnects with backoff and jitter, and resumes every room from the last
 * message id it delivered, so the page sees each message once and in order whatever
 * the transport did (dropped, replayed, reconnected).
 *
 * However many rooms the page follows, it holds ONE connection: one WebSocket (rooms are
 * joined and left on it), one EventSource on `/api/events?rooms=a,b&since=a:12,b:7`
 * (opened again with the new set when a room is joined or left, each room resuming from
 * its position), or one long-poll loop (one request at a time). Browsers allow six
 * HTTP/1.1 connections per origin; a stream per room would exhaust them.
 * Sends that do not go over the WebSocket are POSTs through ajax.js (CSRF, errors).
 *
 * Honest about the connection: every transport has a heartbeat, so a connection that
 * died silently (a dropped network, a sleeping laptop) is noticed within about 10 s
 * (the WebSocket pings, SSE hears the server's `ping` event, a long poll has a
 * deadline). After falling back to a lesser transport it keeps trying the better ones
 * with backoff and moves back as soon as one opens; when every transport has failed
 * it starts again from the best one. Status: `connecting`, `connected`, `reconnecting`,
 * `offline` (the browser says it has no network), `closed`, `unsupported`.
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
 *   live.join('random', 41);                  // follow another room on the same connection
 *   live.focus('random');                     // the room the person looks at (long polling waits on it)
 */
import defaultClient, { createClient } from './ajax.js';

export const TRANSPORTS = ['websocket', 'sse', 'longpoll'];

/** A transport that never opened this many times in a row is given up for the next. */
const FAILURES_BEFORE_FALLBACK = 2;
/** The WebSocket pings this often; any frame from the server counts as a sign of life. */
export const PING_EVERY_MS = 5_000;
/** Nothing heard for longer than this: the WebSocket is dead (checked at each ping, so noticed within 10 s). */
export const WS_SILENT_MS = 9_000;
/** The server's SSE `ping` event comes every 4 s (src/transport/sse.rs): silence past two and a half is death. */
export const SSE_SILENT_MS = 10_000;
const SSE_CHECK_MS = 2_000;
/** A WebSocket send with no echo in this time goes again as the idempotent POST. */
const ECHO_WITHIN_MS = 10_000;
/** A long poll waits at most this long, so a dead one is noticed within POLL_TIMEOUT_S + POLL_GRACE_MS. */
const POLL_TIMEOUT_S = 8;
const POLL_GRACE_MS = 4_000;
/** After a fallback, the better transports are tried again after about this, doubling up to UPGRADE_CAP_MS. */
export const UPGRADE_FIRST_MS = 5_000;
const UPGRADE_CAP_MS = 60_000;
/** A probe of a better transport that has not opened in this time failed. */
const PROBE_WITHIN_MS = 5_000;
/**
 * Long polling waits on one room at a time (the focused one); with other rooms followed
 * it waits at most this long, then checks them all at once (timeout 0), so a message in
 * a background room shows within about this many seconds.
 */
const POLL_SWEEP_S = 8;

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

/**
 * Opens the live connection. Options (all optional but `rooms`):
 *  - rooms: {room: lastSeenId} or an array of room names (start from now);
 *  - onMessage, onPresence, onJoined, onLeft, onReset, onNotice, onStatus: callbacks;
 *  - transports: the order to try (default TRANSPORTS);
 *  - focus: the room the person looks at (default: the first);
 *  - base: the server origin (default: this page's);
 *  - client: the ajax.js client sends go through (default: ajax.js's own, or one on `fetch`);
 *  - WebSocket, EventSource, fetch, setTimeout, clearTimeout, random, now: injectable.
 */
export function connect(options) {
  const env = {
    WebSocket: options.WebSocket ?? globalThis.WebSocket,
    EventSource: options.EventSource ?? globalThis.EventSource,
    fetch: options.fetch ?? globalThis.fetch?.bind(globalThis),
    setTimeout: options.setTimeout ?? globalThis.setTimeout.bind(globalThis),
    clearTimeout: options.clearTimeout ?? globalThis.clearTimeout.bind(globalThis),
    random: options.random ?? Math.random,
    now: options.now ?? Date.now,
    base: options.base ?? globalThis.location?.origin ?? 'http://localhost',
  };
  // Sends go through ajax.js (CSRF header, the error envelope, a 401 to the login page).
  const client = options.client ?? (options.fetch ? createClient({ fetch: options.fetch }) : defaultClient);
  // Relative on the page's own origin: ajax.js sends the CSRF token only there.
  const sendUrl = options.base ? `${options.base}/api/send` : '/api/send';
  const isOnline = options.isOnline ?? (() => globalThis.navigator?.onLine !== false);
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
  /** Rooms followed without counting the user present (`join(room, since, {watch: true})`). */
  const watched = new Set();
  /** The room the person looks at: long polling waits on it (see POLL_SWEEP_S). */
  const focused = { room: options.focus ?? initial[0]?.[0] ?? null };

  let index = 0; // into `order`
  let failures = 0; // consecutive attempts of the current transport that never opened
  let attempt = 0; // consecutive reconnects, for the backoff
  let current = null; // {close(), send?(frame)}
  let closed = false;
  let retryTimer = null;
  let upgradeTimer = null;
  let upgrades = 0; // consecutive probes of the better transports that failed
  let probing = null; // the probe in flight: {cancel()}
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
      case 'duplicate': {
        // A retried send: the server had it already and answers with the first copy
        // (not a `message`: that id may have been delivered here before).
        const pending = data.client_id && pendingSends.get(data.client_id);
        if (pending) {
          pendingSends.delete(data.client_id);
          const { type: _type, ...stored } = data;
          pending.resolve(stored);
        }
        break;
      }
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
    if (index > 0) scheduleUpgrade();
  }

  /** The transport ended (`wasOpen`: it had worked): reconnect or fall back. */
  function ended(wasOpen) {
    if (closed) return;
    current = null;
    stopUpgrade();
    if (!wasOpen) {
      failures += 1;
      if (failures >= FAILURES_BEFORE_FALLBACK) {
        failures = 0;
        if (index < order.length - 1) {
          // The next transport at once; the backoff keeps growing until one opens, so
          // a long outage is not met with a round of attempts every few seconds.
          index += 1;
          start();
          return;
        }
        // Every transport failed (the server is down, not a transport blocked): the
        // next round starts from the best one again, after the growing backoff.
        index = 0;
      }
    }
    schedule();
  }

  function stopUpgrade() {
    if (upgradeTimer) env.clearTimeout(upgradeTimer);
    upgradeTimer = null;
    probing?.cancel();
    probing = null;
  }

  /** On a lesser transport: try the better ones after a backoff, best first. */
  function scheduleUpgrade() {
    stopUpgrade();
    const delay = backoff(upgrades, env.random, UPGRADE_FIRST_MS, UPGRADE_CAP_MS);
    upgradeTimer = env.setTimeout(() => {
      upgradeTimer = null;
      tryUpgrade(0);
    }, delay);
  }

  function tryUpgrade(candidate) {
    if (closed || !current || candidate >= index) {
      upgrades += 1;
      if (!closed && current && index > 0) scheduleUpgrade();
      return;
    }
    probing = probe(order[candidate], env, positions, (works) => {
      probing = null;
      if (closed || !current) return;
      if (!works) {
        tryUpgrade(candidate + 1);
        return;
      }
      // It opens: move to it. Its first frames resume every room from our positions.
      upgrades = 0;
      const old = current;
      current = null;
      old.close('upgrade');
      index = candidate;
      failures = 0;
      attempt = 0;
      start();
    });
  }

  function schedule() {
    setStatus(isOnline() ? 'reconnecting' : 'offline');
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

  /**
   * The room set changed. A WebSocket joins or leaves on the open socket (`frame`);
   * SSE and long polling open their one stream again with the new set, once for all
   * the changes made in the same turn (opening a room may leave one and join another).
   */
  let restartTimer = null;
  function roomsChanged(frame) {
    if (closed) return;
    if (current?.update) {
      // Not open yet: it joins every room in `positions` when it opens.
      if (current.isOpen()) current.update(frame);
      return;
    }
    if (!current || restartTimer) return; // connecting or waiting to retry: it reads `positions` then
    restartTimer = env.setTimeout(() => {
      restartTimer = null;
      reconnect(frame.type);
    }, 0);
  }

  function start() {
    if (closed || order.length === 0) {
      if (order.length === 0) setStatus('unsupported');
      return;
    }
    setStatus('connecting');
    const kind = order[index];
    const hooks = { opened, ended, handleEvent, positions, watched, focused, env, interrupted: () => setStatus('reconnecting') };
    current =
      kind === 'websocket' ? openWebSocket(hooks) : kind === 'sse' ? openSse(hooks) : openLongPoll(hooks);
  }

  /** The idempotent POST; rejects with ajax.js's ApiError (`message`, `code`, `status`). */
  function postSend(room, text, clientId) {
    return client.post(sendUrl, { room, text, client_id: clientId });
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
          }, ECHO_WITHIN_MS);
        });
      }
      return postSend(room, text, clientId);
    },
    /** The rooms followed, in the order they were joined. */
    get rooms() {
      return [...positions.keys()];
    },
    /**
     * Follows another room on the same connection, from `since` (an id already shown)
     * or from now. `watch`: without being counted present there (its members are not
     * told; a page keeping the unread count of a room it does not show). Long polling
     * counts nobody present, so there it changes nothing.
     */
    join(room, since = null, { watch = false } = {}) {
      if (positions.has(room)) return;
      const from = since == null ? null : Number(since);
      positions.set(room, from);
      if (watch) watched.add(room);
      roomsChanged(joinFrame(room, from, watch));
    },
    /** Whether `room` is followed with `watch`. */
    watches(room) {
      return watched.has(room);
    },
    leave(room) {
      watched.delete(room);
      if (!positions.delete(room)) return;
      if (focused.room === room) focused.room = positions.keys().next().value ?? null;
      roomsChanged({ type: 'leave', room });
    },
    /** The room the person looks at: long polling waits on it, and checks the others every few seconds. */
    focus(room) {
      if (focused.room === room) return;
      focused.room = room;
      current?.refocus?.();
    },
    /** The network is back (the browser's `online` event): retry now rather than at the backoff. */
    retryNow() {
      if (closed || current || !retryTimer) return;
      env.clearTimeout(retryTimer);
      retryTimer = null;
      start();
    },
    close() {
      closed = true;
      stopUpgrade();
      if (retryTimer) env.clearTimeout(retryTimer);
      if (restartTimer) env.clearTimeout(restartTimer);
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
/** The WebSocket's join frame. */
function joinFrame(room, since, watch) {
  const frame = since == null ? { type: 'join', room } : { type: 'join', room, since };
  if (watch) frame.watch = true;
  return frame;
}

function openWebSocket({ opened, ended, handleEvent, positions, watched = new Set(), env }) {
  let socket;
  try {
    socket = new env.WebSocket(wsUrl(env.base));
  } catch {
    // Refused outright (e.g. a URL the page's CSP blocks): a failed attempt like any other.
    return failedAttempt(ended, env);
  }
  let isOpen = false;
  let finished = false;

  const write = (frame) => socket.send(JSON.stringify(frame));
  // A socket that hears nothing, not even a pong, is dead even if the browser has not
  // noticed (a silent network drop can take minutes to close it): give it up now.
  const alive = watchdog(env, PING_EVERY_MS, WS_SILENT_MS, () => {
    if (isOpen) write({ type: 'ping' });
  }, () => {
    socket.onclose = null;
    socket.close(4000, 'silent');
    finish();
  });
  const finish = () => {
    if (finished) return;
    finished = true;
    alive.stop();
    ended(isOpen);
  };

  socket.onopen = () => {
    isOpen = true;
    alive.heard();
    for (const [room, since] of positions) write(joinFrame(room, since, watched.has(room)));
    opened();
  };
  socket.onmessage = (event) => {
    alive.heard();
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return; // not ours
    }
    const { type, ...data } = frame;
    if (type === 'pong' || type === 'welcome') return;
    handleEvent(type, data);
  };
  socket.onerror = () => {}; // always followed by close
  socket.onclose = finish;

  return {
    isOpen: () => isOpen && !finished,
    send: write,
    /** A `join` or `leave` frame: the room set changes on the open socket. */
    update: write,
    close(reason) {
      finished = true;
      alive.stop();
      socket.onclose = null;
      socket.close(1000, reason);
    },
  };
}

/** `room:id` pairs for `/api/events?since=` (rooms followed from now have none). */
export function compositePositions(positions) {
  return [...positions]
    .filter(([, id]) => id != null)
    .map(([room, id]) => `${room}:${id}`)
    .join(',');
}

/** The URL of the one stream that follows every room in `positions` (those in `watched` unseen). */
export function eventsUrl(base, positions, watched = new Set()) {
  const query = new URLSearchParams({ rooms: [...positions.keys()].join(',') });
  const since = compositePositions(positions);
  if (since) query.set('since', since);
  const watching = [...positions.keys()].filter((room) => watched.has(room));
  if (watching.length) query.set('watch', watching.join(','));
  return `${base}/api/events?${query}`;
}

/** A transport with no room to follow: nothing to open, nothing to wait for. */
function idle(opened, env) {
  const timer = env.setTimeout(opened, 0);
  return {
    isOpen: () => false,
    close() {
      env.clearTimeout(timer);
    },
  };
}

/**
 * One EventSource on `/api/events` for every room. Its event ids carry every room's
 * position (`a:12,b:7`), so the browser's own reconnect resumes them all by
 * Last-Event-ID; a changed room set opens a new stream from our positions.
 */
function openSse({ opened, ended, handleEvent, positions, watched, env, interrupted }) {
  if (positions.size === 0) return idle(opened, env);
  let isOpen = false;
  let finished = false;
  let reopening = false; // the browser is reconnecting the stream by itself
  let source;
  try {
    source = new env.EventSource(eventsUrl(env.base, positions, watched), { withCredentials: true });
  } catch {
    return failedAttempt(ended, env);
  }
  // The server sends an event (at least its `ping`) every few seconds: silence means
  // the stream is dead, or the browser's own reconnect is not getting anywhere.
  const alive = watchdog(env, SSE_CHECK_MS, SSE_SILENT_MS, null, () => finish());
  const finish = () => {
    if (finished) return;
    finished = true;
    alive.stop();
    source.close();
    ended(isOpen);
  };
  source.onopen = () => {
    alive.heard();
    if (!isOpen || reopening) {
      isOpen = true;
      reopening = false;
      opened();
    }
  };
  source.addEventListener('ping', () => alive.heard());
  // Every payload names its room (messages, presence, resets alike).
  const handler = (type) => (event) => {
    if (finished) return; // a replaced stream: its successor resumes from our positions
    alive.heard();
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return;
    }
    if (!data || typeof data !== 'object') return;
    const { type: inner, ...rest } = data;
    handleEvent(type === 'message' && typeof inner === 'string' ? inner : type, rest);
  };
  source.onmessage = handler('message');
  for (const type of ['presence', 'reset', 'user_joined', 'user_left', 'notification']) {
    source.addEventListener(type, handler(type));
  }
  // The browser retries by itself while the stream is CONNECTING; CLOSED means it
  // gave up (e.g. a 401 or 400), and our own reconnect resumes from our positions.
  source.onerror = () => {
    if (source.readyState === 2 || !isOpen) {
      finish();
    } else if (!reopening && !finished) {
      reopening = true;
      interrupted();
    }
  };
  return {
    isOpen: () => false, // sends go by POST
    close() {
      finished = true;
      alive.stop();
      source.close();
    },
  };
}

/**
 * Long polling in one loop, one request at a time (`GET /api/poll` takes one room):
 * first every room at once (timeout 0), then a wait on the focused room, which answers
 * as soon as it has news; with other rooms followed the wait is at most POLL_SWEEP_S,
 * after which they are all checked (timeout 0) and the wait starts again.
 */
function openLongPoll({ opened, ended, handleEvent, positions, focused, env }) {
  if (positions.size === 0) return idle(opened, env);
  let isOpen = false;
  let finished = false;
  let request = null; // the AbortController of the request in flight
  /** Rooms answered 410: the page reloads them; polling them again would repeat the 410. */
  const stopped = new Set();
  const finish = () => {
    if (finished) return;
    finished = true;
    request?.abort();
    ended(isOpen);
  };
  const markOpen = () => {
    if (!isOpen) {
      isOpen = true;
      opened();
    }
  };

  /** One poll of `room`; false when the transport must end. */
  const poll = async (room, timeout) => {
    const last = positions.get(room);
    const query = new URLSearchParams({ room, timeout: String(timeout) });
    if (last != null) query.set('last_id', String(last));
    const controller = typeof AbortController === 'function' ? new AbortController() : null;
    request = controller;
    // The server answers by `timeout` at the latest: no answer by then (and a grace)
    // means the connection is dead, though the browser may wait for minutes.
    let late = false;
    const deadline = env.setTimeout(() => {
      late = true;
      controller?.abort();
    }, timeout * 1000 + POLL_GRACE_MS);
    let response;
    try {
      response = await env.fetch(`${env.base}/api/poll?${query}`, {
        credentials: 'same-origin',
        headers: { Accept: 'application/json' },
        signal: controller?.signal,
      });
    } catch {
      // Aborted to wait on another room (focus), or the network failed (or is too slow).
      return finished || late ? false : controller?.signal.aborted === true;
    } finally {
      env.clearTimeout(deadline);
      if (request === controller) request = null;
    }
    if (finished) return false;
    if (response.status === 410) {
      // The position is older than the log keeps (or ahead of it): the page reloads
      // the room and follows it again.
      const body = await response.json().catch(() => ({}));
      markOpen();
      stopped.add(room);
      handleEvent('reset', { room, reason: body.code ?? 'reset' });
      return true;
    }
    if (!response.ok) return false;
    const messages = await response.json().catch(() => null);
    if (!Array.isArray(messages) || finished) return false;
    markOpen();
    // The room may have been left while the poll waited.
    if (positions.has(room)) for (const message of messages) handleEvent('message', { room, ...message });
    return true;
  };

  const live = () => [...positions.keys()].filter((room) => !stopped.has(room));
  const loop = async () => {
    // The first round answers at once, so the page learns quickly that polling works
    // and catches every room up.
    for (const room of live()) if (!(await poll(room, 0))) return finish();
    markOpen();
    let swept = env.now();
    while (!finished) {
      const rooms = live();
      if (rooms.length === 0) return; // every room reset: the page joins them again
      const waitOn = rooms.includes(focused.room) ? focused.room : rooms[0];
      const others = rooms.filter((room) => room !== waitOn);
      if (!(await poll(waitOn, others.length ? POLL_SWEEP_S : POLL_TIMEOUT_S))) return finish();
      // A busy focused room answers often: the others are still checked only every
      // POLL_SWEEP_S, not after each of its answers.
      if (others.length === 0 || env.now() - swept < POLL_SWEEP_S * 1000) continue;
      for (const room of others) if (!finished && !(await poll(room, 0))) return finish();
      swept = env.now();
    }
  };
  loop();
  return {
    isOpen: () => false,
    /** The focused room changed: stop waiting on the old one. */
    refocus() {
      request?.abort();
    },
    close() {
      finished = true;
      request?.abort();
    },
  };
}

/**
 * A heartbeat: every `everyMs` it checks that something was `heard()` within
 * `silentMs` (then calls `tick`, e.g. to ping) or declares the connection dead (`dead`).
 */
function watchdog(env, everyMs, silentMs, tick, dead) {
  let last = env.now();
  let timer = null;
  let stopped = false;
  const arm = () => {
    timer = env.setTimeout(() => {
      if (stopped) return;
      if (env.now() - last > silentMs) {
        stopped = true;
        dead();
        return;
      }
      tick?.();
      arm();
    }, everyMs);
  };
  arm();
  return {
    heard() {
      last = env.now();
    },
    stop() {
      stopped = true;
      env.clearTimeout(timer);
    },
  };
}

/**
 * Whether transport `kind` opens now: a bare WebSocket (it joins nothing), or an
 * `/api/events` stream of one room from now (the person's own notification room when
 * followed: nobody sees a presence change). Calls `done(works)` once; returns {cancel()}.
 */
function probe(kind, env, positions, done) {
  let over = false;
  let handle = null;
  const finish = (works) => {
    if (over) return;
    over = true;
    env.clearTimeout(timer);
    try {
      handle?.close();
    } catch {
      // already closed
    }
    done(works);
  };
  const timer = env.setTimeout(() => finish(false), PROBE_WITHIN_MS);
  try {
    if (kind === 'websocket') {
      const socket = new env.WebSocket(wsUrl(env.base));
      handle = { close: () => socket.close(1000, 'probe') };
      socket.onopen = () => finish(true);
      socket.onerror = () => {};
      socket.onclose = () => finish(false);
    } else if (kind === 'sse') {
      // The endpoint the transport uses, on the quietest room: one's own notifications.
      const rooms = [...positions.keys()];
      const room = rooms.find((r) => r.startsWith('user:')) ?? rooms[0];
      const source = new env.EventSource(`${env.base}/api/events?${new URLSearchParams({ rooms: room })}`, { withCredentials: true });
      handle = source;
      source.onopen = () => finish(true);
      source.onerror = () => finish(false);
    } else {
      env.setTimeout(() => finish(true), 0);
    }
  } catch {
    env.setTimeout(() => finish(false), 0);
  }
  return {
    cancel() {
      over = true;
      env.clearTimeout(timer);
      try {
        handle?.close();
      } catch {
        // already closed
      }
    },
  };
}
