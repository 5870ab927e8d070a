// What changed between two configurations or two versions of a function:
// the versions API keeps each version's config and code hash, and the
// console shows the difference (the server does not compute it).

/**
 * @typedef {{field: string, kind: 'added' | 'removed' | 'changed', from?: any, to?: any}} Change
 */

/** @param {any} a @param {any} b */
function same(a, b) {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/**
 * Field-by-field differences of two configurations; `env` is compared key
 * by key (`env.NAME`). Fields are reported in a stable order.
 * @param {Record<string, any>} from
 * @param {Record<string, any>} to
 * @returns {Change[]}
 */
export function diffConfig(from, to) {
  /** @type {Change[]} */
  const out = [];
  const fields = [...new Set([...Object.keys(from ?? {}), ...Object.keys(to ?? {})])].sort();
  for (const f of fields) {
    if (f === 'env') continue;
    const a = from?.[f];
    const b = to?.[f];
    if (same(a, b)) continue;
    if (a === undefined) out.push({ field: f, kind: 'added', to: b });
    else if (b === undefined) out.push({ field: f, kind: 'removed', from: a });
    else out.push({ field: f, kind: 'changed', from: a, to: b });
  }
  const ea = from?.env ?? {};
  const eb = to?.env ?? {};
  for (const k of [...new Set([...Object.keys(ea), ...Object.keys(eb)])].sort()) {
    const field = `env.${k}`;
    if (!(k in ea)) out.push({ field, kind: 'added', to: eb[k] });
    else if (!(k in eb)) out.push({ field, kind: 'removed', from: ea[k] });
    else if (ea[k] !== eb[k]) out.push({ field, kind: 'changed', from: ea[k], to: eb[k] });
  }
  return out;
}

/**
 * Differences between two versions of the versions API (`config` and
 * `code_sha256`): the config's changes, and `code` when the hash differs.
 * @param {{config: any, code_sha256: string} | null | undefined} older
 * @param {{config: any, code_sha256: string}} newer
 * @returns {Change[]}
 */
export function diffVersions(older, newer) {
  if (!older) return [];
  const changes = diffConfig(older.config, newer.config);
  if (older.code_sha256 !== newer.code_sha256) {
    changes.unshift({ field: 'code', kind: 'changed', from: older.code_sha256, to: newer.code_sha256 });
  }
  return changes;
}

/** Values shown in a change list: env values are secrets, code is a hash. */
function show(field, v) {
  if (field.startsWith('env.')) return null;
  if (field === 'code') return String(v).slice(0, 12);
  if (v === null) return 'none';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/**
 * One line per change, for people: "memory_mb: 128 → 256",
 * "env.TOKEN added", "code changed (d4fcc62ec0c2 → 9a1b...)".
 * @param {Change} c
 */
export function describeChange(c) {
  const a = show(c.field, c.from);
  const b = show(c.field, c.to);
  if (c.field.startsWith('env.')) {
    return `${c.field} ${c.kind === 'changed' ? 'value changed' : c.kind}`;
  }
  if (c.kind === 'added') return `${c.field} set to ${b}`;
  if (c.kind === 'removed') return `${c.field} removed (was ${a})`;
  if (c.field === 'code') return `code changed (${a} → ${b})`;
  return `${c.field}: ${a} → ${b}`;
}

/**
 * A summary of a save: the function before (null when created) and after.
 * @param {any} before a Function, or null
 * @param {any} after the Function the server returned
 * @returns {{created: boolean, newVersion: boolean, version: number, changes: Change[]}}
 */
export function describeSave(before, after) {
  if (!before) return { created: true, newVersion: true, version: after.version, changes: [] };
  const pick = (f) => ({ config: configOf(f), code_sha256: f.code_sha256 });
  return {
    created: false,
    newVersion: after.version !== before.version,
    version: after.version,
    changes: diffVersions(pick(before), pick(after)),
  };
}

const CONFIG_KEYS = [
  'runtime',
  'handler',
  'route',
  'http_auth',
  'backend',
  'timeout_ms',
  'memory_mb',
  'cpus',
  'env',
  'min_warm',
  'max_concurrency',
  'batch_max_size',
  'batch_max_wait_ms',
  'batch_concurrent',
  'queue_timeout_ms',
  'keep_alive_s',
];

/** The configuration part of a Function object. */
export function configOf(f) {
  return Object.fromEntries(CONFIG_KEYS.map((k) => [k, f[k]]));
}
