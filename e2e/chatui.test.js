// Browser tests of the chat's daily use (issue 21, items 4-6, the client side): two
// people in two contexts see messages grouped by author, with day dividers, full
// times and safe links; `@` in the composer offers people and inserts a mention the
// server recognises (the other person's bell rings, carried by the chat's ONE
// connection); on a phone (390x844) the room list is a drawer and the messages get
// the screen; choosing a room puts focus in the composer; and a server killed and
// started again shows "Reconnecting…", then "Connected" on the WebSocket again, with
// the message written meanwhile delivered once. Screenshots: light and dark, desktop
// and phone (e2e/screenshots/chatui-*.png).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { api, launchBrowser, login, newPage, screenshotPath, startServer } from './helpers.js';

const BEA = { name: 'Bea Member', email: 'bea@example.com', password: 'bea reads violet harbors 5' };
const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };

let server;
let browser;
let dir;
let env;

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

before(async () => {
  // One port and one database for the whole file, so the server can be killed and
  // started again under the pages' feet.
  dir = mkdtempSync(path.join(tmpdir(), 'switchboard-chatui-'));
  env = {
    SWITCHBOARD_BIND: `127.0.0.1:${await freePort()}`,
    SWITCHBOARD_DATABASE_URL: `sqlite://${path.join(dir, 'chat.db')}`,
    SWITCHBOARD_RATE_WRITE_PER_SECOND: '1000',
  };
  server = await startServer({ env });
  browser = await launchBrowser();
  const admin = await newPage(browser, server.url);
  await login(admin.page);
  await api(admin.context, server.url, 'POST', '/api/users', BEA);
  await admin.context.close();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function chatAs(who, room, options = {}) {
  const opened = await newPage(browser, server.url, options);
  if (who === BEA) await login(opened.page, BEA.email, BEA.password);
  else await login(opened.page);
  // The realtime requests of the chat page itself (not the directory's, which login lands on).
  await opened.page.goto('about:blank');
  const streams = [];
  opened.page.on('request', (request) => {
    const { pathname } = new URL(request.url());
    if (['/notifications', '/api/events', '/api/poll'].includes(pathname)) streams.push(pathname);
  });
  opened.page.on('websocket', () => streams.push('/ws'));
  await opened.page.goto(`/chat?room=${room}`);
  await opened.page.locator('#chat[data-ready="true"]').waitFor();
  return { ...opened, streams };
}

const connected = (page, transport = 'websocket') =>
  page.locator(`#chat[data-status="connected"][data-transport="${transport}"]`).waitFor({ timeout: 30_000 });

async function say(page, text) {
  await page.locator('#composer-text').fill(text);
  await page.locator('#composer-send').click();
}

test('two people: grouped messages, a day divider, full times, safe links, and an @ mention that rings the bell', async () => {
  const ann = await chatAs(null, 'lounge');
  const bea = await chatAs(BEA, 'lounge');
  await connected(ann.page);
  await connected(bea.page);
  // The bell rides on the chat's connection: no stream of its own on /chat.

  await say(bea.page, 'morning all');
  await say(bea.page, 'the notes: https://example.com/notes?id=7. And HTTPS://Example.ORG/Caps');
  await say(bea.page, 'not links: javascript:alert(1) data:text/html,<b>x</b> <img src=x onerror=alert(1)>');
  const texts = ann.page.locator('#messages li.msg .msg-text');
  await texts.filter({ hasText: 'not links' }).waitFor();

  // One group: the name is drawn once, the later two are grouped.
  const items = ann.page.locator('#messages li.msg');
  assert.deepEqual(await items.evaluateAll((els) => els.map((e) => e.classList.contains('grouped'))), [false, true, true]);
  const authorShown = await items.evaluateAll((els) => els.map((e) => e.querySelector('.msg-author').getBoundingClientRect().width > 2));
  assert.deepEqual(authorShown, [true, false, false]);
  // A divider for today, before the first message.
  assert.equal(await ann.page.locator('#messages > li.day-divider').count(), 1);
  assert.equal((await ann.page.locator('#messages > li:first-child').textContent()).trim(), 'Today');
  // The time: datetime, the full date on hover and for screen readers.
  const time = items.first().locator('time');
  assert.match(await time.getAttribute('datetime'), /^\d{4}-\d\d-\d\dT/);
  const full = await time.getAttribute('title');
  assert.match(full, /\d{4}/, 'the title has the year');
  assert.equal((await time.locator('.visually-hidden').textContent()).trim(), full);

  // Links: http(s) only, rel and target set; the rest stays text.
  const links = items.nth(1).locator('a');
  assert.equal(await links.count(), 2);
  assert.equal(await links.nth(0).getAttribute('href'), 'https://example.com/notes?id=7');
  assert.equal(await links.nth(0).textContent(), 'https://example.com/notes?id=7');
  assert.equal(await links.nth(1).getAttribute('href'), 'https://example.org/Caps');
  for (let i = 0; i < 2; i += 1) {
    assert.equal(await links.nth(i).getAttribute('rel'), 'noopener noreferrer');
    assert.equal(await links.nth(i).getAttribute('target'), '_blank');
  }
  const last = items.nth(2);
  assert.equal(await last.locator('a, img, b').count(), 0, 'no markup from the text');
  assert.equal(await last.locator('.msg-text').textContent(), 'not links: javascript:alert(1) data:text/html,<b>x</b> <img src=x onerror=alert(1)>');

  // Another author starts a new group.
  await say(ann.page, 'hi Bea');
  await ann.page.locator('#messages li.msg:not(.pending)', { hasText: 'hi Bea' }).waitFor();
  assert.equal(await ann.page.locator('#messages li.msg', { hasText: 'hi Bea' }).getAttribute('class'), 'msg mine');

  // @ in the composer: Bea (two words) is offered by her handle, marked as here.
  const composer = ann.page.locator('#composer-text');
  await composer.fill('');
  await composer.pressSequentially('thanks @Be');
  const option = ann.page.locator('#mention-list [role="option"]', { hasText: 'Bea Member' });
  await option.waitFor();
  assert.equal(await option.textContent(), 'Bea Member · @bea · here');
  await ann.page.screenshot({ path: screenshotPath('chatui-mention-desktop-light.png') });
  await composer.press('ArrowDown');
  assert.equal(await composer.getAttribute('aria-activedescendant'), await option.getAttribute('id'));
  await composer.press('Enter');
  assert.equal(await composer.inputValue(), 'thanks @bea ', 'inserted, not sent');
  assert.ok(await ann.page.locator('#mention-list').isHidden());
  await composer.pressSequentially('see you');
  await composer.press('Enter');
  await ann.page.locator('#messages li.msg:not(.pending)', { hasText: 'thanks @bea see you' }).waitFor();
  // The server recognised the mention: Bea's bell, fed by her chat connection, rings.
  await bea.page.locator('#bell[data-unread="1"]').waitFor({ timeout: 10_000 });
  await bea.page.locator('#bell-button').click();
  await bea.page.locator('#bell-list a', { hasText: 'mentioned you in #lounge' }).waitFor();
  await bea.page.keyboard.press('Escape');
  assert.deepEqual(bea.streams, ['/ws'], 'one connection on the chat page, the bell on it');
  // Escape in the composer with no list open keeps the text.
  await composer.fill('draft');
  await composer.press('Escape');
  assert.equal(await composer.inputValue(), 'draft');
  await composer.fill('');

  await ann.page.screenshot({ path: screenshotPath('chatui-desktop-light.png') });
  await ann.page.emulateMedia({ colorScheme: 'dark' });
  await ann.page.evaluate(() => document.documentElement.setAttribute('data-theme', 'dark'));
  await ann.page.screenshot({ path: screenshotPath('chatui-desktop-dark.png') });
  assert.deepEqual([...ann.problems.errors, ...bea.problems.errors], []);
  await ann.context.close();
  await bea.context.close();
});

test('keyboard: choosing a room puts focus in the composer; Escape in the directory search keeps focus there', async () => {
  const { context, page } = await chatAs(null, 'general');
  await page.getByLabel('Open or create a room').fill('keys');
  await page.getByLabel('Open or create a room').press('Enter');
  await page.locator('#chat[data-ready="true"][data-room="keys"]').waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'composer-text');
  // From the list, by keyboard.
  await page.locator('#room-list a[data-room="general"]').focus();
  await page.keyboard.press('Enter');
  await page.locator('#chat[data-ready="true"][data-room="general"]').waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'composer-text');
  assert.match(await page.locator('#composer-hint').textContent(), /Shift\+Enter/);

  await page.goto('/');
  const search = page.locator('#search');
  await search.fill('bea');
  await search.press('Escape');
  await search.press('Escape');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'search');
  await context.close();
});

test('phone 390x844: the room list is a drawer, the messages get the screen, your name stays, hints fit touch', async () => {
  const { context, page, problems } = await chatAs(null, 'general', PHONE);
  await connected(page);
  for (let i = 0; i < 6; i += 1) await api(context, server.url, 'POST', '/api/send', { room: 'general', text: `phone line ${i}` });
  await page.locator('#messages li.msg', { hasText: 'phone line 5' }).waitFor();
  assert.ok(await page.locator('#chat-rooms').isHidden(), 'the room list is behind a button');
  const log = await page.locator('#message-log').boundingBox();
  assert.ok(log.height >= 500, `the messages get most of the 844 px: ${log.height}`);
  assert.ok(await page.locator('.who-name').isVisible(), 'your name is in the header');
  const hint = await page.locator('#composer-hint').textContent();
  assert.doesNotMatch(hint, /Shift|arrow/i);
  assert.match(hint, /tap Send/);
  // On a touch screen Return is a new line.
  await page.locator('#composer-text').fill('two');
  await page.locator('#composer-text').press('Enter');
  assert.equal(await page.locator('#composer-text').inputValue(), 'two\n');
  await page.locator('#composer-text').fill('');
  await page.screenshot({ path: screenshotPath('chatui-phone-light.png') });

  const toggle = page.getByRole('button', { name: /^Rooms/ });
  assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
  await toggle.tap();
  assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
  await page.locator('#chat-rooms').waitFor();
  await page.screenshot({ path: screenshotPath('chatui-phone-drawer-light.png') });
  // Escape closes it and gives focus back to the button.
  await page.keyboard.press('Escape');
  assert.ok(await page.locator('#chat-rooms').isHidden());
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'rooms-toggle');
  // Opening a room from the drawer: it closes, the room shows, the composer has focus.
  await toggle.tap();
  await page.getByLabel('Open or create a room').fill('pocket');
  await page.getByRole('button', { name: 'Open', exact: true }).tap();
  await page.locator('#chat[data-ready="true"][data-room="pocket"]').waitFor();
  assert.ok(await page.locator('#chat-rooms').isHidden());
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'composer-text');
  await toggle.tap();
  await page.locator('#room-list a[data-room="general"]').tap();
  await page.locator('#chat[data-ready="true"][data-room="general"]').waitFor();
  assert.ok(await page.locator('#chat-rooms').isHidden());
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'composer-text');

  await page.emulateMedia({ colorScheme: 'dark' });
  await page.evaluate(() => document.documentElement.setAttribute('data-theme', 'dark'));
  await page.screenshot({ path: screenshotPath('chatui-phone-dark.png') });
  await toggle.tap();
  await page.screenshot({ path: screenshotPath('chatui-phone-drawer-dark.png') });
  // The directory's search hint speaks of arrow keys: not on a touch screen.
  await page.goto('/');
  await page.locator('#search').waitFor();
  assert.ok(await page.locator('#search-hint').isHidden());
  assert.deepEqual(problems.errors, []);
  await context.close();
});

test('a server killed and started again: Reconnecting…, then Connected on the WebSocket, the unsent message delivered once', async () => {
  const { context, page, problems } = await chatAs(null, 'restart');
  await connected(page);
  assert.equal(await page.locator('#connection').textContent(), 'Connected');
  assert.match(await page.locator('#connection').getAttribute('title'), /WebSocket/);

  await server.stop();
  await page.locator('#connection', { hasText: 'Reconnecting…' }).waitFor({ timeout: 15_000 });
  await say(page, 'written while the server was away');
  const item = page.locator('#messages li.msg', { hasText: 'written while the server was away' });
  await item.locator('.msg-state', { hasText: 'Not sent.' }).waitFor({ timeout: 20_000 });

  // While it is down, days of history appear in another room (written to the database).
  const day = 24 * 3600 * 1000;
  const now = Date.now();
  const rows = [
    [1, now - 2 * day], [2, now - 2 * day + 60_000], [3, now - day], [4, now - day + 30 * 60_000],
  ].map(([id, ms]) => `('days', ${id}, 1, 'Admin', 'old ${id}', ${ms})`).join(',');
  execFileSync('sqlite3', [path.join(dir, 'chat.db'),
    `INSERT INTO rooms (name, last_id, pruned_through, created_ms) VALUES ('days', 4, 0, ${now - 2 * day});
     INSERT INTO messages (room, id, user_id, user_name, text, created_ms) VALUES ${rows};`]);

  server = await startServer({ env });
  await connected(page, 'websocket');
  assert.equal(await page.locator('#connection').textContent(), 'Connected');
  await page.locator('#messages li.msg:not(.pending)', { hasText: 'written while the server was away' }).waitFor({ timeout: 15_000 });
  const history = await api(context, server.url, 'GET', '/api/rooms/restart/messages');
  assert.equal(history.filter((m) => m.text === 'written while the server was away').length, 1, 'stored once');
  assert.equal(await page.locator('#messages li.msg', { hasText: 'written while the server was away' }).count(), 1);

  // The old days: a divider each, and the two messages a minute apart are one group.
  await page.getByLabel('Open or create a room').fill('days');
  await page.getByLabel('Open or create a room').press('Enter');
  await page.locator('#chat[data-ready="true"][data-room="days"]').waitFor();
  const dividers = await page.locator('#messages > li.day-divider').allTextContents();
  assert.equal(dividers.length, 2);
  assert.equal(dividers[1], 'Yesterday');
  assert.deepEqual(await page.locator('#messages li.msg').evaluateAll((els) => els.map((e) => e.classList.contains('grouped'))), [false, true, false, false]);
  assert.deepEqual(problems.errors, []);
  await context.close();
});
