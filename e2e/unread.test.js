// Browser tests of issue 21's unread state, live rooms and direct messages, with two
// people in two browser contexts: a room Ann creates appears in Ben's list at once;
// Ann's messages there show as unread on Ben's list and in his tab's title, her
// mention of him counted apart; opening the room shows a "New messages" divider
// before the first of them and clears the counts, in his other tab too (the server's
// read position, synced live); and a direct message Ann opens from `/chat?with=ID`
// appears in Ben's list with its unread count, while presence reads as presence.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { api, launchBrowser, login, newPage, screenshotPath, startServer } from './helpers.js';

const ANN = { name: 'Ann Member', email: 'ann@example.com', password: 'ann reads violet harbors 5' };
const BEN = { name: 'Ben Member', email: 'ben@example.com', password: 'ben paints quiet lighthouses 7' };

let server;
let browser;
let ann;
let ben;
let benId;

const badge = (page, room, kind) => page.locator(`#room-list a[data-room="${room}"] .room-${kind}`);

before(async () => {
  server = await startServer({ env: { SWITCHBOARD_RATE_WRITE_PER_SECOND: '1000' } });
  browser = await launchBrowser();
  const admin = await newPage(browser, server.url);
  await login(admin.page);
  await api(admin.context, server.url, 'POST', '/api/users', ANN);
  benId = (await api(admin.context, server.url, 'POST', '/api/users', BEN)).id;
  await admin.context.close();
  ann = await newPage(browser, server.url);
  await login(ann.page, ANN.email, ANN.password);
  ben = await newPage(browser, server.url);
  await login(ben.page, BEN.email, BEN.password);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function openChat(page, room = 'general') {
  await page.goto(`/chat?room=${encodeURIComponent(room)}`);
  await page.locator('#chat[data-ready="true"]').waitFor();
}

test('unread counts, the tab title, the divider and the read position follow Ben everywhere', async () => {
  await openChat(ben.page);
  await openChat(ann.page);
  // Ann creates #Ops from the form: Ben's list has it at once (no 30 s poll).
  await ann.page.getByLabel('Open or create a room').fill('Ops');
  await ann.page.getByRole('button', { name: 'Open', exact: true }).click();
  await ann.page.locator('#chat[data-room="Ops"][data-ready="true"]').waitFor();
  await ben.page.locator('#room-list a[data-room="Ops"]').waitFor({ timeout: 5_000 });
  // The same name in another case is the same room.
  const again = await api(ben.context, server.url, 'POST', '/api/rooms', { name: 'ops' });
  assert.deepEqual(again, { name: 'Ops', created: false });

  // Ben's second tab, on #general too.
  const second = await ben.context.newPage();
  await openChat(second);

  for (const text of ['first', 'second', 'and @[Ben Member], look']) {
    await api(ann.context, server.url, 'POST', '/api/send', { room: 'Ops', text });
  }
  for (const page of [ben.page, second]) {
    await assert.doesNotReject(badge(page, 'Ops', 'unread').filter({ hasText: '3' }).waitFor({ timeout: 5_000 }));
    await badge(page, 'Ops', 'mentions').filter({ hasText: '@1' }).waitFor();
    assert.match(await page.title(), /^\(3\) #general · Chat · Switchboard$/);
  }
  await ben.page.screenshot({ path: screenshotPath('unread-list.png') });

  // Ben opens #Ops: a divider before Ann's first message; counts and title clear.
  await ben.page.locator('#room-list a[data-room="Ops"]').click();
  await ben.page.locator('#chat[data-room="Ops"][data-ready="true"]').waitFor();
  const divider = ben.page.locator('#messages li.unread-divider');
  await divider.waitFor();
  assert.equal(await divider.textContent(), 'New messages');
  const after = await divider.evaluate((node) => node.nextElementSibling?.querySelector('.msg-text')?.textContent);
  assert.equal(after, 'first');
  await ben.page.waitForFunction(() => document.title === '#Ops · Chat · Switchboard');
  await ben.page.screenshot({ path: screenshotPath('unread-divider.png') });

  // The other tab hears the read position and clears its counts.
  await badge(second, 'Ops', 'unread').waitFor({ state: 'detached', timeout: 5_000 });
  await badge(second, 'Ops', 'mentions').waitFor({ state: 'detached' });
  await second.waitForFunction(() => document.title === '#general · Chat · Switchboard');
  // And the server kept it: a fresh page shows nothing unread in #Ops.
  const read = await api(ben.context, server.url, 'GET', '/api/rooms/Ops/read');
  assert.deepEqual({ read_id: read.read_id, unread: read.unread, mentions: read.mentions }, { read_id: 3, unread: 0, mentions: 0 });
  await second.close();
});

test('a direct message opens from /chat?with=ID and appears in both lists with its unread count', async () => {
  await openChat(ben.page);
  await ann.page.goto(`/chat?with=${benId}`);
  await ann.page.locator('#chat[data-ready="true"]').waitFor();
  const dm = await ann.page.locator('#chat').getAttribute('data-room');
  assert.match(dm, /^dm:\d+:\d+$/);
  await ann.page.locator('#room-title', { hasText: '@Ben Member' }).waitFor();
  await ann.page.getByRole('textbox', { name: 'Message @Ben Member' }).fill('just between us');
  await ann.page.keyboard.press('Enter');
  await ann.page.locator('#messages li.msg:not(.pending)', { hasText: 'just between us' }).waitFor();

  const entry = ben.page.locator(`#room-list a[data-room="${dm}"]`);
  await entry.filter({ hasText: '@Ann Member' }).waitFor({ timeout: 5_000 });
  await badge(ben.page, dm, 'unread').filter({ hasText: '1' }).waitFor({ timeout: 5_000 });
  // Presence reads as presence: "N here", not a bare number.
  const present = ben.page.locator('#room-list a[data-room="general"] .room-present');
  if (await present.count()) assert.match(await present.getAttribute('title'), /here$/);
  await ben.page.screenshot({ path: screenshotPath('unread-direct.png') });
  await entry.click();
  await ben.page.locator('#messages li.msg', { hasText: 'just between us' }).waitFor();
  await badge(ben.page, dm, 'unread').waitFor({ state: 'detached' });
  for (const { problems } of [ann, ben]) {
    assert.deepEqual(problems.errors, []);
  }
});
