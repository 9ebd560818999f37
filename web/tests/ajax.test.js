// Unit tests of web/static/ajax.js. Time is injected (sleep/random/now) or mocked
// (node:test mock timers), and fetch is a double, so every test is deterministic.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import defaultClient, {
  ApiError,
  clearCache as defaultClearCache,
  createClient,
  delete as defaultDelete,
  get as defaultGet,
  isAbortError,
  nextLink,
  parseLinkHeader,
  patch as defaultPatch,
  post as defaultPost,
  put as defaultPut,
  redirectToLogin,
  request as defaultRequest,
} from '../static/ajax.js';

const START = 1_700_000_000_000; // a whole second, so HTTP dates convert exactly

function jsonResponse(status, body, headers = {}) {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json', ...headers },
  });
}

/** A fetch double: `respond(call, n)` returns the Response for the n-th call (or throws). */
function fakeFetch(respond = () => jsonResponse(200, { ok: true })) {
  const calls = [];
  const fetch = (url, init) => {
    const call = { url, init, method: init.method, headers: new Headers(init.headers) };
    calls.push(call);
    return Promise.resolve().then(() => respond(call, calls.length));
  };
  return Object.assign(fetch, { calls });
}

/** A fetch whose responses the test releases by hand, in any order; aborts reject like the real one. */
function manualFetch() {
  const pending = [];
  const fetch = (url, init) =>
    new Promise((resolve, reject) => {
      const entry = { url, init, resolve, aborted: false };
      init.signal?.addEventListener('abort', () => {
        entry.aborted = true;
        reject(new DOMException('This operation was aborted', 'AbortError'));
      });
      pending.push(entry);
    });
  return Object.assign(fetch, { pending });
}

/**
 * A client whose clock, randomness and sleeps are the test's. No timeout unless a test
 * asks, so requests a test leaves pending never fire a real timer later.
 */
function testClient(options = {}) {
  const sleeps = [];
  let clock = START;
  const client = createClient({
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    random: () => 0.5,
    now: () => clock,
    csrfToken: () => 'csrf-123',
    timeout: 0,
    ...options,
  });
  return { client, sleeps, advance: (ms) => (clock += ms) };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

/** Watches a promise so a test can assert it has (or has not) settled without hanging on it. */
function track(promise) {
  const state = { settled: false, value: undefined, error: undefined };
  promise.then(
    (value) => Object.assign(state, { settled: true, value }),
    (error) => Object.assign(state, { settled: true, error }),
  );
  return state;
}

async function rejection(promise) {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail('expected the promise to reject');
}

describe('the client', () => {
  test('createClient returns the verbs, request and clearCache', () => {
    const { client } = testClient({ fetch: fakeFetch() });
    for (const name of ['get', 'post', 'put', 'patch', 'delete', 'request', 'clearCache']) {
      assert.equal(typeof client[name], 'function', name);
    }
  });

  test('the default export is a client and the named helpers are bound to it', async (t) => {
    for (const name of ['get', 'post', 'put', 'patch', 'delete', 'request', 'clearCache']) {
      assert.equal(typeof defaultClient[name], 'function', name);
    }
    const fetch = fakeFetch((call) => jsonResponse(200, { method: call.method }));
    t.mock.method(globalThis, 'fetch', fetch);
    assert.deepEqual(await defaultGet('/api/default-helpers'), { method: 'GET' });
    assert.deepEqual(await defaultPost('/api/default-helpers', {}), { method: 'POST' });
    assert.deepEqual(await defaultPut('/api/default-helpers', {}), { method: 'PUT' });
    assert.deepEqual(await defaultPatch('/api/default-helpers', {}), { method: 'PATCH' });
    assert.deepEqual(await defaultDelete('/api/default-helpers'), { method: 'DELETE' });
    assert.deepEqual(await defaultRequest('GET', '/api/default-helpers/1'), { method: 'GET' });
    defaultClearCache();
    assert.equal(fetch.calls.length, 6);
  });

  test('get resolves to the parsed JSON body', async () => {
    const { client } = testClient({ fetch: fakeFetch(() => jsonResponse(200, { id: 5, name: 'Ada' })) });
    assert.deepEqual(await client.get('/api/users/5'), { id: 5, name: 'Ada' });
  });

  test('a 204 or an empty body resolves to null', async () => {
    const fetch = fakeFetch((call) =>
      call.method === 'DELETE' ? new Response(null, { status: 204 }) : new Response('', { status: 200 }),
    );
    const { client } = testClient({ fetch });
    assert.equal(await client.delete('/api/users/5'), null);
    assert.equal(await client.get('/api/ping'), null);
  });

  test('post, put and patch send their body and method', async () => {
    const fetch = fakeFetch((call) => jsonResponse(200, { method: call.method, body: JSON.parse(call.init.body) }));
    const { client } = testClient({ fetch });
    assert.deepEqual(await client.post('/api/users', { a: 1 }), { method: 'POST', body: { a: 1 } });
    assert.deepEqual(await client.put('/api/users/1', { b: 2 }), { method: 'PUT', body: { b: 2 } });
    assert.deepEqual(await client.patch('/api/users/1', { c: 3 }), { method: 'PATCH', body: { c: 3 } });
  });

  test('meta: true resolves to data, status and headers, so Link and Switchboard-Position are readable', async () => {
    const fetch = fakeFetch(() =>
      jsonResponse(200, [{ id: 1 }], {
        Link: '</api/users?after=abc>; rel="next"',
        'Switchboard-Position': '41',
      }),
    );
    const { client } = testClient({ fetch });
    const { data, status, headers } = await client.request('GET', '/api/users', { meta: true });
    assert.deepEqual(data, [{ id: 1 }]);
    assert.equal(status, 200);
    assert.equal(headers.get('Switchboard-Position'), '41');
    assert.equal(nextLink(headers), '/api/users?after=abc');
    const viaGet = await client.get('/api/users', { meta: true });
    assert.equal(viaGet.headers.get('Switchboard-Position'), '41');
  });
});

describe('Link headers', () => {
  test('parseLinkHeader maps every rel to its URL', () => {
    const links = parseLinkHeader('</api/users?after=x>; rel="next", </api/users>; rel=first');
    assert.deepEqual(links, { next: '/api/users?after=x', first: '/api/users' });
  });

  test('nextLink finds the next URL among several rels, in Headers, plain objects or strings', () => {
    const value = '<https://a.example/p?x=1,2>; rel="prev", <https://a.example/n>; rel="next last"';
    assert.equal(nextLink(value), 'https://a.example/n');
    assert.equal(nextLink(new Headers({ Link: value })), 'https://a.example/n');
    assert.equal(nextLink({ link: value }), 'https://a.example/n');
  });

  test('nextLink is null when there is no next page', () => {
    assert.equal(nextLink(new Headers()), null);
    assert.equal(nextLink('</a>; rel="prev"'), null);
    assert.equal(nextLink(null), null);
  });
});

describe('request shape', () => {
  test('every request accepts JSON and sends same-origin credentials', async () => {
    const fetch = fakeFetch();
    const { client } = testClient({ fetch });
    await client.get('/api/users', { headers: { Accept: 'text/html' } });
    await client.post('/api/users', { name: 'Ada' });
    for (const call of fetch.calls) {
      assert.equal(call.headers.get('Accept'), 'application/json');
      assert.equal(call.init.credentials, 'same-origin');
    }
  });

  test('an object body is sent as JSON with a JSON Content-Type', async () => {
    const fetch = fakeFetch();
    const { client } = testClient({ fetch });
    await client.post('/api/users', { name: 'Ada', tags: ['x'] });
    assert.equal(fetch.calls[0].init.body, '{"name":"Ada","tags":["x"]}');
    assert.equal(fetch.calls[0].headers.get('Content-Type'), 'application/json');
  });

  test('FormData is passed through untouched so fetch sets the multipart boundary', async () => {
    const fetch = fakeFetch();
    const { client } = testClient({ fetch });
    const form = new FormData();
    form.set('a', '1');
    await client.post('/api/upload', form);
    assert.equal(fetch.calls[0].init.body, form);
    assert.equal(fetch.calls[0].headers.get('Content-Type'), null);
  });

  test('unsafe methods send the CSRF token and safe ones do not', async () => {
    const fetch = fakeFetch();
    const { client } = testClient({ fetch });
    await client.get('/api/users');
    await client.post('/api/users', {});
    await client.put('/api/users/1', {});
    await client.patch('/api/users/1', {});
    await client.delete('/api/users/1');
    assert.deepEqual(
      fetch.calls.map((call) => [call.method, call.headers.get('X-CSRFToken')]),
      [
        ['GET', null],
        ['POST', 'csrf-123'],
        ['PUT', 'csrf-123'],
        ['PATCH', 'csrf-123'],
        ['DELETE', 'csrf-123'],
      ],
    );
  });

  test('by default the CSRF token is read from the csrftoken cookie', async (t) => {
    t.after(() => delete globalThis.document);
    globalThis.document = { cookie: 'theme=dark; csrftoken=abc%3D%3D; other=1' };
    const fetch = fakeFetch();
    const client = createClient({ fetch });
    await client.post('/api/users', {});
    assert.equal(fetch.calls[0].headers.get('X-CSRFToken'), 'abc==');
  });

  test('the CSRF token is never sent to another origin', async () => {
    const fetch = fakeFetch();
    const { client } = testClient({ fetch });
    await client.post('https://elsewhere.example/hook', {});
    assert.equal(fetch.calls[0].headers.get('X-CSRFToken'), null);
  });
});

describe('errors', () => {
  test('an error envelope becomes an ApiError with status, code, error, fields and requestId', async () => {
    const envelope = {
      error: 'Email is not a valid email',
      code: 'validation_failed',
      fields: { email: 'is not a valid email' },
      request_id: 'req-1',
    };
    const { client } = testClient({ fetch: fakeFetch(() => jsonResponse(422, envelope)) });
    const error = await rejection(client.post('/api/users', { email: 'x' }));
    assert.ok(error instanceof ApiError);
    assert.ok(error instanceof Error);
    assert.equal(error.status, 422);
    assert.equal(error.code, 'validation_failed');
    assert.equal(error.error, 'Email is not a valid email');
    assert.equal(error.message, 'Email is not a valid email');
    assert.deepEqual(error.fields, { email: 'is not a valid email' });
    assert.equal(error.requestId, 'req-1');
    assert.ok(error.unprocessableEntity);
  });

  test('fields is an empty object when the envelope has none, and the server code is kept', async () => {
    const { client } = testClient({
      fetch: fakeFetch(() => jsonResponse(400, { error: 'The cursor is not valid', code: 'invalid_cursor', request_id: 'r' })),
    });
    const error = await rejection(client.get('/api/users?after=zz'));
    assert.equal(error.code, 'invalid_cursor');
    assert.equal(error.message, 'The cursor is not valid');
    assert.deepEqual(error.fields, {});
    assert.equal(error.retryAfter, null);
  });

  test('the getters are named for what the status means', () => {
    const getters = [
      'unauthenticated',
      'forbidden',
      'notFound',
      'conflict',
      'unprocessableEntity',
      'tooManyRequests',
      'serverError',
      'networkError',
    ];
    const expected = {
      0: 'networkError',
      401: 'unauthenticated',
      403: 'forbidden',
      404: 'notFound',
      409: 'conflict',
      422: 'unprocessableEntity',
      429: 'tooManyRequests',
      500: 'serverError',
      503: 'serverError',
    };
    for (const [status, getter] of Object.entries(expected)) {
      const error = new ApiError({ status: Number(status) });
      for (const name of getters) assert.equal(error[name], name === getter, `${status} ${name}`);
    }
  });

  test('a non-JSON error body (an HTML 502 from a proxy) still gives a plain-words ApiError', async () => {
    const html = () => new Response('<html><body>Bad Gateway</body></html>', { status: 502, headers: { 'Content-Type': 'text/html' } });
    const { client } = testClient({ fetch: fakeFetch(html), retries: 0 });
    const error = await rejection(client.get('/api/users'));
    assert.ok(error instanceof ApiError);
    assert.equal(error.status, 502);
    assert.equal(error.code, 'unavailable');
    assert.equal(error.message, 'The server is temporarily unavailable. Please try again in a moment.');
    assert.deepEqual(error.fields, {});
    assert.ok(error.serverError);
  });

  test('a network failure says so in plain words', async () => {
    const fetch = fakeFetch(() => {
      throw new TypeError('fetch failed');
    });
    const { client } = testClient({ fetch });
    const error = await rejection(client.post('/api/users', {}));
    assert.ok(error instanceof ApiError);
    assert.equal(error.status, 0);
    assert.equal(error.code, 'network_error');
    assert.ok(error.networkError);
    assert.equal(error.message, 'Could not reach the server. Check your connection and try again.');
  });

  test('a 2xx body that is not JSON is an error, not a silent success', async () => {
    const fetch = fakeFetch(() => new Response('<html>login</html>', { status: 200 }));
    const { client } = testClient({ fetch });
    const error = await rejection(client.get('/api/users'));
    assert.ok(error instanceof ApiError);
    assert.equal(error.code, 'invalid_response');
  });
});

describe('timeouts', () => {
  test('a request times out after 10 seconds by default with a timeout ApiError', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const fetch = manualFetch();
    const client = createClient({ fetch });
    const pending = track(client.get('/api/slow'));
    await flush();
    t.mock.timers.tick(9_999);
    await flush();
    assert.equal(pending.settled, false);
    t.mock.timers.tick(1);
    await flush();
    assert.equal(pending.settled, true, 'rejected at 10 s');
    const { error } = pending;
    assert.ok(error instanceof ApiError);
    assert.equal(error.status, 0);
    assert.equal(error.code, 'timeout');
    assert.equal(error.message, 'The server took too long to answer. Please try again.');
    assert.equal(fetch.pending[0].aborted, true, 'the fetch itself is aborted');
  });

  test('a per-request timeout overrides the default', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { client } = testClient({ fetch: manualFetch(), timeout: 60_000 });
    const pending = track(client.get('/api/slow', { timeout: 50 }));
    await flush();
    t.mock.timers.tick(50);
    await flush();
    assert.equal(pending.error?.code, 'timeout');
  });

  test('a timeout is not retried, so the user is not kept waiting several times over', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const fetch = manualFetch();
    const { client, sleeps } = testClient({ fetch, timeout: 100 });
    const pending = track(client.get('/api/slow'));
    await flush();
    t.mock.timers.tick(100);
    await flush();
    assert.equal(fetch.pending.length, 1);
    assert.equal(pending.error?.code, 'timeout');
    assert.deepEqual(sleeps, []);
  });
});

describe('retries', () => {
  const statuses = (...list) => fakeFetch((call, n) => (n <= list.length ? jsonResponse(list[n - 1], { error: 'x', code: 'y' }) : jsonResponse(200, { ok: true })));

  test('a GET is retried on 502, 503 and 504 with full-jitter exponential backoff', async () => {
    const fetch = statuses(502, 503, 504);
    const { client, sleeps } = testClient({ fetch });
    assert.deepEqual(await client.get('/api/users'), { ok: true });
    assert.equal(fetch.calls.length, 4);
    // random() = 0.5 of 300, 600, 1200
    assert.deepEqual(sleeps, [150, 300, 600]);
  });

  test('the backoff is capped and uses the injected randomness', async () => {
    const fetch = statuses(503, 503, 503, 503, 503);
    const { client, sleeps } = testClient({ fetch, retries: 5, retryBase: 1000, retryCap: 5000, random: () => 0.9 });
    await client.get('/api/users');
    // 0.9 of 1000, 2000, 4000, then the 5000 cap twice
    assert.deepEqual(sleeps, [900, 1800, 3600, 4500, 4500]);
  });

  test('a network error on a GET is retried', async () => {
    const fetch = fakeFetch((call, n) => {
      if (n === 1) throw new TypeError('fetch failed');
      return jsonResponse(200, { ok: true });
    });
    const { client, sleeps } = testClient({ fetch });
    assert.deepEqual(await client.get('/api/users'), { ok: true });
    assert.deepEqual(sleeps, [150]);
  });

  test('after the last retry the last error is thrown', async () => {
    const fetch = statuses(503, 503, 503, 503, 503);
    const { client, sleeps } = testClient({ fetch, retries: 2 });
    const error = await rejection(client.get('/api/users'));
    assert.equal(error.status, 503);
    assert.equal(fetch.calls.length, 3);
    assert.deepEqual(sleeps, [150, 300]);
  });

  test('retries can be turned off per request', async () => {
    const fetch = statuses(503);
    const { client } = testClient({ fetch });
    await rejection(client.get('/api/users', { retries: 0 }));
    assert.equal(fetch.calls.length, 1);
  });

  test('POST and PATCH are never retried, even on a 503 or a network error', async () => {
    for (const method of ['POST', 'PATCH']) {
      const fetch = statuses(503);
      const { client, sleeps } = testClient({ fetch });
      assert.equal((await rejection(client.request(method, '/api/users', { body: {} }))).status, 503);
      const offline = fakeFetch(() => {
        throw new TypeError('fetch failed');
      });
      const second = testClient({ fetch: offline });
      await rejection(second.client.request(method, '/api/users', { body: {} }));
      assert.equal(fetch.calls.length + offline.calls.length, 2, method);
      assert.deepEqual(sleeps, []);
    }
  });

  test('PUT, DELETE, HEAD and OPTIONS are retried because they are idempotent', async () => {
    for (const method of ['PUT', 'DELETE', 'HEAD', 'OPTIONS']) {
      const fetch = statuses(503);
      const { client } = testClient({ fetch });
      await client.request(method, '/api/users/1');
      assert.equal(fetch.calls.length, 2, method);
    }
  });

  test('other errors (400, 404, 500) are not retried', async () => {
    for (const status of [400, 404, 500]) {
      const fetch = statuses(status);
      const { client } = testClient({ fetch });
      assert.equal((await rejection(client.get('/api/users'))).status, status);
      assert.equal(fetch.calls.length, 1, String(status));
    }
  });

  test('a 429 waits the Retry-After seconds instead of the computed backoff', async () => {
    const fetch = fakeFetch((call, n) =>
      n === 1 ? jsonResponse(429, { error: 'Too many requests, retry later', code: 'rate_limited' }, { 'Retry-After': '2' }) : jsonResponse(200, { ok: true }),
    );
    const { client, sleeps } = testClient({ fetch });
    assert.deepEqual(await client.get('/api/users'), { ok: true });
    assert.deepEqual(sleeps, [2000]);
  });

  test('a 429 with an HTTP-date Retry-After waits until that date', async () => {
    const date = new Date(START + 3000).toUTCString();
    const fetch = fakeFetch((call, n) => (n === 1 ? jsonResponse(429, {}, { 'Retry-After': date }) : jsonResponse(200, {})));
    const { client, sleeps } = testClient({ fetch });
    await client.get('/api/users');
    assert.deepEqual(sleeps, [3000]);
  });

  test('a 429 without Retry-After falls back to the computed backoff', async () => {
    const fetch = statuses(429);
    const { client, sleeps } = testClient({ fetch });
    await client.get('/api/users');
    assert.deepEqual(sleeps, [150]);
  });

  test('a Retry-After beyond maxRetryAfter is not waited for: the 429 is reported with retryAfter', async () => {
    const fetch = fakeFetch(() => jsonResponse(429, { error: 'Too many requests, retry later', code: 'rate_limited' }, { 'Retry-After': '120' }));
    const { client, sleeps } = testClient({ fetch, maxRetryAfter: 10_000 });
    const error = await rejection(client.get('/api/users'));
    assert.ok(error.tooManyRequests);
    assert.equal(error.retryAfter, 120);
    assert.equal(fetch.calls.length, 1);
    assert.deepEqual(sleeps, []);
  });

  test('retryAfter is set from an HTTP date too, in whole seconds', async () => {
    const date = new Date(START + 90_000).toUTCString();
    const fetch = fakeFetch(() => jsonResponse(429, {}, { 'Retry-After': date }));
    const { client } = testClient({ fetch });
    assert.equal((await rejection(client.post('/api/users', {}))).retryAfter, 90);
  });
});

describe('de-duplication', () => {
  test('identical in-flight GETs share one fetch and each caller gets its own copy', async () => {
    const fetch = manualFetch();
    const { client } = testClient({ fetch });
    const a = client.get('/api/users');
    const b = client.get('/api/users');
    await flush();
    assert.equal(fetch.pending.length, 1);
    fetch.pending[0].resolve(jsonResponse(200, { list: [1] }));
    const [first, second] = await Promise.all([a, b]);
    assert.deepEqual(first, { list: [1] });
    assert.deepEqual(second, { list: [1] });
    assert.notEqual(first, second);
  });

  test('GETs with different headers are not shared', async () => {
    const fetch = manualFetch();
    const { client } = testClient({ fetch });
    client.get('/api/users', { headers: { 'Accept-Language': 'fr' } });
    client.get('/api/users', { headers: { 'Accept-Language': 'de' } });
    client.get('/api/users?page=2');
    await flush();
    assert.equal(fetch.pending.length, 3);
  });

  test('a GET made after the previous one finished fetches again when caching is off', async () => {
    const fetch = fakeFetch();
    const { client } = testClient({ fetch, cacheTtl: 0 });
    await client.get('/api/users');
    await client.get('/api/users');
    assert.equal(fetch.calls.length, 2);
  });

  test('writes are never shared', async () => {
    const fetch = manualFetch();
    const { client } = testClient({ fetch });
    client.post('/api/users', { a: 1 });
    client.post('/api/users', { a: 1 });
    await flush();
    assert.equal(fetch.pending.length, 2);
  });
});

describe('the GET cache', () => {
  test('a GET within the TTL is served from the cache, and fetched again after it', async () => {
    const fetch = fakeFetch((call, n) => jsonResponse(200, { n }));
    const { client, advance } = testClient({ fetch, cacheTtl: 3000 });
    assert.deepEqual(await client.get('/api/users'), { n: 1 });
    advance(2999);
    assert.deepEqual(await client.get('/api/users'), { n: 1 });
    advance(1);
    assert.deepEqual(await client.get('/api/users'), { n: 2 });
  });

  test('the cache keeps the response metadata', async () => {
    const fetch = fakeFetch(() => jsonResponse(200, [], { 'Switchboard-Position': '7' }));
    const { client } = testClient({ fetch });
    await client.get('/api/users');
    const cached = await client.get('/api/users', { meta: true });
    assert.equal(fetch.calls.length, 1);
    assert.equal(cached.headers.get('Switchboard-Position'), '7');
  });

  test('cacheTtl 0 disables the cache', async () => {
    const fetch = fakeFetch();
    const { client } = testClient({ fetch, cacheTtl: 0 });
    await client.get('/api/users');
    await client.get('/api/users');
    assert.equal(fetch.calls.length, 2);
  });

  test('cache: false skips the cache for one request', async () => {
    const fetch = fakeFetch((call, n) => jsonResponse(200, { n }));
    const { client } = testClient({ fetch });
    await client.get('/api/users');
    assert.deepEqual(await client.get('/api/users', { cache: false }), { n: 2 });
    assert.deepEqual(await client.get('/api/users'), { n: 2 }, 'the fresher answer is what is cached now');
  });

  test('mutating a returned object cannot corrupt the cache', async () => {
    const fetch = fakeFetch(() => jsonResponse(200, { user: { name: 'Ada' } }));
    const { client } = testClient({ fetch });
    const first = await client.get('/api/users/1');
    first.user.name = 'Mallory';
    const second = await client.get('/api/users/1');
    assert.equal(second.user.name, 'Ada');
    second.user.name = 'Eve';
    assert.equal((await client.get('/api/users/1')).user.name, 'Ada');
    assert.equal(fetch.calls.length, 1);
  });

  test('errors are not cached', async () => {
    const fetch = fakeFetch((call, n) => (n === 1 ? jsonResponse(404, {}) : jsonResponse(200, { ok: true })));
    const { client } = testClient({ fetch });
    await rejection(client.get('/api/users/1'));
    assert.deepEqual(await client.get('/api/users/1'), { ok: true });
  });

  test('a write to an item invalidates every cached GET under its collection', async () => {
    const fetch = fakeFetch((call, n) => jsonResponse(200, { n }));
    const { client } = testClient({ fetch });
    await client.get('/api/users');
    await client.get('/api/users?page=2');
    await client.get('/api/users/5');
    await client.get('/api/teams');
    await client.get('/api/usersettings');
    await client.put('/api/users/5', { name: 'Ada' });
    const before = fetch.calls.length;
    await client.get('/api/users');
    await client.get('/api/users?page=2');
    await client.get('/api/users/5');
    assert.equal(fetch.calls.length, before + 3, 'all of /api/users refetched');
    await client.get('/api/teams');
    await client.get('/api/usersettings');
    assert.equal(fetch.calls.length, before + 3, 'other collections kept');
  });

  test('a write to a collection or a nested resource invalidates the whole collection', async () => {
    const fetch = fakeFetch((call, n) => jsonResponse(200, { n }));
    const { client } = testClient({ fetch });
    await client.get('/api/users/5');
    await client.post('/api/users', { name: 'Ada' });
    await client.get('/api/users/5');
    assert.equal(fetch.calls.length, 3);
    await client.delete('/api/users/5/avatar');
    await client.get('/api/users/5');
    assert.equal(fetch.calls.length, 5);
  });

  test('a GET that was in flight during a write is neither cached nor shared afterwards', async () => {
    const fetch = manualFetch();
    const { client } = testClient({ fetch });
    const stale = client.get('/api/users');
    const write = client.post('/api/users', { name: 'Ada' });
    await flush();
    fetch.pending[1].resolve(jsonResponse(201, { id: 1 }));
    await write;
    const fresh = client.get('/api/users');
    await flush();
    assert.equal(fetch.pending.length, 3, 'the new GET does not join the pre-write one');
    fetch.pending[0].resolve(jsonResponse(200, { users: [] }));
    fetch.pending[2].resolve(jsonResponse(200, { users: ['Ada'] }));
    assert.deepEqual(await stale, { users: [] });
    assert.deepEqual(await fresh, { users: ['Ada'] });
    assert.deepEqual(await client.get('/api/users'), { users: ['Ada'] });
    assert.equal(fetch.pending.length, 3);
  });

  test('clearCache empties the cache, or just one path and what is under it', async () => {
    const fetch = fakeFetch();
    const { client } = testClient({ fetch });
    await client.get('/api/users');
    await client.get('/api/teams/1');
    client.clearCache('/api/teams');
    await client.get('/api/users');
    await client.get('/api/teams/1');
    assert.equal(fetch.calls.length, 3);
    client.clearCache();
    await client.get('/api/users');
    assert.equal(fetch.calls.length, 4);
  });
});

describe('superseding (search as you type)', () => {
  test('a request with the same supersede key aborts the previous one, which rejects with an abort error', async () => {
    const fetch = manualFetch();
    const { client } = testClient({ fetch, cacheTtl: 0 });
    const older = track(client.get('/api/users?q=a', { supersede: 'search' }));
    const newer = client.get('/api/users?q=ab', { supersede: 'search' });
    await flush();
    assert.ok(isAbortError(older.error), 'the older call rejects with an abort error');
    assert.equal(fetch.pending[0].aborted, true, 'the stale fetch is cancelled');
    fetch.pending[1].resolve(jsonResponse(200, { q: 'ab' }));
    assert.deepEqual(await newer, { q: 'ab' });
  });

  test('an older response arriving after a newer one is never delivered', async () => {
    // A fetch that ignores abort signals, like a response already on its way.
    const resolvers = [];
    const fetch = () => new Promise((resolve) => resolvers.push(resolve));
    const { client } = testClient({ fetch, cacheTtl: 0 });
    const shown = [];
    const search = (q) =>
      client.get(`/api/users?q=${q}`, { supersede: 'search' }).then(
        (data) => shown.push(data.q),
        (error) => assert.ok(isAbortError(error)),
      );
    const older = search('a');
    const newer = search('ab');
    await flush();
    resolvers[1](jsonResponse(200, { q: 'ab' }));
    await newer;
    resolvers[0](jsonResponse(200, { q: 'a' }));
    await older;
    assert.deepEqual(shown, ['ab']);
  });

  test('different supersede keys do not interfere', async () => {
    const fetch = manualFetch();
    const { client } = testClient({ fetch });
    const users = client.get('/api/users?q=a', { supersede: 'users' });
    const teams = client.get('/api/teams?q=a', { supersede: 'teams' });
    await flush();
    fetch.pending[0].resolve(jsonResponse(200, 'u'));
    fetch.pending[1].resolve(jsonResponse(200, 't'));
    assert.deepEqual(await Promise.all([users, teams]), ['u', 't']);
  });

  test('a shared fetch is not aborted while another caller still waits on it', async () => {
    const fetch = manualFetch();
    const { client } = testClient({ fetch });
    const searching = track(client.get('/api/users?q=a', { supersede: 'search' }));
    const listing = client.get('/api/users?q=a');
    await flush();
    assert.equal(fetch.pending.length, 1, 'the two share a fetch');
    client.get('/api/users?q=ab', { supersede: 'search' });
    await flush();
    assert.ok(isAbortError(searching.error));
    assert.equal(fetch.pending[0].aborted, false);
    fetch.pending[0].resolve(jsonResponse(200, { q: 'a' }));
    assert.deepEqual(await listing, { q: 'a' });
  });

  test('a shared fetch is aborted once no caller waits on it any more', async () => {
    const fetch = manualFetch();
    const { client } = testClient({ fetch });
    const first = new AbortController();
    const second = new AbortController();
    const a = track(client.get('/api/users', { signal: first.signal }));
    const b = track(client.get('/api/users', { signal: second.signal }));
    await flush();
    first.abort();
    await flush();
    assert.ok(isAbortError(a.error));
    assert.equal(fetch.pending[0].aborted, false);
    second.abort();
    client.get('/api/users'); // at once, before the aborted fetch has even settled
    await flush();
    assert.ok(isAbortError(b.error));
    assert.equal(fetch.pending[0].aborted, true);
    assert.equal(fetch.pending.length, 2, 'a later GET does not join the abandoned fetch');
  });

  test('a superseded request waiting to retry stops waiting and does not fetch again', async () => {
    const fetch = fakeFetch(() => jsonResponse(503, {}));
    const wakeUps = [];
    const sleep = () => new Promise((resolve) => wakeUps.push(resolve));
    const { client } = testClient({ fetch, sleep });
    const older = track(client.get('/api/users?q=a', { supersede: 'search' }));
    while (wakeUps.length === 0) await flush();
    client.get('/api/users?q=ab', { supersede: 'search' }).catch(() => {});
    await flush();
    assert.ok(isAbortError(older.error));
    wakeUps[0]();
    await flush();
    assert.equal(fetch.calls.filter((call) => call.url === '/api/users?q=a').length, 1);
  });

  test('isAbortError recognises abort errors only', () => {
    assert.equal(isAbortError(new DOMException('x', 'AbortError')), true);
    assert.equal(isAbortError(new ApiError({ status: 0, code: 'timeout' })), false);
    assert.equal(isAbortError(new Error('x')), false);
    assert.equal(isAbortError(undefined), false);
  });
});

describe('not logged in', () => {
  test('onUnauthenticated is called with the error on a 401 and the request still rejects', async () => {
    const seen = [];
    const fetch = fakeFetch(() => jsonResponse(401, { error: 'Authentication required', code: 'unauthenticated' }));
    const { client } = testClient({ fetch, onUnauthenticated: (error) => seen.push(error) });
    const error = await rejection(client.get('/api/me'));
    assert.ok(error.unauthenticated);
    assert.deepEqual(seen, [error]);
  });

  test('onUnauthenticated is not called for other errors', async () => {
    const seen = [];
    const fetch = fakeFetch(() => jsonResponse(403, { error: 'No', code: 'forbidden' }));
    const { client } = testClient({ fetch, onUnauthenticated: (error) => seen.push(error) });
    await rejection(client.get('/api/me'));
    assert.deepEqual(seen, []);
  });

  test('the default client sends the browser to /login with the current path as next', async (t) => {
    const assigned = [];
    t.after(() => delete globalThis.location);
    globalThis.location = { pathname: '/teams/4', search: '?tab=members', origin: 'http://sb.test', assign: (url) => assigned.push(url) };
    t.mock.method(globalThis, 'fetch', fakeFetch(() => jsonResponse(401, { error: 'Authentication required', code: 'unauthenticated' })));
    await rejection(defaultGet('/api/me-redirect'));
    assert.deepEqual(assigned, ['/login?next=%2Fteams%2F4%3Ftab%3Dmembers']);
  });

  test('redirectToLogin does nothing when already on /login', () => {
    const assigned = [];
    redirectToLogin({ pathname: '/login', search: '?next=%2F', assign: (url) => assigned.push(url) });
    assert.deepEqual(assigned, []);
  });

  test('in Node, with no location, a 401 on the default client does nothing more than reject', async (t) => {
    assert.equal(globalThis.location, undefined);
    t.mock.method(globalThis, 'fetch', fakeFetch(() => jsonResponse(401, {})));
    assert.ok((await rejection(defaultGet('/api/me-node'))).unauthenticated);
  });
});
