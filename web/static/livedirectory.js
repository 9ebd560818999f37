/**
 * livedirectory.js keeps an open directory page current: it follows the hub's
 * `directory` room from the position the page's list reflects (rendered by the server
 * as `data-position`, or the `Switchboard-Position` of a reloaded list) and hands each
 * message's `event` (`{type: user_created | user_updated | user_deleted, user}`) to
 * `apply`. When the hub answers `reset` (the position is older than what it keeps),
 * the list is reloaded with `reload()`, which resolves with the position of the new
 * list, and following starts again from there: no gap, no duplicate.
 *
 * @example
 *   followDirectory({ position: 12, apply: applyDirectoryEvent, reload: reloadList });
 */
import { connect as realtimeConnect } from './realtime.js';

export const DIRECTORY_ROOM = 'directory';

/**
 * @param {{position: number|null, apply: (event: object) => void,
 *          reload: () => Promise<number|null|undefined>,
 *          onStatus?: (status: string, transport: string|null) => void,
 *          connect?: typeof realtimeConnect}} options
 * @returns {{close(): void, readonly live: object|null}}
 */
export function followDirectory({ position, apply, reload, onStatus = () => {}, connect = realtimeConnect }) {
  let live = null;
  let closed = false;
  let generation = 0;

  function start(from) {
    const gen = ++generation;
    const usable = from != null && Number.isFinite(Number(from));
    live = connect({
      rooms: usable ? { [DIRECTORY_ROOM]: Number(from) } : [DIRECTORY_ROOM],
      onMessage(message) {
        if (gen !== generation || message?.room !== DIRECTORY_ROOM) return;
        if (message.event && typeof message.event === 'object') apply(message.event);
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
