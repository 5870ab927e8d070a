// The router: the current route as a signal, bound to the History API.
// Links are plain <a href> elements; a click on one that stays in the
// console is turned into a pushState, so back/forward and "open in a new
// tab" both work.

import { signal } from '@preact/signals';
import { parseRoute, isConsolePath } from '../lib/routes.js';

const current = () => parseRoute(location.pathname, location.search);

export const route = signal(current());

/**
 * Goes to `href` (a console path).
 * @param {string} href
 * @param {{replace?: boolean}} [opts]
 */
export function navigate(href, opts = {}) {
  const u = new URL(href, location.origin);
  const target = u.pathname + u.search + u.hash;
  if (target === location.pathname + location.search + location.hash) {
    route.value = current();
    return;
  }
  if (opts.replace) history.replaceState(null, '', target);
  else history.pushState(null, '', target);
  route.value = current();
  if (!opts.replace) window.scrollTo(0, 0);
}

/**
 * Updates the query string of the current page without a new history
 * entry (filters, windows, sort orders), so the URL can be shared.
 * @param {Record<string, string | number | null | undefined>} changes
 */
export function setQuery(changes) {
  const q = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === undefined || v === '') q.delete(k);
    else q.set(k, String(v));
  }
  const s = q.toString();
  navigate(location.pathname + (s ? `?${s}` : ''), { replace: true });
}

export function startRouter() {
  window.addEventListener('popstate', () => {
    route.value = current();
  });
  document.addEventListener('click', (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const a = /** @type {Element} */ (e.target).closest?.('a[href]');
    if (!a || a.getAttribute('target') || a.hasAttribute('download')) return;
    const href = a.getAttribute('href');
    if (!href || !isConsolePath(href, location.origin)) return;
    e.preventDefault();
    navigate(href);
  });
}
