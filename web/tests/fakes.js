// Fakes shared by the unit tests that drive web/static/realtime.js: a WebSocket the
// test opens, feeds and drops by hand, and timers the test runs by hand.

/** A WebSocket class that records what is sent, and every socket made with it. */
export function fakeWebSocket() {
  const sockets = [];
  class FakeWebSocket {
    constructor(url) {
      this.url = url;
      this.sent = [];
      this.closed = null;
      sockets.push(this);
    }
    send(text) {
      this.sent.push(JSON.parse(text));
    }
    close(code, reason) {
      this.closed = { code, reason };
    }
    // test helpers
    open() {
      this.onopen?.();
    }
    receive(frame) {
      this.onmessage?.({ data: JSON.stringify(frame) });
    }
    drop() {
      this.onclose?.({ code: 1006 });
    }
  }
  return { FakeWebSocket, sockets };
}

/** setTimeout/clearTimeout that only queue; the test runs what is due. */
export function manualTimers() {
  const queue = [];
  return {
    queue,
    setTimeout(fn, ms) {
      const timer = { fn, ms, cancelled: false };
      queue.push(timer);
      return timer;
    },
    clearTimeout(timer) {
      if (timer) timer.cancelled = true;
    },
    /** Runs the pending timers (not those they add). */
    runAll() {
      for (const timer of queue.splice(0)) if (!timer.cancelled) timer.fn();
    },
    /** Runs the pending timers that wait `ms` (not those they add). */
    run(ms) {
      for (const timer of queue.filter((t) => t.ms === ms && !t.cancelled)) {
        timer.cancelled = true;
        timer.fn();
      }
    },
  };
}
