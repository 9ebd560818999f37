// With JavaScript disabled, the directory still does everything through plain forms:
// search, pages, create (with the server's field errors in the re-rendered form),
// edit on its own page, delete. The same tasks as directory.test.js, no script at all.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { launchBrowser, login, newPage, screenshotPath, startServer } from './helpers.js';

let server;
let browser;
let context;
let page;

before(async () => {
  server = await startServer({ users: 60 });
  browser = await launchBrowser();
  ({ context, page } = await newPage(browser, server.url, { javaScriptEnabled: false }));
  await login(page);
});

after(async () => {
  await context?.close();
  await browser?.close();
  await server?.stop();
});

const rowCount = () => page.locator('#user-rows tr').count();

test('the page is served complete, with nothing enhanced', async () => {
  assert.equal(await page.locator('#directory').getAttribute('data-enhanced'), null);
  assert.equal(await rowCount(), 50);
  assert.ok(await page.getByRole('heading', { name: 'Add a user' }).isVisible());
});

test('the search form narrows the list', async () => {
  await page.goto('/');
  await page.getByLabel('Search by name or email').fill('fatima');
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Search' }).click()]);
  assert.equal(new URL(page.url()).searchParams.get('search'), 'fatima');
  const names = await page.locator('#user-rows td.name').allTextContents();
  assert.ok(names.length > 0 && names.length < 50 && names.every((n) => n.startsWith('Fatima')), `${names}`);
});

test('the next-page link pages through the list', async () => {
  await page.goto('/');
  const first = await page.locator('#user-rows tr').evaluateAll((trs) => trs.map((tr) => tr.dataset.id));
  await Promise.all([page.waitForNavigation(), page.getByRole('link', { name: 'Next page' }).click()]);
  const second = await page.locator('#user-rows tr').evaluateAll((trs) => trs.map((tr) => tr.dataset.id));
  assert.ok(second.length > 0);
  assert.ok(second.every((id) => !first.includes(id)), 'the second page repeats nobody');
  assert.ok(await page.getByRole('link', { name: 'First page' }).isVisible());
});

test('create: an invalid email comes back beside its field, then a valid one is listed', async () => {
  await page.goto('/');
  const form = page.locator('#create-form');
  await form.getByLabel('Name').fill('Nora NoScript');
  await form.getByLabel('Email').fill('nope');
  await Promise.all([page.waitForNavigation(), form.getByRole('button', { name: 'Add user' }).click()]);
  assert.equal(await page.locator('#email-error').textContent(), 'Email is not a valid email address.');
  // What was typed is kept.
  assert.equal(await form.getByLabel('Name').inputValue(), 'Nora NoScript');
  assert.equal(await form.getByLabel('Email').getAttribute('aria-invalid'), 'true');
  await page.locator('#create-section').screenshot({ path: screenshotPath('nojs-create-error-desktop.png') });

  await form.getByLabel('Email').fill('nora@example.com');
  await Promise.all([page.waitForNavigation(), form.getByRole('button', { name: 'Add user' }).click()]);
  assert.equal(new URL(page.url()).searchParams.get('done'), 'created');
  assert.equal(await page.locator('.notice').textContent(), 'User added.');
  await page.goto('/?search=nora');
  await page.getByRole('cell', { name: 'Nora NoScript', exact: true }).waitFor();
});

test('edit goes through its own page and saves', async () => {
  await page.goto('/?search=nora');
  await Promise.all([page.waitForNavigation(), page.getByRole('link', { name: 'Edit Nora NoScript' }).click()]);
  assert.match(new URL(page.url()).pathname, /^\/users\/\d+\/edit$/);
  await page.getByLabel('Email').fill('also bad');
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Save' }).click()]);
  assert.equal(await page.locator('#email-error').textContent(), 'Email is not a valid email address.');
  await page.getByLabel('Name').fill('Nora Edited');
  await page.getByLabel('Email').fill('nora@example.com');
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Save' }).click()]);
  assert.equal(await page.locator('.notice').textContent(), 'Changes saved.');
  await page.goto('/?search=nora');
  await page.getByRole('cell', { name: 'Nora Edited', exact: true }).waitFor();
});

test('delete asks on a page of its own, then is a form post; the last admin is refused with an error page', async () => {
  await page.goto('/?search=nora');
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Delete Nora Edited' }).click()]);
  // Asked first: Cancel leads back and deletes nothing.
  assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Delete Nora Edited?');
  await Promise.all([page.waitForNavigation(), page.getByRole('link', { name: 'Cancel' }).click()]);
  await page.goto('/?search=nora');
  assert.equal(await rowCount(), 1);
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Delete Nora Edited' }).click()]);
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Delete Nora Edited' }).click()]);
  assert.equal(await page.locator('.notice').textContent(), 'User deleted.');
  await page.goto('/?search=nora');
  assert.equal(await rowCount(), 0);
  assert.match(await page.locator('#list-status').textContent(), /No users match/);

  await page.goto('/?search=admin%40example.com');
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: /^Delete Admin/ }).click()]);
  const response = await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: /^Delete Admin/ }).click()]).then(([r]) => r);
  assert.equal(response.status(), 409);
  assert.match(await page.locator('main').textContent(), /only admin/);
});
