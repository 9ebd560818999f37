/**
 * livedirectory.js keeps an open directory page current: it follows the hub's
 * `directory` room from the position the page's list reflects (rendered by the server
 * as `data-position`, or the `Switchboard-Position` of a reloaded list) and hands each
 * message's `event` (`{type: user_created | user_updated | user_deleted, user}`) to
 * `apply`. When the hub answers `reset` (the position is older than what it keeps),
 * the list is reloaded with `reload()`, which resolves with the position of the new
 * list, and following starts again from there: no gap, no duplicate.
 *
 * On the same connection it follows the `online` room, whose presence is everyone
 * with a live connection (any page, any instance): `onOnline` gets the snapshot at
 * each (re)join (`{room, count, users}`) and then each `user_joined` / `user_left`.
 *
 * @example
 *   followDirectory({ position: 12, apply: applyDirectoryEvent, reload: reloadList });
 */
import { connect as realtimeConnect } from './realtime.js';

export const DIRECTORY_ROOM = 'directory';
export const ONLINE_ROOM = 'online';

/**
 * @param {{position: number|null, apply: (event: object) => void,
 *          reload: () => Promise<number|null|undefined>,
 *          onStatus?: (status: string, transport: string|null) => void,
 *          onOnline?: (change: {type?: string, room: string, users?: object[], user?: object}) => void,
 *          connect?: typeof realtimeConnect}} options
 * @returns {{close(): void, readonly live: object|null}}
 */
export function followDirectory({ position, apply, reload, onStatus = () => {}, onOnline = () => {}, connect = realtimeConnect }) {
  let live = null;
  let closed = false;
  let generation = 0;

  function start(from) {
    const gen = ++generation;
    const usable = from != null && Number.isFinite(Number(from));
    live = connect({
      rooms: usable ? { [DIRECTORY_ROOM]: Number(from), [ONLINE_ROOM]: null } : [DIRECTORY_ROOM, ONLINE_ROOM],
      focus: DIRECTORY_ROOM,
      onMessage(message) {
        if (gen !== generation || message?.room !== DIRECTORY_ROOM) return;
        if (message.event && typeof message.event === 'object') apply(message.event);
      },
      onPresence(snapshot) {
        if (gen === generation && snapshot?.room === ONLINE_ROOM) onOnline({ type: 'presence', ...snapshot });
      },
      onJoined(change) {
        if (gen === generation && change?.room === ONLINE_ROOM) onOnline({ ...change, type: 'user_joined' });
      },
      onLeft(change) {
        if (gen === generation && change?.room === ONLINE_ROOM) onOnline({ ...change, type: 'user_left' });
      },
      onReset(data) {
        if (gen !== generation || (data?.room && data.room !== DIRECTORY_ROOM)) return;
        restart();
      },
      onStatus,
    });
  }

  async function restart() {
    const gen = ++generation; // events of the old subscription are dropped from now on
    live?.close();
    live = null;
    let from = null;
    try {
      from = await reload();
    } catch {
      from = null;
    }
    if (closed || gen !== generation) return;
    start(from);
  }

  start(position);
  return {
    get live() {
      return live;
    },
    close() {
      closed = true;
      generation += 1;
      live?.close();
      live = null;
    },
  };
}
