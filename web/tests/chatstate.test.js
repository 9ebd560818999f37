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

describe('unread, direct messages and mentions (issue 21)', async () => {
  const { Unread, directRooms, firstUnread, isChatRoom, isDirectRoom, mention, roomLabel, titleFor } = await import('../static/chatstate.js');

  test('direct-message rooms have one spelling, the smaller id first', () => {
    for (const ok of ['dm:1:2', 'dm:3:17']) assert.ok(isDirectRoom(ok) && isChatRoom(ok), ok);
    for (const bad of ['dm:2:1', 'dm:1:1', 'dm:01:2', 'dm:0:2', 'dm:1', 'user:1', 'general']) assert.ok(!isDirectRoom(bad), bad);
    assert.ok(isChatRoom('general'));
    assert.ok(!isChatRoom('rooms:1'));
  });

  test('the list shows direct messages by the other person, and hides the server rooms', () => {
    const listed = [
      { name: 'dm:1:3', peer: { id: 3, name: 'Zed' } },
      { name: 'dm:1:2', peer: { id: 2, name: 'Ann' } },
      { name: 'rooms' },
      { name: 'general' },
    ];
    assert.deepEqual(directRooms(listed).map((r) => r.peer.name), ['Ann', 'Zed']);
    assert.deepEqual(roomsToShow(listed, 'general').map((r) => r.name), ['general']);
    assert.equal(roomLabel('dm:1:2', listed), '@Ann');
    assert.equal(roomLabel('general', listed), '#general');
    assert.equal(roomLabel('dm:5:6', listed), 'Direct message');
  });

  test('unread counts start from the server and move with live messages and read markers', () => {
    const unread = new Unread();
    unread.load([{ name: 'ops', read_id: 2, last_id: 4, unread: 2, mentions: 1 }, { name: 'general', read_id: 0, last_id: 0, unread: 0 }]);
    assert.equal(unread.total('general'), 2);
    // Someone else's message, not on screen: unread; one's own, or one on screen: not.
    assert.ok(unread.arrived({ room: 'ops', id: 5, user: { id: 9 } }, 1, false));
    assert.ok(!unread.arrived({ room: 'ops', id: 6, user: { id: 1 } }, 1, false));
    assert.ok(!unread.arrived({ room: 'general', id: 1, user: { id: 9 } }, 1, true));
    assert.equal(unread.count('ops'), 3);
    assert.equal(unread.total('general'), 3);
    assert.equal(unread.total('ops'), 0);
    assert.ok(unread.mentioned('ops', 6));
    assert.ok(!unread.mentioned('ops', 1), 'a mention already read');
    assert.equal(unread.mentionsIn('ops'), 2);
    // Read part of it elsewhere: only the server can say what is left.
    assert.equal(unread.read('ops', 5), false);
    // Read all of it: nothing left.
    assert.equal(unread.read('ops', 6), true);
    assert.equal(unread.count('ops'), 0);
    assert.equal(unread.mentionsIn('ops'), 0);
    assert.equal(unread.readId('ops'), 6);
    // A message replayed after the read position was moved is not unread again.
    assert.ok(!unread.arrived({ room: 'ops', id: 6, user: { id: 9 } }, 1, false));
  });

  test('a room list answered before a live message was stored does not un-count it', () => {
    const unread = new Unread();
    unread.load([{ name: 'ops', read_id: 0, last_id: 0, unread: 0 }]);
    assert.ok(unread.arrived({ room: 'ops', id: 1, user: { id: 9 } }, 1, false));
    // The list was read from the database before message 1 was stored.
    unread.load([{ name: 'ops', read_id: 0, last_id: 0, unread: 0 }]);
    assert.equal(unread.count('ops'), 1);
    // A later list that has it counts it once.
    unread.load([{ name: 'ops', read_id: 0, last_id: 1, unread: 1 }]);
    assert.equal(unread.count('ops'), 1);
    // Read here meanwhile: a stale list does not bring it back.
    unread.read('ops', 1);
    unread.load([{ name: 'ops', read_id: 0, last_id: 1, unread: 1 }]);
    assert.equal(unread.count('ops'), 0);
  });

  test('the tab title counts what is unread elsewhere', () => {
    assert.equal(titleFor('#general', 0), '#general · Chat · Switchboard');
    assert.equal(titleFor('#general', 3), '(3) #general · Chat · Switchboard');
    assert.equal(titleFor('@Ann', 250), '(99+) @Ann · Chat · Switchboard');
  });

  test('the divider goes before the first message of someone else after the read position', () => {
    const messages = [
      { id: 3, user: { id: 9 } },
      { id: 4, user: { id: 1 } },
      { id: 5, user: { id: 9 } },
    ];
    assert.equal(firstUnread(messages, 3, 1), 5);
    assert.equal(firstUnread(messages, 2, 1), 3);
    assert.equal(firstUnread(messages, 5, 1), null);
  });

  test('mentions are written as the server recognises them', () => {
    assert.equal(mention('Ann Lee'), '@[Ann Lee]');
    assert.equal(mention('odd]name[\n'), '@[odd name]');
  });
});
