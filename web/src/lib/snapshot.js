// Turns the live stream's snapshots and the series API's points into the
// compact per-second points the charts keep, and those into the columns
// uPlot draws.

/** The Stats fields charts use (a snapshot carries more). */
const STAT_KEYS = [
  'requests',
  'rps',
  'success',
  'errors',
  'error_rate',
  'timeouts',
  'throttled',
  'cold_starts',
  'stem_starts',
  'cold_start_rate',
  'p50_ms',
  'p90_ms',
  'p99_ms',
  'max_ms',
  'mean_ms',
  'mean_init_ms',
  'concurrency',
  'mean_cpu_ms',
  'mean_peak_memory_bytes',
];

/** @param {any} s */
export function pickStats(s) {
  if (!s) return null;
  /** @type {Record<string, any>} */
  const out = {};
  for (const k of STAT_KEYS) out[k] = s[k] ?? null;
  out.errors_by_type = s.errors_by_type && Object.keys(s.errors_by_type).length ? s.errors_by_type : null;
  return out;
}

/**
 * @typedef {object} LivePoint
 * @property {number} t Unix seconds: the second the stats cover
 * @property {any} sys the system's stats over that second
 * @property {number | null} active calls in flight
 * @property {number | null} queued calls waiting
 * @property {number | null} sandboxes
 * @property {number | null} memBytes
 * @property {{cpu: number, memUsed: number, memTotal: number, load1: number} | null} host
 * @property {Record<string, Record<string, number>> | null} sb sandboxes by backend and state
 * @property {number | null} memReservedMb
 * @property {number | null} memBudgetMb
 * @property {Record<string, any>} fns per function label
 */

/**
 * One live snapshot (`event: snapshot` of /metrics/stream) as a point.
 * @param {any} snap
 * @returns {LivePoint}
 */
export function snapshotPoint(snap) {
  const sys = snap.system ?? {};
  const res = snap.resources ?? {};
  const host = res.host;
  /** @type {Record<string, any>} */
  const fns = {};
  for (const [label, f] of Object.entries(snap.functions ?? {})) {
    const r = /** @type {any} */ (f).resources ?? res.functions?.[label] ?? {};
    fns[label] = {
      s: pickStats(/** @type {any} */ (f).last_second),
      active: /** @type {any} */ (f).active ?? null,
      queued: /** @type {any} */ (f).queued ?? null,
      idle: /** @type {any} */ (f).idle ?? null,
      sandboxes: r.sandboxes ?? null,
      memory_bytes: r.memory_bytes ?? null,
      cpu_cores: r.cpu_cores ?? null,
    };
  }
  return {
    // `last_second` is the server's last complete second, [now - 1, now).
    t: Math.floor(snap.at_ms / 1000) - 1,
    sys: pickStats(sys.last_second),
    active: sys.active ?? null,
    queued: sys.queued ?? null,
    sandboxes: sys.resources?.sandboxes ?? null,
    memBytes: sys.resources?.memory_bytes ?? null,
    host: host ? { cpu: host.cpu_ratio, memUsed: host.memory_used_bytes, memTotal: host.memory_total_bytes, load1: host.load1 } : null,
    sb: res.sandboxes ?? null,
    memReservedMb: res.memory_reserved_mb ?? null,
    memBudgetMb: res.memory_budget_mb ?? null,
    fns,
  };
}

/**
 * The points of a series (`/metrics/series`, `/functions/{name}/metrics`)
 * as live points: stats only, resources unknown. With `label`, the stats
 * go under `fns[label]` (a function's series), else under `sys`.
 * @param {{points: any[]}} series
 * @param {string} [label]
 * @returns {LivePoint[]}
 */
export function seriesPoints(series, label) {
  return (series?.points ?? []).map((p) => {
    const stats = pickStats(p);
    return {
      t: p.t,
      sys: label === undefined ? stats : null,
      active: null,
      queued: null,
      sandboxes: null,
      memBytes: null,
      host: null,
      sb: null,
      memReservedMb: null,
      memBudgetMb: null,
      fns: label === undefined ? {} : { [label]: { s: stats } },
    };
  });
}

/**
 * Merges points that share a second: fields known in `b` win, the rest
 * come from `a` (a backfilled point and a live one of the same second).
 */
export function mergePoint(a, b) {
  if (!a) return b;
  if (!b) return a;
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) {
    if (k === 'fns') out.fns = { ...a.fns, ...b.fns };
    else if (v !== null && v !== undefined) out[k] = v;
  }
  return out;
}

/**
 * uPlot columns on a regular grid of `step` seconds from `from` to `to`
 * (inclusive): x values, then one column per picker, null where no point
 * falls (a gap, not a zero). The grid keeps the chart moving with time
 * even when nothing happens.
 * @param {{t: number}[]} points sorted by t
 * @param {((p: any) => number | null | undefined)[]} pickers
 * @param {{from: number, to: number, step: number}} grid
 * @returns {(number | null)[][]}
 */
export function gridColumns(points, pickers, { from, to, step }) {
  const n = Math.max(0, Math.floor((to - from) / step) + 1);
  const xs = new Array(n);
  const cols = pickers.map(() => new Array(n).fill(null));
  for (let i = 0; i < n; i++) xs[i] = from + i * step;
  for (const p of points) {
    const i = Math.floor((p.t - from) / step);
    if (i < 0 || i >= n) continue;
    pickers.forEach((pick, j) => {
      const v = pick(p);
      cols[j][i] = v === undefined || v === null || Number.isNaN(v) ? null : v;
    });
  }
  return [xs, ...cols];
}

/**
 * Sum of a field over points (requests over the live window).
 * @param {any[]} points
 * @param {(p: any) => number | null | undefined} pick
 */
export function sumOf(points, pick) {
  let s = 0;
  for (const p of points) s += pick(p) ?? 0;
  return s;
}

/**
 * The error types seen in points, most frequent first (one series each in
 * the errors-by-type chart).
 * @param {any[]} points
 * @param {(p: any) => Record<string, number> | null | undefined} pick
 */
export function errorTypes(points, pick) {
  const counts = new Map();
  for (const p of points) {
    for (const [k, v] of Object.entries(pick(p) ?? {})) counts.set(k, (counts.get(k) ?? 0) + v);
  }
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([k]) => k);
}

/**
 * The step the series API is asked for per window: about 60-300 points,
 * steps under a minute only for windows of 15 minutes or less (the
 * server's rule), at most 1500 points.
 * @param {string} window
 */
export function stepFor(window) {
  switch (window) {
    case '5m':
      return '1s';
    case '15m':
      return '10s';
    case '1h':
      return '1m';
    case '24h':
      return '5m';
    case '7d':
      return '1h';
    default:
      return '1m';
  }
}

/** Seconds of a window name. @param {string} w */
export function windowSeconds(w) {
  const m = /^(\d+)([smhd])$/.exec(w);
  if (!m) return 300;
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[m[2]];
}

/** Seconds of a step name. */
export const stepSeconds = windowSeconds;
