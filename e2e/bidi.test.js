// Browser test of issue 17's bidi isolation: a name holding U+202E (RIGHT-TO-LEFT
// OVERRIDE) must not reverse the text after it. The API refuses such names now, but a
// database written before that rule still holds them, so the row is arranged with
// sqlite3 behind the server's back. Each check measures where the browser drew the
// characters after the name, and then shows that the same markup without isolation
// would have flipped them, so the measurement can fail.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';

import { ADMIN_EMAIL, api, launchBrowser, login, newPage, screenshotPath, startServer } from './helpers.js';

const OVERRIDING = 'Mallory\u202Egnp.exe';
const PASSWORD = 'e2e member passphrase quartz 9127';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  const { context } = await newPage(browser, server.url);
  await login(context.pages()[0]);
  for (const [name, email] of [['Mallory', 'mallory@example.com'], ['Zed', 'zed@example.com']]) {
    await api(context, server.url, 'POST', '/api/users', { name, email, password: PASSWORD });
  }
  await context.close();
  // A name stored before the rule (the name key, and so the search index, unchanged).
  execFileSync('sqlite3', [server.database,
    "UPDATE users SET name = 'Mallory' || char(0x202E) || 'gnp.exe' WHERE email = 'mallory@example.com'"]);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function chatAs(email, password) {
  const opened = await newPage(browser, server.url);
  await login(opened.page, email, password);
  await opened.page.goto('/chat');
  await opened.page.locator('#chat[data-status="connected"]').waitFor({ timeout: 15_000 });
  return opened;
}

/**
 * Whether `text`, found in a text node under `selector`, is drawn left to right (its
 * first character left of its last); with `unisolate`, after turning every <bdi> and
 * dir=auto under `selector` into plain inline text first.
 */
function drawnLeftToRight(page, selector, text, { unisolate = false } = {}) {
  return page.evaluate(([selector, text, unisolate]) => {
    const root = document.querySelector(selector);
    if (unisolate) {
      for (const node of root.querySelectorAll('bdi')) {
        const span = document.createElement('span');
        span.className = node.className;
        span.append(...node.childNodes);
        node.replaceWith(span);
      }
      for (const node of root.querySelectorAll('[dir]')) node.removeAttribute('dir');
    }
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
      const node = walker.currentNode;
      const at = node.data.indexOf(text);
      if (at < 0) continue;
      const left = (i) => {
        const range = document.createRange();
        range.setStart(node, at + i);
        range.setEnd(node, at + i + 1);
        return range.getBoundingClientRect().left;
      };
      return left(0) < left(text.length - 1);
    }
    throw new Error(`"${text}" is not under ${selector}`);
  }, [selector, text, unisolate]);
}

test('a name with a right-to-left override does not flip the text after it', async () => {
  const { context, page, problems } = await newPage(browser, server.url);
  await login(page);
  await page.locator('#directory[data-enhanced="true"]').waitFor();

  // The directory row: the name's cell sets its own direction.
  const cell = page.locator('#user-rows td.name', { hasText: 'Mallory' });
  assert.equal(await cell.getAttribute('dir'), 'auto');
  assert.equal(await page.locator('.who-name').evaluate((n) => n.localName), 'bdi');

  // The delete dialog's sentence continues after the name: it still reads left to right.
  await page.getByRole('button', { name: `Delete ${OVERRIDING}` }).click();
  const dialog = page.locator('#confirm-dialog');
  await dialog.waitFor();
  await page.screenshot({ path: screenshotPath('bidi-delete-dialog.png') });
  assert.ok(await drawnLeftToRight(page, '#confirm-text', 'undone'));
  assert.equal(await drawnLeftToRight(page, '#confirm-text', 'undone', { unisolate: true }), false,
    'without <bdi> the override would reverse the sentence (the check can fail)');
  await dialog.getByRole('button', { name: 'Cancel' }).click();

  // The chat: Mallory and Zed are present, so the presence line has a name after hers.
  const mallory = await chatAs('mallory@example.com', PASSWORD);
  const zed = await chatAs('zed@example.com', PASSWORD);
  await api(mallory.context, server.url, 'POST', '/api/send', { text: 'see the attachment' });
  await api(mallory.context, server.url, 'POST', '/api/send', { text: 'text may keep them: abc\u202Edef' });
  await api(zed.context, server.url, 'POST', '/api/send', { text: 'the next message reads normally' });
  await page.goto('/chat');
  await page.locator('#chat[data-ready="true"]').waitFor();
  await page.locator('.msg-text', { hasText: 'the next message' }).waitFor();
  await page.locator('#presence-names', { hasText: 'Zed' }).waitFor();
  // (The first item may be the "New messages" divider: everything here is unread to this viewer.)
  assert.equal(await page.locator('#messages li.msg .msg-author').first().evaluate((n) => n.localName), 'bdi');
  assert.equal(await page.locator('.msg-text').first().getAttribute('dir'), 'auto');
  assert.ok(await drawnLeftToRight(page, '#presence', 'Zed'), 'the name after hers in the presence line');
  assert.ok(await drawnLeftToRight(page, '#messages li:last-child .msg-text', 'next'));
  await page.screenshot({ path: screenshotPath('bidi-chat.png') });
  assert.equal(await drawnLeftToRight(page, '#presence', 'Zed', { unisolate: true }), false,
    'without <bdi> the override would reverse the names after it');

  for (const opened of [mallory, zed, { context, problems }]) {
    assert.deepEqual(opened.problems, { dialogs: [], errors: [], console: [] });
    await opened.context.close();
  }
});
