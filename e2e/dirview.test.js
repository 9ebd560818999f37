// Browser tests of the directory's order, role filter and "online now" dots (issue 21,
// item 7): sortable column headers (aria-sort) and the filter form, kept in the URL so
// the page works without JavaScript; infinite scroll and live changes that respect
// them; two people, one seeing the other come online and go. Screenshots in light and
// dark, desktop and phone, go to e2e/screenshots/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { ADMIN_EMAIL, api, launchBrowser, login, newPage, screenshotPath, startServer } from './helpers.js';
import { matchKey } from '../web/static/matchkey.js';

let server;
let browser;

before(async () => {
  server = await startServer({ users: 60 });
  browser = await launchBrowser();
  // Ties in name (one spelling in three cases) and a second admin.
  const { context, page } = await newPage(browser, server.url);
  await login(page);
  for (const [i, name] of ['Tia Tie', 'tia tie', 'TIA TIE'].entries()) {
    await api(context, server.url, 'POST', '/api/users', { name, email: `tie${i}@example.com` });
  }
  await api(context, server.url, 'POST', '/api/users', { name: 'Ada Admin', email: 'ada@example.com', role: 'admin' });
  await api(context, server.url, 'POST', '/api/users', { name: 'Meg Member', email: 'meg@example.com', password: 'meg walks amber canyons 8' });
  await context.close();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function directoryPage(options = {}, email, password) {
  const opened = await newPage(browser, server.url, options);
  await login(opened.page, email, password);
  await opened.page.locator('#directory[data-enhanced="true"][data-live="connected"]').waitFor();
  return opened;
}

const listed = (page) => page.locator('#user-rows tr').evaluateAll((trs) => trs.map((tr) => ({
  id: Number(tr.dataset.id),
  name: tr.querySelector('td.name').textContent,
  email: tr.querySelector('td.email').textContent,
  role: tr.dataset.role,
})));

const byName = (a, b) => {
  // The server's name order: case and accents folded (Élodie among the E's).
  const [x, y] = [matchKey(a.name), matchKey(b.name)];
  return x < y ? -1 : x > y ? 1 : a.id - b.id;
};

/** Scrolls until the list has every row (infinite scroll). */
async function loadAll(page) {
  for (let i = 0; i < 20; i += 1) {
    if (await page.locator('#load-more').isHidden()) return;
    await page.locator('#load-more').click().catch(() => {});
    await page.waitForTimeout(150);
  }
}

test('a column header sorts the list both ways, ties by date added, through infinite scroll', async () => {
  const { context, page, problems } = await directoryPage();
  const name = page.locator('#users th[data-sort="name"]');
  assert.equal(await name.getAttribute('aria-sort'), 'none');
  assert.equal(await page.locator('#users th[data-sort="created"]').getAttribute('aria-sort'), 'ascending');
  await name.getByRole('link', { name: 'Name' }).click();
  await page.waitForFunction(() => new URLSearchParams(location.search).get('sort') === 'name'
    && !document.getElementById('directory').classList.contains('busy'));
  assert.equal(await name.getAttribute('aria-sort'), 'ascending');
  assert.equal(await page.getByLabel('Sort by').inputValue(), 'name');
  await loadAll(page);
  const rows = await listed(page);
  assert.equal(rows.length, 66, '60, the admin, three ties, Ada and Meg');
  assert.equal(new Set(rows.map((r) => r.id)).size, rows.length, 'each once');
  assert.deepEqual(rows, [...rows].sort(byName), 'by name, ties by id');
  // Again: descending, from the link's new target.
  await name.getByRole('link', { name: 'Name' }).click();
  await page.waitForFunction(() => new URLSearchParams(location.search).get('order') === 'desc'
    && !document.getElementById('directory').classList.contains('busy'));
  assert.equal(await name.getAttribute('aria-sort'), 'descending');
  const first = (await listed(page))[0];
  assert.deepEqual(first, [...rows].sort(byName).at(-1));
  // The URL is the page: reloaded, the server renders the same order.
  await page.reload();
  await page.locator('#directory[data-enhanced="true"]').waitFor();
  assert.equal(await name.getAttribute('aria-sort'), 'descending');
  assert.deepEqual((await listed(page))[0], first);
  assert.deepEqual(problems.errors, []);
  await context.close();
});

test('the role filter narrows the list, and live changes respect it', async () => {
  const { context, page, problems } = await directoryPage();
  await page.getByLabel('Filter by role').selectOption('admin');
  await page.waitForFunction(() => new URLSearchParams(location.search).get('role') === 'admin'
    && !document.getElementById('directory').classList.contains('busy'));
  let rows = await listed(page);
  assert.ok(rows.length >= 2 && rows.every((r) => r.role === 'admin'), JSON.stringify(rows));
  assert.match(await page.locator('#list-status').textContent(), /admins/);
  // A member created elsewhere does not appear; an admin does.
  await api(context, server.url, 'POST', '/api/users', { name: 'Live Member', email: 'live-member@example.com' });
  await api(context, server.url, 'POST', '/api/users', { name: 'Live Admin', email: 'live-admin@example.com', role: 'admin' });
  await page.getByRole('cell', { name: 'Live Admin', exact: true }).waitFor({ timeout: 2_000 });
  assert.equal(await page.getByRole('cell', { name: 'Live Member', exact: true }).count(), 0);
  // Demoted elsewhere: gone from the admins.
  const liveAdmin = (await listed(page)).find((r) => r.name === 'Live Admin');
  await api(context, server.url, 'PATCH', `/api/users/${liveAdmin.id}`, { role: 'member' });
  await page.locator(`#user-rows tr[data-id="${liveAdmin.id}"]`).waitFor({ state: 'detached', timeout: 2_000 });
  // Sorted by name within the role, a live admin lands in its place.
  await page.getByLabel('Sort by').selectOption('name');
  await page.waitForFunction(() => new URLSearchParams(location.search).get('sort') === 'name'
    && !document.getElementById('directory').classList.contains('busy'));
  await api(context, server.url, 'POST', '/api/users', { name: 'Aaron First', email: 'aaron@example.com', role: 'admin' });
  await page.getByRole('cell', { name: 'Aaron First', exact: true }).waitFor({ timeout: 2_000 });
  rows = await listed(page);
  assert.equal(rows[0].name, 'Aaron First');
  assert.deepEqual(rows, [...rows].sort(byName));
  // A search has its own order: the form is disabled while it shows, and back after.
  await page.getByRole('combobox', { name: 'Search by name or email' }).fill('tia');
  await page.waitForFunction(() => new URLSearchParams(location.search).get('search') === 'tia'
    && !document.getElementById('directory').classList.contains('busy'));
  assert.equal(await page.getByLabel('Filter by role').isDisabled(), true);
  assert.equal(await page.locator('#users th[data-sort="name"]').getAttribute('aria-sort'), null);
  assert.equal((await listed(page)).length, 3);
  assert.deepEqual(problems.errors, []);
  await context.close();
});

test('without JavaScript the headers and the filter form work as links and a GET form', async () => {
  const { context, page } = await newPage(browser, server.url, { javaScriptEnabled: false });
  await login(page);
  await page.goto('/?sort=email&order=desc&role=member');
  assert.equal(await page.locator('#users th[data-sort="email"]').getAttribute('aria-sort'), 'descending');
  let rows = await listed(page);
  assert.ok(rows.every((r) => r.role === 'member'));
  const emails = rows.map((r) => r.email.toLowerCase());
  assert.deepEqual(emails, [...emails].sort().reverse());
  // The next page keeps the order and the role.
  const next = new URL(await page.locator('#next-page').getAttribute('href'), server.url);
  assert.equal(next.searchParams.get('sort'), 'email');
  assert.equal(next.searchParams.get('role'), 'member');
  await page.locator('#users th[data-sort="name"] a').click();
  assert.equal(new URL(page.url()).searchParams.get('sort'), 'name');
  assert.equal(new URL(page.url()).searchParams.get('role'), 'member');
  await page.getByLabel('Filter by role').selectOption('admin');
  await page.getByRole('button', { name: 'Apply' }).click();
  rows = await listed(page);
  assert.ok(rows.length >= 2 && rows.every((r) => r.role === 'admin'));
  // A bad value is the error page, not a 500.
  const response = await page.goto('/?sort=shoe');
  assert.equal(response.status(), 400);
  await context.close();
});

test('a dot shows who is online now, live, for two people', async () => {
  const admin = await directoryPage();
  // The viewer is online (this page's own connection counts).
  const adminId = await admin.page.locator('#directory').getAttribute('data-user-id');
  const search = async (text) => {
    await admin.page.getByRole('combobox', { name: 'Search by name or email' }).fill(text);
    await admin.page.waitForFunction((t) => new URLSearchParams(location.search).get('search') === t
      && !document.getElementById('directory').classList.contains('busy'), text);
  };
  await search(ADMIN_EMAIL);
  await admin.page.locator(`#user-rows tr[data-id="${adminId}"] td.presence .dot`).waitFor();
  await search('meg@');
  const megRow = admin.page.locator('#user-rows tr', { hasText: 'Meg Member' });
  await megRow.waitFor();
  assert.equal(await megRow.locator('td.presence .dot').count(), 0, 'Meg is not online yet');

  // Meg opens the chat (any page with a live connection counts).
  const other = await newPage(browser, server.url);
  await login(other.page, 'meg@example.com', 'meg walks amber canyons 8');
  await other.page.goto('/chat');
  await megRow.locator('td.presence .dot').waitFor({ timeout: 5_000 });
  assert.equal(await megRow.locator('td.presence').textContent(), 'Online');
  assert.equal(await megRow.locator('td.presence .dot').getAttribute('title'), 'Online now');

  // Meg leaves: the dot goes with her last connection.
  await other.context.close();
  await megRow.locator('td.presence .dot').waitFor({ state: 'detached', timeout: 10_000 });
  assert.deepEqual(admin.problems.errors, []);
  await admin.context.close();
});

test('screenshots of the sorted, filtered directory with presence (light, dark, desktop, phone)', async () => {
  for (const scheme of ['light', 'dark']) {
    for (const [size, viewport] of Object.entries({ desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } })) {
      const { context, page } = await newPage(browser, server.url, { colorScheme: scheme, viewport });
      await login(page);
      await page.goto('/?sort=name&role=admin');
      await page.locator('#directory[data-enhanced="true"][data-live="connected"]').waitFor();
      await page.locator('td.presence .dot').first().waitFor();
      await page.screenshot({ path: screenshotPath(`directory-sorted-${scheme}-${size}.png`) });
      await context.close();
    }
  }
});
