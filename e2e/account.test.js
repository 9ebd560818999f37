// The account page (/account) with JavaScript on and off, an admin's view of another
// account, and the notifications bell. Each task is done the way a person would: the
// forms, the keyboard, two tabs or two browsers where the issue says "every tab".
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

import { api, launchBrowser, login, newPage, screenshotPath, startServer } from './helpers.js';

const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };
const PASSWORD = 'violet anchor drumming 58';
const NEW_PASSWORD = 'copper meadow whistle 73';

let server;
let browser;
let admin;
let counter = 0;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  admin = await newPage(browser, server.url);
  await login(admin.page);
});

after(async () => {
  await admin?.context.close();
  await browser?.close();
  await server?.stop();
});

/** A new member (made by the admin) and their email. */
async function member(name) {
  counter += 1;
  const email = `${name.toLowerCase()}${counter}@example.com`;
  const user = await api(admin.context, server.url, 'POST', '/api/users', { name: `${name}${counter}`, email, password: PASSWORD });
  return { ...user, email };
}

/** A browser context logged in as `user`, on /account. */
async function accountOf(user, { js = true, ...options } = {}) {
  const opened = await newPage(browser, server.url, { javaScriptEnabled: js, ...options });
  await login(opened.page, user.email, user.password ?? PASSWORD);
  await opened.page.goto('/account');
  if (js) await opened.page.locator('#account[data-ready="true"]').waitFor();
  return opened;
}

async function seriousViolations(page) {
  await page.addScriptTag({ path: AXE });
  const results = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

/** Submits a form by its button and waits for the page the server answers with. */
async function post(page, button) {
  await Promise.all([page.waitForNavigation(), button.click()]);
}

// ---- with JavaScript ---------------------------------------------------------------

test('the header links to the account page', async () => {
  const user = await member('Hana');
  const { context, page } = await newPage(browser, server.url);
  await login(page, user.email, PASSWORD);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Account' }).click();
  await page.getByRole('heading', { name: 'Your account' }).waitFor();
  assert.equal(new URL(page.url()).pathname, '/account');
  await context.close();
});

test('name and email: saved in place, errors beside the field', async () => {
  const user = await member('Ines');
  const { context, page, problems } = await accountOf(user);
  const form = page.locator('#profile-form');
  await form.getByLabel('Email').fill('not an email');
  await form.getByRole('button', { name: 'Save name and email' }).click();
  await page.locator('#email-error', { hasText: 'Email is not a valid email address.' }).waitFor();
  await form.getByLabel('Name').fill('Ines Renamed');
  await form.getByLabel('Email').fill(user.email);
  await form.getByRole('button', { name: 'Save name and email' }).click();
  await page.locator('.toast', { hasText: 'Name and email saved.' }).waitFor();
  assert.equal(await page.locator('.who-name').textContent(), 'Ines Renamed');
  assert.equal(await page.locator('#email-error').textContent(), '');
  assert.deepEqual(problems.errors, []);
  await context.close();
});

test('password: the reasons show as you type; the server judges the change', async () => {
  const user = await member('Jon');
  const { context, page } = await accountOf(user);
  const box = page.getByLabel('New password', { exact: true });
  await box.pressSequentially('password1');
  await page.locator('#new_password-check', { hasText: 'must be at least 12 characters' }).waitFor();
  await box.fill('');
  await box.pressSequentially(NEW_PASSWORD);
  await page.locator('#new_password-check', { hasText: 'Strong enough' }).waitFor();
  // A wrong current password: refused beside its field.
  await page.getByLabel('Current password').fill('not my password at all 11');
  await page.getByRole('button', { name: 'Change password' }).click();
  await page.locator('#current_password-error', { hasText: 'is not your current password' }).waitFor();
  await page.getByLabel('Current password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Change password' }).click();
  await page.locator('.toast', { hasText: 'Password changed.' }).waitFor();
  // Still logged in here (a fresh session), and the new password logs in elsewhere.
  await page.reload();
  await page.getByRole('heading', { name: 'Your account' }).waitFor();
  const other = await newPage(browser, server.url);
  await login(other.page, user.email, NEW_PASSWORD);
  await other.context.close();
  await context.close();
});

test('theme: applied at once, in the other tabs too, and kept', async () => {
  const user = await member('Kai');
  const { context, page } = await accountOf(user);
  const tab = await context.newPage();
  await tab.goto('/chat');
  await page.getByLabel('Dark').check();
  assert.equal(await page.locator('html').getAttribute('data-theme'), 'dark');
  await tab.waitForFunction(() => document.documentElement.dataset.theme === 'dark');
  await page.locator('.toast', { hasText: 'Preferences saved.' }).waitFor();
  await page.goto('/');
  assert.equal(await page.locator('html').getAttribute('data-theme'), 'dark');
  // By keyboard: arrow keys move between the radio buttons, and save.
  await page.goto('/account');
  await page.locator('#account[data-ready="true"]').waitFor();
  await page.getByLabel('Dark').focus();
  await page.keyboard.press('ArrowDown');
  await page.waitForFunction(() => document.documentElement.dataset.theme === 'system');
  await page.locator('.toast', { hasText: 'Preferences saved.' }).waitFor();
  const settings = await api(context, server.url, 'GET', `/api/users/${user.id}/settings`);
  assert.equal(settings.theme, 'system');
  await context.close();
});

test('notification preferences are saved and honoured', async () => {
  const user = await member('Lia');
  const { context, page } = await accountOf(user);
  await page.getByLabel('someone mentions me').uncheck();
  await page.locator('.toast', { hasText: 'Preferences saved.' }).waitFor();
  const settings = await api(context, server.url, 'GET', `/api/users/${user.id}/settings`);
  assert.equal(settings.notify_mentions, false);
  assert.equal(settings.notify_admin_changes, true);
  await context.close();
});

test('tokens: made with an expiry, shown once with a copy button, listed, revoked', async () => {
  const user = await member('Max');
  const { context, page } = await accountOf(user, { permissions: ['clipboard-read', 'clipboard-write'] });
  await page.getByLabel('Name', { exact: true }).last().fill('ci script');
  await page.getByLabel('Expires').selectOption('30');
  await page.getByRole('button', { name: 'Create token' }).click();
  const value = page.getByLabel('New token');
  await value.waitFor();
  const token = await value.inputValue();
  assert.match(token, /^sb_/);
  await page.getByRole('button', { name: 'Copy' }).click();
  await page.getByRole('button', { name: 'Copied' }).waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), token);
  const row = page.locator('#token-rows tr', { hasText: 'ci script' });
  assert.match(await row.textContent(), /Never/, 'not used yet');
  // From the API's RFC 3339 timestamps, as the server renders rows.
  assert.match(await row.textContent(), /\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC/, 'created and expiry dates');
  assert.doesNotMatch(await row.textContent(), /NaN/);
  // The token works, and after a reload it is listed but never shown again.
  const check = await context.request.get('/api/auth/me', { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(check.status(), 200);
  await page.reload();
  assert.equal(await page.locator('#new-token').isHidden(), true);
  assert.ok(!(await page.content()).includes(token));
  await page.locator('#token-rows tr', { hasText: 'ci script' }).getByRole('button', { name: /Revoke/ }).click();
  await page.locator('#token-rows tr', { hasText: 'ci script' }).getByText('revoked').waitFor();
  const after = await context.request.get('/api/auth/me', { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(after.status(), 401);
  await context.close();
});

test('sessions: listed with the device, this one marked; end one, end all others', async () => {
  const user = await member('Noa');
  const phone = await newPage(browser, server.url, { userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1' });
  await login(phone.page, user.email, PASSWORD);
  const tablet = await newPage(browser, server.url);
  await login(tablet.page, user.email, PASSWORD);
  const { context, page } = await accountOf(user);
  const rows = page.locator('#session-rows tr');
  assert.equal(await rows.count(), 3);
  const current = page.locator('#session-rows tr.current');
  assert.match(await current.textContent(), /this session/);
  assert.match(await current.textContent(), /127\.0\.0\.1/);
  const iphone = page.locator('#session-rows tr', { hasText: 'Safari on iPhone' });
  await iphone.getByRole('button', { name: /End/ }).click();
  await iphone.waitFor({ state: 'detached' });
  await phone.page.goto('/');
  assert.equal(new URL(phone.page.url()).pathname, '/login', 'the phone is logged out');
  await page.getByRole('button', { name: 'End all other sessions' }).click();
  await page.locator('.toast', { hasText: '1 session(s) ended.' }).waitFor();
  assert.equal(await rows.count(), 1);
  await tablet.page.goto('/');
  assert.equal(new URL(tablet.page.url()).pathname, '/login', 'the tablet is logged out');
  await phone.context.close();
  await tablet.context.close();
  await context.close();
});

test('an admin reaches the same for anyone from the directory, within the rules', async () => {
  const user = await member('Omar');
  const theirs = await newPage(browser, server.url);
  await login(theirs.page, user.email, PASSWORD);
  await api(theirs.context, server.url, 'POST', '/api/tokens', { name: 'their script' });
  const { page } = admin;
  await page.goto(`/?search=${encodeURIComponent(user.email)}`);
  await page.locator('#user-rows tr', { hasText: user.email }).getByRole('link', { name: /Account/ }).click();
  await page.getByRole('heading', { name: `Account of ${user.name}` }).waitFor();
  await page.locator('#account[data-ready="true"]').waitFor();
  // Reset the password (no current password asked), then the role.
  assert.equal(await page.getByLabel('Current password').count(), 0);
  await page.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
  await page.getByRole('button', { name: 'Set password' }).click();
  await page.locator('.toast', { hasText: 'Password set.' }).waitFor();
  await theirs.page.goto('/');
  assert.equal(new URL(theirs.page.url()).pathname, '/login', 'a reset ends their sessions');
  await page.locator('#token-rows tr', { hasText: 'their script' }).getByText('revoked').waitFor();
  await page.locator('#profile-form').getByLabel('Role').selectOption('admin');
  await page.locator('#profile-form').getByRole('button', { name: 'Save name and email' }).click();
  await page.locator('.toast', { hasText: 'Name and email saved.' }).waitFor();
  const changed = await api(admin.context, server.url, 'GET', `/api/users/${user.id}`);
  assert.equal(changed.role, 'admin');
  await api(admin.context, server.url, 'PATCH', `/api/users/${user.id}`, { role: 'member' });
  // The last admin stays: demoting yourself, the only admin, is refused.
  await page.goto('/account');
  await page.locator('#account[data-ready="true"]').waitFor();
  await page.locator('#profile-form').getByLabel('Role').selectOption('member');
  await page.locator('#profile-form').getByRole('button', { name: 'Save name and email' }).click();
  await page.locator('.toast.error').waitFor();
  assert.equal((await api(admin.context, server.url, 'GET', '/api/auth/me')).role, 'admin');
  await theirs.context.close();
});

// ---- without JavaScript -------------------------------------------------------------

test('without JavaScript every form works by post and redirect, errors beside the fields', async () => {
  const user = await member('Pia');
  const { context, page } = await accountOf(user, { js: false });

  // Name and email.
  const profile = page.locator('#profile-form');
  await profile.getByLabel('Email').fill('nope');
  await post(page, profile.getByRole('button', { name: 'Save name and email' }));
  assert.equal(await page.locator('#email-error').textContent(), 'Email is not a valid email address.');
  await page.locator('#profile-form').getByLabel('Email').fill(user.email);
  await page.locator('#profile-form').getByLabel('Name').fill('Pia Plain');
  await post(page, page.locator('#profile-form').getByRole('button', { name: 'Save name and email' }));
  assert.match(page.url(), /\/account\?done=profile/);
  assert.equal(await page.locator('.who-name').textContent(), 'Pia Plain');

  // The password: the policy's reason, then a good one.
  await page.getByLabel('Current password').fill(PASSWORD);
  await page.getByLabel('New password', { exact: true }).fill('password');
  await post(page, page.getByRole('button', { name: 'Change password' }));
  assert.match(await page.locator('#new_password-error').textContent(), /New password must be at least 12 characters/);
  await page.getByLabel('Current password').fill(PASSWORD);
  await page.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
  await post(page, page.getByRole('button', { name: 'Change password' }));
  assert.match(await page.locator('.notice').textContent(), /Password changed/);

  // Theme and preferences.
  await page.getByLabel('Dark').check();
  await page.getByLabel('an admin changes my account').uncheck();
  await post(page, page.getByRole('button', { name: 'Save preferences' }));
  assert.equal(await page.locator('html').getAttribute('data-theme'), 'dark');
  assert.equal(await page.getByLabel('an admin changes my account').isChecked(), false);
  assert.equal(await page.getByLabel('someone mentions me').isChecked(), true);

  // A token: an empty name is refused beside the field; then it is shown once.
  await post(page, page.getByRole('button', { name: 'Create token' }));
  assert.match(await page.locator('#token_name-error').textContent(), /Name must be 1 to 100 characters/);
  await page.locator('#token_name').fill('nightly');
  await page.getByLabel('Expires').selectOption('never');
  await post(page, page.getByRole('button', { name: 'Create token' }));
  const token = await page.getByLabel('New token').inputValue();
  assert.match(token, /^sb_/);
  await page.goto('/account');
  assert.ok(!(await page.content()).includes(token), 'shown once');
  await post(page, page.locator('#token-rows tr', { hasText: 'nightly' }).getByRole('button', { name: /Revoke/ }));
  assert.match(await page.locator('.notice').textContent(), /Token revoked/);
  assert.match(await page.locator('#token-rows tr', { hasText: 'nightly' }).textContent(), /revoked/);

  // Sessions: end another one, then all others.
  const second = await newPage(browser, server.url);
  await login(second.page, user.email, NEW_PASSWORD);
  const third = await newPage(browser, server.url);
  await login(third.page, user.email, NEW_PASSWORD);
  await page.goto('/account');
  assert.equal(await page.locator('#session-rows tr').count(), 3);
  await post(page, page.locator('#session-rows tr:not(.current)').first().getByRole('button', { name: /End/ }));
  assert.match(await page.locator('.notice').textContent(), /Session ended/);
  assert.equal(await page.locator('#session-rows tr').count(), 2);
  await post(page, page.getByRole('button', { name: 'End all other sessions' }));
  assert.equal(await page.locator('#session-rows tr').count(), 1);
  for (const other of [second, third]) {
    await other.page.goto('/');
    assert.equal(new URL(other.page.url()).pathname, '/login');
    await other.context.close();
  }
  await context.close();
});

test('without JavaScript an admin resets a password and ends sessions of another account', async () => {
  const user = await member('Quinn');
  const theirs = await newPage(browser, server.url);
  await login(theirs.page, user.email, PASSWORD);
  const plain = await newPage(browser, server.url, { javaScriptEnabled: false });
  await login(plain.page);
  const { page } = plain;
  await page.goto(`/users/${user.id}/account`);
  await page.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
  await post(page, page.getByRole('button', { name: 'Set password' }));
  assert.match(await page.locator('.notice').textContent(), /Password set/);
  await theirs.page.goto('/');
  assert.equal(new URL(theirs.page.url()).pathname, '/login');
  await login(theirs.page, user.email, NEW_PASSWORD);
  await page.goto(`/users/${user.id}/account`);
  await post(page, page.getByRole('button', { name: 'End all their sessions' }));
  await theirs.page.goto('/');
  assert.equal(new URL(theirs.page.url()).pathname, '/login');
  await theirs.context.close();
  await plain.context.close();
});

// ---- the bell ---------------------------------------------------------------------

test('the bell: a mention raises the count live; opening the panel reads them on every tab', async () => {
  const user = await member('Rae');
  const handle = user.email.split('@')[0];
  const first = await newPage(browser, server.url);
  await login(first.page, user.email, PASSWORD);
  const second = await first.context.newPage();
  await second.goto('/chat');
  const bell = (p) => p.locator('#bell[data-ready="true"]');
  await bell(first.page).waitFor();
  await bell(second).waitFor();
  assert.equal(await first.page.locator('#bell').getAttribute('data-unread'), '0');

  // A mention from a second user, sent by the admin's browser: the count rises live.
  const sent = await api(admin.context, server.url, 'POST', '/api/send', { room: 'general', text: `@${handle} look at this` });
  await first.page.locator('#bell[data-unread="1"]').waitFor();
  await second.locator('#bell[data-unread="1"]').waitFor();
  assert.equal(await first.page.getByRole('button', { name: 'Notifications, 1 unread' }).count(), 1);

  // Open the panel by keyboard: marked read here and on the other tab.
  await first.page.getByRole('button', { name: 'Notifications, 1 unread' }).focus();
  await first.page.keyboard.press('Enter');
  const panel = first.page.getByRole('region', { name: 'Notifications' });
  await panel.waitFor();
  await first.page.locator('#bell[data-unread="0"]').waitFor();
  await second.locator('#bell[data-unread="0"]').waitFor();
  const state = await api(first.context, server.url, 'GET', '/api/notifications/unread');
  assert.equal(state.unread, 0);
  await first.page.keyboard.press('Escape');
  assert.equal(await panel.isHidden(), true);
  assert.equal(await first.page.evaluate(() => document.activeElement?.id), 'bell-button');

  // The notification leads to the message, scrolled to and highlighted.
  await first.page.keyboard.press('Enter');
  await Promise.all([first.page.waitForURL(/\/chat/), panel.getByRole('link', { name: /look at this/ }).click()]);
  assert.equal(new URL(first.page.url()).hash, `#m-${sent.id}`);
  await first.page.locator(`#m-${sent.id}.highlight`).waitFor();
  await first.context.close();
});

test('the bell: POST /api/notifications/read in one browser clears it in another', async () => {
  const user = await member('Sam');
  const handle = user.email.split('@')[0];
  const laptop = await newPage(browser, server.url);
  await login(laptop.page, user.email, PASSWORD);
  await laptop.page.locator('#bell[data-ready="true"]').waitFor();
  await api(admin.context, server.url, 'POST', '/api/send', { room: 'general', text: `@${handle} one` });
  await api(admin.context, server.url, 'POST', '/api/send', { room: 'random', text: `@${handle} two` });
  await laptop.page.locator('#bell[data-unread="2"]').waitFor();
  // A person who was away: the classic SSE page starts from the first unread.
  const phone = await newPage(browser, server.url);
  await login(phone.page, user.email, PASSWORD);
  await phone.page.locator('#bell[data-unread="2"]').waitFor();
  await api(phone.context, server.url, 'POST', '/api/notifications/read', {});
  await laptop.page.locator('#bell[data-unread="0"]').waitFor();
  await phone.page.locator('#bell[data-unread="0"]').waitFor();
  await laptop.context.close();
  await phone.context.close();
});

// ---- accessibility and looks ----------------------------------------------------------

for (const scheme of ['light', 'dark']) {
  test(`/account and the bell have no serious accessibility violations (${scheme})`, async () => {
    const user = await member('Tess');
    const { context, page, problems } = await accountOf(user, { colorScheme: scheme, bypassCSP: true });
    await api(context, server.url, 'POST', '/api/tokens', { name: 'deploy', expires_in_days: 90 });
    await page.reload();
    await page.locator('#account[data-ready="true"]').waitFor();
    assert.deepEqual(await seriousViolations(page), [], '/account');
    await page.getByLabel('New password', { exact: true }).pressSequentially('short');
    await page.locator('#new_password-check li').first().waitFor();
    await page.getByRole('button', { name: /^Notifications/ }).click();
    await page.getByRole('region', { name: 'Notifications' }).waitFor();
    assert.deepEqual(await seriousViolations(page), [], '/account with the bell open');
    assert.deepEqual(problems.errors, []);
    await context.close();
  });
}

test('screenshots of /account and the bell, light and dark, desktop and phone', async () => {
  const user = await member('Uma');
  const handle = user.email.split('@')[0];
  for (const scheme of ['light', 'dark']) {
    for (const [size, viewport] of Object.entries(SIZES)) {
      const { context, page } = await accountOf(user, { colorScheme: scheme, viewport });
      if (scheme === 'light' && size === 'desktop') {
        await api(context, server.url, 'POST', '/api/tokens', { name: 'deploy bot', expires_in_days: 90 });
        await api(admin.context, server.url, 'POST', '/api/send', { room: 'general', text: `@${handle} the release notes are ready for review` });
        await api(admin.context, server.url, 'PATCH', `/api/users/${user.id}`, { name: user.name });
        await page.reload();
      }
      await page.locator('#bell[data-ready="true"]').waitFor();
      await page.screenshot({ path: screenshotPath(`account-${scheme}-${size}.png`), fullPage: true });
      await page.getByLabel('New password', { exact: true }).pressSequentially('password');
      await page.locator('#new_password-check li').first().waitFor();
      await page.locator('#token_name').fill(`laptop ${scheme} ${size}`);
      await page.getByRole('button', { name: 'Create token' }).click();
      await page.getByLabel('New token').waitFor();
      await page.locator('#new-token').scrollIntoViewIfNeeded();
      await page.screenshot({ path: screenshotPath(`account-forms-${scheme}-${size}.png`) });
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.getByRole('button', { name: /^Notifications/ }).click();
      await page.getByRole('region', { name: 'Notifications' }).waitFor();
      await page.screenshot({ path: screenshotPath(`bell-${scheme}-${size}.png`) });
      await context.close();
    }
  }
});
