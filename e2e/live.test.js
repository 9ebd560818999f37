// Browser tests of the live parts (issues 4 and 5): two people on /chat see each
// other's messages and presence; a page whose WebSocket dies falls back to SSE, and
// one that cannot use WebSocket or SSE falls back to long polling, and both still
// receive and send; a change made in one directory page shows in another open page
// within a second, keeping its scroll position and open dialog.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { api, launchBrowser, login, newPage, startServer } from './helpers.js';

const BEA = { name: 'Bea Member', email: 'bea@example.com', password: 'bea reads violet harbors 5' };

let server;
let browser;

before(async () => {
  server = await startServer({ users: 60 });
  browser = await launchBrowser();
  const { context, page } = await newPage(browser, server.url);
  await login(page);
  await api(context, server.url, 'POST', '/api/users', BEA);
  await context.close();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/**
 * Lets the test kill the page's WebSockets and make new ones fail (they are pointed at
 * a path with no WebSocket behind it, so they error without ever opening, as a
 * blocked /ws would).
 */
function controllableWebSocket() {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.__blockWebSocket = false;
  window.WebSocket = class extends Native {
    constructor(url, protocols) {
      super(window.__blockWebSocket ? String(url).replace(/\/ws$/, '/ws-blocked') : url, protocols);
      window.__sockets.push(this);
    }
  };
}

async function chatPage({ email, password, room, blockWebSocket = false, blockSse = false } = {}) {
  const opened = await newPage(browser, server.url);
  const { context, page } = opened;
  await context.addInitScript(controllableWebSocket);
  if (blockSse) {
    await context.route('**/api/events?**', (route) => route.abort());
    await context.route('**/api/rooms/*/events**', (route) => route.abort());
  }
  await login(page, email, password);
  if (blockWebSocket) await page.addInitScript(() => { window.__blockWebSocket = true; });
  await page.goto(room ? `/chat?room=${room}` : '/chat');
  await page.locator('#chat[data-ready="true"]').waitFor();
  return opened;
}

const connected = (page, transport) =>
  page.locator(`#chat[data-status="connected"][data-transport="${transport}"]`).waitFor({ timeout: 15_000 });

async function say(page, text) {
  const box = page.getByRole('textbox', { name: /^Message #/ });
  await box.fill(text);
  await box.press('Enter');
  await page.locator('#messages li.msg:not(.pending) .msg-text', { hasText: text }).waitFor();
}

const received = (page, text, timeout = 5_000) =>
  page.locator('#messages li.msg .msg-text', { hasText: text }).waitFor({ timeout });

test('two people on /chat see each other’s messages and presence', async () => {
  const ann = await chatPage();
  const adminName = (await ann.page.locator('.who-name').textContent()).trim();
  await connected(ann.page, 'websocket');
  // The badge speaks of the connection; the transport is in its tooltip.
  assert.equal(await ann.page.locator('#connection').textContent(), 'Connected');
  assert.match(await ann.page.locator('#connection').getAttribute('title'), /WebSocket/);
  const bea = await chatPage({ email: BEA.email, password: BEA.password });
  await connected(bea.page, 'websocket');

  // Presence: both see two people, by name.
  await ann.page.locator('#presence-count', { hasText: '2 here' }).waitFor();
  assert.match(await ann.page.locator('#presence').textContent(), new RegExp(`you, ${BEA.name}`));
  await bea.page.locator('#presence-count', { hasText: '2 here' }).waitFor();
  assert.match(await bea.page.locator('#presence').textContent(), new RegExp(adminName));

  // The composer: disabled while empty; Enter sends.
  const send = ann.page.getByRole('button', { name: 'Send' });
  assert.equal(await send.isDisabled(), true);
  await say(ann.page, 'Hello Bea, <b>not bold</b>');
  await received(bea.page, 'Hello Bea, <b>not bold</b>');
  assert.equal(await bea.page.locator('#messages b').count(), 0, 'text stays text');
  await say(bea.page, 'Hi Ann!');
  await received(ann.page, 'Hi Ann!');
  assert.equal(await ann.page.locator('#messages li.msg', { hasText: 'Hi Ann!' }).count(), 1, 'shown once');

  // A later visitor gets the history, then live messages, with nothing twice.
  const late = await chatPage({ email: BEA.email, password: BEA.password });
  await received(late.page, 'Hi Ann!');
  await say(ann.page, 'after the late load');
  await received(late.page, 'after the late load');
  const texts = await late.page.locator('#messages li.msg .msg-text').allTextContents();
  assert.equal(new Set(texts).size, texts.length, `no duplicates: ${texts}`);
  await late.context.close();

  // Bea leaves: Ann sees one person left.
  await bea.context.close();
  await ann.page.locator('#presence-count', { hasText: '1 here' }).waitFor();
  assert.deepEqual(ann.problems.errors, []);
  assert.deepEqual(ann.problems.console, []);
  await ann.context.close();
});

test('rooms: open one by name, switch with the list, each with its own messages', async () => {
  const ann = await chatPage();
  await ann.page.getByLabel('Open or create a room').fill('design-team');
  await ann.page.getByLabel('Open or create a room').press('Enter');
  await ann.page.locator('#chat[data-ready="true"][data-room="design-team"]').waitFor();
  assert.equal(new URL(ann.page.url()).searchParams.get('room'), 'design-team');
  assert.equal(await ann.page.getByRole('heading', { level: 1 }).textContent(), '#design-team');
  await connected(ann.page, 'websocket');
  await say(ann.page, 'only in design');
  const bea = await chatPage({ email: BEA.email, password: BEA.password, room: 'design-team' });
  await received(bea.page, 'only in design');
  // The room list links to general; its messages are not those of design-team.
  await bea.page.getByRole('link', { name: '#general' }).click();
  await bea.page.locator('#chat[data-ready="true"][data-room="general"]').waitFor();
  assert.equal(await bea.page.locator('#messages li.msg', { hasText: 'only in design' }).count(), 0);
  await bea.page.goBack();
  await bea.page.locator('#chat[data-ready="true"][data-room="design-team"]').waitFor();
  await received(bea.page, 'only in design');
  // An invalid name is refused in place.
  await bea.page.getByLabel('Open or create a room').fill('no spaces');
  await bea.page.getByRole('button', { name: 'Open' }).click();
  assert.equal(await bea.page.locator('#chat').getAttribute('data-room'), 'design-team');
  await ann.context.close();
  await bea.context.close();
});

test('when the WebSocket dies and cannot come back, the page falls back to SSE and still receives', async () => {
  const watcher = await chatPage({ room: 'fallback' });
  await connected(watcher.page, 'websocket');
  const other = await chatPage({ email: BEA.email, password: BEA.password, room: 'fallback' });
  await say(other.page, 'before the cut');
  await received(watcher.page, 'before the cut');

  // Kill the socket; every new one fails to connect.
  await watcher.page.evaluate(() => {
    window.__blockWebSocket = true;
    for (const socket of window.__sockets) socket.close();
  });
  await connected(watcher.page, 'sse');
  // The badge speaks of the connection; the transport is in its tooltip.
  assert.equal(await watcher.page.locator('#connection').textContent(), 'Connected');
  assert.match(await watcher.page.locator('#connection').getAttribute('title'), /Server-Sent Events/);
  await say(other.page, 'during the outage');
  await received(watcher.page, 'during the outage');
  // Sending works too (by POST).
  await say(watcher.page, 'sent over POST');
  await received(other.page, 'sent over POST');
  const texts = await watcher.page.locator('#messages li.msg .msg-text').allTextContents();
  assert.deepEqual(texts, ['before the cut', 'during the outage', 'sent over POST']);
  assert.deepEqual(watcher.problems.errors, []);
  await watcher.context.close();
  await other.context.close();
});

test('without WebSocket and SSE the page uses long polling, and still receives and sends', async () => {
  const watcher = await chatPage({ room: 'polling', blockWebSocket: true, blockSse: true });
  await connected(watcher.page, 'longpoll');
  // The badge speaks of the connection; the transport is in its tooltip.
  assert.equal(await watcher.page.locator('#connection').textContent(), 'Connected');
  assert.match(await watcher.page.locator('#connection').getAttribute('title'), /long polling/);
  const other = await chatPage({ email: BEA.email, password: BEA.password, room: 'polling' });
  await say(other.page, 'to the poller');
  await received(watcher.page, 'to the poller');
  await say(watcher.page, 'from the poller');
  await received(other.page, 'from the poller');
  await watcher.context.close();
  await other.context.close();
});

// ---- the live directory -----------------------------------------------------------

/** The id of the row at a fixed point of the viewport: what the person is looking at. */
const rowInView = (page) => page.evaluate(() => document.elementFromPoint(200, 400)?.closest('tr')?.dataset.id ?? null);

async function directoryPage() {
  const opened = await newPage(browser, server.url);
  await login(opened.page);
  await opened.page.locator('#directory[data-enhanced="true"][data-live="connected"]').waitFor();
  return opened;
}

test('a change made in one directory page shows in another within a second', async () => {
  const editor = await directoryPage();
  const viewer = await directoryPage();
  await viewer.page.evaluate(() => window.scrollTo(0, 300));
  const looking = await rowInView(viewer.page);
  assert.ok(looking, 'a row is in view');

  // Created in the editor's dialog.
  await editor.page.getByRole('button', { name: 'Add user' }).click();
  const dialog = editor.page.getByRole('dialog');
  await dialog.getByLabel('Name').fill('Live Lena');
  await dialog.getByLabel('Email').fill('lena@example.com');
  await dialog.getByRole('button', { name: 'Add user' }).click();
  await editor.page.getByText('Added Live Lena.').waitFor();
  await viewer.page.getByRole('cell', { name: 'Live Lena', exact: true }).waitFor({ timeout: 1_000 });
  assert.equal(await rowInView(viewer.page), looking, 'the same row is in view');
  const lena = await viewer.page.locator('#user-rows tr', { hasText: 'Live Lena' }).getAttribute('data-id');

  // The viewer opens a dialog; an edit made elsewhere (through the API) arrives under it.
  await viewer.page.getByRole('button', { name: 'Add user' }).click();
  await viewer.page.getByRole('dialog').getByLabel('Name').fill('half typed');
  await api(editor.context, server.url, 'PATCH', `/api/users/${lena}`, { name: 'Lena Renamed' });
  await viewer.page.getByRole('cell', { name: 'Lena Renamed', exact: true }).waitFor({ timeout: 1_000 });
  assert.equal(await viewer.page.getByRole('dialog').isVisible(), true, 'the dialog stays open');
  assert.equal(await viewer.page.getByRole('dialog').getByLabel('Name').inputValue(), 'half typed');
  await viewer.page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
  // Closing the dialog gives focus back to "Add user", at the top: scroll down again.
  await viewer.page.evaluate(() => window.scrollTo(0, 300));
  const stillLooking = await rowInView(viewer.page);

  // Deleted in the editor's page.
  await editor.page.getByRole('button', { name: 'Delete Lena Renamed' }).click();
  await editor.page.locator('#confirm-delete').click();
  await editor.page.getByText('Deleted Lena Renamed.').waitFor();
  await viewer.page.locator(`#user-rows tr[data-id="${lena}"]`).waitFor({ state: 'detached', timeout: 1_000 });
  assert.equal(await rowInView(viewer.page), stillLooking, 'the same row is still in view');
  assert.deepEqual(viewer.problems.errors, []);
  await editor.context.close();
  await viewer.context.close();
});
