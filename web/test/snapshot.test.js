import { test } from 'node:test';
import assert from 'node:assert/strict';
import { snapshotPoint, seriesPoints, gridColumns, mergePoint, sumOf, errorTypes, stepFor, windowSeconds } from '../src/lib/snapshot.js';
import { sortRows, matches } from '../src/lib/table.js';
import { fileTree, checkFilePath, languageOf, newFileName, TEMPLATES } from '../src/lib/templates.js';

const stats = (o = {}) => ({
  requests: 0,
  rps: 0,
  success: 0,
  errors: 0,
  error_rate: 0,
  errors_by_type: {},
  timeouts: 0,
  throttled: 0,
  cold_starts: 0,
  stem_starts: 0,
  cold_start_rate: 0,
  p50_ms: null,
  p90_ms: null,
  p99_ms: null,
  max_ms: null,
  mean_ms: null,
  mean_init_ms: null,
  concurrency: 0,
  mean_cpu_ms: null,
  mean_peak_memory_bytes: null,
  ...o,
});

// The shape of one `event: snapshot` of /api/v1/metrics/stream.
const snap = {
  at_ms: 1796168789615,
  system: {
    last_second: stats({ requests: 3, rps: 3, p99_ms: 12.5, errors: 1, errors_by_type: { FunctionError: 1 } }),
    last_minute: stats({ requests: 40 }),
    queued: 2,
    active: 1,
    idle: 1,
    resources: { sandboxes: 2, memory_bytes: 10862592, cpu_seconds: 0.07, cpu_cores: 0.1 },
  },
  functions: {
    hello: {
      last_second: stats({ requests: 3 }),
      last_minute: stats(),
      queued: 2,
      active: 1,
      idle: 1,
      resources: { sandboxes: 2, memory_bytes: 10862592, cpu_seconds: 0.07, cpu_cores: 0.1 },
    },
  },
  resources: {
    sampled_at_ms: 1796168789460,
    host: { cpu_ratio: 0.025, cores: 2, memory_total_bytes: 25275990016, memory_used_bytes: 591355904, load1: 0.15 },
    functions: {},
    sandboxes: { docker: { idle: 1, stem: 2 } },
    memory_reserved_mb: 384,
    memory_budget_mb: 12052,
  },
  records_dropped: 0,
};

test('a snapshot becomes a compact point', () => {
  const p = snapshotPoint(snap);
  assert.equal(p.t, 1796168788, 'the last complete second');
  assert.equal(p.sys.requests, 3);
  assert.deepEqual(p.sys.errors_by_type, { FunctionError: 1 });
  assert.equal(p.queued, 2);
  assert.equal(p.active, 1);
  assert.equal(p.host.cpu, 0.025);
  assert.deepEqual(p.sb, { docker: { idle: 1, stem: 2 } });
  assert.equal(p.memBudgetMb, 12052);
  assert.equal(p.fns.hello.s.requests, 3);
  assert.equal(p.fns.hello.memory_bytes, 10862592);
});

test('series points: system or one function', () => {
  const series = {
    points: [
      { t: 10, ...stats({ requests: 5 }) },
      { t: 11, ...stats() },
    ],
  };
  const sys = seriesPoints(series);
  assert.equal(sys[0].sys.requests, 5);
  assert.equal(sys[0].sys.errors_by_type, null, 'empty maps become null');
  const fn = seriesPoints(series, 'hello');
  assert.equal(fn[0].sys, null);
  assert.equal(fn[0].fns.hello.s.requests, 5);
});

test('merging a backfilled point with a live one keeps what each knows', () => {
  const backfilled = seriesPoints({ points: [{ t: 5, ...stats({ requests: 7 }) }] })[0];
  const live = { ...snapshotPoint(snap), t: 5, sys: null };
  const m = mergePoint(backfilled, live);
  assert.equal(m.sys.requests, 7);
  assert.equal(m.queued, 2);
});

test('grid columns: gaps are null, points fall in their slot', () => {
  const pts = [
    { t: 100, v: 1 },
    { t: 102, v: 3 },
    { t: 50, v: 9 },
  ];
  const [xs, vs] = gridColumns(pts, [(p) => p.v], { from: 100, to: 103, step: 1 });
  assert.deepEqual(xs, [100, 101, 102, 103]);
  assert.deepEqual(vs, [1, null, 3, null]);
  const [xs2, vs2] = gridColumns(pts, [(p) => p.v], { from: 100, to: 110, step: 5 });
  assert.deepEqual(xs2, [100, 105, 110]);
  assert.deepEqual(vs2, [3, null, null], 'later points of a slot win');
});

test('sums and error types', () => {
  const pts = [
    { n: 1, e: { Timeout: 1 } },
    { n: null, e: { FunctionError: 2, Timeout: 2 } },
    { n: 4, e: null },
  ];
  assert.equal(
    sumOf(pts, (p) => p.n),
    5,
  );
  assert.deepEqual(
    errorTypes(pts, (p) => p.e),
    ['Timeout', 'FunctionError'],
  );
});

test('series steps follow the server rules', () => {
  for (const w of ['5m', '1h', '24h', '7d']) {
    const window = windowSeconds(w);
    const step = windowSeconds(stepFor(w));
    assert.ok(window / step <= 1500, `${w}: at most 1500 points`);
    if (window > 900) assert.equal(step % 60, 0, `${w}: whole minutes over 15m`);
  }
});

test('table sorting: nulls last either way, ties stable', () => {
  const rows = [
    { n: 'b', v: 2 },
    { n: 'a', v: null },
    { n: 'c', v: 2 },
    { n: 'd', v: 1 },
  ];
  const tie = (r) => r.n;
  assert.deepEqual(
    sortRows(rows, 'v', 'desc', tie).map((r) => r.n),
    ['b', 'c', 'd', 'a'],
  );
  assert.deepEqual(
    sortRows(rows, 'v', 'asc', tie).map((r) => r.n),
    ['d', 'b', 'c', 'a'],
  );
  assert.deepEqual(
    sortRows(rows, 'n', 'desc').map((r) => r.n),
    ['d', 'c', 'b', 'a'],
  );
  assert.equal(matches('hel py', ['hello', 'python3']), true);
  assert.equal(matches('node', ['hello', 'python3']), false);
  assert.equal(matches('', []), true);
});

test('file tree, paths and templates', () => {
  const tree = fileTree(['main.py', 'lib/b.py', 'lib/a.py', 'README']);
  assert.deepEqual(
    tree.map((n) => n.name),
    ['lib', 'main.py', 'README'],
  );
  assert.deepEqual(
    tree[0].children.map((n) => n.path),
    ['lib/a.py', 'lib/b.py'],
  );
  assert.equal(checkFilePath('lib/a.py'), null);
  for (const bad of ['', '/a', 'a/../b', 'a\\b', 'c:x', 'a//b']) assert.notEqual(checkFilePath(bad), null, bad);
  assert.equal(languageOf('x/index.mjs'), 'javascript');
  assert.equal(languageOf('main.py'), 'python');
  assert.equal(newFileName('python3', ['module.py']), 'module2.py');
  assert.equal(TEMPLATES.python3.handler, 'main.handler');
  assert.ok(TEMPLATES.python3.files['main.py'].includes('def handler(event, context):'));
  assert.ok(TEMPLATES.nodejs.files['index.js'].startsWith('exports.handler = async (event, context)'));
});
