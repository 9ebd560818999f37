// Accessibility and looks: axe-core (injected from node_modules) finds no serious or
// critical violation on /login and / (also with a dialog open), and screenshots of
// both pages at desktop and phone widths go to e2e/screenshots/ for people to look at.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

import { launchBrowser, login, newPage, screenshotPath, startServer } from './helpers.js';

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
