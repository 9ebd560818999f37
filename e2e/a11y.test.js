// Accessibility and looks: axe-core (injected from node_modules) finds no serious or
// critical violation on /login, / (also with a dialog open) and /chat, and screenshots
// of each page at desktop and phone widths go to e2e/screenshots/ for people to look at.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

import { api, launchBrowser, login, newPage, screenshotPath, startServer } from './helpers.js';

const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };

let server;
let browser;

before(async () => {
  server = await startServer({ users: 12 });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function seriousViolations(page) {
  await page.addScriptTag({ path: AXE });
  const results = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

for (const scheme of ['light', 'dark']) {
  test(`/login and / have no serious accessibility violations (${scheme})`, async () => {
    // bypassCSP: axe is injected as an inline script, which our CSP (rightly) forbids.
    const { context, page } = await newPage(browser, server.url, { colorScheme: scheme, bypassCSP: true });
    await page.goto('/login');
    assert.deepEqual(await seriousViolations(page), [], '/login');
    await login(page);
    await page.locator('#directory[data-enhanced="true"]').waitFor();
    assert.deepEqual(await seriousViolations(page), [], '/');
    await page.getByRole('button', { name: 'Add user' }).click();
    assert.deepEqual(await seriousViolations(page), [], '/ with the dialog open');
    await context.close();
  });
}

test('screenshots of / and /login at desktop and phone widths', async () => {
  for (const [size, viewport] of Object.entries(SIZES)) {
    const { context, page } = await newPage(browser, server.url, { viewport });
    await page.goto('/login');
    await page.screenshot({ path: screenshotPath(`login-${size}.png`) });
    await login(page);
    await page.locator('#directory[data-enhanced="true"]').waitFor();
    await page.screenshot({ path: screenshotPath(`directory-${size}.png`) });
    await page.getByRole('button', { name: 'Add user' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Add user' }).click();
    await page.getByRole('dialog').getByText('Name is required.').waitFor();
    await page.screenshot({ path: screenshotPath(`directory-dialog-${size}.png`) });
    await context.close();
  }
  const { context, page } = await newPage(browser, server.url, { viewport: SIZES.desktop, colorScheme: 'dark' });
  await login(page);
  await page.getByLabel('Search by name or email').pressSequentially('al');
  await page.getByRole('listbox').waitFor();
  await page.keyboard.press('ArrowDown');
  await page.screenshot({ path: screenshotPath('directory-dark-autocomplete-desktop.png') });
  await context.close();
});

/** /chat with a few messages in #general, one of them long and one several lines. */
async function chatWithMessages(page, context) {
  await page.goto('/chat');
  await page.locator('#chat[data-ready="true"][data-status="connected"]').waitFor();
  if ((await page.locator('#messages li.msg').count()) === 0) {
    for (const text of [
      'Morning all! The deploy is done.',
      'Thanks! I checked the dashboards: latency is back to normal, error rate 0.01%, and the queue drained in about four minutes, which is faster than last week.',
      'Lunch at 12:30?\nI can book the table.',
    ]) {
      await api(context, page.url().replace(/\/chat.*$/, ''), 'POST', '/api/send', { room: 'general', text });
    }
    await api(context, page.url().replace(/\/chat.*$/, ''), 'POST', '/api/send', { room: 'design', text: 'Mock-ups are in.' });
    await page.locator('#messages li.msg', { hasText: 'Lunch at 12:30?' }).waitFor();
  }
}

for (const scheme of ['light', 'dark']) {
  test(`/chat has no serious accessibility violations (${scheme})`, async () => {
    const { context, page, problems } = await newPage(browser, server.url, { colorScheme: scheme, bypassCSP: true });
    await login(page);
    await chatWithMessages(page, context);
    assert.deepEqual(await seriousViolations(page), [], '/chat');
    await page.getByRole('textbox', { name: 'Message #general' }).fill('typing');
    assert.deepEqual(await seriousViolations(page), [], '/chat while typing');
    // A second room open: #general stays open in the list, with its Close button.
    await page.getByLabel('Open or create a room').fill('design');
    await page.getByLabel('Open or create a room').press('Enter');
    await page.locator('#chat[data-ready="true"][data-room="design"]').waitFor();
    await page.getByRole('button', { name: 'Close #general' }).waitFor();
    assert.deepEqual(await seriousViolations(page), [], '/chat with two rooms open');
    assert.deepEqual(problems.errors, []);
    await context.close();
  });
}

test('/chat works with the keyboard alone', async () => {
  const { context, page } = await newPage(browser, server.url);
  await login(page);
  await chatWithMessages(page, context);
  // Tab from the room box to its button, then on to the message box.
  await page.getByLabel('Open or create a room').focus();
  await page.keyboard.type('keyboard-room');
  await page.keyboard.press('Enter');
  await page.locator('#chat[data-ready="true"][data-room="keyboard-room"]').waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.id), 'composer-text');
  await page.keyboard.type('first line');
  await page.keyboard.press('Shift+Enter');
  await page.keyboard.type('second line');
  await page.keyboard.press('Enter');
  await page.locator('#messages li.msg:not(.pending) .msg-text', { hasText: 'second line' }).waitFor();
  assert.equal(await page.locator('#messages li.msg .msg-text').last().textContent(), 'first line\nsecond line');
  await context.close();
});

test('screenshots of /chat at desktop and phone widths', async () => {
  for (const [size, viewport] of Object.entries(SIZES)) {
    for (const scheme of ['light', 'dark']) {
      const { context, page } = await newPage(browser, server.url, { viewport, colorScheme: scheme });
      await login(page);
      await chatWithMessages(page, context);
      await page.getByRole('textbox', { name: 'Message #general' }).fill('Sounds good');
      await page.screenshot({ path: screenshotPath(`chat-${scheme}-${size}.png`) });
      await context.close();
    }
  }
});

// The error page (base.html's frame without the session's parts), as a visitor with no
// session sees it: its theme follows the browser.
for (const scheme of ['light', 'dark']) {
  test(`the error page has no serious accessibility violations (${scheme})`, async () => {
    const { context, page } = await newPage(browser, server.url, { colorScheme: scheme, bypassCSP: true });
    const response = await page.goto('/no-such-page');
    assert.equal(response.status(), 404);
    assert.equal(await page.locator('h1').textContent(), 'Not Found');
    assert.equal(await page.locator('#bell, form[action="/logout"]').count(), 0, 'no session, no bell or logout');
    assert.deepEqual(await seriousViolations(page), [], 'error page');
    await page.screenshot({ path: screenshotPath(`error-${scheme}.png`) });
    await context.close();
  });
}
