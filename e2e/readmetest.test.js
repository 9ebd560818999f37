/**
 * e2e/readmetest.test.js: the README test (scripts/readme-test.mjs) can fail. It runs the
 * runner on small READMEs of its own: a block without a marker, an output README shows
 * that the server does not give, a command that fails, one that hangs, a script that
 * throws and one that repeats a line it must print once must each fail the run naming their line; a README whose examples hold passes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const RUNNER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'scripts', 'readme-test.mjs');
const FENCE = '```';

function runOn(markdown) {
  const dir = mkdtempSync(path.join(tmpdir(), 'readme-test-'));
  const file = path.join(dir, 'README.md');
  writeFileSync(file, markdown);
  try {
    const run = spawnSync(process.execPath, [RUNNER, file], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    return { status: run.status, output: run.stdout + run.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a shell or js block without a marker fails the run, naming its line', () => {
  const { status, output } = runOn(['# R', '', `${FENCE}sh`, 'echo hi', FENCE, ''].join('\n'));
  assert.equal(status, 1, output);
  assert.match(output, /README\.md:3: a ```sh block without a <!-- readme-test: \.\.\. --> marker/);
});

test('a wrong output, a failing command, a hanging one, a throwing script and a repeated line each fail, naming their line', () => {
  const markdown = [
    '<!-- readme-test: sh -->',
    `${FENCE}sh`,
    '$ curl -s localhost:8080/api/users',
    '{"error":"...","code":"forbidden",...}',
    '$ false',
    FENCE,
    '',
    '<!-- readme-test: sh session=slow timeout=1 -->',
    `${FENCE}sh`,
    '$ sleep 30',
    '$ echo never',
    FENCE,
    '',
    '<!-- readme-test: browser expect="never printed" timeout=2 -->',
    `${FENCE}js`,
    "throw new Error('boom');",
    FENCE,
    '',
    '<!-- readme-test: node expect="b" unique="..." -->',
    `${FENCE}js`,
    "for (const line of ['a', 'b', 'a']) console.log(line);",
    FENCE,
    '',
  ].join('\n');
  const { status, output } = runOn(markdown);
  assert.equal(status, 1, output);
  assert.match(output, /README\.md:4: `curl -s localhost:8080\/api\/users`: README shows .*forbidden/);
  assert.match(output, /"code":"unauthenticated"/, 'the real output is shown');
  assert.match(output, /README\.md:5: `false` exited with 1/);
  assert.match(output, /README\.md:10: `sleep 30` did not finish within 1 s/);
  assert.match(output, /README\.md:11: `echo never` not run: this session stopped at a command that did not finish/);
  assert.match(output, /README\.md:15: the browser script threw: Error: boom/);
  assert.match(output, /README\.md:20: the node script printed "a" twice/);
  assert.match(output, /6 example\(s\) did not do what README says/);
});

test('examples that hold pass: sessions keep their variables, streams are stopped, outputs match with ...', () => {
  const markdown = [
    '<!-- readme-test: sh session=a -->',
    `${FENCE}sh`,
    '$ X=$(curl -s localhost:8080/healthz)',
    '$ echo "$X"',
    '{"status":...}',
    FENCE,
    '',
    '<!-- readme-test: sh session=a -->',
    `${FENCE}sh`,
    'test -n "$X"            # the same shell',
    'switchboard user list   # the binary on PATH, the server\'s database',
    FENCE,
    '',
    '<!-- readme-test: sh session=a stream=1 -->',
    `${FENCE}sh`,
    '$ while :; do echo "tick $X"; sleep 0.2; done      # runs until stopped',
    'tick {"status":...}',
    FENCE,
    '',
    '<!-- readme-test: node expect="ok ..." -->',
    `${FENCE}js`,
    "const r = await fetch('http://127.0.0.1:8080/healthz');",
    "console.log('ok', r.status);",
    FENCE,
    '',
    '<!-- readme-test: skip reason="an example" -->',
    `${FENCE}sh`,
    'exit 1',
    FENCE,
    '',
  ].join('\n');
  const { status, output } = runOn(markdown);
  assert.equal(status, 0, output);
  assert.match(output, /every example did what README says \(5 shell commands, 0 browser and 1 node scripts, 0 console block\(s\) checked; 1 blocks skipped\)/);
});
