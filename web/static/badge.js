/**
 * badge.js owns what the chat's connection badge says for realtime.js's
 * `onStatus(status, transport)`: people's words (Connected, Reconnecting…, Offline),
 * with the transport in the tooltip only, and the `data-state` it is styled by
 * (`live`, `pending` or `down`).
 */

const TRANSPORT_NAMES = { websocket: 'WebSocket', sse: 'Server-Sent Events', longpoll: 'long polling' };

/** @returns {{state: 'live'|'pending'|'down', text: string, title: string}} */
export function badgeFor(status, transport) {
  const via = TRANSPORT_NAMES[transport] ?? transport ?? '';
  switch (status) {
    case 'connected':
      return { state: 'live', text: 'Connected', title: via ? `Connected over ${via}; new messages arrive live` : 'Connected' };
    case 'connecting':
      return { state: 'pending', text: 'Connecting…', title: via ? `Connecting over ${via}` : 'Connecting' };
    case 'reconnecting':
      return { state: 'pending', text: 'Reconnecting…', title: 'The connection was lost; trying again. Messages you send wait until it is back.' };
    case 'offline':
      return { state: 'down', text: 'Offline', title: 'This device has no network. Messages you send wait until it is back.' };
    case 'unsupported':
      return { state: 'down', text: 'Offline', title: 'This browser supports none of the live transports' };
    default:
      return { state: 'down', text: 'Offline', title: 'Not connected' };
  }
}
