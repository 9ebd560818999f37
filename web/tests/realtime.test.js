// Unit tests of web/static/realtime.js with doubles for WebSocket, EventSource, fetch
// and timers: each test drives the transports by hand, so nothing depends on timing.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { backoff, connect } from '../static/realtime.js';

/** Timers that run only when the test says so. */
function manualTimers() {
  const queue = [];
  return {
    queue,
    setTimeout(fn, ms) {
      const timer = { fn, ms, cancelled: false };
      queue.push(timer);
      return timer;
    },
    clearTimeout(timer) {
      if (timer) timer.cancelled = true;
    },
    /** Runs the pending timers (not those they add). */
    runAll() {
      for (const timer of queue.splice(0)) if (!timer.cancelled) timer.fn();
    },
  };
}

function fakeWebSocket() {
  const sockets = [];
  class FakeWebSocket {
    constructor(url) {
      this.url = url;
      this.sent = [];
      this.closed = null;
      sockets.push(this);
    }
    send(text) {
      this.sent.push(JSON.parse(text));
    }
    close(code, reason) {
      this.closed = { code, reason };
    }
    // test helpers
    open() {
      this.onopen?.();
    }
    receive(frame) {
      this.onmessage?.({ data: JSON.stringify(frame) });
    }
    drop() {
      this.onclose?.({ code: 1006 });
    }
  }
  return { FakeWebSocket, sockets };
}

function fakeEventSource() {
  const sources = [];
  class FakeEventSource {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.listeners = {};
      sources.push(this);
    }
    addEventListener(type, fn) {
      this.listeners[type] = fn;
    }
    close() {
      this.readyState = 2;
    }
    open() {
      this.readyState = 1;
      this.onopen?.();
    }
    emit(type, data) {
      const event = { data: JSON.stringify(data) };
      if (type === 'message') this.onmessage?.(event);
      else this.listeners[type]?.(event);
    }
  }
  return { FakeEventSource, sources };
}

/** A fetch double whose answers the test gives one by one. */
function scriptedFetch() {
  const calls = [];
  const fetch = (url, init = {}) =>
    new Promise((resolve, reject) => {
      calls.push({ url, init, resolve, reject });
    });
  const answer = (index, status, body) =>
    calls[index].resolve(
      new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } }),
    );
  return { fetch, calls, answer };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

function message(room, id, text = `m${id}`, extra = {}) {
  return { room, id, user: { id: 1, name: 'Ann' }, text, ts: '2026-11-24T10:00:00.000Z', ...extra };
}

describe('backoff', () => {
  test('doubles up to a cap, with jitter between half and all of it', () => {
    assert.equal(backoff(0, () => 1), 500);
    assert.equal(backoff(0, () => 0), 250);
    assert.equal(backoff(3, () => 1), 4000);
    assert.equal(backoff(20, () => 1), 30_000);
    assert.equal(backoff(20, () => 0), 15_000);
  });
});

describe('WebSocket', () => {
  test('joins each room from its position and delivers each message once, in order', () => {
    const { FakeWebSocket, sockets } = fakeWebSocket();
    const timers = manualTimers();
    const seen = [];
    const presence = [];
    connect({
      rooms: { general: 3, random: null },
      base: 'https://chat.example',
      WebSocket: FakeWebSocket,
      ...timers,
      onMessage: (m) => seen.push(`${m.room}:${m.id}`),
      onPresence: (p) => presence.push(p.count),
    });
    const ws = sockets[0];
    assert.equal(ws.url, 'wss://chat.example/ws');
    ws.open();
    assert.deepEqual(ws.sent, [
      { type: 'join', room: 'general', since: 3 },
      { type: 'join', room: 'random' },
    ]);
    ws.receive({ type: 'welcome', user: { id: 1 } });
    ws.receive({ type: 'message', ...message('general', 3) }); // already shown
    ws.receive({ type: 'message', ...message('general', 4) });
    ws.receive({ type: 'message', ...message('general', 4) }); // duplicate
    ws.receive({ type: 'message', ...message('random', 10) });
    ws.receive({ type: 'message', ...message('elsewhere', 1) }); // not followed
    ws.receive({ type: 'presence', room: 'general', count: 2, users: [] });
    assert.deepEqual(seen, ['general:4', 'random:10']);
    assert.deepEqual(presence, [2]);
  });

  test('a gap reconnects and resumes from the last delivered id', () => {
    const { FakeWebSocket, sockets } = fakeWebSocket();
    const seen = [];
    const live = connect({
      rooms: { general: 0 },
      WebSocket: FakeWebSocket,
      ...manualTimers(),
      onMessage: (m) => seen.push(m.id),
    });
    sockets[0].open();
    sockets[0].receive({ type: 'message', ...message('general', 1) });
    sockets[0].receive({ type: 'message', ...message('general', 3) }); // 2 is missing
    assert.deepEqual(seen, [1]);
    assert.equal(sockets.length, 2, 'a new connection');
    sockets[1].open();
    assert.deepEqual(sockets[1].sent, [{ type: 'join', room: 'general', since: 1 }]);
    sockets[1].receive({ type: 'message', ...message('general', 2) });
    sockets[1].receive({ type: 'message', ...message('general', 3) });
    assert.deepEqual(seen, [1, 2, 3]);
    assert.deepEqual(live.positions(), { general: 3 });
  });

  test('a dropped connection is retried after a backoff, from the position', () => {
    const { FakeWebSocket, sockets } = fakeWebSocket();
    const timers = manualTimers();
    const statuses = [];
    connect({
      rooms: { general: 0 },
      WebSocket: FakeWebSocket,
      ...timers,
      random: () => 1,
      onStatus: (s) => statuses.push(s),
    });
    sockets[0].open();
    sockets[0].receive({ type: 'message', ...message('general', 1) });
    sockets[0].drop();
    assert.equal(sockets.length, 1, 'waits before reconnecting');
    const retry = timers.queue.find((t) => !t.cancelled && t.ms === 500);
    assert.ok(retry, 'the first retry waits 500 ms');
    retry.fn();
    sockets[1].open();
    assert.deepEqual(sockets[1].sent, [{ type: 'join', room: 'general', since: 1 }]);
    assert.deepEqual(statuses, ['connecting', 'connected', 'reconnecting', 'connecting', 'connected']);
  });

  test('send resolves with the echoed message carrying its client_id', async () => {
    const { FakeWebSocket, sockets } = fakeWebSocket();
    const live = connect({ rooms: { general: 0 }, WebSocket: FakeWebSocket, ...manualTimers() });
    sockets[0].open();
    const sent = live.send('general', 'hi', 'c-1');
    assert.deepEqual(sockets[0].sent.at(-1), { type: 'send', room: 'general', text: 'hi', client_id: 'c-1' });
    sockets[0].receive({ type: 'message', ...message('general', 1, 'hi', { client_id: 'c-1' }) });
    assert.equal((await sent).id, 1);
  });

  test('a send the server refuses rejects at once with its code', async () => {
    const { FakeWebSocket, sockets } = fakeWebSocket();
    const notices = [];
    const live = connect({
      rooms: { general: 0 },
      WebSocket: FakeWebSocket,
      onNotice: (n) => notices.push(n),
      ...manualTimers(),
    });
    sockets[0].open();
    const sent = live.send('general', 'x'.repeat(5000), 'c-2');
    sockets[0].receive({ type: 'error', code: 'validation_failed', error: 'Text is too long', client_id: 'c-2' });
    await assert.rejects(sent, (error) => error.code === 'validation_failed' && /too long/.test(error.message));
    // An error about something else is still a notice.
    sockets[0].receive({ type: 'error', code: 'invalid_room', error: 'bad room' });
    assert.equal(notices.at(-1).code, 'invalid_room');
  });

  test('reset clears the position and tells the page', () => {
    const { FakeWebSocket, sockets } = fakeWebSocket();
    const resets = [];
    const seen = [];
    const live = connect({
      rooms: { general: 5 },
      WebSocket: FakeWebSocket,
      ...manualTimers(),
      onReset: (r) => resets.push(r.reason),
      onMessage: (m) => seen.push(m.id),
    });
    sockets[0].open();
    sockets[0].receive({ type: 'reset', room: 'general', reason: 'retention' });
    assert.deepEqual(resets, ['retention']);
    assert.deepEqual(live.positions(), { general: null });
    sockets[0].receive({ type: 'message', ...message('general', 900) });
    assert.deepEqual(seen, [900], 'after a reset, delivery starts from what comes');
  });
});

describe('fallback', () => {
  test('WebSocket that never opens falls back to SSE, resuming from the position', () => {
    const { FakeWebSocket, sockets } = fakeWebSocket();
    const { FakeEventSource, sources } = fakeEventSource();
    const timers = manualTimers();
    const seen = [];
    const live = connect({
      rooms: { general: 7 },
      base: 'http://h',
      WebSocket: FakeWebSocket,
      EventSource: FakeEventSource,
      fetch: () => Promise.reject(new Error('unused')),
      ...timers,
      onMessage: (m) => seen.push(m.id),
    });
    sockets[0].drop(); // refused before opening
    timers.runAll();
    sockets[1].drop();
    assert.equal(live.transport, 'sse');
    assert.equal(sources.length, 1);
    assert.equal(sources[0].url, 'http://h/api/rooms/general/events?since=7');
    sources[0].open();
    sources[0].emit('message', message('general', 8));
    sources[0].emit('message', message('general', 8));
    sources[0].emit('presence', { room: 'general', count: 1, users: [] });
    assert.deepEqual(seen, [8]);
  });

  test('SSE closed by the server reconnects with the newest position', () => {
    const { FakeEventSource, sources } = fakeEventSource();
    const timers = manualTimers();
    connect({
      rooms: { general: 1 },
      base: 'http://h',
      transports: ['sse'],
      EventSource: FakeEventSource,
      fetch: () => Promise.reject(new Error('unused')),
      ...timers,
    });
    sources[0].open();
    sources[0].emit('message', message('general', 2));
    sources[0].readyState = 2;
    sources[0].onerror();
    timers.runAll();
    assert.equal(sources[1].url, 'http://h/api/rooms/general/events?since=2');
  });

  test('long polling asks again from the newest id as soon as it is answered', async () => {
    const { fetch, calls, answer } = scriptedFetch();
    const seen = [];
    const live = connect({
      rooms: { general: 4 },
      base: 'http://h',
      transports: ['longpoll'],
      fetch,
      ...manualTimers(),
      onMessage: (m) => seen.push(m.id),
    });
    await tick();
    assert.match(calls[0].url, /^http:\/\/h\/api\/poll\?/);
    assert.equal(new URL(calls[0].url).searchParams.get('last_id'), '4');
    answer(0, 200, [message('general', 5), message('general', 6)]);
    await tick();
    await tick();
    assert.deepEqual(seen, [5, 6]);
    assert.equal(new URL(calls[1].url).searchParams.get('last_id'), '6');
    answer(1, 200, []); // the timeout: ask again
    await tick();
    await tick();
    assert.equal(new URL(calls[2].url).searchParams.get('last_id'), '6');
    live.close();
  });

  test('without a WebSocket, send is a POST carrying client_id and the CSRF token', async () => {
    const { fetch, calls, answer } = scriptedFetch();
    globalThis.document = { cookie: 'other=1; csrftoken=tok%2Ben' };
    try {
      const live = connect({ rooms: { general: 0 }, base: 'http://h', transports: ['longpoll'], fetch, ...manualTimers() });
      await tick();
      const sending = live.send('general', 'hello', 'c-9');
      const post = calls.find((c) => c.url === 'http://h/api/send');
      assert.equal(post.init.method, 'POST');
      assert.equal(post.init.headers['X-CSRFToken'], 'tok+en');
      assert.deepEqual(JSON.parse(post.init.body), { room: 'general', text: 'hello', client_id: 'c-9' });
      answer(calls.indexOf(post), 201, message('general', 1, 'hello', { client_id: 'c-9' }));
      assert.equal((await sending).id, 1);
      live.close();
    } finally {
      delete globalThis.document;
    }
  });

  test('long polling: the first poll answers at once, the next ones wait', async () => {
    const { fetch, calls, answer } = scriptedFetch();
    const statuses = [];
    const live = connect({
      rooms: { general: 4 }, base: 'http://h', transports: ['longpoll'], fetch, ...manualTimers(),
      onStatus: (status, transport) => statuses.push(`${status}/${transport}`),
    });
    await tick();
    assert.equal(new URL(calls[0].url).searchParams.get('timeout'), '0');
    answer(0, 200, []);
    await tick();
    await tick();
    assert.equal(statuses.at(-1), 'connected/longpoll');
    assert.equal(new URL(calls[1].url).searchParams.get('timeout'), '25');
    live.close();
  });

  test('long polling: 410 from the server is a reset, and that room stops polling', async () => {
    const { fetch, calls, answer } = scriptedFetch();
    const resets = [];
    const live = connect({
      rooms: { general: 4 }, base: 'http://h', transports: ['longpoll'], fetch, ...manualTimers(),
      onReset: (r) => resets.push(r),
    });
    await tick();
    answer(0, 410, { code: 'reset', error: 'Messages after this position are no longer kept' });
    await tick();
    await tick();
    await tick();
    assert.deepEqual(resets, [{ room: 'general', reason: 'reset' }]);
    assert.equal(calls.length, 1, 'no poll from a position the server cannot replay');
    assert.deepEqual(live.positions(), { general: null });
    live.close();
  });

  test('a WebSocket constructor that throws (e.g. CSP) counts as a failed attempt and falls back', () => {
    const { FakeEventSource, sources } = fakeEventSource();
    const timers = manualTimers();
    let attempts = 0;
    class ThrowingWebSocket {
      constructor() {
        attempts += 1;
        throw new Error('SecurityError');
      }
    }
    const live = connect({
      rooms: { general: 2 }, base: 'http://h', WebSocket: ThrowingWebSocket, EventSource: FakeEventSource,
      fetch: () => new Promise(() => {}), transports: ['websocket', 'sse'], ...timers,
    });
    for (let i = 0; i < 4 && sources.length === 0; i += 1) timers.runAll();
    assert.equal(attempts, 2);
    assert.equal(sources[0].url, 'http://h/api/rooms/general/events?since=2');
    live.close();
  });

  test('close stops reconnecting', () => {
    const { FakeWebSocket, sockets } = fakeWebSocket();
    const timers = manualTimers();
    const live = connect({ rooms: ['general'], WebSocket: FakeWebSocket, transports: ['websocket'], ...timers });
    sockets[0].open();
    live.close();
    assert.deepEqual(sockets[0].closed, { code: 1000, reason: 'closed' });
    sockets[0].drop();
    timers.runAll();
    assert.equal(sockets.length, 1);
  });
});
