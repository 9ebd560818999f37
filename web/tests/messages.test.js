// Unit tests of web/static/messages.js's pure parts: which text becomes a link (and
// which never does), the day dividers and groups of a run of messages, and the
// mention a pick in the composer inserts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { GROUP_MS, dayKey, dayLabel, layout, linkParts, mentionAt, mentionHandle, mentionedHandles, mentionsViewer, safeHref } from '../static/messages.js';

const links = (text) => linkParts(text).filter((p) => p.href).map((p) => p.href);

describe('links', () => {
  test('http and https URLs become links; the text around them stays text', () => {
    assert.deepEqual(linkParts('see https://example.com/a?b=1#c now'), [
      { text: 'see ' },
      { text: 'https://example.com/a?b=1#c', href: 'https://example.com/a?b=1#c' },
      { text: ' now' },
    ]);
    assert.deepEqual(links('http://x.org and https://y.org/p'), ['http://x.org/', 'https://y.org/p']);
  });

  test('mixed-case schemes are http(s) all the same, written back normalized', () => {
    assert.deepEqual(links('HTTPS://Example.COM/Path and HtTp://x.org'), ['https://example.com/Path', 'http://x.org/']);
  });

  test('no other scheme is ever a link: javascript:, data:, vbscript:, file:, in any case', () => {
    for (const text of [
      'javascript:alert(1)',
      'JaVaScRiPt:alert(document.cookie)',
      ' javascript://example.com/%0aalert(1)',
      'data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==',
      'DATA:text/html,<script>alert(1)</script>',
      'vbscript:msgbox(1)',
      'file:///etc/passwd',
      'ftp://example.com/x',
      'httpx://example.com',
      'https:alert(1)',
      'https://',
    ]) {
      assert.deepEqual(links(text), [], text);
      assert.equal(linkParts(text).map((p) => p.text).join(''), text, 'the text is kept whole');
    }
    assert.equal(safeHref('javascript:alert(1)'), null);
    assert.equal(safeHref('data:,x'), null);
  });

  test('text that looks like HTML stays text, and a URL ends before markup characters', () => {
    const text = '<img src=x onerror=alert(1)> <a href="javascript:alert(1)">https://ok.example/</a>';
    const parts = linkParts(text);
    assert.equal(parts.map((p) => p.text).join(''), text);
    assert.deepEqual(links(text), ['https://ok.example/']);
    assert.deepEqual(links('https://a.example/"onmouseover="alert(1)'), ['https://a.example/']);
  });

  test('sentence punctuation after a URL is not part of it; balanced parentheses are', () => {
    assert.deepEqual(links('Look: https://example.com/page.'), ['https://example.com/page']);
    assert.deepEqual(links('(see https://example.com/x)'), ['https://example.com/x']);
    assert.deepEqual(links('https://en.wikipedia.org/wiki/Fish_(food)!'), ['https://en.wikipedia.org/wiki/Fish_(food)']);
    assert.deepEqual(links('a,https://x.org/a,b, c'), ['https://x.org/a,b']);
  });

  test('a word that merely contains http:// is not split into a link', () => {
    assert.deepEqual(links('xhttps://example.com'), []);
  });
});

describe('layout: groups and day dividers', () => {
  const at = (iso, userId) => ({ ts: iso, userId });

  test('one author within a few minutes is one group; another author or a pause starts a new one', () => {
    const plan = layout([
      at('2026-12-07T10:00:00', 1),
      at('2026-12-07T10:01:00', 1),
      at('2026-12-07T10:04:59', 1),
      at('2026-12-07T10:05:30', 2),
      at('2026-12-07T10:06:00', 1),
      at('2026-12-07T10:06:30', 1),
      at('2026-12-07T10:30:00', 1),
    ]);
    assert.deepEqual(plan.map((p) => p.grouped), [false, true, true, false, false, true, false]);
    assert.equal(GROUP_MS, 300_000);
  });

  test('a divider starts each day, and a group never crosses midnight', () => {
    const plan = layout([
      at('2026-12-06T23:58:00', 1),
      at('2026-12-06T23:59:00', 1),
      at('2026-12-07T00:00:30', 1),
      at('2026-12-07T09:00:00', 2),
      at('2026-12-09T09:00:00', 2),
    ]);
    assert.deepEqual(plan.map((p) => p.divider), ['2026-12-06', null, '2026-12-07', null, '2026-12-09']);
    assert.deepEqual(plan.map((p) => p.grouped), [false, true, false, false, false]);
  });

  test('entries without a time (being sent) neither group nor divide', () => {
    const plan = layout([at('2026-12-07T10:00:00', 1), at(undefined, 1), at('2026-12-07T10:00:10', 1)]);
    assert.deepEqual(plan, [
      { divider: '2026-12-07', grouped: false },
      { divider: null, grouped: false },
      { divider: null, grouped: true },
    ]);
  });

  test('day labels: Today, Yesterday, then the date', () => {
    const now = new Date('2026-12-07T15:00:00');
    assert.equal(dayLabel('2026-12-07T01:00:00', now), 'Today');
    assert.equal(dayLabel('2026-12-06T23:00:00', now), 'Yesterday');
    assert.match(dayLabel('2026-12-01T12:00:00', now, 'en-GB'), /^Tuesday,? 1 December$/);
    assert.match(dayLabel('2025-12-01T12:00:00', now, 'en-GB'), /^Monday,? 1 December 2025$/);
    assert.equal(dayKey('not a date'), null);
  });
});

describe('mentions', () => {
  test('a one-word name is the handle; otherwise the email’s local part', () => {
    assert.equal(mentionHandle({ name: 'Dana', email: 'dana@example.com' }), '@Dana');
    assert.equal(mentionHandle({ name: 'Björn', email: 'b@example.com' }), '@Björn');
    assert.equal(mentionHandle({ name: 'Dana Scully', email: 'dana.scully@example.com' }), '@dana.scully');
    assert.equal(mentionHandle({ name: 'Dr. Who', email: 'who@example.com' }), '@who');
    assert.equal(mentionHandle({ name: 'A B' }), null);
  });

  test('the term at the caret starts at an @ that begins a word', () => {
    assert.deepEqual(mentionAt('hi @da', 6), { start: 3, query: 'da' });
    assert.deepEqual(mentionAt('@', 1), { start: 0, query: '' });
    assert.equal(mentionAt('mail bob@example', 16), null, 'an address is no mention');
    assert.equal(mentionAt('hi @da and', 10), null, 'the caret left the term');
    assert.deepEqual(mentionAt('(@Björ', 6), { start: 1, query: 'Björ' });
  });
});

describe('mentions of the viewer', () => {
  const dana = { name: 'Dana Scully', email: 'dana.scully@fbi.example' };
  test('are read as the server reads them', () => {
    assert.deepEqual([...mentionedHandles('hi @Bob, @[Dana Scully] and @ann. mail bob@example.com')], ['bob', 'dana scully', 'ann']);
  });
  test('name the viewer by whole name or by the email before the @', () => {
    assert.equal(mentionsViewer('ping @[dana scully]', dana), true);
    assert.equal(mentionsViewer('ping @Dana.Scully.', dana), true);
    assert.equal(mentionsViewer('ping @Dana', dana), false, 'a first name alone is not a handle');
    assert.equal(mentionsViewer('write to dana.scully@fbi.example', dana), false, 'an address is not a mention');
    assert.equal(mentionsViewer('@Bob', dana), false);
    assert.equal(mentionsViewer('@[Dana Scully]', null), false);
  });
});
