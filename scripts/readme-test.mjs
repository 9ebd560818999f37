#!/usr/bin/env node
/**
 * scripts/readme-test.mjs owns "README.md is tested": it walks README top to bottom as a
 * newcomer would, against a freshly started binary, and fails when an example does not do
 * what README says it does. `scripts/test` runs it after the browser tests.
 *
 * Every fenced block that could be run (```sh, ```js, or no language) has a marker, an HTML
 * comment on the line above it; a block without one fails the run, so a new example cannot
 * escape the test:
 *
 *   <!-- readme-test: console -->           lines the server prints at its first start
 *   <!-- readme-test: sh session=NAME -->   shell commands, run by one bash per session (in
 *                                           README order, sharing variables and aliases);
 *                                           `stream=N`: they run N seconds, then are stopped;
 *                                           `timeout=N`: each may take N s (60), else fails
 *   <!-- readme-test: browser expect="P" --> a page script, run in Chromium in a page the
 *                                           binary serves, signed in as the first admin
 *   <!-- readme-test: node expect="P" -->   a Node module (the repository's node_modules)
 *   <!-- readme-test: skip reason="..." -->  not runnable here (says why)
 *
 * In a shell block, `$ ` starts a command (a line ending in `\` continues it) and the lines
 * up to the next command are its output as README shows it: each must match a line of the
 * real output, in order (lines README leaves out are allowed); `...` matches anything. A
 * block without `$ ` is a list of commands whose output README does not show. A command
 * must exit 0. A script must print a line matching each `expect` (several are allowed)
 * within `timeout=N` seconds (10), and throw nothing; with `unique="P"`, no line matching
 * P may be printed twice (checked half a second after the last expected line).
 *
 * What the runner changes, and nothing else: the port (`localhost:8080`, `127.0.0.1:8080`
 * and `https://switchboard.example` become the test server's address), and `sb_...` in a
 * script becomes a real API token. The server is started as the first command says
 * (`switchboard`, all defaults, in an empty directory that becomes its `./data`) but on a
 * free port, from `$CARGO_TARGET_DIR/debug` (or `target/debug`); shell commands run in that
 * directory with that binary first on PATH and the first admin's password, read from the
 * console, in `ADMIN_PASSWORD`. At the end SIGTERM must stop it with exit status 0.
 *
 * Usage: node scripts/readme-test.mjs [README.md]
 */
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, writeFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { binaryPath, launchBrowser } from '../e2e/helpers.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const README = path.resolve(process.argv[2] || path.join(ROOT, 'README.md'));
const README_NAME = path.relative(process.cwd(), README) || README;
/** Fenced blocks that must carry a marker: shell, JavaScript, and unlabelled ones. */
const RUNNABLE = new Set(['', 'sh', 'bash', 'shell', 'console', 'js', 'javascript', 'mjs']);
const KINDS = new Set(['console', 'sh', 'browser', 'node', 'skip']);
const COMMAND_TIMEOUT_MS = 60_000;

// ---------------------------------------------------------------------------------------
// Reading README

/** Parses `kind key=value key="a value"`; a key may repeat (`expect`). */
function parseMarker(text, line) {
  const match = /^<!--\s*readme-test:\s*(\S+)(.*?)-->\s*$/.exec(text.trim());
  if (!match) return null;
  const kind = match[1];
  if (!KINDS.has(kind)) throw new Error(`${README_NAME}:${line}: unknown readme-test kind "${kind}"`);
  const attrs = {};
  const re = /(\w+)=(?:"([^"]*)"|(\S+))/g;
  let attr;
  while ((attr = re.exec(match[2]))) (attrs[attr[1]] ??= []).push(attr[2] ?? attr[3]);
  return { kind, attrs };
}

/** The fenced blocks of README, each with its marker (or null) and line numbers (1-based). */
export function extractBlocks(text) {
  const lines = text.split('\n');
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)\s*$/.exec(lines[i]);
    if (!open) continue;
    const fence = open[2];
    const start = i;
    const body = [];
    for (i++; i < lines.length && !lines[i].trim().startsWith(fence); i++) body.push(lines[i]);
    let above = start - 1;
    while (above >= 0 && lines[above].trim() === '') above--;
    const marker = above >= 0 ? parseMarker(lines[above], above + 1) : null;
    blocks.push({ lang: open[3], line: start + 1, body, marker });
  }
  return blocks;
}

/**
 * A shell block's commands: `{line, command, expected[]}`. With `$ ` prompts the lines
 * after a command are its output; without, every line is a command.
 */
export function parseShell(block) {
  const prompted = block.body.some((l) => l.startsWith('$ '));
  const commands = [];
  for (let i = 0; i < block.body.length; i++) {
    let text = block.body[i];
    if (prompted && !text.startsWith('$ ')) {
      if (!commands.length) throw new Error(`${README_NAME}:${block.line + 1 + i}: output before any command`);
      if (text.trim() !== '') commands.at(-1).expected.push({ line: block.line + 1 + i, text: text.trimEnd() });
      continue;
    }
    if (prompted) text = text.slice(2);
    if (!prompted && (text.trim() === '' || text.trim().startsWith('#'))) continue;
    const line = block.line + 1 + i;
    const parts = [text];
    while (parts.at(-1).trimEnd().endsWith('\\') && i + 1 < block.body.length) parts.push(block.body[++i]);
    commands.push({ line, command: parts.join('\n'), expected: [] });
  }
  return commands;
}

/** README's `...` matches anything; the rest of a line is literal. */
function pattern(text) {
  const escaped = text
    .split('...')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${escaped}$`);
}

/** Each expected line must match an actual line, in order; returns the first that does not. */
export function firstUnmatched(expected, actualLines) {
  let at = 0;
  for (const want of expected) {
    const re = pattern(want.text.trim());
    while (at < actualLines.length && !re.test(actualLines[at].trim())) at++;
    if (at === actualLines.length) return want;
    at++;
  }
  return null;
}

// ---------------------------------------------------------------------------------------
// Running it

class Failure extends Error {}

/** The binary started as README's first command starts it, on a free port. */
async function startServer(dir) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('SWITCHBOARD_')));
  delete env.RUST_LOG;
  const child = spawn(binaryPath(), ['--bind', '127.0.0.1:0'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = [];
  let partial = '';
  const lines = (chunk) => {
    const text = partial + String(chunk);
    const all = text.split('\n');
    partial = all.pop();
    output.push(...all.map((l) => l.replace(/\r$/, '')));
  };
  child.stdout.on('data', lines);
  child.stderr.on('data', lines);
  const address = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the server did not start:\n${output.join('\n')}`));
    }, 60_000);
    child.once('exit', (code) => reject(new Error(`the server exited (${code}):\n${output.join('\n')}`)));
    const poll = setInterval(() => {
      const found = output.map((l) => / listening address=(\S+)/.exec(l)).find(Boolean);
      if (found) {
        clearInterval(poll);
        clearTimeout(timer);
        resolve(found[1]);
      }
    }, 20);
  });
  child.removeAllListeners('exit');
  return {
    address,
    output,
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Only the address changes: README's host:port and placeholder host become the server's. */
function rewrite(text, port, token) {
  let out = text
    .replaceAll('https://switchboard.example', `http://127.0.0.1:${port}`)
    .replaceAll('localhost:8080', `localhost:${port}`)
    .replaceAll('127.0.0.1:8080', `127.0.0.1:${port}`);
  if (token) out = out.replaceAll('sb_...', token);
  return out;
}

/** One bash per session, fed one command at a time, so variables and aliases carry over. */
class Shell {
  constructor(dir, env) {
    this.dir = dir;
    // A process group of its own, so a command that hangs can be stopped with its children.
    this.child = spawn('bash', ['--noprofile', '--norc'], { cwd: dir, env, stdio: ['pipe', 'pipe', 'inherit'], detached: true });
    this.broken = null;
    this.buffer = '';
    this.waiting = null;
    this.child.stdout.on('data', (chunk) => {
      this.buffer += String(chunk);
      this.waiting?.();
    });
    this.child.stdin.write('shopt -s expand_aliases\n');
    this.count = 0;
  }

  /**
   * Runs one command; resolves to {status, output}. `stream`: seconds before it is stopped
   * (and then it passes). A command still running after `timeoutMs` fails, and so does
   * every later command of its session, which is stopped with it.
   */
  run(command, stream, timeoutMs = COMMAND_TIMEOUT_MS) {
    if (this.broken) return Promise.reject(new Failure(`not run: this session stopped at ${this.broken}`));
    const n = ++this.count;
    const out = path.join(this.dir, `.readme-test-out.${n}`);
    const done = `__README_TEST_DONE_${n}__`;
    // The command runs in this shell (a `{ }` group, not a subshell), its output in a file.
    // A stream runs in a process group of its own (set -m), stopped whole after `stream` s.
    const script = stream
      ? `set -m; { ${command}\n} >'${out}' 2>&1 </dev/null & __rt_pid=$!; set +m; sleep ${stream}; ` +
        `kill -TERM -- -$__rt_pid 2>/dev/null; wait $__rt_pid 2>/dev/null; echo "${done} 0"\n`
      : `{ ${command}\n} >'${out}' 2>&1 </dev/null; echo "${done} $?"\n`;
    this.child.stdin.write(script);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = null;
        this.broken = 'a command that did not finish';
        this.close();
        reject(new Failure(`did not finish within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.waiting = () => {
        const match = new RegExp(`${done} (\\d+)`).exec(this.buffer);
        if (!match) return;
        clearTimeout(timer);
        this.waiting = null;
        this.buffer = '';
        let output = '';
        try {
          output = readFileSync(out, 'utf8');
        } catch {
          // no output at all
        }
        rmSync(out, { force: true });
        resolve({ status: Number(match[1]), output });
      };
      this.waiting();
    });
  }

  close() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.stdin.end();
    try {
      process.kill(-this.child.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
}

function lines(text) {
  return text.split('\n').map((l) => l.replace(/\r$/, ''));
}

function shown(output) {
  const text = output.length > 3000 ? `${output.slice(0, 3000)}\n[... ${output.length - 3000} more characters]` : output;
  return text.replace(/^/gm, '    | ');
}

/**
 * Waits until every `expect` pattern matches one of `seen`, or fails with what was seen;
 * then no line matching a `unique` pattern may be there twice.
 */
async function waitForExpected(attrs, seen, errors, seconds) {
  const expects = attrs.expect;
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    if (errors.length) throw new Failure(`threw: ${errors.join('\n')}\n  printed:\n${shown(seen.join('\n'))}`);
    const missing = expects.filter((e) => !seen.some((l) => pattern(e).test(l.trim())));
    if (!missing.length) {
      if (!attrs.unique) return;
      await new Promise((r) => setTimeout(r, 500));
      for (const u of attrs.unique) {
        const matching = seen.map((l) => l.trim()).filter((l) => pattern(u).test(l));
        const twice = matching.find((l, i) => matching.indexOf(l) !== i);
        if (twice !== undefined) throw new Failure(`printed ${JSON.stringify(twice)} twice (unique="${u}"); printed:\n${shown(seen.join('\n'))}`);
      }
      if (errors.length) continue;
      return;
    }
    if (Date.now() > deadline) {
      throw new Failure(`printed no line matching ${missing.map((m) => JSON.stringify(m)).join(', ')} within ${seconds} s; printed:\n${shown(seen.join('\n'))}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function main() {
  const text = readFileSync(README, 'utf8');
  const blocks = extractBlocks(text);

  const unmarked = blocks.filter((b) => RUNNABLE.has(b.lang) && !b.marker);
  if (unmarked.length) {
    for (const b of unmarked) {
      console.error(`${README_NAME}:${b.line}: a \`\`\`${b.lang} block without a <!-- readme-test: ... --> marker above it (see scripts/readme-test.mjs)`);
    }
    process.exit(1);
  }
  for (const b of blocks) {
    if (b.marker && b.marker.kind === 'skip' && !b.marker.attrs.reason) {
      console.error(`${README_NAME}:${b.line}: a skipped block must say why (reason="...")`);
      process.exit(1);
    }
    if (b.marker && ['browser', 'node'].includes(b.marker.kind) && !b.marker.attrs.expect) {
      console.error(`${README_NAME}:${b.line}: a ${b.marker.kind} script must say what it prints (expect="...")`);
      process.exit(1);
    }
  }

  const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-readme-'));
  // What was started, stopped in `finally` whatever fails (`live`: open pages).
  let server = null;
  let browser = null;
  const shells = new Map();
  const live = [];
  const failures = [];
  const fail = (line, message) => {
    failures.push(`${README_NAME}:${line}: ${message}`);
    console.error(`FAIL ${README_NAME}:${line}: ${message}`);
  };
  const counts = { commands: 0, browser: 0, node: 0, console: 0, skipped: 0 };
  try {
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
    server = await startServer(dir);
    const port = server.address.split(':').pop();
    const base = `http://127.0.0.1:${port}`;
    const password = server.output.map((l) => /^\s*password:\s+(\S+)/.exec(l)).find(Boolean)?.[1];
    if (!password) throw new Error(`the first start printed no admin password:\n${server.output.join('\n')}`);

    const binDir = path.dirname(binaryPath());
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('SWITCHBOARD_')));
    delete env.RUST_LOG;
    env.PATH = `${binDir}:${env.PATH}`;
    env.ADMIN_PASSWORD = password;
    // A token of the runner's own for scripts that show `sb_...`.
    const token = execFileSync(binaryPath(), ['token', 'create', '--email', 'admin@example.com', '--name', 'readme-test'], { cwd: dir, env })
      .toString()
      .trim()
      .split('\n')
      .pop();

    // The browser is signed in first, as a newcomer who opened the web UI would be, and
    // before the curl session spends the login budgets on purpose.
    browser = await launchBrowser();
    const context = await browser.newContext({ baseURL: base });
    const login = await context.request.post('/api/auth/login', {
      data: { email: 'admin@example.com', password },
      headers: { Origin: base },
    });
    if (!login.ok()) throw new Error(`the browser could not log in: ${login.status()} ${await login.text()}`);

    for (const block of blocks) {
      if (!block.marker) continue;
      const { kind, attrs } = block.marker;
      if (kind === 'skip') {
        counts.skipped++;
        console.log(`skip ${README_NAME}:${block.line} (${attrs.reason[0]})`);
        continue;
      }
      if (kind === 'console') {
        counts.console++;
        const want = block.body.filter((l) => l.trim()).map((l, i) => ({ line: block.line + 1 + i, text: l }));
        const missing = firstUnmatched(want, server.output);
        if (missing) fail(missing.line, `the server's first start printed no line matching ${JSON.stringify(missing.text.trim())}; it printed:\n${shown(server.output.join('\n'))}`);
        else console.log(`ok   ${README_NAME}:${block.line} console`);
        continue;
      }
      if (kind === 'sh') {
        const name = attrs.session?.[0] ?? 'main';
        if (!shells.has(name)) shells.set(name, new Shell(dir, env));
        const shell = shells.get(name);
        const stream = attrs.stream ? Number(attrs.stream[0]) : 0;
        const timeoutMs = attrs.timeout ? Number(attrs.timeout[0]) * 1000 : COMMAND_TIMEOUT_MS;
        for (const cmd of parseShell(block)) {
          counts.commands++;
          const label = cmd.command.split('\n')[0].slice(0, 90);
          let result;
          try {
            result = await shell.run(rewrite(cmd.command, port), stream, timeoutMs);
          } catch (error) {
            if (!(error instanceof Failure)) throw error;
            fail(cmd.line, `\`${label}\` ${error.message}`);
            continue;
          }
          if (result.status !== 0) {
            fail(cmd.line, `\`${label}\` exited with ${result.status}; its output:\n${shown(result.output)}`);
            continue;
          }
          const expected = cmd.expected.map((e) => ({ ...e, text: rewrite(e.text, port) }));
          const missing = firstUnmatched(expected, lines(result.output));
          if (missing) {
            fail(missing.line, `\`${label}\`: README shows ${JSON.stringify(missing.text)} but no line of the output (after the lines before it) matches; the output:\n${shown(result.output)}`);
            continue;
          }
          console.log(`ok   ${README_NAME}:${cmd.line} $ ${label}`);
        }
        continue;
      }
      const seconds = attrs.timeout ? Number(attrs.timeout[0]) : 10;
      const code = rewrite(block.body.join('\n'), port, token);
      if (kind === 'browser') {
        counts.browser++;
        const page = await context.newPage();
        const seen = [];
        const errors = [];
        page.on('console', (m) => {
          // Chromium's own request for /favicon.ico (a 404) is no line of the script's.
          if (!m.location().url?.endsWith('/favicon.ico')) seen.push(m.text());
        });
        page.on('pageerror', (e) => errors.push(String(e)));
        // A page of the server's own (its CSP applies), not one with scripts of its own.
        await page.goto('/healthz');
        // As a module would: top-level await allowed, and nothing leaks between blocks.
        page.evaluate(`(async () => {\n${code}\n})().catch((e) => { setTimeout(() => { throw e; }); })`).catch((e) => errors.push(String(e)));
        try {
          await waitForExpected(attrs, seen, errors, seconds);
          console.log(`ok   ${README_NAME}:${block.line} browser script`);
        } catch (error) {
          if (!(error instanceof Failure)) throw error;
          fail(block.line, `the browser script ${error.message}`);
        }
        live.push(() => page.close());
        continue;
      }
      if (kind === 'node') {
        counts.node++;
        const file = path.join(dir, `readme-${block.line}.mjs`);
        // Node 20 has no localStorage; a page's scripts do. Give node snippets one.
        writeFileSync(path.join(dir, 'storage.mjs'), STORAGE_SHIM);
        writeFileSync(file, code);
        const child = spawn(process.execPath, ['--import', './storage.mjs', file], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
        const seen = [];
        const errors = [];
        let stderr = '';
        child.stdout.on('data', (chunk) => seen.push(...String(chunk).split('\n').filter(Boolean)));
        child.stderr.on('data', (chunk) => (stderr += String(chunk)));
        child.on('exit', (status) => {
          if (status !== 0 && status !== null) errors.push(`exited with ${status}: ${stderr}`);
        });
        try {
          await waitForExpected(attrs, seen, errors, seconds);
          console.log(`ok   ${README_NAME}:${block.line} node script`);
        } catch (error) {
          if (!(error instanceof Failure)) throw error;
          fail(block.line, `the node script ${error.message}${stderr ? `\n  stderr:\n${shown(stderr)}` : ''}`);
        }
        child.kill('SIGTERM');
        continue;
      }
    }
  } finally {
    for (const close of live) await close().catch(() => {});
    for (const shell of shells.values()) shell.close();
    await browser?.close();
    if (server) {
      const status = await server.stop();
      if (status !== 0) fail(1, `SIGTERM should end the server with exit status 0 (README: shutdown), got ${status}`);
    }
    rmSync(dir, { recursive: true, force: true });
  }

  const summary = `${counts.commands} shell commands, ${counts.browser} browser and ${counts.node} node scripts, ${counts.console} console block(s) checked; ${counts.skipped} blocks skipped`;
  if (failures.length) {
    console.error(`\n${README_NAME}: ${failures.length} example(s) did not do what README says (${summary}):`);
    for (const f of failures) console.error(`  ${f.split('\n')[0]}`);
    process.exit(1);
  }
  console.log(`\n${README_NAME}: every example did what README says (${summary})`);
}

const STORAGE_SHIM = `if (!globalThis.localStorage) {
  const items = new Map();
  globalThis.localStorage = {
    getItem: (k) => (items.has(String(k)) ? items.get(String(k)) : null),
    setItem: (k, v) => void items.set(String(k), String(v)),
    removeItem: (k) => void items.delete(String(k)),
    clear: () => items.clear(),
  };
}
`;

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    console.error(error.stack || String(error));
    process.exit(1);
  });
}
