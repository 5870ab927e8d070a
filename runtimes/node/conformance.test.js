'use strict';
// The conformance suite (runtimes/conformance/), replayed against the
// Node.js bootstrap. The Python suite replays the same cases.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { Sandbox, makeZip } = require('./harness.js');

const CASES = path.join(__dirname, '..', 'conformance');

function readDir(dir, prefix = '') {
  const files = {};
  for (const name of fs.readdirSync(dir).sort()) {
    const full = path.join(dir, name);
    if (fs.statSync(full).isDirectory()) Object.assign(files, readDir(full, `${prefix}${name}/`));
    else files[`${prefix}${name}`] = fs.readFileSync(full);
  }
  return files;
}

/** Replaces the placeholders of an input message. */
function fill(value, code, now) {
  if (Array.isArray(value)) return value.map((v) => fill(v, code, now));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fill(v, code, now)]));
  }
  if (value === '@code') return code;
  if (value === '@now') return now;
  if (typeof value === 'string' && value.startsWith('@now+')) return now + Number(value.slice(5));
  return value;
}

/** Why `actual` does not match `expected`, or null (README.md's rules). */
function mismatch(expected, actual, at = '$') {
  if (expected === '@any') return null;
  if (typeof expected === 'string' && expected.startsWith('@contains:')) {
    const text = expected.slice('@contains:'.length);
    return typeof actual === 'string' && actual.includes(text) ? null : `${at}: ${JSON.stringify(actual)} does not contain ${JSON.stringify(text)}`;
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) return `${at}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`;
    for (let i = 0; i < expected.length; i++) {
      const why = mismatch(expected[i], actual[i], `${at}[${i}]`);
      if (why) return why;
    }
    return null;
  }
  if (expected && typeof expected === 'object') {
    if (!actual || typeof actual !== 'object' || Array.isArray(actual)) return `${at}: expected an object, got ${JSON.stringify(actual)}`;
    for (const [k, v] of Object.entries(expected)) {
      if (v === '@absent') {
        if (k in actual) return `${at}.${k}: expected absent, got ${JSON.stringify(actual[k])}`;
        continue;
      }
      if (!(k in actual)) return `${at}.${k}: missing`;
      const why = mismatch(v, actual[k], `${at}.${k}`);
      if (why) return why;
    }
    return null;
  }
  return Object.is(expected, actual) ? null : `${at}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`;
}

const cases = fs.readdirSync(CASES).filter((d) => fs.statSync(path.join(CASES, d)).isDirectory()).sort();

test('the suite has its cases', () => assert.ok(cases.length >= 5));

for (const name of cases) {
  test(`conformance: ${name}`, async (t) => {
    const dir = path.join(CASES, name);
    const code = makeZip(readDir(path.join(dir, 'code'))).toString('base64');
    const now = Date.now();
    const lines = (f) => fs.readFileSync(path.join(dir, f), 'utf8').split('\n').filter((l) => l.trim());
    const inputs = lines('input.ndjson').map((l) => fill(JSON.parse(l), code, now));
    const expected = lines('expected.ndjson').map((l) => JSON.parse(l));
    const sb = await Sandbox.start();
    t.after(() => sb.cleanup());
    for (const msg of inputs) sb.send(msg);
    for (let i = 0; i < expected.length; i++) {
      const got = await sb.recv();
      const why = mismatch(expected[i], got);
      assert.equal(why, null, `message ${i + 1}: ${why} (got ${JSON.stringify(got).slice(0, 500)})`);
    }
  });
}
