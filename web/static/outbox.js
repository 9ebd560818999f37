/**
 * outbox.js owns the chat's messages on their way out: each gets its client_id once,
 * when it is written, and keeps it through every attempt, so however often it is sent
 * (a WebSocket send, the POST it falls back to, a Retry, a retry on reconnect) the
 * server stores it once. A message that failed is tried again when the connection
 * comes back (`retryFailed`), not only when the person presses Retry.
 *
 * No DOM: the page draws each entry from `onChange(entry)`; Node tests drive it.
 */

function randomId() {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === 'function') return c.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

/**
 * Whether the server refused the message (too long, a room it may not write to):
 * sending it again unchanged would be refused again. A lost connection, a timeout
 * or an overloaded server (408, 429, 5xx) is not a refusal.
 */
export function refused(error) {
  if (error?.status === 0) return false; // ajax.js: no answer at all (network, timeout)
  const status = Number(error?.status);
  if (status >= 400 && status < 500) return status !== 408 && status !== 429;
  // A WebSocket `error` frame names its code; a network failure has neither.
  return !status && typeof error?.code === 'string' && error.code !== 'rate_limited';
}

export class Outbox {
  /**
   * @param {(room: string, text: string, clientId: string) => Promise<object>} send
   * @param {(entry: {clientId: string, room: string, text: string, state: 'sending'|'sent'|'failed', error?: any, message?: object}) => void} [onChange]
   */
  constructor(send, onChange = () => {}) {
    this.send = send;
    this.onChange = onChange;
    /** client_id -> entry, in the order written */
    this.entries = new Map();
  }

  /** A new message: stored with its client_id and sent. */
  add(room, text, clientId = randomId()) {
    const entry = { clientId, room, text, state: 'sending' };
    this.entries.set(clientId, entry);
    this.attempt(entry);
    return entry;
  }

  /** Sends `entry` (again), with the client_id it was given. */
  attempt(entry) {
    entry.state = 'sending';
    delete entry.error;
    this.onChange(entry);
    const attempt = (entry.attempts = (entry.attempts ?? 0) + 1);
    return this.send(entry.room, entry.text, entry.clientId).then(
      (message) => {
        if (entry.attempts !== attempt || !this.entries.has(entry.clientId)) return;
        this.delivered(entry.clientId, message);
      },
      (error) => {
        if (entry.attempts !== attempt || !this.entries.has(entry.clientId)) return;
        entry.state = 'failed';
        entry.error = error;
        entry.refused = refused(error);
        this.onChange(entry);
      },
    );
  }

  retry(clientId) {
    const entry = this.entries.get(clientId);
    if (entry && entry.state === 'failed') this.attempt(entry);
  }

  /** The connection is back: every message that failed on the way (not refused) goes again. */
  retryFailed() {
    for (const entry of [...this.entries.values()]) if (entry.state === 'failed' && !entry.refused) this.attempt(entry);
  }

  /** Stored (the answer or the echo carried its client_id): it leaves the outbox. */
  delivered(clientId, message) {
    const entry = this.entries.get(clientId);
    if (!entry) return;
    this.entries.delete(clientId);
    entry.state = 'sent';
    entry.message = message;
    this.onChange(entry);
  }

  /** Forgets a message (e.g. a refused one the person dismissed). */
  drop(clientId) {
    this.entries.delete(clientId);
  }

  get failed() {
    return [...this.entries.values()].filter((entry) => entry.state === 'failed');
  }
}
