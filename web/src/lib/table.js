// Sorting and filtering of the tables (functions, top functions).

/**
 * Rows sorted by `key` (a field name or a function), nulls last whatever
 * the direction, ties broken by `tie` for a stable order.
 * @template T
 * @param {T[]} rows
 * @param {string | ((r: T) => any)} key
 * @param {'asc' | 'desc'} dir
 * @param {(r: T) => string} [tie]
 */
export function sortRows(rows, key, dir = 'asc', tie) {
  const get = typeof key === 'function' ? key : (r) => /** @type {any} */ (r)[key];
  const sign = dir === 'desc' ? -1 : 1;
  return [...rows].sort((a, b) => {
    const va = get(a);
    const vb = get(b);
    const na = va === null || va === undefined;
    const nb = vb === null || vb === undefined;
    if (na !== nb) return na ? 1 : -1;
    let c = 0;
    if (!na) c = typeof va === 'string' || typeof vb === 'string' ? String(va).localeCompare(String(vb)) : va - vb;
    if (c === 0 && tie) return tie(a).localeCompare(tie(b));
    return c * sign;
  });
}

/**
 * Whether a row matches a search: every word of `q` is in one of the
 * row's texts (case-insensitive).
 * @param {string} q
 * @param {(string | null | undefined)[]} texts
 */
export function matches(q, texts) {
  const words = q.toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) return true;
  const hay = texts.filter(Boolean).join(' ').toLowerCase();
  return words.every((w) => hay.includes(w));
}
