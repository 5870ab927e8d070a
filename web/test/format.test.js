import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatMs,
  formatBytes,
  formatPercent,
  formatRate,
  formatCount,
  formatUsd,
  formatCores,
  formatPercentiles,
  formatTime,
  formatRelative,
  formatSeconds,
  formatMiB,
  formatUnit,
  sig,
  shortHash,
  fnLabel,
  parseLabel,
  NONE,
} from '../src/lib/format.js';

test('significant digits without exponents or trailing zeros', () => {
  assert.equal(sig(264.620337), '265');
  assert.equal(sig(0.261296), '0.261');
  assert.equal(sig(1.5), '1.5');
  assert.equal(sig(12), '12');
  assert.equal(sig(0), '0');
  assert.equal(sig(0.000012345), '0.000012');
});

test('durations', () => {
  assert.equal(formatMs(0.26), '0.26 ms');
  assert.equal(formatMs(264.62), '265 ms');
  assert.equal(formatMs(999), '999 ms');
  assert.equal(formatMs(1260), '1.26 s');
  assert.equal(formatMs(125_000), '2 min 5 s');
  assert.equal(formatMs(120_000), '2 min');
  assert.equal(formatMs(3 * 3600_000 + 10 * 60_000), '3 h 10 min');
  assert.equal(formatMs(2 * 86_400_000 + 3600_000), '2 d 1 h');
  assert.equal(formatMs(null), NONE);
  assert.equal(formatMs(undefined), NONE);
  assert.equal(formatMs(NaN), NONE);
  assert.equal(formatSeconds(600), '10 min');
});

test('bytes in binary units', () => {
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(10_862_592), '10.4 MiB');
  assert.equal(formatBytes(1024), '1 KiB');
  assert.equal(formatBytes(25_275_990_016), '23.5 GiB');
  assert.equal(formatBytes(null), NONE);
  assert.equal(formatMiB(128), '128 MiB');
  assert.equal(formatMiB(12052), '11.8 GiB');
});

test('percent, rates, counts, money, cores', () => {
  assert.equal(formatPercent(0), '0 %');
  assert.equal(formatPercent(0.125), '12.5 %');
  assert.equal(formatPercent(1), '100 %');
  assert.equal(formatPercent(0.0004), '< 0.1 %');
  assert.equal(formatPercent(null), NONE);
  assert.equal(formatRate(0.016666), '0.0167 req/s');
  assert.equal(formatRate(12), '12 req/s');
  assert.equal(formatRate(3, '/s'), '3 /s');
  assert.equal(formatCount(1234), '1,234');
  assert.equal(formatCount(2_500_000), '2.5 M');
  assert.equal(formatUsd(0.0000123), '$0.000012');
  assert.equal(formatUsd(1.5), '$1.50');
  assert.equal(formatUsd(0), '$0');
  assert.equal(formatUsd(null), NONE);
  assert.equal(formatCores(0.25), '0.25 cores');
  assert.equal(formatCores(1), '1 core');
});

test('percentiles on one line, missing ones as a dash', () => {
  assert.equal(formatPercentiles({ p50_ms: 12, p90_ms: 30.2, p99_ms: 1500 }), 'p50 12 ms · p90 30.2 ms · p99 1.5 s');
  assert.equal(formatPercentiles({ p50_ms: null, p90_ms: null, p99_ms: null }), `p50 ${NONE} · p90 ${NONE} · p99 ${NONE}`);
  assert.equal(formatPercentiles(null), `p50 ${NONE} · p90 ${NONE} · p99 ${NONE}`);
});

test('chart units', () => {
  assert.equal(formatUnit('ms', 5), '5 ms');
  assert.equal(formatUnit('percent', 0.5), '50 %');
  assert.equal(formatUnit('rps', 2), '2 req/s');
  assert.equal(formatUnit('bytes', 2048), '2 KiB');
  assert.equal(formatUnit('count', 3), '3');
  assert.equal(formatUnit('count', null), NONE);
});

test('times in the given time zone: time only today, with the date otherwise', () => {
  const now = Date.UTC(2026, 11, 1, 23, 50, 0);
  const t = Date.UTC(2026, 11, 1, 23, 45, 58);
  assert.equal(formatTime(t, { now, timeZone: 'UTC', locale: 'en-GB' }), '23:45:58');
  // The same instant is already the next day in Tokyo.
  assert.equal(formatTime(t, { now, timeZone: 'Asia/Tokyo', locale: 'en-GB' }), '08:45:58');
  const earlier = Date.UTC(2026, 10, 20, 8, 5, 0);
  assert.match(formatTime(earlier, { now, timeZone: 'UTC', locale: 'en-US' }), /Nov 20.*08:05:00/);
  assert.match(formatTime('2025-03-04T10:00:00Z', { now, timeZone: 'UTC', locale: 'en-US' }), /2025/);
  assert.equal(formatTime(null), NONE);
  assert.equal(formatTime('not a date'), NONE);
});

test('relative times', () => {
  const now = 1_000_000_000;
  assert.equal(formatRelative(now, now), 'just now');
  assert.equal(formatRelative(now - 3000, now), '3 s ago');
  assert.equal(formatRelative(now - 5 * 60_000, now), '5 min ago');
  assert.equal(formatRelative(now - 2 * 3600_000, now), '2 h ago');
  assert.equal(formatRelative(now - 4 * 86_400_000, now), '4 d ago');
  assert.equal(formatRelative(now + 3000, now), 'in 3 s');
  assert.equal(formatRelative(null, now), NONE);
});

test('hashes and labels', () => {
  assert.equal(shortHash('d4fcc62ec0c20039f40bf28ba443871ce'), 'd4fcc62ec0c2');
  assert.equal(fnLabel('default', 'hello'), 'hello');
  assert.equal(fnLabel('team-a', 'hello'), 'team-a/hello');
  assert.deepEqual(parseLabel('team-a/hello'), { namespace: 'team-a', name: 'hello' });
  assert.deepEqual(parseLabel('hello'), { namespace: 'default', name: 'hello' });
});

test('axis ticks are short, time ticks follow the range', async () => {
  const { formatTick, timeTickFormatter } = await import('../src/lib/format.js');
  assert.equal(formatTick('rps', 0.5), '0.5/s');
  assert.equal(formatTick('percent', 0.5), '50 %');
  assert.equal(formatTick('ms', 250), '250 ms');
  assert.equal(formatTick('count', 12000), '12k');
  assert.equal(formatTick('count', null), '');
  const t = Date.UTC(2026, 11, 1, 23, 45, 58) / 1000;
  assert.equal(timeTickFormatter(300, { timeZone: 'UTC', locale: 'en-GB' })(t), '23:45:58');
  assert.equal(timeTickFormatter(3600, { timeZone: 'UTC', locale: 'en-GB' })(t), '23:45');
  assert.equal(timeTickFormatter(300, { timeZone: 'UTC', locale: 'en-GB', wholeMinutes: true })(t), '23:45');
  assert.match(timeTickFormatter(7 * 86400, { timeZone: 'UTC', locale: 'en-US' })(t), /Dec 1/);
});
