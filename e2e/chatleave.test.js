// Browser tests of the chat's leftovers of issue 21: a room is left with its Leave
// button; a message that mentions you is marked; on a phone the open room drawer makes
// the rest of the page inert; the "New messages" line is drawn when the first unread
// message is on an older page than the first one loaded; and a person's row in the
// directory has a "Message" button that opens the direct message with them.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { api, launchBrowser, login, newPage, screenshotPath, startServer } from './helpers.js';

const BEA = { name: 'Bea Member', email: 'bea@example.com', password: 'bea reads violet harbors 5' };
const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };

let server;
let browser;
let admin;

before(async () => {
  server = await startServer({ env: { SWITCHBOARD_RATE_WRITE_PER_SECOND: '1000' } });
  browser = await launchBrowser();
  admin = await newPage(browser, server.url);
  await login(admin.page);
  await api(admin.context, server.url, 'POST', '/api/users', BEA);
});

after(async () => {
  await admin?.context.close();
  await browser?.close();
  await server?.stop();
});

async function beaIn(room, options = {}) {
  const opened = await newPage(browser, server.url, options);
  await login(opened.page, BEA.email, BEA.password);
  await opened.page.goto(`/chat?room=${room}`);
  await opened.page.locator('#chat[data-ready="true"][data-status="connected"]').waitFor();
  return opened;
}

const send = (room, text) => api(admin.context, server.url, 'POST', '/api/send', { room, text });

test('Leave takes a room out of your list and back to #general', async () => {
  const { context, page, problems } = await beaIn('leaveme');
  let rooms = await api(context, server.url, 'GET', '/api/rooms');
  assert.equal(rooms.find((r) => r.name === 'leaveme')?.member, true);
  const leave = page.getByRole('button', { name: 'Leave #leaveme' });
  await leave.click();
  await page.getByText('Left #leaveme.').waitFor();
  await page.waitForURL((url) => url.searchParams.get('room') === 'general');
  await page.locator('#chat[data-room="general"][data-ready="true"]').waitFor();
  assert.equal(await page.getByRole('button', { name: /^Leave/ }).isHidden(), true, '#general is not left');
  rooms = await api(context, server.url, 'GET', '/api/rooms');
  assert.notEqual(rooms.find((r) => r.name === 'leaveme')?.member, true);
  assert.deepEqual(problems.errors, []);
  await context.close();
});

test('a message that mentions you is marked, for you only', async () => {
  const { context, page } = await beaIn('general');
  await send('general', 'Plain news for everyone');
  await send('general', '@[Bea Member] can you review this?');
  await send('general', 'and @bea too');
  const mentioning = page.locator('li.msg.mentions-me');
  await page.locator('li.msg', { hasText: 'and @bea too' }).waitFor();
  assert.equal(await mentioning.count(), 2);
  assert.match(await mentioning.first().textContent(), /mentions you/);
  assert.equal(await page.locator('li.msg.mentions-me', { hasText: 'Plain news' }).count(), 0);
  await page.screenshot({ path: screenshotPath('chat-mention-desktop.png') });
  // The author does not see their own message as mentioning them.
  await admin.page.goto('/chat?room=general');
  await admin.page.locator('li.msg', { hasText: 'and @bea too' }).waitFor();
  assert.equal(await admin.page.locator('li.msg.mentions-me').count(), 0);
  await context.close();
});

test('on a phone the open room drawer makes the rest of the page inert', async () => {
  const { context, page } = await beaIn('general', PHONE);
  const inert = (selector) => page.locator(selector).evaluate((node) => Boolean(node.closest('[inert]')));
  assert.equal(await inert('#composer-text'), false);
  await page.getByRole('button', { name: /^Rooms/ }).click();
  assert.equal(await page.locator('#chat').getAttribute('data-drawer'), 'open');
  for (const selector of ['#composer-text', '#message-log', '.topbar']) {
    assert.equal(await inert(selector), true, `${selector} is inert behind the drawer`);
  }
  assert.equal(await inert('#room-list'), false);
  assert.equal(await inert('#rooms-toggle'), false, 'the button closes it again');
  await page.screenshot({ path: screenshotPath('chat-drawer-inert-phone.png') });
  await page.keyboard.press('Escape');
  assert.equal(await page.locator('#chat').getAttribute('data-drawer'), 'closed');
  for (const selector of ['#composer-text', '#message-log', '.topbar']) {
    assert.equal(await inert(selector), false, `${selector} is usable again`);
  }
  await context.close();
});

test('the "New messages" line is drawn when the first unread message is on an older page', async () => {
  for (let i = 1; i <= 3; i += 1) await send('backlog', `seen ${i}`);
  // Bea has read the first three.
  const first = await beaIn('general');
  await api(first.context, server.url, 'POST', '/api/rooms/backlog/read', { through: 3 });
  const read = await api(first.context, server.url, 'GET', '/api/rooms/backlog/read');
  assert.equal(read.read_id, 3);
  await first.context.close();
  // 70 more: more than a page (50).
  for (let i = 1; i <= 70; i += 1) await send('backlog', `new ${i}`);
  const { context, page } = await beaIn('backlog');
  const divider = page.locator('li.unread-divider');
  await divider.waitFor();
  const next = await divider.evaluate((node) => node.nextElementSibling?.querySelector('.msg-text')?.textContent);
  assert.equal(next, 'new 1');
  await context.close();
});

test('a person\'s row in the directory has a Message button that opens the direct message', async () => {
  await admin.page.goto('/?search=bea');
  await admin.page.locator('#directory[data-enhanced="true"]').waitFor();
  await admin.page.getByRole('link', { name: 'Message Bea Member' }).click();
  await admin.page.waitForURL((url) => url.pathname === '/chat' && /^dm:/.test(url.searchParams.get('room') ?? ''));
  await admin.page.locator('#chat[data-ready="true"]').waitFor();
  // The title names Bea once the room list (which knows the peer) has loaded.
  await admin.page.locator('#room-title', { hasText: 'Bea Member' }).waitFor();
  // No Message button on your own row.
  await admin.page.goto('/?search=admin%40');
  await admin.page.locator('#directory[data-enhanced="true"]').waitFor();
  assert.equal(await admin.page.locator('#user-rows a[data-action="message"]').count(), 0);
});

test('the unread count of a listed room not open here moves live, on the one connection, unseen there', async () => {
  const { context, page } = await beaIn('sidebar');
  // Bea's list has #sidebar; she goes to #general in a fresh page, so #sidebar is not open.
  await context.close();
  const other = await beaIn('general');
  const sockets = [];
  other.page.on('websocket', (ws) => sockets.push(ws.url()));
  const link = other.page.locator('#room-list a[data-room="sidebar"]');
  await link.waitFor();
  await other.page.waitForTimeout(500); // the list loaded and the room is watched
  await send('sidebar', 'psst');
  await link.locator('.room-unread').waitFor({ timeout: 3_000 });
  assert.match(await link.textContent(), /1 unread/);
  // Watching is not being there: the room's members see nobody.
  const presence = await api(admin.context, server.url, 'GET', '/api/rooms/sidebar/presence');
  assert.equal(presence.count, 0);
  assert.deepEqual(sockets, [], 'no second connection');
  // Opened, it is followed as shown: Bea is there.
  await link.click();
  await other.page.locator('#chat[data-room="sidebar"][data-ready="true"]').waitFor();
  await other.page.locator('li.msg', { hasText: 'psst' }).waitFor();
  await other.page.waitForFunction(async () => (await (await fetch('/api/rooms/sidebar/presence')).json()).count === 1);
  await other.context.close();
});
