// Browser tests of issue 5 with JavaScript on: live search, the keyboard-only
// autocomplete, create/edit in a dialog with the server's field errors, delete with
// confirmation and rollback, and infinite scroll. 60 synthetic users are seeded, so
// the list has two pages.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { ADMIN_EMAIL, api, launchBrowser, login, newPage, startServer } from './helpers.js';

let server;
let browser;

before(async () => {
  server = await startServer({ users: 60 });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function adminPage() {
  const opened = await newPage(browser, server.url);
  await login(opened.page);
  await opened.page.locator('#directory[data-enhanced="true"]').waitFor();
  return opened;
}

const rowCount = (page) => page.locator('#user-rows tr').count();
const searchBox = (page) => page.getByRole('combobox', { name: 'Search by name or email' });

/**
 * Searches and waits for the answer: with live updates a row created meanwhile may
 * already show in the unfiltered list, so seeing the row is not proof of the search.
 */
async function searchFor(page, text) {
  await searchBox(page).fill(text);
  await page.waitForFunction((t) => new URLSearchParams(location.search).get('search') === t
    && !document.getElementById('directory').classList.contains('busy'), text);
}

test('typing in the search box narrows the list without a reload', async () => {
  const { context, page, problems } = await adminPage();
  assert.equal(await rowCount(page), 50);
  await page.evaluate(() => { window.notReloaded = true; });
  const searches = [];
  page.on('request', (request) => {
    if (request.url().includes('/api/users?') && request.url().includes('search=')) searches.push(request.url());
  });
  await searchBox(page).pressSequentially('fatima');
  await page.waitForFunction(() => document.querySelectorAll('#user-rows tr').length < 50);
  const names = await page.locator('#user-rows td.name').allTextContents();
  assert.ok(names.length > 0 && names.every((n) => n.startsWith('Fatima')), `${names}`);
  assert.equal(await page.evaluate(() => window.notReloaded), true);
  assert.equal(new URL(page.url()).searchParams.get('search'), 'fatima');
  // Typed faster than the 300 ms debounce: one request for the whole word.
  assert.equal(searches.length, 1, `${searches}`);

  await searchBox(page).fill('nobody-is-called-this');
  await page.getByText('No users match “nobody-is-called-this”.').waitFor();
  assert.equal(await rowCount(page), 0);
  assert.deepEqual(problems.errors, []);
  await context.close();
});

test('the autocomplete works with the keyboard alone', async () => {
  const { context, page } = await adminPage();
  const box = searchBox(page);
  await box.focus();
  await page.keyboard.type('j');
  // One character: no suggestions yet.
  await page.waitForTimeout(400);
  assert.equal(await box.getAttribute('aria-expanded'), 'false');
  await page.keyboard.type('u');
  await page.getByRole('listbox').waitFor();
  assert.equal(await box.getAttribute('aria-expanded'), 'true');
  const options = await page.locator('#search-suggestions').getByRole('option').allTextContents();
  assert.ok(options.length >= 2, `suggestions for "ju": ${options}`);
  // Suggestions fold accents as search does ("ju" suggests Jürgen too).
  const folded = (o) => o.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase();
  assert.ok(options.every((o) => folded(o).startsWith('ju')), `${options}`);

  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('ArrowDown');
  const activeId = await box.getAttribute('aria-activedescendant');
  const active = page.locator(`#${activeId}`);
  assert.equal(await active.getAttribute('aria-selected'), 'true');
  const chosen = await active.textContent();
  assert.equal(chosen, options[1]);
  await page.keyboard.press('ArrowUp');
  assert.equal(await page.locator(`#${await box.getAttribute('aria-activedescendant')}`).textContent(), options[0]);
  await page.keyboard.press('ArrowDown');

  await page.keyboard.press('Enter');
  assert.equal(await box.inputValue(), chosen);
  assert.equal(await box.getAttribute('aria-expanded'), 'false');
  await page.waitForFunction((name) => {
    const names = [...document.querySelectorAll('#user-rows td.name')].map((td) => td.textContent);
    return names.length > 0 && names.every((n) => n.includes(name));
  }, chosen);

  // Escape closes the list, then clears the box.
  await box.fill('');
  await box.focus();
  await page.keyboard.type('ch');
  await page.getByRole('listbox').waitFor();
  await page.keyboard.press('Escape');
  assert.equal(await box.getAttribute('aria-expanded'), 'false');
  assert.equal(await box.inputValue(), 'ch');
  await page.keyboard.press('Escape');
  assert.equal(await box.inputValue(), '');
  await context.close();
});

test('creating a user with an invalid email shows the field error, then a fixed one succeeds', async () => {
  const { context, page, problems } = await adminPage();
  await page.getByRole('button', { name: 'Add user' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByLabel('Name').fill('Dana Dialog');
  await dialog.getByLabel('Email').fill('not-an-email');
  await dialog.getByRole('button', { name: 'Add user' }).click();
  await dialog.getByText('Email is not a valid email address.').waitFor();
  assert.equal(await dialog.getByLabel('Email').getAttribute('aria-invalid'), 'true');
  assert.ok(await dialog.isVisible());

  await dialog.getByLabel('Email').fill('dana.dialog@example.com');
  // While the request runs, the dialog's buttons are disabled.
  let release;
  const held = new Promise((resolve) => { release = resolve; });
  await page.route('**/api/users', async (route) => {
    await held;
    await route.continue();
  });
  await dialog.getByRole('button', { name: 'Add user' }).click();
  await dialog.getByRole('button', { name: 'Saving…' }).waitFor();
  assert.ok(await dialog.getByRole('button', { name: 'Saving…' }).isDisabled());
  assert.ok(await dialog.getByRole('button', { name: 'Cancel' }).isDisabled());
  release();
  await page.locator('.toast.success', { hasText: 'Added Dana Dialog.' }).waitFor();
  await page.unroute('**/api/users');
  assert.equal(await dialog.isVisible(), false);
  await page.getByRole('cell', { name: 'Dana Dialog', exact: true }).waitFor();

  // A taken email is the server's 409, shown on its field.
  await page.getByRole('button', { name: 'Add user' }).click();
  await dialog.getByLabel('Name').fill('Dana Again');
  await dialog.getByLabel('Email').fill('dana.dialog@example.com');
  await dialog.getByRole('button', { name: 'Add user' }).click();
  await dialog.getByText('Email is already taken.').waitFor();
  await page.keyboard.press('Escape');
  assert.deepEqual(problems.errors, []);
  await context.close();
});

test('editing in the dialog saves and updates the row in place', async () => {
  const { context, page } = await adminPage();
  const user = await api(context, server.url, 'POST', '/api/users', { name: 'Eddie Edit', email: 'eddie@example.com' });
  await searchFor(page, 'eddie');
  await page.getByRole('cell', { name: 'Eddie Edit', exact: true }).waitFor();
  await page.getByRole('link', { name: 'Edit Eddie Edit' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByLabel('Name').fill('Eddie Edited');
  const save = dialog.getByRole('button', { name: 'Save' });
  await save.click();
  await page.locator('.toast.success', { hasText: 'Saved Eddie Edited.' }).waitFor();
  await page.getByRole('cell', { name: 'Eddie Edited', exact: true }).waitFor();
  const stored = await api(context, server.url, 'GET', `/api/users/${user.id}`);
  assert.equal(stored.name, 'Eddie Edited');
  await context.close();
});

test('delete asks first, removes the row, and the server agrees', async () => {
  const { context, page } = await adminPage();
  const user = await api(context, server.url, 'POST', '/api/users', { name: 'Doomed Dan', email: 'doomed@example.com' });
  await searchFor(page, 'doomed');
  await page.getByRole('cell', { name: 'Doomed Dan', exact: true }).waitFor();

  // Cancelling keeps the user.
  await page.getByRole('button', { name: 'Delete Doomed Dan' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
  assert.equal(await rowCount(page), 1);

  await page.getByRole('button', { name: 'Delete Doomed Dan' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
  await page.locator('.toast.success', { hasText: 'Deleted Doomed Dan.' }).waitFor();
  assert.equal(await rowCount(page), 0);
  const response = await context.request.get(`/api/users/${user.id}`);
  assert.equal(response.status(), 404);
  await context.close();
});

test('an optimistic delete is rolled back when the server refuses', async () => {
  const { context, page } = await adminPage();
  await api(context, server.url, 'POST', '/api/users', { name: 'Sticky Sam', email: 'sticky@example.com' });
  await searchFor(page, 'sticky');
  await page.getByRole('cell', { name: 'Sticky Sam', exact: true }).waitFor();

  // The server fails (500), slowly enough to see the row gone meanwhile.
  let release;
  const held = new Promise((resolve) => { release = resolve; });
  await page.route('**/api/users/*', async (route) => {
    if (route.request().method() !== 'DELETE') return route.continue();
    await held;
    return route.fulfill({ status: 500, contentType: 'application/json', body: JSON.stringify({ error: 'Internal server error', code: 'internal' }) });
  });
  await page.getByRole('button', { name: 'Delete Sticky Sam' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
  await page.waitForFunction(() => document.querySelectorAll('#user-rows tr').length === 0);
  release();
  await page.locator('.toast.error', { hasText: 'Sticky Sam was not deleted' }).waitFor();
  assert.equal(await rowCount(page), 1);
  await page.unroute('**/api/users/*');

  // The real server refusing: the last admin cannot be deleted (409).
  await searchFor(page, ADMIN_EMAIL);
  await page.getByRole('cell', { name: ADMIN_EMAIL, exact: true }).waitFor();
  await page.getByRole('button', { name: /^Delete Admin/ }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
  await page.locator('.toast.error', { hasText: 'only admin' }).waitFor();
  assert.equal(await rowCount(page), 1);
  await context.close();
});

test('scrolling to the end loads the next page, and the button does too', async () => {
  const { context, page } = await adminPage();
  assert.equal(await rowCount(page), 50);
  await page.locator('#pager').scrollIntoViewIfNeeded();
  await page.waitForFunction(() => document.querySelectorAll('#user-rows tr').length > 50);
  const total = await rowCount(page);
  const ids = await page.locator('#user-rows tr').evaluateAll((trs) => trs.map((tr) => tr.dataset.id));
  assert.equal(new Set(ids).size, ids.length, 'no user twice');
  assert.ok(total >= 61, `rows after scrolling: ${total}`);
  assert.ok(await page.getByRole('button', { name: 'Load more' }).isHidden(), 'the end of the list has no button');

  // On a short page the button is the way on.
  const { context: small, page: other } = await newPage(browser, server.url, { viewport: { width: 800, height: 300 } });
  await login(other);
  await other.evaluate(() => window.scrollTo(0, 0));
  const button = other.getByRole('button', { name: 'Load more' });
  if (await button.isVisible()) {
    // Under load the page may have loaded the next page by itself meanwhile (the button
    // then hides): the rows below are what counts.
    await button.click({ timeout: 3_000 }).catch(() => {});
  }
  await other.waitForFunction(() => document.querySelectorAll('#user-rows tr').length > 50);
  await small.close();
  await context.close();
});

test('a search shows its loading state, and a network failure is said in plain words', async () => {
  const { context, page } = await adminPage();
  let release;
  const held = new Promise((resolve) => { release = resolve; });
  await page.route('**/api/users?*', async (route) => {
    await held;
    await route.abort('internetdisconnected');
  });
  await searchBox(page).fill('bob');
  await page.locator('#users[aria-busy="true"]').waitFor();
  assert.match(await page.locator('#list-status').textContent(), /Searching for “bob”/);
  release();
  // ajax.js retries a failed GET a few times (with backoff) before giving up.
  await page.locator('.toast.error', { hasText: 'Could not reach the server' }).waitFor();
  await page.locator('#users[aria-busy="false"]').waitFor();
  await context.close();
});

test('a request answered 401 sends the user to the login page, with the way back in ?next=', async () => {
  const { context, page } = await adminPage();
  await context.clearCookies();
  await searchBox(page).fill('alice');
  await page.waitForURL((url) => url.pathname === '/login');
  assert.equal(new URL(page.url()).searchParams.get('next'), '/');
  await context.close();
});

test('members edit only themselves, in a dialog without a role', async () => {
  const { context: adminContext } = await adminPage();
  await api(adminContext, server.url, 'POST', '/api/users', { name: 'Meg Member', email: 'meg@example.com', password: 'meg walks amber canyons 8' });
  await adminContext.close();

  const { context, page } = await newPage(browser, server.url);
  await login(page, 'meg@example.com', 'meg walks amber canyons 8');
  await page.locator('#directory[data-enhanced="true"]').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Add user' }).count(), 0);
  assert.equal(await page.locator('form[data-action="delete"]').count(), 0);
  await searchFor(page, 'meg');
  await page.getByRole('cell', { name: 'Meg Member', exact: true }).waitFor();
  await page.getByRole('link', { name: 'Edit Meg Member' }).click();
  const dialog = page.getByRole('dialog');
  assert.equal(await dialog.getByLabel('Role').count(), 0);
  await dialog.getByLabel('Name').fill('Meg M.');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('cell', { name: 'Meg M.', exact: true }).waitFor();
  await searchFor(page, 'alice');
  await page.getByRole('cell', { name: 'Alice Smith', exact: true }).first().waitFor();
  assert.equal(await page.locator('a[data-action="edit"]').count(), 0, 'no edit link for other people');
  await context.close();
});

test('applyDirectoryEvent (the hook for live updates) adds, changes and removes rows in place', async () => {
  const { context, page, problems } = await adminPage();
  await page.evaluate(() => window.scrollTo(0, 120));
  const rowInView = () => page.evaluate(() => document.elementFromPoint(200, 400)?.closest('tr')?.dataset.id ?? null);
  const looking = await rowInView();
  const apply = (event) => page.evaluate(async (e) => {
    const { applyDirectoryEvent } = await import('/static/directory.js');
    applyDirectoryEvent(e);
  }, event);
  const user = { id: 999_001, name: '<img src=x onerror=alert(1)>', email: 'live@example.com', role: 'member' };
  await apply({ type: 'user_created', user });
  assert.equal(await page.locator('#user-rows tr[data-id="999001"] td.name').textContent(), user.name);
  await apply({ type: 'user_updated', user: { ...user, name: 'Live Renamed' } });
  assert.equal(await page.locator('#user-rows tr[data-id="999001"] td.name').textContent(), 'Live Renamed');
  await apply({ type: 'user_deleted', user: { id: 999_001 } });
  assert.equal(await page.locator('#user-rows tr[data-id="999001"]').count(), 0);
  assert.equal(await rowInView(), looking, 'the row in view stays in view');
  assert.equal(await page.locator('img').count(), 0);
  assert.deepEqual(problems.dialogs, []);
  await context.close();
});
