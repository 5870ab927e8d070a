// The console's URLs: every view has one, so a link can be shared and
// back/forward work. Parsing is pure; state/router.js binds it to the
// History API.

export const FUNCTION_TABS = ['code', 'test', 'monitor', 'invocations', 'versions', 'sandboxes'];
export const WINDOWS = ['5m', '1h', '24h', '7d'];

/**
 * @typedef {{name: string, params: Record<string, string>, query: Record<string, string>, path: string}} Route
 */

/**
 * @param {string} pathname
 * @param {string} [search]
 * @returns {Route}
 */
export function parseRoute(pathname, search = '') {
  const query = Object.fromEntries(new URLSearchParams(search));
  const path = pathname.replace(/\/+$/, '') || '/';
  const parts = path.split('/').filter(Boolean).map(safeDecode);
  const r = (name, params = {}) => ({ name, params, query, path });
  if (parts.length === 0) return r('overview');
  const [head, ...rest] = parts;
  switch (head) {
    case 'login':
      return rest.length ? r('notfound') : r('login');
    case 'functions':
      if (rest.length === 0) return r('functions');
      if (rest.length === 1 && rest[0] === 'new') return r('create');
      if (rest.length === 2) return r('function', { namespace: rest[0], name: rest[1], tab: 'code' });
      if (rest.length === 3 && rest[2] === 'edit') return r('edit', { namespace: rest[0], name: rest[1] });
      if (rest.length === 3 && FUNCTION_TABS.includes(rest[2])) {
        return r('function', { namespace: rest[0], name: rest[1], tab: rest[2] });
      }
      return r('notfound');
    case 'sandboxes':
    case 'keys':
    case 'audit':
    case 'invoke':
      return rest.length ? r('notfound') : r(head);
    default:
      return r('notfound');
  }
}

/** @param {string} s */
function safeDecode(s) {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * A path with a query string, leaving out empty values.
 * @param {string} path
 * @param {Record<string, string | number | boolean | null | undefined>} [query]
 */
export function withQuery(path, query = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== null && v !== '' && v !== false) q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

const enc = encodeURIComponent;

export const hrefs = {
  overview: (window) => withQuery('/', { window: window && window !== '5m' ? window : undefined }),
  functions: (query) => withQuery('/functions', query),
  create: (namespace) => withQuery('/functions/new', { namespace }),
  fn: (namespace, name, tab = 'code', query) =>
    withQuery(`/functions/${enc(namespace)}/${enc(name)}${tab === 'code' ? '' : `/${tab}`}`, query),
  edit: (namespace, name) => `/functions/${enc(namespace)}/${enc(name)}/edit`,
  invocation: (namespace, name, id) => withQuery(`/functions/${enc(namespace)}/${enc(name)}/invocations`, { id }),
  sandboxes: () => '/sandboxes',
  keys: () => '/keys',
  audit: () => '/audit',
  invoke: () => '/invoke',
  login: (next) => withQuery('/login', { next: next && next !== '/' && next !== '/login' ? next : undefined }),
};

/**
 * Whether `href` is the console's own page (handled by the router), not
 * the API, an HTTP trigger, or another site.
 * @param {string} href
 * @param {string} origin
 */
export function isConsolePath(href, origin) {
  let u;
  try {
    u = new URL(href, origin);
  } catch {
    return false;
  }
  if (u.origin !== origin) return false;
  const p = u.pathname;
  return !(p === '/api' || p.startsWith('/api/') || p.startsWith('/fn/') || p === '/metrics' || p.startsWith('/assets/'));
}
