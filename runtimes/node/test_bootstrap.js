'use strict';
// Tests of the Node.js bootstrap, run against the real script in a child
// process (no Docker): node --test runtimes/node/
// (bootstrap.test.js loads this file so that the directory form finds it.)

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const zlib = require('node:zlib');
const { spawn, spawnSync } = require('node:child_process');

const BOOTSTRAP = path.join(__dirname, 'bootstrap.js');
const MAX_RESPONSE = 6291456;
const CAP = 65536;

const { Sandbox, makeZip, sleep } = require('./harness.js');

/** Starts a sandbox, inits it, and registers its cleanup. */
async function sandbox(t, files, handler = 'main.handler', extra = {}) {
  const sb = await Sandbox.start();
  t.after(() => sb.cleanup());
  sb.ready = await sb.init(files, handler, extra);
  if (extra.expectReady !== false) assert.equal(sb.ready.type, 'ready', JSON.stringify(sb.ready));
  return sb;
}

function assertOk(res, value) {
  assert.equal(res.type, 'result');
  assert.equal(res.ok, true, JSON.stringify(res).slice(0, 2000));
  assert.deepEqual(res.value, value);
}

function assertError(res, type) {
  assert.equal(res.type, 'result');
  assert.equal(res.ok, false, JSON.stringify(res).slice(0, 2000));
  assert.ok(!('value' in res));
  assert.equal(res.error.type, type, JSON.stringify(res).slice(0, 2000));
  return res.error;
}

const HELLO = { 'main.js': "exports.handler = async () => 'hello world';\n" };

// ---------------------------------------------------------------------------
// Basics

test('hello world, then exit 0 on EOF', async (t) => {
  const sb = await sandbox(t, HELLO);
  const res = await sb.invoke1({});
  assertOk(res, 'hello world');
  assert.equal(res.id, 'inv-0');
  assert.equal(res.stdout, '');
  assert.equal(res.stderr, '');
  assert.equal(res.logs_truncated, false);
  assert.equal(typeof res.duration_ms, 'number');
  assert.equal(await sb.close(), 0);
});

test('event echo', async (t) => {
  const sb = await sandbox(t, { 'main.js': 'exports.handler = async (event) => event;\n' });
  for (const ev of [{ a: [1, 2.5, null, true], s: 'héllo ✓ 🎉', n: { x: {} } }, 'a string', 42, null, []]) {
    assertOk(await sb.invoke1(ev), ev);
  }
});

test('environment variables', async (t) => {
  const sb = await sandbox(t, {
    'main.js': `
      const atImport = process.env.GREETING;
      const keys = ['GREETING', 'EMPTY', 'IGNIS_FUNCTION_NAME', 'IGNIS_FUNCTION_VERSION',
        'AWS_LAMBDA_FUNCTION_NAME', 'AWS_LAMBDA_FUNCTION_VERSION', 'AWS_LAMBDA_FUNCTION_MEMORY_SIZE'];
      exports.handler = async () => {
        const out = { import: atImport };
        for (const k of keys) out[k] = process.env[k];
        return out;
      };
    `,
  }, 'main.handler', { env: { GREETING: 'bonjour', EMPTY: '' } });
  assertOk(await sb.invoke1({}), {
    import: 'bonjour',
    GREETING: 'bonjour',
    EMPTY: '',
    IGNIS_FUNCTION_NAME: 'hello',
    IGNIS_FUNCTION_VERSION: '3',
    AWS_LAMBDA_FUNCTION_NAME: 'hello',
    AWS_LAMBDA_FUNCTION_VERSION: '3',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '128',
  });
});

test('context fields and remaining time', async (t) => {
  const sb = await sandbox(t, {
    'main.js': `
      exports.handler = async (event, context) => ({
        functionName: context.functionName,
        functionVersion: context.functionVersion,
        memoryLimitInMB: context.memoryLimitInMB,
        awsRequestId: context.awsRequestId,
        invokedFunctionArn: context.invokedFunctionArn,
        callbackWaitsForEmptyEventLoop: context.callbackWaitsForEmptyEventLoop,
        remaining: context.getRemainingTimeInMillis(),
      });
    `,
  });
  const res = await sb.invoke1({}, { timeoutMs: 2000 });
  assert.ok(res.ok, JSON.stringify(res));
  const v = res.value;
  assert.equal(v.functionName, 'hello');
  assert.equal(v.functionVersion, '3');
  assert.equal(Number(v.memoryLimitInMB), 128);
  assert.equal(v.awsRequestId, 'inv-0');
  assert.equal(v.invokedFunctionArn, 'arn:ignis:function:hello');
  assert.equal(v.callbackWaitsForEmptyEventLoop, true);
  assert.ok(Number.isInteger(v.remaining));
  assert.ok(v.remaining > 1000 && v.remaining <= 2000, `remaining ${v.remaining}`);

  sb.send({ type: 'invoke', items: [{ id: 'late', event: {}, deadline_ms: Date.now() - 5000 }] });
  assert.equal((await sb.recv()).value.remaining, 0);
});

test('sequential items are timed from their own start', async (t) => {
  const sb = await sandbox(t, {
    'main.js': `
      exports.handler = async (ms, context) => {
        const left = context.getRemainingTimeInMillis();
        await new Promise((r) => setTimeout(r, ms));
        return left;
      };
    `,
  });
  const [first, second] = await sb.invoke([400, 0], { timeoutMs: 1000 });
  assert.ok(first.value > 800, JSON.stringify(first));
  assert.ok(second.value > 800, JSON.stringify(second));
});

test('a second file and a nested handler', async (t) => {
  const sb = await sandbox(t, {
    'src/app.js': `
      const helper = require('../lib/helper');
      const fs = require('fs');
      exports.run = async () => helper.shout(fs.readFileSync('data/file.txt', 'utf8'));
    `,
    'lib/helper.js': "exports.shout = (s) => s.toUpperCase() + '!';\n",
    'data/file.txt': 'read me',
    'node_modules/leftpad/index.js': "module.exports = (s) => '  ' + s;\n",
  }, 'src/app.run');
  assertOk(await sb.invoke1({}), 'READ ME!');
});

test('handler styles: sync, promise, callback', async (t) => {
  const files = {
    'main.js': `
      exports.sync = (event) => event + 1;
      exports.promise = (event) => new Promise((r) => setTimeout(() => r(event * 10), 5));
      exports.callback = (event, context, callback) => {
        setTimeout(() => (event === 'fail' ? callback(new TypeError('cb failed')) : callback(null, { got: event })), 5);
      };
      exports.legacy = function (event, context, callback) { context.succeed('legacy ' + event); };
      exports.undef = async () => {};
      exports.fn = async () => () => 1;
    `,
  };
  const sbFor = (name) => sandbox(t, files, `main.${name}`);
  assertOk(await (await sbFor('sync')).invoke1(1), 2);
  assertOk(await (await sbFor('promise')).invoke1(2), 20);
  const cb = await sbFor('callback');
  assertOk(await cb.invoke1('x'), { got: 'x' });
  const err = assertError(await cb.invoke1('fail'), 'FunctionError');
  assert.equal(err.message, 'TypeError: cb failed');
  assertOk(await (await sbFor('legacy')).invoke1('y'), 'legacy y');
  assertOk(await (await sbFor('undef')).invoke1({}), null);
  assertOk(await (await sbFor('fn')).invoke1({}), null);
});

test('an .mjs module', async (t) => {
  const sb = await sandbox(t, {
    'main.mjs': `
      import { helper } from './helper.mjs';
      import path from 'node:path';
      export const handler = async (event) => helper(event) + path.sep;
    `,
    'helper.mjs': 'export const helper = (e) => `esm ${e.name}`;\n',
  });
  assertOk(await sb.invoke1({ name: 'ok' }), 'esm ok/');
});

test('a .cjs module, and .js before .mjs', async (t) => {
  const cjs = await sandbox(t, { 'main.cjs': "exports.handler = async () => 'cjs';\n" });
  assertOk(await cjs.invoke1({}), 'cjs');
  const both = await sandbox(t, {
    'main.js': "exports.handler = async () => 'js';\n",
    'main.mjs': "export const handler = async () => 'mjs';\n",
  });
  assertOk(await both.invoke1({}), 'js');
});

test('an ES module .js file under "type": "module"', async (t) => {
  const sb = await sandbox(t, {
    'package.json': '{"type":"module"}',
    'main.js': "export const handler = async () => 'esm in .js';\n",
  });
  assertOk(await sb.invoke1({}), 'esm in .js');
});

test('stored zip entries', async (t) => {
  const sb = await sandbox(t, null, 'main.handler', { zip: makeZip(HELLO, 0) });
  assertOk(await sb.invoke1({}), 'hello world');
});

test('a zip made by Python zipfile', { skip: spawnSync('python3', ['--version']).status !== 0 }, async (t) => {
  const py = `
import io, zipfile, sys
b = io.BytesIO()
with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("main.js", "exports.handler = async () => require('./sub/dep').v;\\n")
    z.writestr("sub/", "")
    z.writestr("sub/dep.js", "exports.v = 'from python zip ' + 'x'.repeat(3);\\n")
sys.stdout.buffer.write(b.getvalue())
`;
  const zip = spawnSync('python3', ['-c', py]).stdout;
  const sb = await sandbox(t, null, 'main.handler', { zip });
  assertOk(await sb.invoke1({}), 'from python zip xxx');
});

// ---------------------------------------------------------------------------
// Errors

test('a throw is a FunctionError with message and stack', async (t) => {
  const sb = await sandbox(t, {
    'main.js': `
      function inner() { null.x(); }
      exports.handler = async (event) => {
        console.log('before');
        if (event === 'custom') { class MyError extends Error {} throw new MyError('mine'); }
        if (event === 'string') throw 'just a string';
        inner();
      };
    `,
  });
  const res = await sb.invoke1({});
  const err = assertError(res, 'FunctionError');
  assert.match(err.message, /^TypeError: /);
  assert.match(err.stack, /TypeError/);
  assert.match(err.stack, /main\.js/);
  assert.match(err.stack, /inner/);
  assert.equal(res.stdout, 'before\n');
  assert.equal(assertError(await sb.invoke1('custom'), 'FunctionError').message, 'MyError: mine');
  assert.equal(assertError(await sb.invoke1('string'), 'FunctionError').message, 'Error: just a string');
});

test('a sync throw and a rejection', async (t) => {
  const sb = await sandbox(t, {
    'main.js': `
      exports.handler = (event) => {
        if (event === 'sync') throw new RangeError('sync boom');
        return Promise.reject(new Error('rejected'));
      };
    `,
  });
  assert.equal(assertError(await sb.invoke1('sync'), 'FunctionError').message, 'RangeError: sync boom');
  assert.equal(assertError(await sb.invoke1('reject'), 'FunctionError').message, 'Error: rejected');
});

test('an uncaught exception inside a call fails that call only', async (t) => {
  const sb = await sandbox(t, {
    'main.js': `
      exports.handler = (event, context, callback) => {
        if (event === 'throw') setTimeout(() => { throw new Error('from a timer'); }, 5);
        else callback(null, 'fine');
      };
    `,
  });
  const err = assertError(await sb.invoke1('throw'), 'FunctionError');
  assert.equal(err.message, 'Error: from a timer');
  assertOk(await sb.invoke1('ok'), 'fine');
});

test('errors after a result do not kill the bootstrap', async (t) => {
  const sb = await sandbox(t, {
    'main.js': `
      exports.handler = async (event) => {
        if (event && event.wait) {
          await new Promise((r) => setTimeout(r, event.wait));
          return event;
        }
        setTimeout(() => { Promise.reject(new Error('late rejection')); }, 5);
        setTimeout(() => { throw new Error('late throw'); }, 10);
        if (event === 2) setTimeout(() => { throw new Error('during the next call'); }, 30);
        return event;
      };
    `,
  });
  assertOk(await sb.invoke1(1), 1);
  await sleep(100);
  assertOk(await sb.invoke1(2), 2);
  await sleep(100);
  // An error from a finished call while another one runs: only logged.
  assertOk(await sb.invoke1({ wait: 100 }), { wait: 100 });
  assert.equal(await sb.close(), 0);
  assert.match(sb.stderr, /late rejection/);
  assert.match(sb.stderr, /late throw/);
  assert.match(sb.stderr, /during the next call/);
});

test('non-serializable results are InvalidResult', async (t) => {
  const sb = await sandbox(t, {
    'main.js': `
      exports.handler = async (event) => {
        if (event === 'bigint') return { n: 10n };
        if (event === 'circular') { const a = {}; a.self = a; return a; }
        if (event === 'throwing') return { toJSON() { throw new Error('no'); } };
        return 'fine';
      };
    `,
  });
  for (const ev of ['bigint', 'circular', 'throwing']) {
    const err = assertError(await sb.invoke1(ev), 'InvalidResult');
    assert.match(err.message, /JSON/);
  }
  assertOk(await sb.invoke1('x'), 'fine');
});

test('a response over 6 MiB is ResponseTooLarge', async (t) => {
  const sb = await sandbox(t, {
    'main.js': "exports.handler = async (n) => (typeof n === 'number' ? 'x'.repeat(n) : 'é'.repeat(n.e));\n",
  });
  // A string of n characters serializes to n + 2 bytes.
  assertOk(await sb.invoke1(MAX_RESPONSE - 2), 'x'.repeat(MAX_RESPONSE - 2));
  const err = assertError(await sb.invoke1(MAX_RESPONSE - 1), 'ResponseTooLarge');
  assert.match(err.message, new RegExp(String(MAX_RESPONSE)));
  assertError(await sb.invoke1({ e: MAX_RESPONSE / 2 }), 'ResponseTooLarge'); // 2 bytes each
  assertOk(await sb.invoke1(3), 'xxx');
});

// ---------------------------------------------------------------------------
// Init errors

test('handler not found', async (t) => {
  const sb = await sandbox(t, HELLO, 'nope.handler', { expectReady: false });
  assert.equal(sb.ready.type, 'init_error');
  assert.equal(sb.ready.error.type, 'HandlerNotFound');
  assert.match(sb.ready.error.message, /nope/);
  // Calls after a failed init get the init error.
  assertError(await sb.invoke1({}), 'HandlerNotFound');
  for (const handler of ['main.missing', 'main.VALUE', 'main', '', 'main.']) {
    const s = await sandbox(t, { 'main.js': "exports.handler = async () => 1; exports.VALUE = 3;\n" }, handler, { expectReady: false });
    assert.equal(s.ready.type, 'init_error', handler);
    assert.equal(s.ready.error.type, 'HandlerNotFound', handler);
  }
});

test('import errors', async (t) => {
  const cases = {
    syntax: { 'main.js': 'exports.handler = (;\n' },
    throws: { 'main.js': "throw new Error('at import');\n" },
    dependency: { 'main.js': "require('not-a-module-anywhere');\n" },
    esmSyntax: { 'main.mjs': 'export const handler = (;\n' },
  };
  for (const [name, files] of Object.entries(cases)) {
    const sb = await sandbox(t, files, 'main.handler', { expectReady: false });
    assert.equal(sb.ready.type, 'init_error', name);
    assert.equal(sb.ready.error.type, 'ImportError', name);
    assert.ok(sb.ready.error.stack, name);
  }
  const sb = await sandbox(t, cases.throws, 'main.handler', { expectReady: false });
  assert.equal(sb.ready.error.message, 'Error: at import');
});

test('invalid archives', async (t) => {
  const abs = makeZip({ '/abs.js': 'x' });
  for (const [name, zip] of [
    ['garbage', Buffer.from('this is not a zip file at all, no')],
    ['dotdot', makeZip({ '../escape.js': 'x' })],
    ['nested dotdot', makeZip({ 'a/../../escape.js': 'x' })],
    ['absolute', abs],
  ]) {
    const sb = await sandbox(t, null, 'main.handler', { zip, expectReady: false });
    assert.equal(sb.ready.type, 'init_error', name);
    assert.equal(sb.ready.error.type, 'InvalidArchive', name);
    assert.ok(!fs.existsSync(path.join(sb.dir, 'escape.js')));
  }
});

test('output while importing is in ready', async (t) => {
  const sb = await sandbox(t, {
    'main.js': "console.log('loading'); console.error('warn'); exports.handler = async () => 1;\n",
  });
  assert.equal(sb.ready.stdout, 'loading\n');
  assert.equal(sb.ready.stderr, 'warn\n');
  assert.equal(sb.ready.logs_truncated, false);
  assert.equal((await sb.invoke1({})).stdout, '');
});

// ---------------------------------------------------------------------------
// Batches and logs

test('a batch of three', async (t) => {
  const sb = await sandbox(t, {
    'main.js': 'exports.handler = async (event, context) => { console.log("item", context.awsRequestId); return event * 2; };\n',
  });
  const results = await sb.invoke([1, 2, 3]);
  assert.deepEqual(results.map((r) => r.id), ['inv-0', 'inv-1', 'inv-2']);
  assert.deepEqual(results.map((r) => r.value), [2, 4, 6]);
  assert.deepEqual(results.map((r) => r.stdout), ['item inv-0\n', 'item inv-1\n', 'item inv-2\n']);
});

test('a sequential batch runs one call at a time', async (t) => {
  const sb = await sandbox(t, {
    'main.js': `
      let active = 0, most = 0;
      exports.handler = async (ms) => {
        active++; most = Math.max(most, active);
        await new Promise((r) => setTimeout(r, ms));
        active--;
        return most;
      };
    `,
  });
  const results = await sb.invoke([30, 10, 20]);
  assert.deepEqual(results.map((r) => r.id), ['inv-0', 'inv-1', 'inv-2']);
  assert.deepEqual(results.map((r) => r.value), [1, 1, 1]);
});

test('a concurrent batch: overlapping calls, completion order, own logs', async (t) => {
  const sb = await sandbox(t, {
    'main.js': `
      let active = 0, most = 0;
      exports.handler = async (event, context) => {
        active++; most = Math.max(most, active);
        console.log('start', context.awsRequestId);
        await new Promise((r) => setTimeout(r, event.ms));
        process.stdout.write('end ' + context.awsRequestId + '\\n');
        console.error('err', context.awsRequestId);
        active--;
        return { id: context.awsRequestId, most };
      };
    `,
  });
  const results = await sb.invoke([{ ms: 150 }, { ms: 10 }, { ms: 80 }], { concurrent: true });
  assert.deepEqual(results.map((r) => r.id), ['inv-1', 'inv-2', 'inv-0']);
  for (const r of results) {
    assert.equal(r.ok, true);
    assert.equal(r.value.id, r.id);
    assert.equal(r.stdout, `start ${r.id}\nend ${r.id}\n`);
    assert.equal(r.stderr, `err ${r.id}\n`);
  }
  assert.equal(results[2].value.most, 3);
});

test('large output is truncated at 64 KiB', async (t) => {
  const sb = await sandbox(t, {
    'main.js': `
      exports.handler = async (event) => {
        if (event === 'big') {
          for (let i = 0; i < 100; i++) console.log('o'.repeat(1000));
          process.stderr.write('e'.repeat(70000));
          process.stderr.write('more');
        } else if (event === 'utf8') {
          process.stdout.write('€'.repeat(30000));
        } else if (event === 'exact') {
          process.stdout.write(Buffer.from('x'.repeat(65536)));
        } else console.log('small');
        return 'done';
      };
    `,
  });
  let res = await sb.invoke1('big');
  assertOk(res, 'done');
  assert.equal(res.logs_truncated, true);
  assert.equal(Buffer.byteLength(res.stdout), CAP);
  assert.equal(res.stderr, 'e'.repeat(CAP));
  res = await sb.invoke1('utf8');
  assert.equal(res.logs_truncated, true);
  assert.equal(res.stdout, '€'.repeat(Math.floor(CAP / 3)));
  res = await sb.invoke1('exact');
  assert.equal(res.logs_truncated, false);
  assert.equal(res.stdout.length, CAP);
  res = await sb.invoke1('small');
  assert.equal(res.logs_truncated, false);
  assert.equal(res.stdout, 'small\n');
});

test('printing does not corrupt the channel', async (t) => {
  const sb = await sandbox(t, {
    'main.js': `
      exports.handler = async () => {
        console.log('{"type":"result","id":"fake","ok":true,"value":1}');
        process.stdout.write('line\\nbreaks\\n\\n');
        console.info('info'); console.warn('warn'); console.debug('debug');
        require('fs').writeSync(1, 'raw fd 1\\n');
        return { printed: true };
      };
    `,
  });
  const res = await sb.invoke1({});
  assertOk(res, { printed: true });
  assert.equal(res.stdout, '{"type":"result","id":"fake","ok":true,"value":1}\nline\nbreaks\n\ninfo\ndebug\n');
  assert.equal(res.stderr, 'warn\n');
  assertOk(await sb.invoke1({}), { printed: true });
  assert.equal(await sb.close(), 0);
  assert.match(sb.stdout, /raw fd 1/);
});

// ---------------------------------------------------------------------------
// Protocol robustness

test('unknown and invalid messages', async (t) => {
  const sb = await sandbox(t, HELLO);
  sb.send({ type: 'frobnicate', extra: 1 });
  const msg = await sb.recv();
  assert.equal(msg.type, 'error');
  assert.match(msg.message, /frobnicate/);
  sb.sendRaw('{not json\n');
  assert.equal((await sb.recv()).type, 'error');
  sb.send({ type: 'init', handler: 'main.handler' });
  assert.equal((await sb.recv()).type, 'error');
  sb.send({ type: 'invoke', future: true, items: [{ id: 'x', event: 1, deadline_ms: Date.now() + 1000, new: 2 }] });
  assertOk(await sb.recv(), 'hello world');
  assert.equal(await sb.close(), 0);
});

test('restore: first message only, then Math.random comes from the CSPRNG', async (t) => {
  const bad = await Sandbox.start();
  t.after(() => bad.cleanup());
  bad.send({ type: 'restore', seed: 'zz' });
  assert.match((await bad.recv()).message, /seed/);
  const sb = await Sandbox.start();
  t.after(() => sb.cleanup());
  sb.send({ type: 'restore', seed: 'ab'.repeat(32), now_ms: Date.now() });
  // Not a microVM's root bootstrap: the kernel is left alone.
  const restored = await sb.recv();
  assert.equal(restored.type, 'restored');
  assert.equal(restored.kernel_reseeded, false);
  const ready = await sb.init({
    'main.js': 'exports.handler = async () => [Math.random.name, Array.from({ length: 1000 }, Math.random)];\n',
  });
  assert.equal(ready.type, 'ready');
  sb.send({ type: 'restore', seed: 'ab'.repeat(32) });
  assert.match((await sb.recv()).message, /first message/);
  const res = await sb.invoke1(null);
  const [name, xs] = res.value;
  assert.equal(name, 'random');
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  assert.equal(new Set(xs).size, 1000);
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.05, `mean ${mean}`);
});

test('a large archive and a large event', async (t) => {
  const blob = require('node:crypto').randomBytes(3 * 1024 * 1024);
  const sb = await sandbox(t, {
    'main.js': "exports.handler = async (e) => [require('fs').readFileSync('blob.bin').length, e.length];\n",
    'blob.bin': blob,
  });
  assertOk(await sb.invoke1('y'.repeat(5000000)), [blob.length, 5000000]);
});

test('bad arguments exit 2', () => {
  const r = spawnSync(process.execPath, [BOOTSTRAP, '--bogus'], { encoding: 'utf8', timeout: 10000 });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /usage/);
});

test('device mode (a pty stands in for the virtio-serial port)', {
  skip: process.platform !== 'linux' || spawnSync('python3', ['--version']).status !== 0,
}, () => {
  // python3 holds the pty (node has no pty API) and plays the host.
  const zip = makeZip(HELLO).toString('base64');
  const py = `
import json, os, pty, subprocess, sys, tty, time
master, slave = pty.openpty()
tty.setraw(slave)
code = sys.argv[3]
p = subprocess.Popen([sys.argv[1], sys.argv[2], "--device", os.ttyname(slave), "--code-dir", code])
def send(m):
    data = (json.dumps(m) + "\\n").encode()
    while data:
        data = data[os.write(master, data[:1024]):]
buf = b""
def recv():
    global buf
    while b"\\n" not in buf:
        buf += os.read(master, 65536)
    line, _, buf = buf.partition(b"\\n")
    return json.loads(line)
try:
    time.sleep(0.3)  # the bootstrap sees EOF/EIO until then, and retries
    send({"type": "init", "function": "f", "version": 1, "handler": "main.handler", "env": {},
          "code_zip_b64": sys.argv[4], "memory_mb": 128, "timeout_ms": 3000,
          "sandbox_id": "sb", "now_ms": int(time.time() * 1000)})
    out = [recv(), recv()]
    send({"type": "invoke", "items": [{"id": "a", "event": 1, "deadline_ms": 0},
                                      {"id": "b", "event": 2, "deadline_ms": 0}]})
    out += [recv(), recv()]
    print(json.dumps(out))
finally:
    p.kill()
    p.wait()
`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ignis-node-dev-'));
  try {
    const r = spawnSync('python3', ['-c', py, process.execPath, BOOTSTRAP, path.join(dir, 'code'), zip], {
      encoding: 'utf8',
      timeout: 20000,
    });
    assert.equal(r.status, 0, r.stderr);
    const [booted, ready, a, b] = JSON.parse(r.stdout);
    assert.deepEqual(booted, { type: 'booted' });
    assert.equal(ready.type, 'ready');
    assertOk(a, 'hello world');
    assertOk(b, 'hello world');
    assert.deepEqual([a.id, b.id], ['a', 'b']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
