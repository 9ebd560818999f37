/**
 * notifybus.js hands the header bell's live notifications to the chat's connection on
 * the chat page, so that page holds ONE realtime connection, not the chat's and the
 * bell's. bell.js asks to follow the person's notification room from a position
 * (`followNotifications`); chat.js, when it runs, provides the following
 * (`provideNotifications`): it joins `user:{id}` on its connection and passes each
 * message and reset back. A request made before the chat is ready waits for it.
 * On every other page the bell keeps its own `/notifications` stream.
 */

const waiting = [];
let provider = null;

/**
 * @param {{since: number, onMessage: (m: object) => void, onReset: () => void}} request
 */
export function followNotifications(request) {
  if (provider) provider(request);
  else waiting.push(request);
}

/** @param {(request: {since: number, onMessage: Function, onReset: Function}) => void} follow */
export function provideNotifications(follow) {
  provider = follow;
  for (const request of waiting.splice(0)) follow(request);
}

/** Whether this page's chat carries the bell (the chat page: the `#chat` shell). */
export function chatCarriesBell(doc = globalThis.document) {
  return Boolean(doc?.getElementById?.('chat'));
}
