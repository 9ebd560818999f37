// Unit tests of web/static/realtime.js with doubles for WebSocket, EventSource, fetch
// and timers: each test drives the transports by hand, so nothing depends on timing.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { backoff, connect, eventsUrl } from '../static/realtime.js';
import { fakeWebSocket, manualTimers } from './fakes.js';

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
      // As a browser's fetch does: an abort rejects.
      init.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
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

  test('a retried send resolves with the first copy the server answers as a duplicate', async () => {
    const { FakeWebSocket, sockets } = fakeWebSocket();
    const seen = [];
    const live = connect({ rooms: { general: 0 }, WebSocket: FakeWebSocket, onMessage: (m) => seen.push(m), ...manualTimers() });
    sockets[0].open();
    const sent = live.send('general', 'hi', 'c-7');
    sockets[0].receive({ type: 'duplicate', ...message('general', 4, 'hi', { client_id: 'c-7' }) });
    const stored = await sent;
    assert.equal(stored.id, 4);
    assert.equal(stored.type, undefined);
    assert.deepEqual(seen, [], 'not delivered as a message');
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
    assert.equal(sources[0].url, 'http://h/api/events?rooms=general&since=general%3A7');
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
    assert.equal(sources[1].url, 'http://h/api/events?rooms=general&since=general%3A2');
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

  test('without a WebSocket, send is a POST through ajax.js carrying client_id and the CSRF token', async () => {
    const { fetch, calls, answer } = scriptedFetch();
    globalThis.document = { cookie: 'other=1; csrftoken=tok%2Ben' };
    try {
      // On the page's own origin (ajax.js sends the token nowhere else).
      const live = connect({ rooms: { general: 0 }, transports: ['longpoll'], fetch, ...manualTimers() });
      await tick();
      const sending = live.send('general', 'hello', 'c-9');
      await tick();
      const post = calls.find((c) => c.url === '/api/send');
      assert.equal(post.init.method, 'POST');
      assert.equal(post.init.headers.get('X-CSRFToken'), 'tok+en');
      assert.equal(post.init.headers.get('Content-Type'), 'application/json');
      assert.equal(post.init.credentials, 'same-origin');
      assert.deepEqual(JSON.parse(post.init.body), { room: 'general', text: 'hello', client_id: 'c-9' });
      answer(calls.indexOf(post), 201, message('general', 1, 'hello', { client_id: 'c-9' }));
      assert.equal((await sending).id, 1);
      live.close();
    } finally {
      delete globalThis.document;
    }
  });

  test('a refused POST rejects with ajax.js’s error: the server’s sentence and code', async () => {
    const { fetch, calls, answer } = scriptedFetch();
    const live = connect({ rooms: { general: 0 }, transports: ['longpoll'], fetch, ...manualTimers() });
    await tick();
    const sending = live.send('general', 'x', 'c-10');
    await tick();
    const post = calls.find((c) => c.url === '/api/send');
    answer(calls.indexOf(post), 422, { error: 'Text is too long', code: 'validation_failed', fields: { text: 'is too long' } });
    await assert.rejects(sending, (error) => error.name === 'ApiError' && error.code === 'validation_failed'
      && error.message === 'Text is too long' && error.status === 422);
    live.close();
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
    assert.equal(new URL(calls[1].url).searchParams.get('timeout'), '8');
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
    assert.equal(sources[0].url, 'http://h/api/events?rooms=general&since=general%3A2');
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

describe('one connection for every room', () => {
  test('SSE follows eight rooms over ONE EventSource, each resuming from its position', () => {
    const { FakeEventSource, sources } = fakeEventSource();
    const rooms = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`room${i}`, i === 7 ? null : i * 10]));
    const seen = [];
    connect({
      rooms, base: 'http://h', transports: ['sse'], EventSource: FakeEventSource,
      fetch: () => new Promise(() => {}), ...manualTimers(), onMessage: (m) => seen.push(`${m.room}:${m.id}`),
    });
    assert.equal(sources.length, 1);
    const url = new URL(sources[0].url);
    assert.equal(url.pathname, '/api/events');
    assert.equal(url.searchParams.get('rooms'), Object.keys(rooms).join(','));
    // room7 starts from now: it has no position to give.
    assert.equal(url.searchParams.get('since'), 'room0:0,room1:10,room2:20,room3:30,room4:40,room5:50,room6:60');
    sources[0].open();
    for (let i = 0; i < 8; i += 1) sources[0].emit('message', message(`room${i}`, i * 10 + 1));
    sources[0].emit('user_joined', { type: 'user_joined', room: 'room3', user: { id: 2, name: 'Bo' }, count: 2 });
    assert.equal(seen.length, 8);
    assert.equal(sources.length, 1);
  });

  test('SSE: joining and leaving reopen the one stream with the new set, without duplicates or gaps', () => {
    const { FakeEventSource, sources } = fakeEventSource();
    const timers = manualTimers();
    const seen = [];
    const live = connect({
      rooms: { a: 1, b: 5 }, base: 'http://h', transports: ['sse'], EventSource: FakeEventSource,
      fetch: () => new Promise(() => {}), ...timers, onMessage: (m) => seen.push(`${m.room}:${m.id}`),
    });
    sources[0].open();
    sources[0].emit('message', message('a', 2));
    sources[0].emit('message', message('b', 6));
    // Two changes in one turn: one new stream, not two.
    live.join('c', 9);
    live.leave('b');
    assert.equal(sources.length, 1, 'the change waits for the end of the turn');
    timers.runAll();
    assert.equal(sources.length, 2);
    assert.equal(sources[0].readyState, 2, 'the old stream is closed');
    const url = new URL(sources[1].url);
    assert.equal(url.searchParams.get('rooms'), 'a,c');
    assert.equal(url.searchParams.get('since'), 'a:2,c:9');
    sources[1].open();
    // The server replays from the positions; an overlap would be dropped, a gap noticed.
    sources[1].emit('message', message('a', 2));
    sources[1].emit('message', message('a', 3));
    sources[1].emit('message', message('c', 10));
    sources[1].emit('message', message('b', 7)); // left: not shown
    assert.deepEqual(seen, ['a:2', 'b:6', 'a:3', 'c:10']);
    assert.deepEqual(live.positions(), { a: 3, c: 10 });
    // Late events of the closed stream change nothing.
    sources[0].emit('message', message('a', 4));
    assert.deepEqual(seen, ['a:2', 'b:6', 'a:3', 'c:10']);
    live.close();
  });

  test('SSE: a gap in one room reopens the stream from every room’s position', () => {
    const { FakeEventSource, sources } = fakeEventSource();
    const seen = [];
    connect({
      rooms: { a: 1, b: 5 }, base: 'http://h', transports: ['sse'], EventSource: FakeEventSource,
      fetch: () => new Promise(() => {}), ...manualTimers(), onMessage: (m) => seen.push(`${m.room}:${m.id}`),
    });
    sources[0].open();
    sources[0].emit('message', message('b', 6));
    sources[0].emit('message', message('a', 3)); // 2 is missing
    assert.equal(sources.length, 2);
    assert.equal(new URL(sources[1].url).searchParams.get('since'), 'a:1,b:6');
    assert.deepEqual(seen, ['b:6']);
  });

  test('WebSocket: joining and leaving go over the open socket, no new connection', () => {
    const { FakeWebSocket, sockets } = fakeWebSocket();
    const timers = manualTimers();
    const seen = [];
    const live = connect({ rooms: { a: 1 }, WebSocket: FakeWebSocket, ...timers, onMessage: (m) => seen.push(`${m.room}:${m.id}`) });
    sockets[0].open();
    live.join('b', 4);
    live.join('c');
    live.leave('a');
    timers.runAll(); // nothing to restart: only the heartbeat ran
    assert.equal(sockets.length, 1);
    assert.deepEqual(sockets[0].sent.slice(1).filter((f) => f.type !== 'ping'), [
      { type: 'join', room: 'b', since: 4 },
      { type: 'join', room: 'c' },
      { type: 'leave', room: 'a' },
    ]);
    sockets[0].receive({ type: 'message', ...message('a', 2) }); // in flight before the leave
    sockets[0].receive({ type: 'message', ...message('b', 5) });
    assert.deepEqual(seen, ['b:5']);
    assert.deepEqual(live.rooms, ['b', 'c']);
  });

  test('WebSocket still connecting: a join needs no frame, the socket joins every room when it opens', () => {
    const { FakeWebSocket, sockets } = fakeWebSocket();
    const live = connect({ rooms: { a: 1 }, WebSocket: FakeWebSocket, ...manualTimers() });
    live.join('b', 2);
    sockets[0].open();
    assert.deepEqual(sockets[0].sent, [{ type: 'join', room: 'a', since: 1 }, { type: 'join', room: 'b', since: 2 }]);
  });

  test('a watched room is joined unseen: on the socket, when it reopens, and in the SSE URL', () => {
    const { FakeWebSocket, sockets } = fakeWebSocket();
    const timers = manualTimers();
    const live = connect({ rooms: { a: 1 }, WebSocket: FakeWebSocket, ...timers });
    sockets[0].open();
    live.join('b', 4, { watch: true });
    assert.deepEqual(sockets[0].sent.filter((f) => f.type === 'join').at(-1), { type: 'join', room: 'b', since: 4, watch: true });
    assert.equal(live.watches('b'), true);
    assert.equal(live.watches('a'), false);
    sockets[0].drop();
    timers.runAll();
    assert.ok(sockets.length > 1, 'a new socket');
    sockets.at(-1).open();
    assert.deepEqual(sockets.at(-1).sent.filter((f) => f.type === 'join'), [
      { type: 'join', room: 'a', since: 1 },
      { type: 'join', room: 'b', since: 4, watch: true },
    ]);
    live.leave('b');
    assert.equal(live.watches('b'), false);
    live.close();
  });

  test('long polling: one request at a time, the focused room waited on, the others swept', async () => {
    const { fetch: scripted, calls, answer } = scriptedFetch();
    let inFlight = 0;
    let most = 0;
    const fetch = (url, init) => {
      most = Math.max(most, ++inFlight);
      const settled = () => { inFlight -= 1; };
      return scripted(url, init).finally(settled);
    };
    let now = 0;
    const seen = [];
    const live = connect({
      rooms: { a: 1, b: 2, c: 3 }, focus: 'b', base: 'http://h', transports: ['longpoll'], fetch,
      ...manualTimers(), now: () => now, onMessage: (m) => seen.push(`${m.room}:${m.id}`),
    });
    const params = (i) => Object.fromEntries(new URL(calls[i].url).searchParams);
    const settle = async () => { for (let i = 0; i < 4; i += 1) await tick(); };
    await settle();
    // The first round: each room at once, one after the other.
    assert.equal(calls.length, 1);
    assert.deepEqual(params(0), { room: 'a', timeout: '0', last_id: '1' });
    answer(0, 200, [message('a', 2)]);
    await settle();
    assert.deepEqual(params(1), { room: 'b', timeout: '0', last_id: '2' });
    answer(1, 200, []);
    await settle();
    assert.deepEqual(params(2), { room: 'c', timeout: '0', last_id: '3' });
    answer(2, 200, []);
    await settle();
    // Then a wait on the focused room, bounded so the others are checked too.
    assert.equal(calls.length, 4);
    assert.deepEqual(params(3), { room: 'b', timeout: '8', last_id: '2' });
    answer(3, 200, [message('b', 3)]);
    await settle();
    assert.deepEqual(params(4), { room: 'b', timeout: '8', last_id: '3' }, 'a busy room does not sweep every answer');
    now = 8_000;
    answer(4, 200, []);
    await settle();
    assert.deepEqual(params(5), { room: 'a', timeout: '0', last_id: '2' });
    answer(5, 200, []);
    await settle();
    assert.deepEqual(params(6), { room: 'c', timeout: '0', last_id: '3' });
    answer(6, 200, [message('c', 4)]);
    await settle();
    assert.deepEqual(params(7), { room: 'b', timeout: '8', last_id: '3' });
    // Looking at another room: the wait moves there at once.
    live.focus('c');
    await settle();
    assert.equal(calls[7].init.signal.aborted, true);
    assert.deepEqual(params(8), { room: 'c', timeout: '8', last_id: '4' });
    assert.deepEqual(seen, ['a:2', 'b:3', 'c:4']);
    // Never more than one request in flight.
    assert.equal(most, 1);
    live.close();
  });

  test('long polling: a joined room restarts the loop, catching every room up from its position', async () => {
    const { fetch, calls, answer } = scriptedFetch();
    const timers = manualTimers();
    const live = connect({ rooms: { a: 1 }, base: 'http://h', transports: ['longpoll'], fetch, ...timers });
    const params = (i) => Object.fromEntries(new URL(calls[i].url).searchParams);
    await tick();
    answer(0, 200, []);
    for (let i = 0; i < 4; i += 1) await tick();
    assert.deepEqual(params(1), { room: 'a', timeout: '8', last_id: '1' });
    live.join('b', 7);
    timers.runAll();
    await tick();
    assert.equal(calls[1].init.signal.aborted, true);
    assert.deepEqual(params(2), { room: 'a', timeout: '0', last_id: '1' });
    answer(2, 200, []);
    for (let i = 0; i < 4; i += 1) await tick();
    assert.deepEqual(params(3), { room: 'b', timeout: '0', last_id: '7' });
    live.close();
  });
});

/** A clock the test moves, and the timers due by it (`advance` runs them in order). */
function clockTimers() {
  let now = 0;
  let timers = [];
  return {
    now: () => now,
    setTimeout(fn, ms) {
      const timer = { fn, at: now + ms, cancelled: false };
      timers.push(timer);
      return timer;
    },
    clearTimeout(timer) {
      if (timer) timer.cancelled = true;
    },
    advance(ms) {
      const end = now + ms;
      for (;;) {
        timers = timers.filter((t) => !t.cancelled);
        const next = timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
        if (!next) break;
        now = next.at;
        next.cancelled = true;
        next.fn();
      }
      now = end;
    },
  };
}

describe('heartbeats: a dead connection is noticed within about 10 s', () => {
  test('WebSocket: pings every 5 s; with no answer at all, it is given up by 10 s', () => {
    const { FakeWebSocket, sockets } = fakeWebSocket();
    const clock = clockTimers();
    const statuses = [];
    connect({ rooms: { general: 0 }, WebSocket: FakeWebSocket, ...clock, random: () => 1, onStatus: (s) => statuses.push(s) });
    sockets[0].open();
    clock.advance(5_000);
    assert.deepEqual(sockets[0].sent.at(-1), { type: 'ping' });
    sockets[0].receive({ type: 'pong' });
    clock.advance(5_000);
    clock.advance(4_900);
    assert.equal(statuses.at(-1), 'connected', 'answered pings keep it');
    assert.equal(sockets[0].closed, null);
    // The network went silent after that pong: nothing more is heard.
    clock.advance(100);
    assert.equal(sockets[0].closed?.code, 4000, 'given up 10 s after the last pong');
    assert.equal(statuses.at(-1), 'reconnecting');
    clock.advance(500);
    assert.equal(sockets.length, 2, 'and reconnected after the backoff');
  });

  test('WebSocket: any frame counts as a sign of life', () => {
    const { FakeWebSocket, sockets } = fakeWebSocket();
    const clock = clockTimers();
    connect({ rooms: { general: 0 }, WebSocket: FakeWebSocket, ...clock });
    sockets[0].open();
    for (let i = 1; i <= 10; i += 1) {
      clock.advance(4_000);
      sockets[0].receive({ type: 'message', ...message('general', i) });
    }
    assert.equal(sockets[0].closed, null);
  });

  test('SSE: the server’s ping events keep it; silence past 10 s ends it and it reconnects', () => {
    const { FakeEventSource, sources } = fakeEventSource();
    const clock = clockTimers();
    const statuses = [];
    connect({
      rooms: { general: 3 }, base: 'http://h', transports: ['sse'], EventSource: FakeEventSource,
      fetch: () => new Promise(() => {}), ...clock, random: () => 1, onStatus: (s) => statuses.push(s),
    });
    sources[0].open();
    for (let i = 0; i < 5; i += 1) {
      clock.advance(4_000);
      sources[0].emit('ping', {});
    }
    assert.equal(sources[0].readyState, 1, 'pings keep it');
    clock.advance(12_000);
    assert.equal(sources[0].readyState, 2, 'closed after the silence');
    assert.equal(statuses.at(-1), 'reconnecting');
    clock.advance(500);
    assert.equal(sources.length, 2);
    assert.equal(sources[1].url, 'http://h/api/events?rooms=general&since=general%3A3');
  });

  test('SSE: while the browser reconnects the stream by itself, the badge says so', () => {
    const { FakeEventSource, sources } = fakeEventSource();
    const clock = clockTimers();
    const statuses = [];
    connect({
      rooms: ['general'], base: 'http://h', transports: ['sse'], EventSource: FakeEventSource,
      fetch: () => new Promise(() => {}), ...clock, onStatus: (s) => statuses.push(s),
    });
    sources[0].open();
    sources[0].readyState = 0;
    sources[0].onerror();
    assert.equal(statuses.at(-1), 'reconnecting');
    sources[0].open();
    assert.equal(statuses.at(-1), 'connected');
  });

  test('long polling: a poll unanswered past its timeout and a grace is dead', async () => {
    const { fetch, calls, answer } = scriptedFetch();
    const clock = clockTimers();
    const statuses = [];
    const live = connect({
      rooms: { general: 4 }, base: 'http://h', transports: ['longpoll'], fetch, ...clock, random: () => 1,
      onStatus: (s) => statuses.push(s),
    });
    await tick();
    answer(0, 200, []);
    for (let i = 0; i < 4; i += 1) await tick();
    assert.equal(statuses.at(-1), 'connected');
    assert.equal(calls.length, 2);
    clock.advance(11_900);
    await tick();
    assert.equal(calls[1].init.signal.aborted, false);
    clock.advance(200); // 8 s + 4 s
    for (let i = 0; i < 4; i += 1) await tick();
    assert.equal(calls[1].init.signal.aborted, true);
    assert.equal(statuses.at(-1), 'reconnecting');
    live.close();
  });

  test('offline: the badge says so when the browser has no network', () => {
    const { FakeWebSocket, sockets } = fakeWebSocket();
    const clock = clockTimers();
    const statuses = [];
    let online = true;
    const live = connect({
      rooms: ['general'], WebSocket: FakeWebSocket, transports: ['websocket'], ...clock,
      isOnline: () => online, onStatus: (s) => statuses.push(s),
    });
    sockets[0].open();
    online = false;
    sockets[0].drop();
    assert.equal(statuses.at(-1), 'offline');
    live.retryNow(); // the browser's `online` event
    assert.equal(sockets.length, 2, 'retried at once');
    live.close();
  });
});

describe('moving back to the better transport', () => {
  test('after falling back to SSE, the WebSocket is tried again with backoff and used once it opens', () => {
    const { FakeWebSocket, sockets } = fakeWebSocket();
    const { FakeEventSource, sources } = fakeEventSource();
    const clock = clockTimers();
    const transports = [];
    const seen = [];
    const live = connect({
      rooms: { general: 7 }, base: 'http://h', WebSocket: FakeWebSocket, EventSource: FakeEventSource,
      fetch: () => new Promise(() => {}), transports: ['websocket', 'sse'], ...clock, random: () => 1,
      onStatus: (s, t) => transports.push(`${s}/${t}`), onMessage: (m) => seen.push(m.id),
    });
    sockets[0].drop();
    clock.advance(500);
    sockets[1].drop();
    assert.equal(live.transport, 'sse');
    sources[0].open();
    sources[0].emit('message', message('general', 8));
    // The first probe, about 5 s later: a bare socket that does not open.
    clock.advance(4_999);
    assert.equal(sockets.length, 2);
    clock.advance(1);
    assert.equal(sockets.length, 3);
    assert.deepEqual(sockets[2].sent, [], 'a probe joins nothing');
    sockets[2].drop();
    assert.equal(live.transport, 'sse', 'still on SSE');
    // The next probe waits longer (10 s); this one opens.
    for (let i = 0; i < 4; i += 1) {
      clock.advance(2_500);
      sources[0].emit('ping', {});
    }
    assert.equal(sockets.length, 4);
    sockets[3].open();
    assert.equal(sockets[3].closed?.reason, 'probe');
    assert.equal(sources[0].readyState, 2, 'the SSE stream is closed');
    assert.equal(live.transport, 'websocket');
    assert.equal(sockets.length, 5);
    sockets[4].open();
    assert.deepEqual(sockets[4].sent, [{ type: 'join', room: 'general', since: 8 }], 'resumes where SSE stopped');
    sockets[4].receive({ type: 'message', ...message('general', 8) });
    sockets[4].receive({ type: 'message', ...message('general', 9) });
    assert.deepEqual(seen, [8, 9]);
    assert.equal(transports.at(-1), 'connected/websocket');
    live.close();
  });

  test('when every transport failed (the server was down), the next round starts from the WebSocket', () => {
    const { FakeWebSocket, sockets } = fakeWebSocket();
    const { FakeEventSource, sources } = fakeEventSource();
    const clock = clockTimers();
    const live = connect({
      rooms: { general: 1 }, base: 'http://h', WebSocket: FakeWebSocket, EventSource: FakeEventSource,
      fetch: () => new Promise(() => {}), transports: ['websocket', 'sse'], ...clock, random: () => 1,
    });
    sockets[0].open();
    sockets[0].drop(); // the server stops
    clock.advance(500);
    sockets[1].drop();
    clock.advance(1_000);
    sockets[2].drop();
    assert.equal(live.transport, 'sse');
    sources[0].onerror();
    clock.advance(2_000);
    sources[1].onerror();
    assert.equal(live.transport, 'websocket', 'back to the best one');
    // The backoff kept growing through the round (500, 1000, 2000 ms): now 4 s.
    clock.advance(3_999);
    assert.equal(sockets.length, 3);
    clock.advance(1);
    assert.equal(sockets.length, 4, 'after a backoff');
    sockets[3].open();
    assert.deepEqual(sockets[3].sent, [{ type: 'join', room: 'general', since: 1 }]);
    live.close();
  });
});

test('eventsUrl names the watched rooms it follows', () => {
  const url = new URL(eventsUrl('http://x', new Map([['a', 1], ['b', null]]), new Set(['b', 'gone'])));
  assert.equal(url.searchParams.get('rooms'), 'a,b');
  assert.equal(url.searchParams.get('watch'), 'b');
  assert.equal(new URL(eventsUrl('http://x', new Map([['a', 1]]))).searchParams.get('watch'), null);
});
