import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ring, mergeByTime } from '../src/lib/ring.js';

test('keeps the last N items, oldest first', () => {
  const r = new Ring(3);
  for (let i = 1; i <= 5; i++) r.push(i);
  assert.equal(r.length, 3);
  assert.deepEqual(r.toArray(), [3, 4, 5]);
  assert.equal(r.at(0), 3);
  assert.equal(r.at(-1), 5);
  assert.equal(r.last(), 5);
  assert.equal(r.at(3), undefined);
});

test('partially filled', () => {
  const r = new Ring(300);
  r.push('a');
  r.push('b');
  assert.deepEqual(r.toArray(), ['a', 'b']);
  assert.equal(r.at(-2), 'a');
});

test('from() and clear()', () => {
  const r = Ring.from([1, 2, 3, 4], 2);
  assert.deepEqual(r.toArray(), [3, 4]);
  r.clear();
  assert.equal(r.length, 0);
  assert.equal(r.last(), undefined);
});

test('rejects a bad capacity', () => {
  assert.throws(() => new Ring(0), RangeError);
  assert.throws(() => new Ring(1.5), RangeError);
});

test('wraps around many times', () => {
  const r = new Ring(7);
  for (let i = 0; i < 1000; i++) r.push(i);
  assert.deepEqual(r.toArray(), [993, 994, 995, 996, 997, 998, 999]);
});

test('mergeByTime: sorted, newer wins, capped', () => {
  const older = [
    { t: 1, v: 'old' },
    { t: 2, v: 'old' },
    { t: 3, v: 'old' },
  ];
  const newer = [
    { t: 3, v: 'new' },
    { t: 4, v: 'new' },
  ];
  assert.deepEqual(mergeByTime(older, newer, 3), [
    { t: 2, v: 'old' },
    { t: 3, v: 'new' },
    { t: 4, v: 'new' },
  ]);
});
