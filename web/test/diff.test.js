import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diffConfig, diffVersions, describeChange, describeSave, configOf } from '../src/lib/diff.js';

const v1 = {
  version: 1,
  code_sha256: 'aaaa1111bbbb2222',
  config: { runtime: 'python3', handler: 'main.handler', memory_mb: 128, route: null, env: { A: '1', B: '2' } },
};

test('no changes', () => {
  assert.deepEqual(diffConfig(v1.config, structuredClone(v1.config)), []);
  assert.deepEqual(diffVersions(v1, structuredClone(v1)), []);
  assert.deepEqual(diffVersions(null, v1), [], 'the first version has nothing to compare with');
});

test('config fields and env keys, code first', () => {
  const v2 = {
    version: 2,
    code_sha256: 'cccc3333dddd4444',
    config: { ...v1.config, memory_mb: 256, route: '/hi', env: { A: '1', B: 'changed', C: '3' } },
  };
  const changes = diffVersions(v1, v2);
  assert.deepEqual(
    changes.map((c) => c.field),
    ['code', 'memory_mb', 'route', 'env.B', 'env.C'],
  );
  assert.deepEqual(changes.map(describeChange), [
    'code changed (aaaa1111bbbb → cccc3333dddd)',
    'memory_mb: 128 → 256',
    'route: none → /hi',
    'env.B value changed',
    'env.C added',
  ]);
});

test('removed env keys and fields', () => {
  const changes = diffConfig({ env: { A: '1' }, x: 1 }, { env: {} });
  assert.deepEqual(changes.map(describeChange), ['x removed (was 1)', 'env.A removed']);
});

test('a save: created, updated, unchanged', () => {
  const before = { version: 3, code_sha256: 'h1', runtime: 'nodejs', handler: 'index.handler', memory_mb: 128, env: {} };
  assert.deepEqual(describeSave(null, before), { created: true, newVersion: true, version: 3, changes: [] });
  const same = describeSave(before, { ...before });
  assert.equal(same.newVersion, false);
  assert.deepEqual(same.changes, []);
  const after = describeSave(before, { ...before, version: 4, env: { GREETING: 'hi' } });
  assert.equal(after.newVersion, true);
  assert.deepEqual(after.changes.map(describeChange), ['env.GREETING added']);
  assert.equal(configOf(before).memory_mb, 128);
});
