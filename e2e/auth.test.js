// Browser tests of issue 3: logging in and out through the pages, and a hostile name
// shown inert everywhere (checked in the browser: no dialog fires, no element is made
// from it), with the real binary and Debian's Chromium.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { ADMIN_EMAIL, ADMIN_PASSWORD, api, launchBrowser, login, newPage, startServer, submitLogin } from './helpers.js';

const HOSTILE = '<img src=x onerror=alert(1)>';
let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('anonymous visitors are sent to /login, log in, see the directory, and log out', async () => {
  const { context, page, problems } = await newPage(browser, server.url);
  await page.goto('/');
  assert.equal(new URL(page.url()).pathname, '/login');
  assert.equal(new URL(page.url()).searchParams.get('next'), '/');

  await login(page);
  assert.equal(new URL(page.url()).pathname, '/');
  await page.getByRole('heading', { name: 'Directory' }).waitFor();
  assert.ok(await page.getByRole('cell', { name: 'Alice', exact: true }).isVisible());

  await page.getByRole('button', { name: 'Log out' }).click();
  await page.waitForURL((url) => url.pathname === '/login');
  // The session is gone: the directory sends us back to the login page.
  await page.goto('/');
  assert.equal(new URL(page.url()).pathname, '/login');
  assert.deepEqual(problems.errors, []);
  await context.close();
});

test('a wrong password is refused on the page', async () => {
  const { context, page } = await newPage(browser, server.url);
  await submitLogin(page, 'admin@example.com', 'not the password');
  assert.equal(new URL(page.url()).pathname, '/login');
  assert.match(await page.getByRole('alert').textContent(), /Invalid email or password/);
  await context.close();
});

test('a user named like an XSS payload is shown as text on every page', async () => {
  const { context, page, problems } = await newPage(browser, server.url);
  await login(page);
  const hostile = await api(context, server.url, 'POST', '/api/users', { name: HOSTILE, email: 'xss@example.com' });

  const assertInert = async (where) => {
    assert.equal(await page.locator('img').count(), 0, `${where}: an <img> was created`);
    assert.deepEqual(problems.dialogs, [], `${where}: a dialog fired`);
  };

  // The server-rendered list.
  await page.goto('/');
  await page.getByRole('cell', { name: HOSTILE, exact: true }).waitFor();
  await assertInert('the server-rendered list');

  // The list rebuilt by the script (live search), and the autocomplete's options.
  await page.getByLabel('Search by name or email').pressSequentially('<im');
  await page.getByRole('option', { name: HOSTILE }).waitFor();
  await assertInert('the suggestions');
  await page.waitForFunction(() => document.querySelectorAll('#user-rows tr').length === 1);
  assert.equal(await page.locator('#user-rows td.name').textContent(), HOSTILE);
  await assertInert('the live search results');

  // The edit dialog, the delete confirmation and the edit page.
  await page.getByRole('link', { name: `Edit ${HOSTILE}` }).click();
  assert.equal(await page.getByRole('dialog').getByLabel('Name').inputValue(), HOSTILE);
  assert.equal(await page.locator('#user-dialog-title').textContent(), `Edit ${HOSTILE}`);
  await page.keyboard.press('Escape');
  await page.getByRole('button', { name: `Delete ${HOSTILE}` }).click();
  assert.match(await page.locator('#confirm-text').textContent(), /<img src=x onerror=alert\(1\)>/);
  await page.getByRole('button', { name: 'Cancel' }).click();
  await assertInert('the dialogs');

  await page.goto(`/users/${hostile.id}/edit`);
  assert.equal(await page.getByLabel('Name').inputValue(), HOSTILE);
  assert.match(await page.title(), /<img src=x/);
  await assertInert('the edit page');

  // With the search in the URL, as the no-JavaScript form would send it.
  await page.goto(`/?search=${encodeURIComponent(HOSTILE)}`);
  assert.equal(await page.getByLabel('Search by name or email').inputValue(), HOSTILE);
  await assertInert('a search for the payload');
  assert.deepEqual(problems.errors, []);
  await context.close();
});

// Issue 17: `/login?next=/<TAB>/evil.example/` was sent back as that Location, which
// browsers read as `//evil.example/`; signed-in Chromium followed it off the site.
test('a hostile ?next= never takes the browser off this site, signed in or logging in', async () => {
  const { context, page, problems } = await newPage(browser, server.url);
  const origin = new URL(server.url).origin;
  // Any request to another host is answered here (there is no network) and recorded.
  const elsewhere = [];
  await context.route(
    (url) => url.origin !== origin,
    (route) => {
      elsewhere.push(route.request().url());
      return route.fulfill({ status: 200, contentType: 'text/html', body: '<h1>evil</h1>' });
    },
  );
  const hostile = [
    '/%09/evil.example/',
    '/%0A/evil.example/',
    '%09//evil.example/',
    '//evil.example/',
    '/%5Cevil.example/',
    '%5C%5Cevil.example/',
    '/%255C%255Cevil.example/',
    'https://evil.example/',
  ];

  // Logging in from a hostile link lands on the directory.
  await page.goto(`/login?next=${hostile[0]}`);
  await page.getByLabel('Email').fill(ADMIN_EMAIL);
  await page.getByLabel('Password').fill(ADMIN_PASSWORD);
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Log in' }).click()]);
  assert.equal(page.url(), `${origin}/`);

  // Signed in, /login redirects at once: every hostile next stays here.
  for (const next of hostile) {
    await page.goto(`/login?next=${next}`);
    assert.equal(new URL(page.url()).origin, origin, next);
    assert.equal(new URL(page.url()).pathname, '/', next);
  }
  // A path of this site is still honoured.
  await page.goto('/login?next=%2Fchat%3Froom%3Ddev');
  assert.equal(page.url(), `${origin}/chat?room=dev`);
  assert.deepEqual(elsewhere, []);
  assert.deepEqual(problems.errors, []);
  await context.close();
});
