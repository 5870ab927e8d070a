// Numbers with units and times in the user's time zone. Every figure the
// console shows goes through here, so "—" always means "no data" and units
// are always spelled the same way.

export const NONE = '—';

/** @param {unknown} v */
const missing = (v) => v === null || v === undefined || (typeof v === 'number' && !Number.isFinite(v));

/**
 * A number with at most `digits` significant digits, without exponent
 * notation and without trailing zeros ("1.5", "264", "0.26").
 * @param {number} n
 * @param {number} [digits]
 */
export function sig(n, digits = 3) {
  if (n === 0) return '0';
  const abs = Math.abs(n);
  const decimals = Math.max(0, digits - 1 - Math.floor(Math.log10(abs)));
  return String(Number(n.toFixed(Math.min(decimals, 6))));
}

/**
 * A duration given in milliseconds: "0.26 ms", "264 ms", "1.26 s",
 * "2 min 5 s", "3 h 10 min".
 * @param {number | null | undefined} ms
 */
export function formatMs(ms) {
  if (missing(ms)) return NONE;
  const v = /** @type {number} */ (ms);
  const abs = Math.abs(v);
  if (abs < 1000) return `${sig(v)} ms`;
  if (abs < 60_000) return `${sig(v / 1000)} s`;
  const totalS = Math.round(abs / 1000);
  const sign = v < 0 ? '-' : '';
  if (totalS < 3600) {
    const m = Math.floor(totalS / 60);
    const s = totalS % 60;
    return `${sign}${m} min${s ? ` ${s} s` : ''}`;
  }
  if (totalS < 86_400) {
    const h = Math.floor(totalS / 3600);
    const m = Math.floor((totalS % 3600) / 60);
    return `${sign}${h} h${m ? ` ${m} min` : ''}`;
  }
  const d = Math.floor(totalS / 86_400);
  const h = Math.floor((totalS % 86_400) / 3600);
  return `${sign}${d} d${h ? ` ${h} h` : ''}`;
}

/** A duration in seconds (keep_alive_s, uptime). @param {number | null | undefined} s */
export function formatSeconds(s) {
  return missing(s) ? NONE : formatMs(/** @type {number} */ (s) * 1000);
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** Bytes in binary units: "512 B", "10.4 MiB". @param {number | null | undefined} b */
export function formatBytes(b) {
  if (missing(b)) return NONE;
  let v = /** @type {number} */ (b);
  let i = 0;
  while (Math.abs(v) >= 1024 && i < BYTE_UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${Math.round(v)} B` : `${sig(v)} ${BYTE_UNITS[i]}`;
}

/** MiB given as a number of MiB (memory_mb, budgets). @param {number | null | undefined} mb */
export function formatMiB(mb) {
  return missing(mb) ? NONE : formatBytes(/** @type {number} */ (mb) * 1024 * 1024);
}

/** A ratio 0..1 as a percentage: "12.5 %", "0 %", "< 0.1 %". @param {number | null | undefined} r */
export function formatPercent(r) {
  if (missing(r)) return NONE;
  const p = /** @type {number} */ (r) * 100;
  if (p === 0) return '0 %';
  if (Math.abs(p) < 0.1) return '< 0.1 %';
  return `${sig(p, p >= 100 ? 4 : 3)} %`;
}

/** Calls per second: "3.4 req/s". @param {number | null | undefined} rps */
export function formatRate(rps, unit = 'req/s') {
  if (missing(rps)) return NONE;
  return `${sig(/** @type {number} */ (rps))} ${unit}`;
}

/** A count, grouped for reading: "1,234", "1.2 M". @param {number | null | undefined} n */
export function formatCount(n) {
  if (missing(n)) return NONE;
  const v = /** @type {number} */ (n);
  if (Math.abs(v) >= 1e6) return `${sig(v / 1e6)} M`;
  return Math.round(v).toLocaleString('en-US');
}

/** US dollars, with enough digits for tiny per-call costs. @param {number | null | undefined} usd */
export function formatUsd(usd) {
  if (missing(usd)) return NONE;
  const v = /** @type {number} */ (usd);
  if (v === 0) return '$0';
  if (Math.abs(v) < 0.01) return `$${sig(v, 2)}`;
  return `$${v.toFixed(2)}`;
}

/** CPU cores in use: "0.25 cores". @param {number | null | undefined} c */
export function formatCores(c) {
  if (missing(c)) return NONE;
  const v = /** @type {number} */ (c);
  return `${sig(v)} ${v === 1 ? 'core' : 'cores'}`;
}

/**
 * p50/p90/p99 on one line; missing ones as "—".
 * @param {{p50_ms?: number|null, p90_ms?: number|null, p99_ms?: number|null} | null | undefined} s
 */
export function formatPercentiles(s) {
  if (!s) return `p50 ${NONE} · p90 ${NONE} · p99 ${NONE}`;
  return `p50 ${formatMs(s.p50_ms)} · p90 ${formatMs(s.p90_ms)} · p99 ${formatMs(s.p99_ms)}`;
}

/**
 * A value in a chart's unit (axis ticks and legends).
 * @param {string} unit one of ms, bytes, percent, rps, count, cores, s
 * @param {number | null | undefined} v
 */
export function formatUnit(unit, v) {
  switch (unit) {
    case 'ms':
      return formatMs(v);
    case 'bytes':
      return formatBytes(v);
    case 'percent':
      return formatPercent(v);
    case 'rps':
      return formatRate(v);
    case 'per_s':
      return formatRate(v, '/s');
    case 'cores':
      return formatCores(v);
    case 's':
      return formatSeconds(v);
    default:
      return missing(v) ? NONE : sig(/** @type {number} */ (v));
  }
}

/**
 * A point in time in the user's time zone: "23:45:58" today, "Dec 1,
 * 23:45" otherwise (with the year when it is not this one).
 * @param {number | string | Date | null | undefined} when Unix ms, RFC 3339, or a Date
 * @param {{now?: number, timeZone?: string, locale?: string, seconds?: boolean}} [opts]
 */
export function formatTime(when, opts = {}) {
  const d = toDate(when);
  if (!d) return NONE;
  const now = new Date(opts.now ?? Date.now());
  const tz = opts.timeZone;
  const locale = opts.locale;
  const dayOf = (x) => new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).format(x);
  const time = { hour: '2-digit', minute: '2-digit', hour12: false, timeZone: tz };
  if (opts.seconds !== false) time.second = '2-digit';
  if (dayOf(d) === dayOf(now)) {
    return new Intl.DateTimeFormat(locale, /** @type {any} */ (time)).format(d);
  }
  const sameYear = d.getUTCFullYear() === now.getUTCFullYear();
  return new Intl.DateTimeFormat(
    locale,
    /** @type {any} */ ({
      ...time,
      month: 'short',
      day: 'numeric',
      year: sameYear ? undefined : 'numeric',
    }),
  ).format(d);
}

/** A full timestamp for tooltips (`title`), with the time zone's name. */
export function formatTimeFull(when, opts = {}) {
  const d = toDate(when);
  if (!d) return NONE;
  return new Intl.DateTimeFormat(opts.locale, {
    dateStyle: 'medium',
    timeStyle: 'long',
    timeZone: opts.timeZone,
  }).format(d);
}

/**
 * How long ago: "just now", "3 s ago", "5 min ago", "2 h ago", "4 d ago"
 * ("in 3 s" for the future, e.g. an expiry).
 * @param {number | string | Date | null | undefined} when
 * @param {number} [now]
 */
export function formatRelative(when, now = Date.now()) {
  const d = toDate(when);
  if (!d) return NONE;
  const diffS = Math.round((now - d.getTime()) / 1000);
  const abs = Math.abs(diffS);
  let text;
  if (abs < 1) return 'just now';
  if (abs < 60) text = `${abs} s`;
  else if (abs < 3600) text = `${Math.floor(abs / 60)} min`;
  else if (abs < 86_400) text = `${Math.floor(abs / 3600)} h`;
  else text = `${Math.floor(abs / 86_400)} d`;
  return diffS >= 0 ? `${text} ago` : `in ${text}`;
}

/** @param {number | string | Date | null | undefined} when */
function toDate(when) {
  if (when === null || when === undefined || when === '') return null;
  const d = when instanceof Date ? when : new Date(when);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** The first 12 characters of a hash, for display. @param {string | null | undefined} h */
export function shortHash(h) {
  return h ? h.slice(0, 12) : NONE;
}

/** A function's label as the metrics API names it: `name` in `default`, else `ns/name`. */
export function fnLabel(namespace, name) {
  return namespace === 'default' ? name : `${namespace}/${name}`;
}

/** The inverse of fnLabel. @param {string} label */
export function parseLabel(label) {
  const i = label.indexOf('/');
  return i < 0 ? { namespace: 'default', name: label } : { namespace: label.slice(0, i), name: label.slice(i + 1) };
}

/**
 * A chart axis tick: short, the unit as a suffix ("0.5/s", "250 ms",
 * "50 %", "10 MiB").
 * @param {string} unit
 * @param {number | null | undefined} v
 */
export function formatTick(unit, v) {
  if (missing(v)) return '';
  const n = /** @type {number} */ (v);
  switch (unit) {
    case 'rps':
    case 'per_s':
      return `${sig(n)}/s`;
    case 'percent':
      return `${sig(n * 100)} %`;
    case 'ms':
      return formatMs(n);
    case 'bytes':
      return formatBytes(n);
    case 'cores':
      return sig(n);
    default:
      return n >= 1e6 ? `${sig(n / 1e6)}M` : n >= 1e4 ? `${sig(n / 1e3)}k` : sig(n);
  }
}

/**
 * Time-axis ticks in the user's time zone, as fine as the visible range
 * needs: seconds for minutes, minutes for hours, dates for days.
 * @param {number} rangeS the visible range, seconds
 * @param {{timeZone?: string, locale?: string, wholeMinutes?: boolean}} [opts] wholeMinutes: every tick is on a minute, so seconds are left out
 * @returns {(unixS: number) => string}
 */
export function timeTickFormatter(rangeS, opts = {}) {
  const tz = opts.timeZone;
  const f =
    rangeS <= 900 && !opts.wholeMinutes
      ? new Intl.DateTimeFormat(opts.locale, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false, timeZone: tz })
      : rangeS <= 2 * 86_400
        ? new Intl.DateTimeFormat(opts.locale, { hour: '2-digit', minute: '2-digit', hour12: false, timeZone: tz })
        : new Intl.DateTimeFormat(opts.locale, { month: 'short', day: 'numeric', hour: '2-digit', hour12: false, timeZone: tz });
  return (s) => f.format(new Date(s * 1000));
}
