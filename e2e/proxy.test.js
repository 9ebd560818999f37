// A tested deployment behind a proxy (issue 18): nginx running deploy/nginx.conf in
// front of two real instances on one PostgreSQL and one Redis (all of this test's
// own). Through nginx: the client's address arrives as X-Forwarded-For and is used
// (--trusted-proxies), SSE and long polls are not buffered, and a browser on /chat and
// two socket.io-client sockets (WebSocket, and polling, which needs the sticky
// /socket.io/ upstream) keep working while each instance in turn is killed: every
// message sent before and after each kill arrives, once, and the clients reconnect.
// Skipped, loudly, without nginx, redis-server or PostgreSQL's binaries (CI has them).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { io } from 'socket.io-client';

import { ADMIN_EMAIL, ADMIN_PASSWORD, launchBrowser, login, newPage } from './helpers.js';
import { missing, startCluster } from './cluster.js';

const absent = missing();
const skip = absent.length > 0 && `needs ${absent.join(', ')}`;
if (skip) {
  if (process.env.TEST_FAULTS_REQUIRED) throw new Error(`e2e/proxy.test.js ${skip}`);
  console.log(`SKIPPED e2e/proxy.test.js: ${skip}`);
}

const ROOM = 'proxy';
let cluster;
let browser;
/** The admin's session through nginx: `cookie` (the Cookie header) and `csrf`. */
let session;

before(async () => {
  if (skip) return;
  cluster = await startCluster({ instances: 2 });
  const response = await fetch(`${cluster.url}/api/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email: ADMIN_EMAIL, password: ADMIN_PASSWORD }),
  });
  assert.equal(response.status, 200, await response.text());
  const pairs = response.headers.getSetCookie().map((c) => c.split(';')[0]);
  session = {
    cookie: pairs.join('; '),
    csrf: pairs.find((p) => p.startsWith('csrftoken=')).slice('csrftoken='.length),
  };
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await cluster?.stop();
});

/**
 * A JSON API call as the admin through nginx. 502/503 (an instance just died, nginx
 * has not marked it down yet, or both were tried) is retried, as a client would; a
 * send carries a client_id, so a retry never stores a message twice.
 */
async function call(method, url, body) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const response = await fetch(`${cluster.url}${url}`, {
      method,
      headers: { 'Content-Type': 'application/json', Cookie: session.cookie, 'X-CSRFToken': session.csrf },
      body: body === undefined ? undefined : JSON.stringify(body),
    }).catch((error) => ({ status: 0, text: async () => String(error) }));
    const text = await response.text();
    if ([0, 502, 503].includes(response.status) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      continue;
    }
    if (response.status >= 300) throw new Error(`${method} ${url}: ${response.status} ${text}\n${cluster.logs()}`);
    return text ? JSON.parse(text) : null;
  }
}

const send = (text) => call('POST', '/api/send', { room: ROOM, text, client_id: crypto.randomUUID() });

/** An HTTP request from a chosen local address (another client on this machine). */
function requestFrom(localAddress, method, url, { headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const request = http.request(`${cluster.url}${url}`, { method, localAddress, headers }, (response) => {
      let data = '';
      response.on('data', (chunk) => { data += chunk; });
      response.on('end', () => resolve({ status: response.statusCode, body: data }));
    });
    request.on('error', reject);
    request.end(body);
  });
}

test('the client address reaches the instances as X-Forwarded-For, and a forged one is ignored', { skip }, async () => {
  const attempt = await requestFrom('127.0.0.2', 'POST', '/api/auth/login', {
    headers: { 'Content-Type': 'application/json', 'X-Forwarded-For': '203.0.113.9' },
    body: JSON.stringify({ email: ADMIN_EMAIL, password: 'not the password at all' }),
  });
  assert.equal(attempt.status, 401, attempt.body);
  // The login budget is kept in Redis per client address: nginx's own (127.0.0.1)
  // would mean the header was ignored, 203.0.113.9 that a client could pick its key.
  const keys = cluster.redisKeys('switchboard:ratelimit:login:ip:*');
  assert.ok(keys.includes('switchboard:ratelimit:login:ip:127.0.0.2'), JSON.stringify(keys));
  assert.ok(!keys.some((k) => k.endsWith('203.0.113.9')), JSON.stringify(keys));
});

test('SSE events and long-poll answers pass through nginx at once', { skip }, async () => {
  const room = 'unbuffered';
  const controller = new AbortController();
  const events = await fetch(`${cluster.url}/api/rooms/${room}/events?since=0`, {
    headers: { Cookie: session.cookie, Accept: 'text/event-stream' },
    signal: controller.signal,
  });
  assert.equal(events.status, 200);
  const reader = events.body.getReader();
  const poll = fetch(`${cluster.url}/api/poll?room=${room}&last_id=0&timeout=20`, { headers: { Cookie: session.cookie } });
  await new Promise((resolve) => setTimeout(resolve, 300));
  const sentAt = Date.now();
  await call('POST', '/api/send', { room, text: 'through nginx' });
  // A buffered proxy would hold a few hundred bytes of events until its buffer filled
  // (or the stream ended), and the long poll's answer until it was complete anyway.
  let seen = '';
  while (!seen.includes('through nginx')) {
    const { value, done } = await Promise.race([
      reader.read(),
      new Promise((_, reject) => setTimeout(() => reject(new Error(`SSE held back: ${seen}`)), 5000)),
    ]);
    assert.ok(!done, 'the stream stays open');
    seen += new TextDecoder().decode(value);
  }
  const sse = Date.now() - sentAt;
  const polled = await (await poll).json();
  assert.deepEqual(polled.map((m) => m.text), ['through nginx']);
  const longPoll = Date.now() - sentAt;
  controller.abort();
  console.log(`through nginx: the SSE event arrived ${sse} ms and the long poll answered ${longPoll} ms after the send`);
  assert.ok(longPoll < 5000, `long poll took ${longPoll} ms`);
});

/** A socket.io-client socket that resumes from the last id it saw on every (re)connect. */
function socketIoClient(transport, token) {
  const socket = io(cluster.url, {
    transports: [transport],
    forceNew: true,
    auth: { token },
    reconnectionDelay: 200,
    reconnectionDelayMax: 1000,
    timeout: 5000,
  });
  socket.ids = [];
  socket.texts = [];
  socket.connects = 0;
  socket.on('connect', () => {
    socket.connects += 1;
    socket.emit('join_room', { room: ROOM, since: socket.ids.at(-1) ?? 0 });
  });
  socket.on('message', (m) => {
    if (m.room === ROOM && typeof m.id === 'number') {
      socket.ids.push(m.id);
      socket.texts.push(m.message);
    }
  });
  return socket;
}

async function eventually(what, check, ms = 15_000) {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} within ${ms} ms\n${cluster.logs()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test('a browser and Socket.IO clients keep working through nginx while each instance in turn is killed', { skip, timeout: 120_000 }, async () => {
  const { token } = await call('POST', '/api/tokens', { name: 'proxy e2e' });
  const sockets = [socketIoClient('websocket', token), socketIoClient('polling', token)];
  const { context, page, problems } = await newPage(browser, cluster.url);
  // Counts the page's WebSockets, to see it reconnect.
  await context.addInitScript(() => {
    const Native = window.WebSocket;
    window.__opened = 0;
    window.WebSocket = class extends Native {
      constructor(...args) {
        super(...args);
        window.__opened += 1;
      }
    };
  });
  await login(page);
  await page.goto(`/chat?room=${ROOM}`);
  await page.locator('#chat[data-status="connected"][data-transport="websocket"]').waitFor({ timeout: 15_000 });
  await eventually('both sockets connect', () => sockets.every((s) => s.connects > 0));

  const texts = [];
  /** Sends `n` messages through nginx and waits until the page and both sockets have them. */
  async function round(label, n = 3) {
    for (let i = 0; i < n; i += 1) {
      const text = `${label} ${i}`;
      texts.push(text);
      await send(text);
    }
    await arrived(label);
  }
  async function arrived(label) {
    for (const text of texts) {
      await page.locator('#messages li.msg .msg-text', { hasText: new RegExp(`^${text}$`) }).waitFor({ timeout: 15_000 });
    }
    await eventually(`${label}: every message reaches both sockets`, () => sockets.every((s) => texts.every((t) => s.texts.includes(t))));
  }
  /** The page sends one itself (the box), which must reach the sockets. */
  async function fromThePage(label) {
    const text = `${label} from the page`;
    texts.push(text);
    const box = page.getByRole('textbox', { name: /^Message #/ });
    await box.fill(text);
    await box.press('Enter');
    await page.locator('#messages li.msg:not(.pending) .msg-text', { hasText: text }).waitFor({ timeout: 15_000 });
    await arrived(label);
  }

  await round('before');
  const timings = [];
  for (const instance of cluster.instances) {
    const killedAt = Date.now();
    await cluster.kill(instance);
    await round(`${instance.name} killed`);
    await fromThePage(`${instance.name} killed`);
    timings.push(`${instance.name} killed: all delivered through the other in ${Date.now() - killedAt} ms`);
    // Back on its port before the other one goes, and in nginx's rotation again
    // (fail_timeout, 2 s, after its last failed connect).
    await cluster.startInstance(instance);
    await new Promise((resolve) => setTimeout(resolve, 2500));
  }
  await round('both back');

  // Each message once, in order, everywhere.
  for (const socket of sockets) {
    assert.deepEqual(socket.ids, socket.ids.map((_, i) => i + 1), `socket ids ${socket.ids}`);
    assert.ok(socket.connects >= 2, `each socket reconnected (${socket.connects} connects)`);
  }
  const shown = await page.locator('#messages li.msg .msg-text').allTextContents();
  assert.deepEqual(shown, texts, 'the page shows every message once, in order');
  assert.ok((await page.evaluate(() => window.__opened)) >= 2, 'the page reconnected its WebSocket');
  // A dead instance shows on the console as a failed WebSocket or request: expected.
  const unexpected = problems.console.filter((m) => !/WebSocket|Failed to load|ERR_|50[23]/.test(m));
  assert.deepEqual({ ...problems, console: unexpected }, { dialogs: [], errors: [], console: [] });
  console.log(timings.join('; '));
  for (const socket of sockets) socket.close();
  await context.close();
});
