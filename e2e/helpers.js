/**
 * e2e/helpers.js owns what every browser test needs: the real switchboard binary
 * started on a free port with a throwaway SQLite database (its address read from its
 * own "listening" log line, so no sleeps and no fixed ports), Debian's Chromium driven
 * by playwright-core, logging in through /login, and a few API calls for arranging
 * data. `scripts/test` builds the binary first.
 */
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const SCREENSHOTS = path.join(ROOT, 'e2e', 'screenshots');
export const ADMIN_EMAIL = 'admin@example.com';
export const ADMIN_PASSWORD = 'e2e admin quartz lantern 42';
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export function binaryPath() {
  const target = process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target');
  const binary = path.join(target, 'debug', 'switchboard');
  if (!existsSync(binary)) throw new Error(`${binary} is missing: run \`cargo build\` first (scripts/test does)`);
  return binary;
}

/**
 * Starts `switchboard serve` on 127.0.0.1:0 with a fresh database.
 * @param {{users?: number, env?: Record<string, string>}} options  `users`: synthetic users
 *   seeded first (`switchboard seed`); `env`: settings of this test's own (e.g. a rate limit)
 * @returns {Promise<{url: string, database: string, stop: () => Promise<void>, log: string[]}>}
 *   `database`: the SQLite file, for arranging rows no API would write
 */
export async function startServer({ users = 0, env: settings = {} } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-e2e-'));
  // Hermetic: settings of the developer's own server (SWITCHBOARD_*) do not leak in.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('SWITCHBOARD_')));
  const database = path.join(dir, 'e2e.db');
  const env = {
    ...inherited,
    SWITCHBOARD_BIND: '127.0.0.1:0',
    SWITCHBOARD_DATABASE_URL: `sqlite://${database}`,
    SWITCHBOARD_ADMIN_EMAIL: ADMIN_EMAIL,
    SWITCHBOARD_ADMIN_PASSWORD: ADMIN_PASSWORD,
    SWITCHBOARD_LOG_FORMAT: 'json',
    SWITCHBOARD_LOG: 'info,sqlx=warn',
    // Every test logs in from 127.0.0.1: the real limit (10 a minute) would trip.
    SWITCHBOARD_RATE_LOGIN_PER_MINUTE: '1000',
    ...settings,
  };
  delete env.RUST_LOG;
  const binary = binaryPath();
  if (users > 0) execFileSync(binary, ['seed', '--users', String(users)], { env, stdio: 'ignore' });
  const child = spawn(binary, ['serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = [];
  child.stderr.on('data', (chunk) => log.push(String(chunk)));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start:\n${log.join('')}`)), 30_000);
    child.once('exit', (code) => reject(new Error(`the server exited (${code}):\n${log.join('')}`)));
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      log.push(line);
      try {
        const event = JSON.parse(line);
        if (event.message === 'listening' && event.address) {
          clearTimeout(timer);
          resolve(`http://${event.address}`);
        }
      } catch {
        // Not JSON: keep it in the log for the error message.
      }
    });
  });
  child.removeAllListeners('exit');
  return {
    url,
    database,
    log,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/**
 * A page that records what must never happen: a JavaScript dialog (alert/confirm), an
 * uncaught error, a CSP violation reported on the console.
 */
export async function newPage(browser, base, contextOptions = {}) {
  const context = await browser.newContext({ baseURL: base, ...contextOptions });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const problems = { dialogs: [], errors: [], console: [] };
  page.on('dialog', async (dialog) => {
    problems.dialogs.push(dialog.message());
    await dialog.dismiss();
  });
  page.on('pageerror', (error) => problems.errors.push(String(error)));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.console.push(message.text());
  });
  return { context, page, problems };
}

/** Fills and sends the /login form; waits for the answer (another page, or the form again). */
export async function submitLogin(page, email, password) {
  await page.goto('/login');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Log in' }).click()]);
}

/** Logs in through the /login form and checks it worked. */
export async function login(page, email = ADMIN_EMAIL, password = ADMIN_PASSWORD) {
  await submitLogin(page, email, password);
  if (new URL(page.url()).pathname === '/login') throw new Error(`could not log in as ${email}`);
}

/** Calls the JSON API with the context's cookies, as our own page's fetch would (same Origin). */
export async function api(context, base, method, url, data) {
  const response = await context.request.fetch(url, {
    method,
    data,
    headers: { Origin: base, 'Content-Type': 'application/json' },
  });
  const text = await response.text();
  if (!response.ok()) throw new Error(`${method} ${url}: ${response.status()} ${text}`);
  return text ? JSON.parse(text) : null;
}

export function screenshotPath(name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  return path.join(SCREENSHOTS, name);
}
