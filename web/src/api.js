// The API client: every request of the console goes through `request`. It
// sends the session's CSRF token on every request that is not GET/HEAD
// (the server refuses them otherwise), turns the server's typed errors into
// ApiError, and reports a lost session (401) so the app goes to login.
// The console never holds an API key past the login request.

const BASE = '/api/v1';

export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} type the server's error type (InvalidRequest, NotFound, ...)
   * @param {string} message
   * @param {{stack?: string, retryAfter?: number | null}} [extra]
   */
  constructor(status, type, message, extra = {}) {
    super(message);
    this.status = status;
    this.type = type;
    this.serverStack = extra.stack ?? null;
    this.retryAfter = extra.retryAfter ?? null;
  }
}

let csrf = null;
/** @type {(() => void) | null} */
let onUnauthorized = null;

/** The session's CSRF token (from POST/GET /session). @param {string | null} token */
export function setCsrf(token) {
  csrf = token;
}

/** Called when a request answers 401: the session is gone. @param {() => void} fn */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

/** Headers of a request that changes something. */
export function writeHeaders(extra = {}) {
  return csrf ? { 'X-Ignis-Csrf': csrf, ...extra } : { ...extra };
}

/**
 * The error of a failed response, from its JSON body when it has one.
 * @param {Response} res
 * @param {string} [text] the body, when already read
 */
export async function errorOf(res, text) {
  const body = text ?? (await res.text().catch(() => ''));
  const retry = res.headers.get('retry-after');
  try {
    const e = JSON.parse(body).error;
    if (e && typeof e.type === 'string') {
      return new ApiError(res.status, e.type, e.message ?? e.type, {
        stack: e.stack,
        retryAfter: retry ? Number(retry) : null,
      });
    }
  } catch {
    // not JSON: fall through
  }
  return new ApiError(
    res.status,
    res.status === 502 ? 'BackendUnavailable' : 'Internal',
    body.slice(0, 300) || res.statusText || `HTTP ${res.status}`,
  );
}

/**
 * @param {string} method
 * @param {string} path under /api/v1 (or absolute when it starts with /api or /fn)
 * @param {{json?: any, body?: BodyInit, headers?: Record<string, string>, signal?: AbortSignal, quiet401?: boolean}} [opts]
 * @returns {Promise<any>} the parsed JSON body (null for 204)
 */
export async function request(method, path, opts = {}) {
  const url = path.startsWith('/api/') || path.startsWith('/fn/') ? path : BASE + path;
  /** @type {Record<string, string>} */
  let headers = { Accept: 'application/json', ...(opts.headers ?? {}) };
  let body = opts.body;
  if (opts.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.json);
  }
  if (method !== 'GET' && method !== 'HEAD') headers = writeHeaders(headers);
  let res;
  try {
    res = await fetch(url, { method, headers, body, credentials: 'same-origin', signal: opts.signal });
  } catch (e) {
    if (/** @type {Error} */ (e).name === 'AbortError') throw e;
    throw new ApiError(0, 'Network', 'the ignis server did not answer (is it running?)');
  }
  if (res.status === 204) return null;
  const text = await res.text();
  if (!res.ok) {
    const err = await errorOf(res, text);
    if (res.status === 401 && !opts.quiet401 && onUnauthorized) onUnauthorized();
    throw err;
  }
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export const get = (path, opts) => request('GET', path, opts);
export const post = (path, json, opts) => request('POST', path, { ...opts, json });
export const put = (path, json, opts) => request('PUT', path, { ...opts, json });
export const del = (path, opts) => request('DELETE', path, opts);

const enc = encodeURIComponent;

/** `/namespaces/{ns}/functions[/{name}[/{sub}]]`: the console always uses namespaced paths. */
export function fnPath(namespace, name, sub) {
  let p = `/namespaces/${enc(namespace)}/functions`;
  if (name) p += `/${enc(name)}`;
  if (sub) p += `/${sub}`;
  return p;
}

/**
 * Calls a function through the invoke API with a raw JSON body, keeping
 * what the response says about the call (status, headers, body).
 * @param {string} namespace
 * @param {string} name
 * @param {string} eventText
 */
export async function invoke(namespace, name, eventText) {
  const started = performance.now();
  const res = await fetch(BASE + fnPath(namespace, name, 'invoke'), {
    method: 'POST',
    headers: writeHeaders({ 'Content-Type': 'application/json', Accept: 'application/json' }),
    body: eventText,
    credentials: 'same-origin',
  });
  if (res.status === 401 && onUnauthorized) onUnauthorized();
  return callResult(res, started);
}

/**
 * Calls a function's HTTP trigger (`/fn{route}{sub}?{query}`) as a
 * browser would: the session cookie authenticates private routes.
 * @param {{method: string, path: string, query: string, headers: Record<string, string>, body: string}} req
 */
export async function httpTrigger(req) {
  const started = performance.now();
  const q = req.query.replace(/^\?/, '');
  const url = `/fn${req.path}${q ? `?${q}` : ''}`;
  const withBody = !['GET', 'HEAD'].includes(req.method);
  const res = await fetch(url, {
    method: req.method,
    headers: withBody ? writeHeaders(req.headers) : req.headers,
    body: withBody ? req.body : undefined,
    credentials: 'same-origin',
  });
  return callResult(res, started);
}

/** @param {Response} res @param {number} started */
async function callResult(res, started) {
  const text = await res.text();
  const h = res.headers;
  let json;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = undefined;
  }
  return {
    status: res.status,
    ok: res.ok,
    text,
    json,
    headers: Object.fromEntries([...h.entries()]),
    invocationId: h.get('x-ignis-invocation-id'),
    start: h.get('x-ignis-start'),
    durationMs: h.get('x-ignis-duration-ms') ? Number(h.get('x-ignis-duration-ms')) : null,
    version: h.get('x-ignis-function-version') ? Number(h.get('x-ignis-function-version')) : null,
    roundTripMs: performance.now() - started,
    error: !res.ok && json && json.error ? json.error : null,
  };
}

/**
 * A call's invocation record: written asynchronously after the answer, so
 * it is polled a few times (about 0.1 s usually).
 */
export async function waitForRecord(namespace, name, id, { tries = 20, delayMs = 150 } = {}) {
  for (let i = 0; i < tries; i++) {
    try {
      return await get(fnPath(namespace, name, `invocations/${enc(id)}`));
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 404) throw e;
    }
    await new Promise((r) => setTimeout(r, delayMs * Math.min(1 + i, 4)));
  }
  return null;
}
