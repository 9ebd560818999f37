// Unit tests of web/static/outbox.js (a failed message is retried on reconnect with
// the client_id it was given once) driven through realtime.js with a fake WebSocket
// and fetch, and of web/static/badge.js (what the connection badge says).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { connect } from '../static/realtime.js';
import { Outbox } from '../static/outbox.js';
import { badgeFor } from '../static/badge.js';
import { fakeWebSocket, manualTimers } from './fakes.js';

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('Outbox', () => {
  test('a message that failed while the server was away is sent again on reconnect, with the same client_id, once', async () => {
    const { FakeWebSocket, sockets } = fakeWebSocket();
    const timers = manualTimers();
    const posts = [];
    // The POST fallback fails too: the server is down.
    const fetch = (url, init) => {
      posts.push(JSON.parse(init.body));
      return Promise.reject(new TypeError('Failed to fetch'));
    };
    let outbox;
    const states = [];
    const live = connect({
      rooms: { general: 0 }, WebSocket: FakeWebSocket, fetch, transports: ['websocket'], ...timers, random: () => 1,
      onStatus: (status) => {
        if (status === 'connected') outbox.retryFailed();
      },
    });
    outbox = new Outbox((room, text, clientId) => live.send(room, text, clientId), (e) => states.push(e.state));
    sockets[0].open();
    const entry = outbox.add('general', 'hello', 'c-42');
    assert.deepEqual(sockets[0].sent.at(-1), { type: 'send', room: 'general', text: 'hello', client_id: 'c-42' });
    sockets[0].drop(); // no echo: the server went away
    timers.run(10_000); // the echo wait: the POST fallback, which fails
    for (let i = 0; i < 4; i += 1) await tick();
    assert.deepEqual(posts, [{ room: 'general', text: 'hello', client_id: 'c-42' }]);
    assert.equal(entry.state, 'failed');
    assert.equal(outbox.failed.length, 1);

    timers.run(500); // the reconnect
    sockets[1].open();
    const resent = sockets[1].sent.filter((f) => f.type === 'send');
    assert.deepEqual(resent, [{ type: 'send', room: 'general', text: 'hello', client_id: 'c-42' }], 'the same client_id');
    sockets[1].receive({ type: 'message', room: 'general', id: 1, user: { id: 1, name: 'Ann' }, text: 'hello', ts: '2026-12-07T10:00:00Z', client_id: 'c-42' });
    await tick();
    assert.equal(entry.state, 'sent');
    assert.equal(outbox.failed.length, 0);
    assert.deepEqual(states, ['sending', 'failed', 'sending', 'sent']);
    // Connected again later: nothing left to send.
    sockets[1].drop();
    timers.run(500);
    sockets[2].open();
    assert.deepEqual(sockets[2].sent.filter((f) => f.type === 'send'), []);
    live.close();
  });

  test('Retry reuses the client_id; a late answer of an older attempt changes nothing', async () => {
    const calls = [];
    const outbox = new Outbox((room, text, clientId) => new Promise((resolve, reject) => calls.push({ clientId, resolve, reject })));
    const entry = outbox.add('general', 'hi');
    calls[0].reject(new Error('down'));
    await tick();
    assert.equal(entry.state, 'failed');
    outbox.retry(entry.clientId);
    assert.equal(calls[1].clientId, calls[0].clientId);
    calls[0].resolve({ id: 9 }); // settled already: ignored
    calls[1].resolve({ id: 9 });
    await tick();
    assert.equal(entry.state, 'sent');
    assert.equal(typeof entry.clientId, 'string');
    assert.ok(entry.clientId.length > 8);
  });
});

describe('the connection badge', () => {
  test('speaks in people’s words; the transport is in the tooltip', () => {
    assert.deepEqual(badgeFor('connected', 'websocket').text, 'Connected');
    assert.match(badgeFor('connected', 'websocket').title, /WebSocket/);
    assert.match(badgeFor('connected', 'longpoll').title, /long polling/);
    assert.equal(badgeFor('connected', 'sse').state, 'live');
    assert.equal(badgeFor('reconnecting', 'websocket').text, 'Reconnecting…');
    assert.equal(badgeFor('reconnecting', 'websocket').state, 'pending');
    assert.equal(badgeFor('offline', 'websocket').text, 'Offline');
    assert.equal(badgeFor('closed', null).state, 'down');
    for (const status of ['connected', 'connecting', 'reconnecting', 'offline']) {
      assert.doesNotMatch(badgeFor(status, 'websocket').text, /WebSocket|SSE|poll/);
    }
  });
});

describe('refusals', () => {
  test('a message the server refused is not sent again on reconnect (a lost one is)', async () => {
    const calls = [];
    const outbox = new Outbox((room, text, clientId) => new Promise((resolve, reject) => calls.push({ text, clientId, resolve, reject })));
    const long = outbox.add('general', 'x'.repeat(5000));
    const lost = outbox.add('general', 'hi');
    calls[0].reject(Object.assign(new Error('Text is too long'), { status: 422, code: 'validation_failed' }));
    calls[1].reject(new TypeError('Failed to fetch'));
    await tick();
    assert.equal(long.refused, true);
    assert.equal(lost.refused, false);
    outbox.retryFailed();
    assert.deepEqual(calls.slice(2).map((c) => c.text), ['hi']);
    outbox.retry(long.clientId); // the person's own Retry still tries
    assert.equal(calls.length, 4);
  });
});
