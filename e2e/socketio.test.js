// Socket.IO at /socket.io/ with the real socket.io-client (4.8) against the real
// binary: both transports, cookie and token sign-in, the Flask-SocketIO chat's events,
// messages crossing to and from the REST transports, and resuming with join_room's
// `since`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';

import { ADMIN_EMAIL, ADMIN_PASSWORD, startServer } from './helpers.js';

let server;
/** The admin's session: `cookie` (the Cookie header) and `csrf` (its csrftoken). */
let session;
/** An API token of the admin's (`sb_...`). */
let token;

before(async () => {
  server = await startServer();
  session = await logIn();
  const created = await call('POST', '/api/tokens', { name: 'socket.io e2e' });
  token = created.token;
  assert.match(token, /^sb_/);
});

after(async () => {
  await server?.stop();
});

async function logIn() {
  const response = await fetch(`${server.url}/api/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email: ADMIN_EMAIL, password: ADMIN_PASSWORD }),
  });
  assert.equal(response.status, 200, await response.text());
  const pairs = response.headers.getSetCookie().map((c) => c.split(';')[0]);
  const csrf = pairs.find((p) => p.startsWith('csrftoken='))?.slice('csrftoken='.length);
  assert.ok(csrf, 'the login response sets csrftoken');
  return { cookie: pairs.join('; '), csrf };
}

/**
 * A JSON API call as the admin (session cookie + X-CSRFToken, as a non-browser client
 * must send on writes), retried on 429.
 */
async function call(method, url, body) {
  for (;;) {
    const response = await fetch(`${server.url}${url}`, {
      method,
      headers: { 'Content-Type': 'application/json', Cookie: session.cookie, 'X-CSRFToken': session.csrf },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 429) {
      const wait = Number(response.headers.get('retry-after') || '1');
      await new Promise((resolve) => setTimeout(resolve, Math.max(wait, 0.05) * 1000));
      continue;
    }
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${url}: ${response.status} ${text}`);
    const parsed = text ? JSON.parse(text) : null;
    // An object's fields are also at the top (`created.token`); `body` has it whole.
    return { ...(parsed && !Array.isArray(parsed) ? parsed : {}), body: parsed, headers: response.headers };
  }
}

/**
 * A socket (not yet connected) that records every event it gets.
 * @param {'polling'|'websocket'} transport
 * @param {{cookie?: boolean, auth?: object}} how  cookie: the session in extraHeaders
 */
function client(transport, { cookie = false, auth } = {}) {
  const socket = io(server.url, {
    transports: [transport],
    autoConnect: false,
    reconnection: false,
    forceNew: true,
    timeout: 5000,
    ...(cookie ? { extraHeaders: { Cookie: session.cookie, 'X-CSRFToken': session.csrf } } : {}),
    ...(auth ? { auth } : {}),
  });
  socket.received = [];
  socket.onAny((event, data) => socket.received.push({ event, data }));
  return socket;
}

/** Resolves with the first event `name` (already received, or to come) matching `match`. */
function waitFor(socket, name, match = () => true, ms = 5000) {
  const seen = socket.received.find((r) => r.event === name && match(r.data));
  if (seen) return Promise.resolve(seen.data);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(name, listener);
      reject(new Error(`no ${name} event matching within ${ms} ms; got ${JSON.stringify(socket.received)}`));
    }, ms);
    function listener(data) {
      if (match(data)) {
        clearTimeout(timer);
        socket.off(name, listener);
        resolve(data);
      }
    }
    socket.on(name, listener);
  });
}

function connect(socket) {
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
    socket.connect();
  });
}

function connectError(socket) {
  return new Promise((resolve, reject) => {
    socket.once('connect', () => reject(new Error('connected, but should have been refused')));
    socket.once('connect_error', resolve);
    socket.connect();
  });
}

/** The newest id of a room's log. */
async function position(room) {
  const { headers } = await call('GET', `/api/rooms/${room}/messages?limit=1`);
  return Number(headers.get('switchboard-position'));
}

test('an unauthenticated or badly authenticated connect is refused, on both transports', async () => {
  for (const transport of ['polling', 'websocket']) {
    const anonymous = client(transport);
    const error = await connectError(anonymous);
    assert.match(error.message, /log in|authenticat|sign/i, `${transport}: ${error.message}`);
    anonymous.close();

    const forged = client(transport, { auth: { token: 'sb_not_a_real_token' } });
    await connectError(forged);
    forged.close();
  }
});

test('a cookie-authenticated handshake from another site is refused, on both transports', async () => {
  for (const transport of ['polling', 'websocket']) {
    const socket = io(server.url, {
      transports: [transport],
      autoConnect: false,
      reconnection: false,
      forceNew: true,
      extraHeaders: { Cookie: session.cookie, Origin: 'https://evil.example' },
    });
    const error = await connectError(socket);
    // WebSocket: the CONNECT is refused by the Origin check. Polling: the POST carrying
    // the CONNECT is already refused by the CSRF check (403).
    if (transport === 'websocket') assert.match(error.message, /Cross-origin/);
    socket.close();
  }
});

test('a browser-like client (cookie + its own Origin) connects with the default transports and upgrades', async () => {
  const socket = io(server.url, {
    autoConnect: false,
    reconnection: false,
    forceNew: true,
    extraHeaders: { Cookie: session.cookie, Origin: server.url },
  });
  socket.received = [];
  socket.onAny((event, data) => socket.received.push({ event, data }));
  await connect(socket);
  await waitFor(socket, 'message', (d) => d.data === 'Connected to server');
  // It starts on polling and upgrades (maybe already done by now).
  if (socket.io.engine.transport.name !== 'websocket') {
    await new Promise((resolve) => socket.io.engine.once('upgrade', resolve));
  }
  assert.equal(socket.io.engine.transport.name, 'websocket');
  socket.emit('message', { message: 'after the upgrade' });
  await waitFor(socket, 'message', (d) => d.message === 'after the upgrade');
  socket.close();
});

for (const [transport, way] of [
  ['polling', 'cookie'],
  ['websocket', 'cookie'],
  ['polling', 'token'],
  ['websocket', 'token'],
]) {
  test(`${transport} with a ${way}: connect greeting, join, message, rooms, user_left`, async () => {
    const how = way === 'cookie' ? { cookie: true } : { auth: { token } };
    const alice = client(transport, how);
    const bob = client(transport === 'polling' ? 'websocket' : 'polling', { auth: { token } });
    await connect(alice);
    await connect(bob);
    assert.deepEqual(await waitFor(alice, 'message', (d) => d.data), { data: 'Connected to server' });
    assert.equal(alice.io.engine.transport.name, transport);

    const nick = `alice-${transport}-${way}`;
    alice.emit('join', { username: nick });
    for (const socket of [alice, bob]) {
      const joined = await waitFor(socket, 'user_joined', (d) => d.username === nick);
      assert.equal(typeof joined.user_count, 'number');
      assert.ok(joined.user_count >= 1);
    }

    const text = `hello from ${nick}`;
    alice.emit('message', { message: text });
    for (const socket of [alice, bob]) {
      const message = await waitFor(socket, 'message', (d) => d.message === text);
      assert.equal(message.username, nick);
      assert.equal(typeof message.timestamp, 'number');
      assert.ok(Math.abs(message.timestamp - Date.now() / 1000) < 60);
      assert.equal(message.room, 'general');
      assert.equal(typeof message.id, 'number');
    }

    bob.emit('join_room', { room: 'lobby' });
    await waitFor(bob, 'message', (d) => d.message === 'You joined room: lobby');
    // The room's members (bob, and alice herself) hear that alice joined.
    const bobHeard = bob.received.filter((r) => r.data?.message === 'You joined room: lobby').length;
    alice.emit('join_room', { room: 'lobby' });
    await waitFor(alice, 'message', (d) => d.message === 'You joined room: lobby');
    await waitFor(bob, 'message', () => bob.received.filter((r) => r.data?.message === 'You joined room: lobby').length > bobHeard);
    bob.emit('leave_room', { room: 'lobby' });
    await waitFor(alice, 'message', (d) => d.message === 'You left room: lobby');

    alice.close();
    const left = await waitFor(bob, 'user_left', (d) => d.username === nick);
    assert.equal(typeof left.user_count, 'number');
    bob.close();
  });
}

for (const transport of ['polling', 'websocket']) {
  test(`${transport}: events emitted before the connect completes are handled, in order`, async () => {
    // socket.io-client buffers these and sends them right after the CONNECT ack.
    const socket = client(transport, { auth: { token } });
    const nick = `early-${transport}`;
    socket.emit('join', { username: nick });
    for (let i = 0; i < 5; i++) socket.emit('message', { message: `${nick} ${i}` });
    await connect(socket);
    await waitFor(socket, 'message', (d) => d.message === `${nick} 4`);
    const mine = socket.received.filter((r) => r.data?.message?.startsWith(`${nick} `)).map((r) => r.data);
    assert.deepEqual(mine.map((m) => m.message), [0, 1, 2, 3, 4].map((i) => `${nick} ${i}`));
    assert.ok(mine.every((m) => m.username === nick), 'the join was handled before the messages');
    socket.close();
  });
}

test('a message sent by POST /api/send reaches Socket.IO, and a Socket.IO message is in the history', async () => {
  const socket = client('websocket', { auth: { token } });
  await connect(socket);
  await waitFor(socket, 'message', (d) => d.data);

  const posted = await call('POST', '/api/send', { text: 'from REST', room: 'general' });
  const arrived = await waitFor(socket, 'message', (d) => d.message === 'from REST');
  assert.equal(arrived.id, posted.id);
  assert.equal(arrived.username, arrived.user.name);

  socket.emit('join', { username: 'nick-for-history' });
  await waitFor(socket, 'user_joined', (d) => d.username === 'nick-for-history');
  const ack = await socket.timeout(5000).emitWithAck('message', { message: 'from Socket.IO' });
  assert.equal(ack.room, 'general');
  const { body: history } = await call('GET', `/api/rooms/general/messages?since=${ack.id - 1}`);
  assert.equal(history.length, 1);
  assert.equal(history[0].id, ack.id);
  assert.equal(history[0].text, 'from Socket.IO');
  assert.equal(history[0].user.name, arrived.user.name, 'the account is stored, not the nickname');
  assert.equal(history[0].event.nickname, 'nick-for-history');
  socket.close();
});

for (const transport of ['polling', 'websocket']) {
  test(`${transport}: join_room with since replays exactly the messages missed, in order`, async () => {
    const first = client(transport, { auth: { token } });
    await connect(first);
    await waitFor(first, 'message', (d) => d.data);
    const last = await position('general');
    first.close();

    const texts = Array.from({ length: 50 }, (_, i) => `missed ${transport} ${i}`);
    for (const text of texts) await call('POST', '/api/send', { text, room: 'general' });

    const again = client(transport, { cookie: transport === 'polling', auth: transport === 'websocket' ? { token } : undefined });
    await connect(again);
    await waitFor(again, 'message', (d) => d.data);
    again.emit('join_room', { room: 'general', since: last });
    await waitFor(again, 'message', (d) => d.message === texts.at(-1));
    // Nothing more is coming.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const replayed = again.received
      .filter((r) => r.event === 'message' && r.data.room === 'general' && typeof r.data.id === 'number')
      .map((r) => r.data);
    assert.deepEqual(replayed.map((m) => m.message), texts);
    assert.deepEqual(replayed.map((m) => m.id), texts.map((_, i) => last + 1 + i));
    again.close();
  });
}

test('auth.since at connect resumes the general room without a join_room', async () => {
  const last = await position('general');
  await call('POST', '/api/send', { text: 'while away 1', room: 'general' });
  await call('POST', '/api/send', { text: 'while away 2', room: 'general' });
  const socket = client('websocket', { auth: { token, since: last } });
  await connect(socket);
  await waitFor(socket, 'message', (d) => d.message === 'while away 2');
  const ids = socket.received.filter((r) => typeof r.data?.id === 'number').map((r) => r.data.id);
  assert.deepEqual(ids, [last + 1, last + 2]);
  socket.close();
});

test('a join_room for general after a message arrived there replays nothing it already gave', async () => {
  // README's old snippet: the buffered emit is stored and delivered live, then
  // join_room {since} asks for ids before it; none may come twice or out of order.
  const last = await position('general');
  await call('POST', '/api/send', { text: 'before connect', room: 'general' });
  const socket = client('websocket', { auth: { token } });
  socket.emit('message', { message: 'buffered, live' });
  await connect(socket);
  await waitFor(socket, 'message', (d) => d.message === 'buffered, live');
  socket.emit('join_room', { room: 'general', since: last });
  socket.emit('message', { message: 'marker' });
  await waitFor(socket, 'message', (d) => d.message === 'marker');
  const ids = socket.received.filter((r) => typeof r.data?.id === 'number').map((r) => r.data.id);
  assert.deepEqual(ids, [last + 2, last + 3]);
  socket.close();
});

test("README's snippet: auth.since read at connect resumes general, each id once and in order", async () => {
  const last = await position('general');
  await call('POST', '/api/send', { text: 'missed 1', room: 'general' });
  await call('POST', '/api/send', { text: 'missed 2', room: 'general' });
  const socket = client('websocket', { auth: (cb) => cb({ token, since: last }) });
  socket.emit('message', { message: 'hello from the snippet' });
  await connect(socket);
  await waitFor(socket, 'message', (d) => d.message === 'hello from the snippet');
  await new Promise((resolve) => setTimeout(resolve, 300));
  const ids = socket.received.filter((r) => typeof r.data?.id === 'number').map((r) => r.data.id);
  assert.deepEqual(ids, [last + 1, last + 2, last + 3]);
  socket.close();
});

test('at shutdown the transports close, so socket.io-client reconnects by itself', async () => {
  const own = await startServer();
  try {
    const sockets = [];
    for (const transport of ['polling', 'websocket']) {
      const socket = io(own.url, { transports: [transport], reconnection: false, forceNew: true, auth: { token: await ownToken(own) } });
      await new Promise((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('connect_error', reject);
      });
      sockets.push(socket);
    }
    const reasons = sockets.map((socket) => new Promise((resolve) => socket.once('disconnect', resolve)));
    await own.stop();
    for (const reason of await Promise.all(reasons)) {
      // Not 'io server disconnect', after which the client would stay disconnected.
      assert.match(reason, /^transport (close|error)$/);
    }
  } finally {
    await own.stop();
  }
});

/** A fresh API token of the admin's on another server. */
async function ownToken(other) {
  const login = await fetch(`${other.url}/api/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email: ADMIN_EMAIL, password: ADMIN_PASSWORD }),
  });
  const pairs = login.headers.getSetCookie().map((c) => c.split(';')[0]);
  const csrf = pairs.find((p) => p.startsWith('csrftoken=')).slice('csrftoken='.length);
  const response = await fetch(`${other.url}/api/tokens`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Cookie: pairs.join('; '), 'X-CSRFToken': csrf },
    body: JSON.stringify({ name: 'shutdown' }),
  });
  return (await response.json()).token;
}

test('a nickname with bidi controls, invisible characters or over 64 characters is refused', async () => {
  const socket = client('websocket', { auth: { token } });
  await connect(socket);
  await waitFor(socket, 'message', (d) => d.data);
  const refused = [
    ['admin\u202Egnp.exe', 'bidirectional control characters (U+202E)'],
    ['admin\u200F', 'bidirectional control characters (U+200F)'],
    ['ad\u2028min', 'invisible characters (U+2028)'],
    ['admin\u200B', 'invisible characters (U+200B)'],
    ['x'.repeat(65), '1-64 characters'],
    ['   ', '1-64 characters'],
  ];
  const errors = () => socket.received.filter((r) => r.event === 'error');
  for (const [username, problem] of refused) {
    const before = errors().length;
    socket.emit('join', { username });
    await waitFor(socket, 'error', () => errors().length > before);
    const error = errors().at(-1).data;
    assert.equal(error.code, 'validation_failed', JSON.stringify(error));
    assert.ok(error.error.startsWith('Username ') && error.error.includes(problem), JSON.stringify(error));
  }
  // None of them joined: no user_joined went out, and messages carry the account name.
  await socket.timeout(5000).emitWithAck('message', { message: 'after refused nicknames' });
  const message = await waitFor(socket, 'message', (d) => d.message === 'after refused nicknames');
  assert.equal(message.username, message.user.name);
  assert.ok(!socket.received.some((r) => r.event === 'user_joined'), 'a refused join was announced');
  // What real names need is kept: an emoji joined with ZWJ.
  const family = '\u{1F468}\u200D\u{1F469}\u200D\u{1F467} fan';
  socket.emit('join', { username: family });
  await waitFor(socket, 'user_joined', (d) => d.username === family);
  socket.close();
});

test('two people on two accounts: the user count rises at each join and falls at each disconnect', async () => {
  // As in the Flask-SocketIO chat, a user counts from their `join`, not from connect:
  // its page shows "Users: 1", then "Users: 2" as the second person joins.
  const own = await startServer();
  try {
    const logInAs = async (email, password) => {
      const response = await fetch(`${own.url}/api/auth/login`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ email, password }),
      });
      assert.equal(response.status, 200, await response.text());
      const pairs = response.headers.getSetCookie().map((c) => c.split(';')[0]);
      const csrf = pairs.find((p) => p.startsWith('csrftoken=')).slice('csrftoken='.length);
      return { cookie: pairs.join('; '), csrf };
    };
    const admin = await logInAs(ADMIN_EMAIL, ADMIN_PASSWORD);
    const person = async (name) => {
      const email = `${name.toLowerCase()}@example.com`;
      const password = `${name} quartz lantern 7315`;
      const created = await fetch(`${own.url}/api/users`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Cookie: admin.cookie, 'X-CSRFToken': admin.csrf },
        body: JSON.stringify({ name, email, password }),
      });
      assert.equal(created.status, 201, await created.text());
      const { cookie, csrf } = await logInAs(email, password);
      const socket = io(own.url, {
        transports: ['websocket'],
        autoConnect: false,
        reconnection: false,
        forceNew: true,
        extraHeaders: { Cookie: cookie, 'X-CSRFToken': csrf },
      });
      socket.received = [];
      socket.onAny((event, data) => socket.received.push({ event, data }));
      return socket;
    };
    const [ann, ben, watcher] = [await person('Ann'), await person('Ben'), await person('Cy')];
    // Everyone is connected before anyone joins; the watcher never joins.
    for (const socket of [ann, ben, watcher]) await connect(socket);

    ann.emit('join', { username: 'Ann' });
    assert.equal((await waitFor(watcher, 'user_joined', (d) => d.username === 'Ann')).user_count, 1);
    ben.emit('join', { username: 'Ben' });
    assert.equal((await waitFor(watcher, 'user_joined', (d) => d.username === 'Ben')).user_count, 2);
    assert.equal((await waitFor(ann, 'user_joined', (d) => d.username === 'Ben')).user_count, 2);

    ben.close();
    assert.equal((await waitFor(watcher, 'user_left', (d) => d.username === 'Ben')).user_count, 1);
    assert.equal((await waitFor(ann, 'user_left', (d) => d.username === 'Ben')).user_count, 1);
    ann.close();
    assert.equal((await waitFor(watcher, 'user_left', (d) => d.username === 'Ann')).user_count, 0);
    watcher.close();
  } finally {
    await own.stop();
  }
});
