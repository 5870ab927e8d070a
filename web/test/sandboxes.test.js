import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SANDBOX_STATES, sandboxesNow, countByState, recordsOfSandbox, lastCallAt, backendCounts } from '../src/lib/sandboxes.js';
import { serverEnv, KEPT_IGNIS_VARS } from '../e2e/server.mjs';

// The shape of GET /api/v1/functions/{name}/sandboxes (newest first).
const list = [
  { id: 'sb-b', version: 3, backend: 'docker', state: 'booting', memory_mb: 128, age_ms: 200, in_state_ms: 200, calls: 0 },
  { id: 'sb-a', version: 3, backend: 'docker', state: 'idle', memory_mb: 128, age_ms: 9000, in_state_ms: 1500, calls: 17 },
  { id: 'sb-0', version: 2, backend: 'docker', state: 'draining', memory_mb: 128, age_ms: 60000, in_state_ms: 10, calls: 3 },
];

test('sandboxesNow moves ages and times in state on since the fetch, keeping the order and the rest', () => {
  const now = sandboxesNow(list, 1_000_000, 1_002_500);
  assert.deepEqual(
    now.map((s) => [s.id, s.age_ms, s.in_state_ms]),
    [
      ['sb-b', 2700, 2700],
      ['sb-a', 11500, 4000],
      ['sb-0', 62500, 2510],
    ],
  );
  assert.deepEqual(
    now.map((s) => [s.state, s.calls, s.version, s.memory_mb, s.backend]),
    list.map((s) => [s.state, s.calls, s.version, s.memory_mb, s.backend]),
  );
  // The server's list is not changed.
  assert.equal(list[0].age_ms, 200);
  // A clock behind the fetch (another tab's clock, a jump) never makes times go back.
  assert.deepEqual(
    sandboxesNow(list, 5000, 4000).map((s) => s.age_ms),
    [200, 9000, 60000],
  );
  assert.deepEqual(sandboxesNow(null, 0, 0), []);
  assert.deepEqual(sandboxesNow([], 0, 10), []);
});

test('countByState has every state, counts unknown ones under their name', () => {
  assert.deepEqual(countByState(list), { booting: 1, initializing: 0, idle: 1, busy: 0, draining: 1 });
  assert.deepEqual(Object.keys(countByState([])), SANDBOX_STATES);
  assert.deepEqual(countByState(undefined), { booting: 0, initializing: 0, idle: 0, busy: 0, draining: 0 });
  assert.equal(countByState([{ state: 'paused' }, { state: 'paused' }]).paused, 2);
});

test('recordsOfSandbox keeps the calls a sandbox served, all without an id', () => {
  const records = [
    { id: 'inv-1', sandbox_id: 'sb-a' },
    { id: 'inv-2', sandbox_id: 'sb-b' },
    { id: 'inv-3', sandbox_id: null },
    { id: 'inv-4', sandbox_id: 'sb-a' },
  ];
  assert.deepEqual(
    recordsOfSandbox(records, 'sb-a').map((r) => r.id),
    ['inv-1', 'inv-4'],
  );
  assert.deepEqual(recordsOfSandbox(records, 'sb-zz'), []);
  assert.equal(recordsOfSandbox(records, null), records);
  assert.equal(recordsOfSandbox(records, ''), records);
});

test('lastCallAt is the newest known time, null when none is', () => {
  assert.equal(lastCallAt(1000, 2000), 2000);
  assert.equal(lastCallAt(3000, 2000), 3000);
  assert.equal(lastCallAt(null, 2000), 2000);
  assert.equal(lastCallAt(1000, undefined), 1000);
  assert.equal(lastCallAt(null, undefined), null);
  assert.equal(lastCallAt(), null);
  assert.equal(lastCallAt(Number.NaN, 5), 5);
  // A summary from an older server (no field) and no stream yet.
  assert.equal(lastCallAt({}.last_call_at_ms, undefined), null);
});

test('backendCounts: counts, true zeros, or withheld for a key limited to some namespaces', () => {
  const sb = { docker: { idle: 2, stem: 1 } };
  assert.equal(backendCounts(sb, true), 'counts');
  // An older server gave them to every key: shown as given.
  assert.equal(backendCounts(sb, false), 'counts');
  // No sandbox anywhere: the key for every namespace sees zeros.
  assert.equal(backendCounts({}, true), 'zeros');
  // The server leaves them out ({}) for a limited key: not zeros.
  assert.equal(backendCounts({}, false), 'withheld');
  assert.equal(backendCounts(undefined, false), 'withheld');
  assert.equal(backendCounts(null, true), 'zeros');
});

test('the e2e server inherits no IGNIS_* variable but the image and console directories', () => {
  const env = serverEnv({
    PATH: '/usr/bin',
    HOME: '/root',
    IGNIS_AUTH: 'off',
    IGNIS_NO_AUTH: '1',
    IGNIS_RECORD: 'false',
    IGNIS_DOCKER: 'false',
    IGNIS_METRICS_PUBLIC: '1',
    IGNIS_QUEUE_CAPACITY: '3',
    IGNIS_ADMIN_KEY: 'ign_x',
    IGNIS_CONFIG: '/etc/ignis.toml',
    IGNIS_SOMETHING_NEW: 'x',
    IGNIS_IMAGE_DIR: '/var/cache/ignis/images',
    IGNIS_CONSOLE_DIR: '/work/main/web/dist',
    NOT_IGNIS_AUTH: 'kept',
    ignis_lower: 'kept',
    UNSET: undefined,
  });
  assert.deepEqual(env, {
    PATH: '/usr/bin',
    HOME: '/root',
    IGNIS_IMAGE_DIR: '/var/cache/ignis/images',
    IGNIS_CONSOLE_DIR: '/work/main/web/dist',
    NOT_IGNIS_AUTH: 'kept',
    ignis_lower: 'kept',
  });
  assert.deepEqual(KEPT_IGNIS_VARS, ['IGNIS_IMAGE_DIR', 'IGNIS_CONSOLE_DIR']);
  // Empty ones are left out; relative directories are made absolute (the server runs in its data directory).
  assert.deepEqual(serverEnv({ IGNIS_CONSOLE_DIR: '' }), {});
  assert.equal(serverEnv({ IGNIS_IMAGE_DIR: 'images' }).IGNIS_IMAGE_DIR, `${process.cwd()}/images`);
});
