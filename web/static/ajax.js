/**
 * ajax.js owns every HTTP call the browser makes to the Switchboard JSON API: JSON in
 * and out, CSRF, timeouts, retries, de-duplication, the short GET cache, dropping stale
 * search results, and turning every failure into one `ApiError` the UI can show as-is.
 * Plain ES module with no dependencies, so it runs unchanged in browsers and Node tests.
 *
 * @example
 *   import { get, post, isAbortError, nextLink } from '/static/ajax.js';
 *   const { data, headers } = await get('/api/users', { meta: true });
 *   const more = nextLink(headers);
 */

const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);
const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const RETRY_STATUSES = new Set([429, 502, 503, 504]);

const NETWORK_MESSAGE = 'Could not reach the server. Check your connection and try again.';
const TIMEOUT_MESSAGE = 'The server took too long to answer. Please try again.';
const UNAVAILABLE = ['unavailable', 'The server is temporarily unavailable. Please try again in a moment.'];

// Codes match the server's (src/error.rs) so callers can switch on `code` whether the
// body was our envelope or a proxy's HTML page.
const BY_STATUS = {
  0: ['network_error', NETWORK_MESSAGE],
  400: ['bad_request', 'The request was not valid.'],
  401: ['unauthenticated', 'You need to log in to continue.'],
  403: ['forbidden', 'You do not have permission to do that.'],
  404: ['not_found', 'We could not find what you were looking for.'],
  409: ['conflict', 'That clashes with a change made elsewhere. Reload and try again.'],
  413: ['payload_too_large', 'That is too large to send.'],
  415: ['unsupported_media_type', 'The server could not read that request.'],
  422: ['validation_failed', 'Some of the details are not valid.'],
  429: ['rate_limited', 'Too many requests. Please wait a moment and try again.'],
  502: UNAVAILABLE,
  503: UNAVAILABLE,
  504: UNAVAILABLE,
};

function describeStatus(status) {
  if (BY_STATUS[status]) return BY_STATUS[status];
  if (status >= 500) return ['internal', 'Something went wrong on the server. Please try again.'];
  return ['http_error', `Something went wrong (HTTP ${status}). Please try again.`];
}

/** Every failure of this module except aborts: HTTP errors, network errors, timeouts. */
export class ApiError extends Error {
  /**
   * @param {{status?: number, code?: string, error?: string, fields?: object,
   *          requestId?: string|null, retryAfter?: number|null, cause?: unknown}} details
   *   `status` 0 means no HTTP response (network failure or timeout).
   */
  constructor({ status = 0, code, error, fields, requestId = null, retryAfter = null, cause } = {}) {
    const [defaultCode, defaultMessage] = describeStatus(status);
    const message = typeof error === 'string' && error ? error : defaultMessage;
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'ApiError';
    this.status = status;
    this.code = code || defaultCode;
    this.error = message;
    this.fields = fields && typeof fields === 'object' ? fields : {};
    this.requestId = requestId;
    /** Seconds the server asked us to wait (429/503), or null. */
    this.retryAfter = retryAfter;
  }
  get unauthenticated() { return this.status === 401; }
  get forbidden() { return this.status === 403; }
  get notFound() { return this.status === 404; }
  get conflict() { return this.status === 409; }
  get unprocessableEntity() { return this.status === 422; }
  get tooManyRequests() { return this.status === 429; }
  get serverError() { return this.status >= 500; }
  get networkError() { return this.status === 0; }
}

/** True for a request cancelled on purpose (superseded, or the caller's signal): not worth showing. */
export function isAbortError(error) {
  return !!error && error.name === 'AbortError';
}

function abortError(message) {
  return new DOMException(message, 'AbortError');
}

function asAbortError(reason) {
  return isAbortError(reason) ? reason : abortError('The request was cancelled.');
}

/** `<url>; rel="next", <url>; rel=prev` -> `{next: url, prev: url}` (first URL per rel wins). */
export function parseLinkHeader(value) {
  const links = {};
  for (const [, url, params] of String(value ?? '').matchAll(/<([^>]*)>([^<]*)/g)) {
    const rel = /;\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))/i.exec(params);
    if (!rel) continue;
    for (const name of (rel[1] ?? rel[2]).toLowerCase().split(/\s+/)) {
      if (name && !(name in links)) links[name] = url;
    }
  }
  return links;
}

/**
 * The rel="next" URL of a paginated list, or null on the last page.
 * @param {Headers|Record<string,string>|string|null} headers a Headers, a plain object or the Link value
 */
export function nextLink(headers) {
  let value = headers;
  if (headers && typeof headers.get === 'function') value = headers.get('Link');
  else if (headers && typeof headers === 'object') value = headers.Link ?? headers.link;
  return parseLinkHeader(value).next ?? null;
}

/** Milliseconds from a Retry-After value (delta-seconds or HTTP-date), or null if unusable. */
function retryAfterMs(value, now) {
  if (value == null) return null;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

function readCookie(name) {
  const cookies = globalThis.document?.cookie;
  if (!cookies) return null;
  for (const part of cookies.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    try {
      return decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      return part.slice(eq + 1).trim();
    }
  }
  return null;
}

// The CSRF token is a credential: it must never leave for another origin, e.g. a
// webhook URL a user typed in.
function isSameOrigin(url) {
  if (!/^([a-z][a-z\d+.-]*:|\/\/)/i.test(url)) return true;
  const here = globalThis.location?.origin;
  try {
    return !!here && new URL(url, here).origin === here;
  } catch {
    return false;
  }
}

function pathOf(url) {
  const path = new URL(url, 'http://relative.invalid').pathname;
  return path.length > 1 ? path.replace(/\/+$/, '') : path;
}

/**
 * Invalidation rule: a write (POST/PUT/PATCH/DELETE) invalidates every cached GET whose
 * path is under the written resource's collection root, i.e. `apiPrefix` plus the next
 * segment: a write to `/api/users`, `/api/users/5` or `/api/users/5/avatar` drops every
 * cached `/api/users...` GET (any query) but not `/api/teams` or `/api/usersettings`.
 * Whole collections go because a change to one item also changes the lists, counts and
 * positions it appears in; writes with effects on other collections must call
 * `clearCache(path)` themselves (the short TTL bounds what they forget).
 */
function collectionRoot(url, apiPrefix) {
  const segments = pathOf(url).split('/').filter(Boolean);
  const prefix = apiPrefix.split('/').filter(Boolean);
  const depth = prefix.every((segment, i) => segments[i] === segment) ? prefix.length + 1 : 1;
  return `/${segments.slice(0, depth).join('/')}`;
}

function isUnder(path, root) {
  return root === '/' || path === root || path.startsWith(`${root}/`);
}

function isJsonBody(body) {
  if (Array.isArray(body) || typeof body === 'number' || typeof body === 'boolean') return true;
  if (typeof body !== 'object') return false;
  const proto = Object.getPrototypeOf(body);
  return proto === Object.prototype || proto === null;
}

/** Rejects with an abort error as soon as `signal` aborts, whatever `promise` does. */
function abortable(promise, signal) {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(asAbortError(signal.reason));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function defaultSleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * @typedef {object} ClientOptions
 * @property {typeof fetch} [fetch]   defaults to the global fetch, looked up at call time
 * @property {number} [timeout=10000] ms per attempt; 0 for none
 * @property {number} [retries=3]     extra attempts for idempotent methods
 * @property {number} [retryBase=300] ms; backoff is random() * min(retryCap, retryBase * 2^attempt)
 * @property {number} [retryCap=5000] ms
 * @property {number} [maxRetryAfter=10000] ms; a longer Retry-After is reported, not waited for
 * @property {number} [cacheTtl=5000] ms a GET response stays cached; 0 disables the cache
 * @property {string} [apiPrefix='/api'] see the invalidation rule at collectionRoot
 * @property {Record<string,string>} [headers] sent with every request
 * @property {() => string|null} [csrfToken] defaults to the `csrftoken` cookie
 * @property {(error: ApiError) => void} [onUnauthenticated] called on every 401
 * @property {(ms: number) => Promise<void>} [sleep]
 * @property {() => number} [random]
 * @property {() => number} [now]
 */

/**
 * Per request: `{body, headers, meta, timeout, retries, cache, supersede, signal}`.
 * `meta: true` resolves to `{data, status, headers}` instead of the data alone;
 * `cache: false` skips the cache read (the fresh answer is still cached);
 * `supersede: key` aborts the caller's previous request made with the same key.
 * @param {ClientOptions} options
 */
export function createClient(options = {}) {
  const config = {
    fetch: (...args) => globalThis.fetch(...args),
    timeout: 10_000,
    retries: 3,
    retryBase: 300,
    retryCap: 5_000,
    maxRetryAfter: 10_000,
    cacheTtl: 5_000,
    apiPrefix: '/api',
    headers: {},
    csrfToken: () => readCookie('csrftoken'),
    onUnauthenticated: null,
    sleep: defaultSleep,
    random: Math.random,
    now: Date.now,
    // An option passed as undefined means "the default", not "none".
    ...Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)),
  };
  const cache = new Map(); // request key -> {path, expires, value}
  const inflight = new Map(); // request key -> shared operation, GETs only
  const supersedable = new Map(); // supersede key -> the caller's AbortController

  function buildHeaders(method, url, extra) {
    const headers = new Headers(config.headers);
    new Headers(extra).forEach((value, name) => headers.set(name, value));
    headers.set('Accept', 'application/json');
    if (UNSAFE.has(method) && isSameOrigin(url)) {
      const token = config.csrfToken();
      if (token) headers.set('X-CSRFToken', token);
    }
    return headers;
  }

  function errorFrom(response, text) {
    let envelope = {};
    try {
      const parsed = JSON.parse(text);
      if (parsed && typeof parsed === 'object') envelope = parsed;
    } catch {
      // A proxy's HTML page: the status alone will have to explain it.
    }
    const wait = retryAfterMs(response.headers.get('Retry-After'), config.now());
    return new ApiError({
      status: response.status,
      code: typeof envelope.code === 'string' ? envelope.code : undefined,
      error: envelope.error,
      fields: envelope.fields,
      requestId: envelope.request_id ?? response.headers.get('X-Request-Id'),
      retryAfter: wait === null ? null : Math.ceil(wait / 1000),
    });
  }

  // One fetch plus body read under one timer: fetch resolves at the headers, and a
  // stalled body must time out too.
  async function attempt(url, init, timeout, signal) {
    const controller = new AbortController();
    const forward = () => controller.abort(signal.reason);
    signal.addEventListener('abort', forward, { once: true });
    let timedOut = false;
    const timer = timeout > 0 ? setTimeout(() => { timedOut = true; controller.abort(); }, timeout) : undefined;
    try {
      const exchange = (async () => {
        const response = await config.fetch(url, { ...init, signal: controller.signal });
        return { response, text: await response.text() };
      })();
      // Racing the signal too means a fetch that ignores it still cannot hang us.
      return await abortable(exchange, controller.signal);
    } catch (error) {
      if (timedOut) throw new ApiError({ status: 0, code: 'timeout', error: TIMEOUT_MESSAGE, cause: error });
      if (signal.aborted) throw asAbortError(signal.reason);
      if (error instanceof TypeError) throw new ApiError({ status: 0, cause: error });
      throw error;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', forward);
    }
  }

  function retryDelay(error, attemptNo) {
    if (!error.networkError && !RETRY_STATUSES.has(error.status)) return null;
    if (error.retryAfter !== null && (error.status === 429 || error.status === 503)) {
      // Retrying before the server allows only earns another 429; a long wait is the
      // user's call, so report it (with retryAfter) instead of hanging silently.
      const wait = error.retryAfter * 1000;
      return wait <= config.maxRetryAfter ? wait : null;
    }
    // Full jitter: clients that failed together must not retry together.
    return Math.floor(config.random() * Math.min(config.retryCap, config.retryBase * 2 ** attemptNo));
  }

  async function perform(method, url, init, opts, signal) {
    // Timeouts are not retried: the user already waited the whole timeout once.
    const retries = IDEMPOTENT.has(method) ? (opts.retries ?? config.retries) : 0;
    const timeout = opts.timeout ?? config.timeout;
    for (let attemptNo = 0; ; attemptNo++) {
      let error;
      try {
        const { response, text } = await attempt(url, init, timeout, signal);
        if (!response.ok) throw errorFrom(response, text);
        let data = null;
        if (response.status !== 204 && text.trim() !== '') {
          try {
            data = JSON.parse(text);
          } catch (cause) {
            throw new ApiError({ status: response.status, code: 'invalid_response', error: 'The server sent an answer we could not read. Please try again.', cause });
          }
        }
        return { data, status: response.status, headers: response.headers };
      } catch (caught) {
        error = caught;
      }
      if (!(error instanceof ApiError) || error.code === 'timeout') throw error;
      if (error.unauthenticated) {
        const handler = opts.onUnauthenticated ?? config.onUnauthenticated;
        try {
          handler?.(error);
        } catch (bug) {
          // The caller still gets the 401; the handler's own bug is reported, not swallowed.
          queueMicrotask(() => { throw bug; });
        }
      }
      const delay = attemptNo < retries ? retryDelay(error, attemptNo) : null;
      if (delay === null) throw error;
      await abortable(config.sleep(delay), signal);
    }
  }

  /** Drops cached GETs under `root`; in-flight ones may predate the change, so they are neither cached nor shared. */
  function invalidate(root) {
    for (const [key, entry] of cache) if (isUnder(entry.path, root)) cache.delete(key);
    for (const [key, op] of inflight) {
      if (isUnder(op.path, root)) {
        op.stale = true;
        inflight.delete(key);
      }
    }
  }

  function start(method, url, init, opts, key) {
    const op = { controller: new AbortController(), waiters: 0, settled: false, stale: false, path: pathOf(url), key };
    if (method === 'GET') inflight.set(key, op);
    op.promise = perform(method, url, init, opts, op.controller.signal)
      .then((value) => {
        if (method === 'GET' && !op.stale && config.cacheTtl > 0) {
          cache.set(key, { path: op.path, expires: config.now() + config.cacheTtl, value });
        }
        return value;
      })
      .finally(() => {
        op.settled = true;
        if (inflight.get(key) === op) inflight.delete(key);
        // Even a failed write may have been applied (a timeout after the commit).
        if (UNSAFE.has(method)) invalidate(collectionRoot(url, config.apiPrefix));
      });
    return op;
  }

  // Each caller waits on the shared operation under its own signal; the fetch is only
  // cancelled when the last waiter has gone, so one caller cannot abort another's data.
  function join(op, signal) {
    op.waiters += 1;
    return new Promise((resolve, reject) => {
      let done = false;
      const leave = () => {
        if (done) return false;
        done = true;
        op.waiters -= 1;
        signal.removeEventListener('abort', onAbort);
        return true;
      };
      function onAbort() {
        if (!leave()) return;
        reject(asAbortError(signal.reason));
        if (op.waiters === 0 && !op.settled) {
          if (inflight.get(op.key) === op) inflight.delete(op.key);
          op.controller.abort(abortError('Nobody is waiting for this request any more.'));
        }
      }
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      op.promise.then(
        (value) => leave() && resolve(value),
        (error) => leave() && reject(error),
      );
    });
  }

  // Copies, so a caller editing its result cannot change what the next caller sees.
  function deliver(value, meta) {
    const data = value.data === null ? null : structuredClone(value.data);
    return meta ? { data, status: value.status, headers: new Headers(value.headers) } : data;
  }

  /**
   * @param {string} method
   * @param {string} url
   * @param {object} [opts] see createClient
   * @returns {Promise<any>} the parsed body (null when empty), or `{data, status, headers}` with `meta: true`
   */
  async function request(method, url, opts = {}) {
    method = method.toUpperCase();
    const headers = buildHeaders(method, url, opts.headers);
    let body = opts.body ?? undefined;
    if (body !== undefined && isJsonBody(body)) {
      body = JSON.stringify(body);
      if (!headers.has('Content-Type')) headers.set('Content-Type', 'application/json');
    }
    const init = { method, headers, body, credentials: 'same-origin' };

    const caller = new AbortController();
    const forward = () => caller.abort(opts.signal.reason);
    if (opts.signal?.aborted) forward();
    else opts.signal?.addEventListener('abort', forward, { once: true });
    const key = opts.supersede;
    if (key != null) {
      supersedable.get(key)?.abort(abortError('A newer request replaced this one.'));
      supersedable.set(key, caller);
    }
    try {
      const requestKey = `${method} ${url} ${JSON.stringify([...headers])}`;
      if (method === 'GET' && opts.cache !== false) {
        const hit = cache.get(requestKey);
        if (hit && config.now() < hit.expires) {
          if (caller.signal.aborted) throw asAbortError(caller.signal.reason);
          return deliver(hit.value, opts.meta);
        }
        if (hit) cache.delete(requestKey);
      }
      const op = (method === 'GET' && inflight.get(requestKey)) || start(method, url, init, opts, requestKey);
      return deliver(await join(op, caller.signal), opts.meta);
    } finally {
      opts.signal?.removeEventListener('abort', forward);
      if (key != null && supersedable.get(key) === caller) supersedable.delete(key);
    }
  }

  return {
    request,
    get: (url, opts) => request('GET', url, opts),
    delete: (url, opts) => request('DELETE', url, opts),
    post: (url, body, opts) => request('POST', url, { ...opts, body }),
    put: (url, body, opts) => request('PUT', url, { ...opts, body }),
    patch: (url, body, opts) => request('PATCH', url, { ...opts, body }),
    /** Forget cached GETs: all of them, or those under `path` (e.g. '/api/teams'). */
    clearCache: (path) => invalidate(path == null ? '/' : pathOf(path)),
  };
}

/** Sends the browser to the login page, coming back here afterwards; a no-op outside browsers. */
export function redirectToLogin(location = globalThis.location) {
  if (!location || location.pathname === '/login') return;
  location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
}

const defaultClient = createClient({ onUnauthenticated: () => redirectToLogin() });
export default defaultClient;
export const { request, get, post, put, patch, clearCache } = defaultClient;
const del = defaultClient.delete;
export { del, del as delete };
