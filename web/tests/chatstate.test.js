// Unit tests of web/static/chatstate.js: the chat page's logic without a DOM.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { OpenRooms, Presence, connectionLabel, formatTime, isRoomName, olderPage, roomsToShow, sendable } from '../static/chatstate.js';

describe('room names', () => {
  test('follow the hub: 1-64 of A-Z a-z 0-9 _ - ., starting with a letter or digit', () => {
    for (const ok of ['general', 'a', 'dev.team-1', 'X_9', 'a'.repeat(64)]) assert.ok(isRoomName(ok), ok);
    for (const bad of ['', '-dash', '.dot', 'a b', 'é', '<b>', 'a'.repeat(65), 'user:1', null, 42]) {
      assert.ok(!isRoomName(bad), String(bad));
    }
  });

  test('the list hides server-only rooms, adds general and the open room, sorts by name', () => {
    const rooms = roomsToShow(
      [{ name: 'zeta', present: 2 }, { name: 'directory', present: 5 }, { name: 'user:3' }, { name: 'alpha', present: '1' }],
      'new-room',
    );
    assert.deepEqual(rooms, [
      { name: 'alpha', present: 1 },
      { name: 'general', present: 0 },
      { name: 'new-room', present: 0 },
      { name: 'zeta', present: 2 },
    ]);
    assert.deepEqual(roomsToShow(undefined, 'general'), [{ name: 'general', present: 0 }]);
  });

  test('open rooms are listed even before their first message', () => {
    assert.deepEqual(roomsToShow([], 'b', ['c', 'b', 'bad name']).map((r) => r.name), ['b', 'c', 'general']);
  });
});

describe('connection badge', () => {
  test('names the transport when live', () => {
    assert.deepEqual(connectionLabel('connected', 'websocket'), { state: 'live', text: 'Live · WebSocket' });
    assert.deepEqual(connectionLabel('connected', 'sse'), { state: 'live', text: 'Live · SSE' });
    assert.deepEqual(connectionLabel('connected', 'longpoll'), { state: 'live', text: 'Live · long polling' });
  });

  test('says when it is on the way or down', () => {
    assert.equal(connectionLabel('connecting', 'sse').text, 'Connecting · SSE…');
    assert.equal(connectionLabel('connecting', null).text, 'Connecting…');
    assert.equal(connectionLabel('reconnecting', 'websocket').state, 'pending');
    assert.deepEqual(connectionLabel('closed', null), { state: 'down', text: 'Offline' });
    assert.equal(connectionLabel('unsupported', null).state, 'down');
  });
});

describe('presence', () => {
  const ann = { id: 1, name: 'Ann' };
  const bob = { id: 2, name: 'Bob' };
  const cy = { id: 3, name: 'Cy' };

  test('a snapshot, then joins and leaves; the count is the server’s', () => {
    const p = new Presence();
    p.snapshot({ room: 'general', count: 2, users: [bob, ann] });
    assert.deepEqual(p.names(1), ['you', 'Bob']);
    assert.deepEqual(p.describe(1), { count: '2 here', names: ['you', 'Bob'], more: 0 });
    p.joined({ user: cy, count: 3 });
    assert.deepEqual(p.names(1), ['you', 'Bob', 'Cy']);
    p.left({ user: bob, count: 2 });
    assert.deepEqual(p.describe(1), { count: '2 here', names: ['you', 'Cy'], more: 0 });
    p.joined({ user: cy, count: 2 }); // a second tab of Cy: no double
    assert.deepEqual(p.names(1), ['you', 'Cy']);
  });

  test('members beyond the listed page are counted, not named', () => {
    const p = new Presence();
    p.snapshot({ count: 250, users: [ann, bob] });
    assert.deepEqual(p.describe(2), { count: '250 here', names: ['you', 'Ann'], more: 248 });
    p.snapshot({ count: 0, users: [] });
    assert.deepEqual(p.describe(2), { count: 'Nobody here', names: [], more: 0 });
  });
});

describe('times and the composer', () => {
  test('today shows the time only; another day shows the date too', () => {
    const now = new Date('2026-11-24T15:00:00');
    const today = formatTime(new Date('2026-11-24T14:05:00').toISOString(), now, 'en-GB');
    assert.equal(today, '14:05');
    const earlier = formatTime(new Date('2026-11-20T09:07:00').toISOString(), now, 'en-GB');
    assert.equal(earlier, '20 Nov, 09:07');
    assert.equal(formatTime('not a time', now), '');
  });

  test('blank text is not sendable', () => {
    assert.equal(sendable(''), false);
    assert.equal(sendable('  \n\t'), false);
    assert.equal(sendable(undefined), false);
    assert.equal(sendable(' hi '), true);
  });
});

describe('open rooms', () => {
  test('a viewed room stays open; messages elsewhere count as unread until it is viewed', () => {
    const open = new OpenRooms(3);
    open.view('a');
    open.view('b');
    open.arrived('a', 'b');
    open.arrived('a', 'b');
    open.arrived('b', 'b'); // shown: read
    open.arrived('zzz', 'b'); // not open
    assert.equal(open.unreadIn('a'), 2);
    assert.equal(open.unreadIn('b'), 0);
    assert.equal(open.unreadIn('zzz'), 0);
    assert.deepEqual(open.view('a'), []);
    assert.equal(open.unreadIn('a'), 0);
    assert.deepEqual(open.rooms, ['b', 'a']);
  });

  test('past the cap, the room viewed longest ago closes', () => {
    const open = new OpenRooms(2);
    open.view('a');
    open.view('b');
    open.arrived('a', 'b');
    assert.deepEqual(open.view('c'), ['a']);
    assert.deepEqual(open.rooms, ['b', 'c']);
    assert.equal(open.unreadIn('a'), 0);
    assert.equal(open.close('b'), true);
    assert.equal(open.close('b'), false);
    assert.deepEqual(open.rooms, ['c']);
  });
});

describe('scrolling back', () => {
  const page = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => ({ id: from + i }));

  test('a full page adds what is not shown, oldest first, and more may remain', () => {
    const { add, more } = olderPage([...page(51, 100)].reverse(), new Set([100, 101]), 50);
    assert.deepEqual(add.map((m) => m.id), page(51, 99).map((m) => m.id));
    assert.equal(more, true);
  });

  test('a short page, or one reaching message 1, is the start of the room', () => {
    assert.equal(olderPage(page(1, 20), new Set(), 50).more, false);
    assert.equal(olderPage(page(1, 50), new Set(), 50).more, false);
    assert.equal(olderPage([], new Set(), 50).more, false);
    assert.deepEqual(olderPage(null, new Set(), 50), { add: [], more: false });
  });
});
