import { test } from 'node:test';
import assert from 'node:assert/strict';
import { roleAllows, can, seesAll, homeOf } from '../src/lib/roles.js';

test('roles as the server defines them', () => {
  assert.equal(roleAllows('admin', 'manage_keys'), true);
  assert.equal(roleAllows('developer', 'write_functions'), true);
  assert.equal(roleAllows('developer', 'manage_keys'), false);
  assert.equal(roleAllows('viewer', 'read_functions'), true);
  assert.equal(roleAllows('viewer', 'invoke'), false);
  assert.equal(roleAllows('viewer', 'write_functions'), false);
  assert.equal(roleAllows('invoker', 'invoke'), true);
  assert.equal(roleAllows('invoker', 'read_functions'), false);
  assert.equal(roleAllows('invoker', 'read_metrics'), false);
  assert.equal(roleAllows('nobody', 'session'), false);
});

test('namespaces limit what a key may do', () => {
  const dev = { role: 'developer', namespaces: ['team-a'] };
  assert.equal(can(dev, 'write_functions', 'team-a'), true);
  assert.equal(can(dev, 'write_functions', 'default'), false);
  assert.equal(can(dev, 'write_functions'), true, 'somewhere');
  const scopedAdmin = { role: 'admin', namespaces: ['team-a'] };
  assert.equal(can(scopedAdmin, 'manage_keys'), false, 'system actions need every namespace');
  assert.equal(can({ role: 'admin', namespaces: '*' }, 'read_audit'), true);
  assert.equal(can(null, 'session'), false);
  assert.equal(seesAll(dev), false);
});

test('where each role lands', () => {
  assert.equal(homeOf({ role: 'viewer', namespaces: '*' }), '/');
  assert.equal(homeOf({ role: 'invoker', namespaces: '*' }), '/invoke');
});
