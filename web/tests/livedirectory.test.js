// Unit tests of web/static/livedirectory.js with a fake realtime connect().
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { followDirectory } from '../static/livedirectory.js';

function fakeConnect() {
  const opened = [];
  const connect = (options) => {
    const live = { options, closed: false, close() { this.closed = true; } };
    opened.push(live);
    return live;
  };
  return { connect, opened };
}

const change = (id, type = 'user_updated') => ({
  room: 'directory', id, user: { id: 0, name: 'Switchboard' }, text: '', event: { type, user: { id: 7, name: `v${id}` } },
});

test('follows the directory room from the rendered position and applies each event', () => {
  const { connect, opened } = fakeConnect();
  const applied = [];
  followDirectory({ position: 12, apply: (e) => applied.push(e), reload: async () => 0, connect });
  assert.deepEqual(opened[0].options.rooms, { directory: 12, online: null });
  opened[0].options.onMessage(change(13, 'user_created'));
  opened[0].options.onMessage({ ...change(14), room: 'general' }); // not ours
  opened[0].options.onMessage({ ...change(15), event: undefined }); // no event
  assert.deepEqual(applied, [{ type: 'user_created', user: { id: 7, name: 'v13' } }]);
});

test('without a position it follows from now', () => {
  const { connect, opened } = fakeConnect();
  followDirectory({ position: null, apply() {}, reload: async () => 0, connect });
  assert.deepEqual(opened[0].options.rooms, ['directory', 'online']);
});

test('a reset reloads the list and follows on from the position the reload reflects', async () => {
  const { connect, opened } = fakeConnect();
  const applied = [];
  let reloads = 0;
  let finishReload;
  const reload = () => {
    reloads += 1;
    return new Promise((resolve) => { finishReload = resolve; });
  };
  followDirectory({ position: 3, apply: (e) => applied.push(e), reload, connect });
  opened[0].options.onReset({ room: 'directory', reason: 'history_pruned' });
  assert.equal(opened[0].closed, true);
  assert.equal(reloads, 1);
  // Late events of the old subscription are not applied over the reloaded list.
  opened[0].options.onMessage(change(4));
  assert.deepEqual(applied, []);
  finishReload(40);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(opened.length, 2);
  assert.deepEqual(opened[1].options.rooms, { directory: 40, online: null });
  opened[1].options.onMessage(change(41));
  assert.equal(applied.length, 1);
});

test('a failed reload follows from now; close stops everything', async () => {
  const { connect, opened } = fakeConnect();
  const follower = followDirectory({ position: 3, apply() {}, reload: async () => { throw new Error('down'); }, connect });
  opened[0].options.onReset({ room: 'directory' });
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(opened[1].options.rooms, ['directory', 'online']);
  follower.close();
  assert.equal(opened[1].closed, true);
  assert.equal(follower.live, null);
});

test('a close during a reload does not reconnect', async () => {
  const { connect, opened } = fakeConnect();
  let finishReload;
  const follower = followDirectory({ position: 1, apply() {}, reload: () => new Promise((r) => { finishReload = r; }), connect });
  opened[0].options.onReset({ room: 'directory' });
  follower.close();
  finishReload(9);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(opened.length, 1);
});
