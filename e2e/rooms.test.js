// Browser tests of the chat page's one connection and its history (issue 16, item 6):
// eight rooms open in one page all receive while the page holds ONE event stream
// (WebSocket, and SSE when the WebSocket is blocked), counted by the page, by the
// network and by the server; scrolling to the top of a room of 250 messages loads the
// older ones without moving what is on screen and without duplicates; sending goes
// through ajax.js (the CSRF header) and a refused send says "Not sent." with a Retry.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { api, launchBrowser, login, newPage, screenshotPath, startServer } from './helpers.js';

const BEA = { name: 'Bea Member', email: 'bea@example.com', password: 'bea reads violet harbors 5' };
/** The logs the page follows for its room list (issue 21): created rooms, the viewer's notifications. */
const LIST_LOGS = /^(rooms|user:\d+)$/;
const roomsFor = (transport) => Array.from({ length: 8 }, (_, i) => `${transport}-${i}`);

let server;
let browser;
let admin; // an API context logged in as the admin (reads /metrics)
let bea; // an API context logged in as Bea (sends to the rooms)

before(async () => {
  // Filling a room with 250 messages is 250 writes: more than an account's 20 a second.
  server = await startServer({ env: { SWITCHBOARD_RATE_WRITE_PER_SECOND: '1000' } });
  browser = await launchBrowser();
  admin = await newPage(browser, server.url);
  await login(admin.page);
  await api(admin.context, server.url, 'POST', '/api/users', BEA);
  bea = await newPage(browser, server.url);
  await login(bea.page, BEA.email, BEA.password);
  // Their pages leave the (live) directory: only the chat pages under test hold a
  // realtime connection.
  await admin.page.goto('about:blank');
  await bea.page.goto('about:blank');
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/**
 * Counts the page's event streams as it opens them: the chat's EventSources alive at
 * once (the most ever), WebSockets made, and the requests of each realtime route. The
 * header's bell rides on the chat's connection on /chat (its own `/notifications`
 * stream, counted apart in `bell`, is for the other pages).
 */
function countStreams() {
  const Native = window.EventSource;
  window.__streams = { open: 0, most: 0, made: 0, bell: 0, sockets: 0 };
  window.EventSource = class extends Native {
    constructor(...args) {
      super(...args);
      this.bell = new URL(String(args[0]), location.href).pathname === '/notifications';
      if (this.bell) {
        window.__streams.bell += 1;
        return;
      }
      window.__streams.made += 1;
      window.__streams.open += 1;
      window.__streams.most = Math.max(window.__streams.most, window.__streams.open);
    }
    close() {
      if (!this.bell && this.readyState !== 2) window.__streams.open -= 1;
      super.close();
    }
  };
  // Polls the page still waits for (an aborted one is cancelled there and then; the
  // network events of a cancel and of the next poll may be reported in either order).
  const nativeFetch = window.fetch.bind(window);
  window.__polls = { waiting: new Set(), most: 0 };
  window.fetch = (input, init = {}) => {
    const url = new URL(String(input?.url ?? input), location.href);
    if (url.pathname !== '/api/poll') return nativeFetch(input, init);
    const entry = { signal: init.signal };
    const polls = window.__polls;
    polls.waiting.add(entry);
    const live = [...polls.waiting].filter((e) => !e.signal?.aborted).length;
    polls.most = Math.max(polls.most, live);
    return nativeFetch(input, init).finally(() => polls.waiting.delete(entry));
  };
  const NativeSocket = window.WebSocket;
  window.__blockWebSocket = false;
  window.WebSocket = class extends NativeSocket {
    constructor(url, protocols) {
      super(window.__blockWebSocket ? String(url).replace(/\/ws$/, '/ws-blocked') : url, protocols);
      window.__streams.sockets += 1;
    }
  };
}

async function chatPage({ room, blockWebSocket = false, blockSse = false, viewport } = {}) {
  const opened = await newPage(browser, server.url, viewport ? { viewport } : {});
  const { context, page } = opened;
  await context.addInitScript(countStreams);
  if (blockSse) {
    await context.route('**/api/events?**', (route) => route.abort());
    await context.route('**/api/rooms/*/events**', (route) => route.abort());
  }
  const network = { events: [], perRoom: [], polls: [], sockets: 0, sends: [], pollsInFlight: 0, mostPolls: 0 };
  const isPoll = (request) => new URL(request.url()).pathname === '/api/poll';
  page.on('request', (request) => {
    const { pathname } = new URL(request.url());
    if (pathname === '/api/events') network.events.push(request.url());
    if (/^\/api\/rooms\/[^/]+\/events$/.test(pathname)) network.perRoom.push(request.url());
    if (pathname === '/api/poll') {
      network.polls.push(request.url());
      network.pollsInFlight += 1;
      network.mostPolls = Math.max(network.mostPolls, network.pollsInFlight);
    }
    if (pathname === '/api/send') network.sends.push(request);
  });
  const pollDone = (request) => { if (isPoll(request)) network.pollsInFlight -= 1; };
  page.on('requestfinished', pollDone);
  page.on('requestfailed', pollDone);
  page.on('websocket', () => { network.sockets += 1; });
  await login(page);
  // Only the chat page counts. The directory page after login is live too, and its
  // script may open its WebSocket after login() has returned: the counts start once
  // it is connected.
  await page.locator('#directory[data-live="connected"]').waitFor();
  if (blockWebSocket) await page.addInitScript(() => { window.__blockWebSocket = true; });
  // Left before the counts start, so none of its late requests is counted.
  await page.goto('about:blank');
  network.sockets = 0;
  network.events.length = 0;
  network.polls.length = 0;
  await page.goto(`/chat?room=${room}`);
  await page.locator('#chat[data-ready="true"]').waitFor();
  return { ...opened, network };
}

const connected = (page, transport) =>
  page.locator(`#chat[data-status="connected"][data-transport="${transport}"]`).waitFor({ timeout: 15_000 });

async function openByName(page, name) {
  await page.getByLabel('Open or create a room').fill(name);
  await page.getByLabel('Open or create a room').press('Enter');
  await page.locator(`#chat[data-ready="true"][data-room="${name}"]`).waitFor();
}

/** The server's count of open realtime connections (every transport), from /metrics. */
async function serverConnections() {
  const response = await admin.context.request.get('/metrics');
  const text = await response.text();
  const line = text.split('\n').find((l) => /^\w*realtime_connections(\{[^}]*\})? /.test(l));
  assert.ok(line, `/metrics has realtime_connections:\n${text.slice(0, 500)}`);
  return Number(line.trim().split(/\s+/).at(-1));
}

/** Polls `probe` until it returns true, or fails with `what`. */
async function eventually(probe, what, timeout = 20_000) {
  const until = Date.now() + timeout;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > until) assert.fail(what);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const unread = (page, name) =>
  page.locator(`#room-list a[data-room="${name}"] .room-unread`);

for (const transport of ['websocket', 'sse']) {
  test(`eight open rooms all receive over ONE ${transport} stream`, async (t) => {
    const ROOMS = roomsFor(transport);
    const chat = await chatPage({ room: ROOMS[0], blockWebSocket: transport === 'sse' });
    // Closed even when an assertion fails: its connections would skew the next test's count.
    t.after(() => chat.context.close());
    const { page, network } = chat;
    if (transport === 'sse') {
      // Two failed WebSocket attempts, then the fallback.
      await connected(page, 'sse');
    } else {
      await connected(page, 'websocket');
    }
    for (const name of ROOMS.slice(1)) await openByName(page, name);
    await connected(page, transport);
    // Every room stays open (and listed) while the last one is shown.
    for (const name of ROOMS) await page.locator(`#room-list li[data-open="true"] a[data-room="${name}"]`).waitFor();

    const shown = ROOMS.at(-1);
    for (const name of ROOMS) {
      await api(bea.context, server.url, 'POST', '/api/send', { room: name, text: `hello ${name}` });
    }
    await page.locator('#messages li.msg .msg-text', { hasText: `hello ${shown}` }).waitFor({ timeout: 5_000 });
    for (const name of ROOMS.slice(0, -1)) {
      await unread(page, name).filter({ hasText: '1' }).waitFor({ timeout: 5_000 });
    }
    assert.equal(await unread(page, shown).count(), 0, 'the shown room has nothing unread');
    if (transport === 'websocket') await page.screenshot({ path: screenshotPath('chat-open-rooms-desktop.png') });

    // Back to a background room: its message is there, once, and it is read.
    await page.locator(`#room-list a[data-room="${ROOMS[2]}"]`).click();
    await page.locator(`#chat[data-ready="true"][data-room="${ROOMS[2]}"]`).waitFor();
    assert.deepEqual(await page.locator('#messages li.msg .msg-text').allTextContents(), [`hello ${ROOMS[2]}`]);
    assert.equal(await unread(page, ROOMS[2]).count(), 0);
    // And live there, with no new stream.
    await api(bea.context, server.url, 'POST', '/api/send', { room: ROOMS[2], text: 'again' });
    await page.locator('#messages li.msg .msg-text', { hasText: 'again' }).waitFor({ timeout: 5_000 });

    const streams = await page.evaluate(() => window.__streams);
    assert.equal(streams.bell, 0, 'the bell opened no stream of its own: it rides on the chat\'s');
    assert.deepEqual(network.perRoom, [], 'no stream per room');
    if (transport === 'websocket') {
      assert.equal(streams.sockets, 1, 'the page made one WebSocket for all eight rooms, joined on it');
      assert.equal(network.sockets, 1, 'one WebSocket on the network');
      assert.equal(streams.made, 0);
      assert.deepEqual(network.events, []);
    } else {
      assert.equal(streams.most, 1, `at most one EventSource at a time: ${JSON.stringify(streams)}`);
      assert.equal(streams.open, 1);
      // The last stream follows all eight rooms, and (issue 21) the server's log of
      // created rooms and the viewer's notification room, which keep the list live.
      const last = new URL(network.events.at(-1));
      const followed = last.searchParams.get('rooms').split(',');
      // The rooms of the viewer's list that are not open (the earlier test's) are
      // watched on the same stream, for their unread counts, without presence.
      const watched = (last.searchParams.get('watch') ?? '').split(',').filter(Boolean);
      assert.ok(watched.every((r) => followed.includes(r) && !ROOMS.includes(r)), `${watched}`);
      const shownOrOpen = followed.filter((r) => !LIST_LOGS.test(r) && !watched.includes(r));
      assert.deepEqual(shownOrOpen.sort(), [...ROOMS].sort());
      assert.equal(followed.filter((r) => LIST_LOGS.test(r)).length, 2, followed.join());
    }
    assert.deepEqual(network.polls, []);
    // The server agrees: this page holds one realtime connection, the chat's, which
    // carries the bell too (a closed stream is noticed at its next write, so the count
    // may take a keep-alive to settle).
    await eventually(async () => (await serverConnections()) === 1, 'the server holds the chat\'s one connection');

    // Closing a room stops following it.
    await page.getByRole('button', { name: `Close #${ROOMS[0]}` }).click();
    await page.locator(`#room-list li[data-open="true"] a[data-room="${ROOMS[0]}"]`).waitFor({ state: 'detached' });
    await api(bea.context, server.url, 'POST', '/api/send', { room: ROOMS[0], text: 'unheard' });
    await api(bea.context, server.url, 'POST', '/api/send', { room: ROOMS[1], text: 'heard' });
    await unread(page, ROOMS[1]).filter({ hasText: '2' }).waitFor({ timeout: 5_000 });
    // Not followed any more; what is unread there is what the server counts (issue 21:
    // read positions are the server's), so it shows when the list is next read.
    assert.equal(await page.locator(`#room-list li[data-open="true"] a[data-room="${ROOMS[0]}"]`).count(), 0);
    assert.deepEqual(chat.problems.errors, []);
    await chat.context.close();
  });
}

test('without WebSocket and SSE, open rooms share ONE long-poll loop: one poll at a time', async () => {
  const rooms = ['poll-0', 'poll-1', 'poll-2'];
  const chat = await chatPage({ room: rooms[0], blockWebSocket: true, blockSse: true });
  const { page, network } = chat;
  await connected(page, 'longpoll');
  for (const name of rooms.slice(1)) await openByName(page, name);
  await connected(page, 'longpoll');
  // The shown room is waited on: its message comes at once.
  const started = Date.now();
  await api(bea.context, server.url, 'POST', '/api/send', { room: rooms[2], text: 'to the shown room' });
  await page.locator('#messages li.msg .msg-text', { hasText: 'to the shown room' }).waitFor({ timeout: 3_000 });
  // A room in the background is checked every few seconds.
  await api(bea.context, server.url, 'POST', '/api/send', { room: rooms[0], text: 'to the background' });
  await unread(page, rooms[0]).filter({ hasText: '1' }).waitFor({ timeout: 15_000 });
  assert.ok(Date.now() - started < 15_000);
  // Every room, and the bell's notification room (user:ID), which rides on the chat's loop.
  const asked = new Set(network.polls.map((url) => new URL(url).searchParams.get('room')));
  // Also asked: the earlier tests' rooms, in the viewer's list and not open here,
  // watched for their unread counts.
  const watched = /^(websocket|sse)-\d+$/;
  assert.deepEqual([...asked].filter((r) => !LIST_LOGS.test(r) && !watched.test(r)).sort(), rooms);
  assert.equal(await page.evaluate(() => window.__polls.most), 1, 'never more than one poll waited for');
  assert.ok(network.mostPolls <= 2, `a cancelled poll overlaps the next one at most: ${network.mostPolls}`);
  assert.deepEqual(network.perRoom.length + network.events.length > 0, true, 'SSE was tried (and blocked)');
  assert.deepEqual(chat.problems.errors, []);
  await chat.context.close();
});

/** Fills `room` with `count` messages "m1".."m{count}" (ids 1..count), 50 to a batch. */
async function fill(room, count) {
  for (let start = 1; start <= count; start += 50) {
    const requests = [];
    for (let i = start; i < Math.min(start + 50, count + 1); i += 1) {
      requests.push({ endpoint: '/api/send', method: 'POST', body: { room, text: `m${i}` } });
    }
    const answers = await api(bea.context, server.url, 'POST', '/api/batch', { requests });
    assert.ok(answers.every((a) => a.success), JSON.stringify(answers.find((a) => !a.success)));
  }
}

/** Where message `id` is, in px from the top of the log's visible area. */
const offsetOf = (page, id) => page.evaluate((id) => {
  const log = document.getElementById('message-log');
  return document.querySelector(`#messages li[data-id="${id}"]`).getBoundingClientRect().top - log.getBoundingClientRect().top;
}, id);
const ids = (page) => page.evaluate(() => [...document.querySelectorAll('#messages li.msg')].map((li) => Number(li.dataset.id)));

test('scrolling to the top loads older messages, keeping the view still, until the start', async () => {
  await fill('history', 250);
  const chat = await chatPage({ room: 'history', viewport: { width: 1280, height: 800 } });
  const { page, context } = chat;
  await connected(page, 'websocket');
  assert.deepEqual(await ids(page), Array.from({ length: 50 }, (_, i) => 201 + i), 'the newest 50');
  await page.getByRole('button', { name: 'Load older messages' }).waitFor();

  // Slow the next page down enough to see the loading state.
  let release;
  const held = new Promise((resolve) => { release = resolve; });
  await context.route('**/api/rooms/history/messages?before=*', async (route) => {
    await held;
    await route.continue();
  });
  await page.evaluate(() => { document.getElementById('message-log').scrollTop = 0; });
  await page.getByRole('status').filter({ hasText: 'Loading older messages…' }).waitFor();
  assert.equal(await page.locator('#message-log').getAttribute('aria-busy'), 'true');
  const before = await offsetOf(page, 201);
  release();
  await page.locator('#messages li[data-id="151"]').waitFor();
  const afterLoad = await offsetOf(page, 201);
  assert.ok(Math.abs(afterLoad - before) <= 3, `message 201 stays put: ${before}px then ${afterLoad}px`);
  assert.equal(await page.locator('#message-log').getAttribute('aria-busy'), 'false');
  await context.unroute('**/api/rooms/history/messages?before=*');

  // Again, to the start of the room.
  for (const next of [101, 51, 1]) {
    const anchor = (await ids(page))[0];
    // At the top, measured before the scroll event has loaded anything.
    const was = await page.evaluate((id) => {
      const log = document.getElementById('message-log');
      log.scrollTop = 0;
      return document.querySelector(`#messages li[data-id="${id}"]`).getBoundingClientRect().top - log.getBoundingClientRect().top;
    }, anchor);
    await page.locator(`#messages li[data-id="${next}"]`).waitFor();
    const now = await offsetOf(page, anchor);
    assert.ok(Math.abs(now - was) <= 3, `message ${anchor} stays put: ${was}px then ${now}px`);
  }
  await page.locator('#older', { hasText: 'This is the start of #history.' }).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Load older messages' }).count(), 0);
  assert.deepEqual(await ids(page), Array.from({ length: 250 }, (_, i) => 1 + i), 'all 250, once each, in order');
  const texts = await page.locator('#messages li.msg .msg-text').allTextContents();
  assert.equal(texts[0], 'm1');

  // Live messages still go to the bottom.
  await api(bea.context, server.url, 'POST', '/api/send', { room: 'history', text: 'newest' });
  await page.locator('#messages li[data-id="251"]').waitFor({ timeout: 5_000 });
  assert.equal((await ids(page)).at(-1), 251);
  await page.evaluate(() => { document.getElementById('message-log').scrollTop = 0; });
  await page.screenshot({ path: screenshotPath('chat-scrollback-desktop.png') });
  assert.deepEqual(chat.problems.errors, []);
  await context.close();
});

test('sending goes through ajax.js with the CSRF token; a refused send says “Not sent.” and Retry works', async () => {
  const chat = await chatPage({ room: 'sending', blockWebSocket: true });
  const { page, context, network } = chat;
  await connected(page, 'sse');
  const box = page.getByRole('textbox', { name: /^Message #/ });

  await box.fill('over POST');
  await box.press('Enter');
  await page.locator('#messages li.msg:not(.pending) .msg-text', { hasText: 'over POST' }).waitFor();
  const csrf = (await context.cookies()).find((c) => c.name === 'csrftoken')?.value;
  assert.ok(csrf, 'the page has a csrftoken cookie');
  assert.equal(network.sends.length, 1);
  const headers = await network.sends[0].allHeaders();
  assert.equal(headers['x-csrftoken'], csrf);
  assert.equal(headers['content-type'], 'application/json');
  assert.deepEqual(Object.keys(network.sends[0].postDataJSON()).sort(), ['client_id', 'room', 'text']);

  // The server refuses the next one: the envelope's sentence is shown, with a Retry.
  await context.route('**/api/send', (route) => route.fulfill({
    status: 503,
    contentType: 'application/json',
    body: JSON.stringify({ error: 'The database cannot be reached.', code: 'unavailable' }),
  }));
  await box.fill('refused once');
  await box.press('Enter');
  const failed = page.locator('#messages li.msg.failed', { hasText: 'refused once' });
  await failed.locator('.msg-state', { hasText: 'Not sent.' }).waitFor();
  await page.locator('#toasts', { hasText: 'Your message was not sent: The database cannot be reached.' }).waitFor();
  await context.unroute('**/api/send');
  await failed.getByRole('button', { name: 'Retry' }).click();
  await page.locator('#messages li.msg:not(.pending) .msg-text', { hasText: 'refused once' }).waitFor();
  assert.equal(await page.locator('#messages li.msg', { hasText: 'refused once' }).count(), 1, 'shown once');
  assert.equal(await page.locator('#messages li.failed').count(), 0);
  // The retry carried the same client_id: the server stored one message.
  const stored = await api(bea.context, server.url, 'GET', '/api/rooms/sending/messages');
  assert.deepEqual(stored.map((m) => m.text), ['over POST', 'refused once']);
  await context.close();
});
