import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkName,
  checkHandler,
  checkRoute,
  checkNumber,
  checkEnv,
  handlerFiles,
  checkHandlerFile,
  validateFunctionForm,
  formFromFunction,
  configPatch,
  checkEventName,
  checkKeyName,
  parseJson,
  LIMITS,
} from '../src/lib/validate.js';

test('names: the server rule ^[a-z0-9][a-z0-9_-]{0,63}$', () => {
  for (const ok of ['a', 'hello', '0fn', 'my-fn_2', 'a'.repeat(64)]) assert.equal(checkName(ok), null, ok);
  for (const bad of ['', 'Hello', '-a', '_a', 'a b', 'a.b', 'a'.repeat(65), 'é']) assert.notEqual(checkName(bad), null, bad);
});

test('handlers: FILE.FUNC with a relative file path and an identifier', () => {
  for (const ok of ['main.handler', 'src/app.run', 'index.handler', 'a-b/c_d.e.$f', 'x._y']) {
    assert.equal(checkHandler(ok), null, ok);
  }
  for (const bad of ['', 'main', 'main.', '.handler', 'main.1x', '/abs.handler', 'a//b.h', 'a/../b.h', './a.h', 'a b.h', 'a.b-c']) {
    assert.notEqual(checkHandler(bad), null, bad);
  }
  assert.notEqual(checkHandler(`${'a'.repeat(250)}.handler`), null, 'over 256 characters');
});

test('routes: absolute, clean segments, no trailing slash, 256 at most', () => {
  for (const ok of ['', '/hello', '/api/v2/users', '/a.b~c-d_e']) assert.equal(checkRoute(ok), null, ok);
  for (const bad of ['hello', '/', '/a/', '//a', '/a//b', '/./a', '/a/..', '/a b', '/a?b', `/${'a'.repeat(256)}`]) {
    assert.notEqual(checkRoute(bad), null, bad);
  }
});

test('numbers: each limit inclusive, whole numbers where the server wants integers', () => {
  assert.deepEqual(checkNumber('timeout_ms', '100'), { value: 100 });
  assert.deepEqual(checkNumber('timeout_ms', '900000'), { value: 900000 });
  assert.match(checkNumber('timeout_ms', '99').error, /between 100 and 900000/);
  assert.match(checkNumber('timeout_ms', '900001').error, /between/);
  assert.match(checkNumber('memory_mb', '128.5').error, /whole/);
  assert.match(checkNumber('memory_mb', '').error, /required/);
  assert.match(checkNumber('memory_mb', '0x80').error, /number/);
  assert.deepEqual(checkNumber('cpus', '0.05'), { value: 0.05 });
  assert.deepEqual(checkNumber('cpus', '16'), { value: 16 });
  assert.match(checkNumber('cpus', '0.04').error, /between 0.05 and 16/);
  assert.deepEqual(checkNumber('min_warm', '0'), { value: 0 });
  assert.match(checkNumber('max_concurrency', '0').error, /between 1 and 1000/);
  assert.match(checkNumber('batch_max_size', '65').error, /between 1 and 64/);
  assert.deepEqual(checkNumber('batch_max_wait_ms', '1000'), { value: 1000 });
  assert.match(checkNumber('queue_timeout_ms', '900001').error, /between 0 and 900000/);
  assert.match(checkNumber('keep_alive_s', '86401').error, /between 0 and 86400/);
});

test('the defaults are the server defaults', () => {
  assert.equal(LIMITS.timeout_ms.default, 3000);
  assert.equal(LIMITS.memory_mb.default, 128);
  assert.equal(LIMITS.cpus.default, 0.5);
  assert.equal(LIMITS.max_concurrency.default, 10);
  assert.equal(LIMITS.queue_timeout_ms.default, 10000);
  assert.equal(LIMITS.keep_alive_s.default, 600);
});

test('environment variables: names, reserved prefixes, NUL, duplicates, 4096 bytes', () => {
  assert.deepEqual(
    checkEnv([
      { key: 'A', value: '1' },
      { key: '', value: '' },
    ]).env,
    { A: '1' },
  );
  assert.match(checkEnv([{ key: '1A', value: '' }]).rowErrors[0], /not starting with a digit/);
  assert.match(checkEnv([{ key: 'IGNIS_X', value: '' }]).rowErrors[0], /reserved/);
  assert.match(checkEnv([{ key: 'AWS_LAMBDA_X', value: '' }]).rowErrors[0], /reserved/);
  assert.equal(checkEnv([{ key: 'AWS_REGION', value: 'x' }]).rowErrors[0], undefined);
  assert.match(checkEnv([{ key: 'A', value: 'a\0b' }]).rowErrors[0], /NUL/);
  assert.match(
    checkEnv([
      { key: 'A', value: '1' },
      { key: 'A', value: '2' },
    ]).rowErrors[1],
    /twice/,
  );
  // Bytes, not characters: "é" is 2 bytes.
  const exactly = checkEnv([{ key: 'K', value: 'é'.repeat(2047) + 'x' }]);
  assert.equal(exactly.total, 4096);
  assert.equal(exactly.error, null);
  assert.match(checkEnv([{ key: 'K', value: 'é'.repeat(2048) }]).error, /4097 bytes/);
});

test('handler files per runtime, and whether the code holds one', () => {
  assert.deepEqual(handlerFiles('python3', 'main.handler'), ['main.py']);
  assert.deepEqual(handlerFiles('nodejs', 'src/index.handler'), ['src/index.js', 'src/index.mjs', 'src/index.cjs']);
  assert.equal(checkHandlerFile('nodejs', 'index.handler', ['index.mjs']), null);
  assert.match(checkHandlerFile('python3', 'main.handler', ['app.py']), /main\.py/);
  assert.equal(checkHandlerFile('python3', 'main.handler', null), null, 'unknown file list');
});

test('the whole form: a valid new function', () => {
  const form = { ...formFromFunction(null), name: 'hello', env: [{ key: 'GREETING', value: 'hi' }] };
  const { config, errors } = validateFunctionForm(form, { isNew: true, codePaths: ['main.py'], needsCode: true });
  assert.deepEqual(errors, {});
  assert.equal(config.runtime, 'python3');
  assert.equal(config.timeout_ms, 3000);
  assert.equal(config.cpus, 0.5);
  assert.equal(config.route, null);
  assert.deepEqual(config.env, { GREETING: 'hi' });
  assert.equal(config.batch_concurrent, false);
});

test('the whole form: errors by field', () => {
  const form = {
    ...formFromFunction(null),
    name: 'Bad Name',
    handler: 'main',
    route: '/x/',
    min_warm: '20',
    max_concurrency: '10',
    memory_mb: '32',
  };
  const { errors } = validateFunctionForm(form, { isNew: true, codePaths: [], needsCode: true });
  assert.ok(errors.name);
  assert.ok(errors.handler);
  assert.ok(errors.route);
  assert.ok(errors.memory_mb);
  assert.match(errors.min_warm, /cannot exceed/);
  assert.match(errors.code, /add code/);
});

test('the whole form: the handler file must be in the code', () => {
  const form = { ...formFromFunction(null), name: 'x', runtime: 'nodejs', handler: 'index.handler' };
  const { errors } = validateFunctionForm(form, { isNew: true, codePaths: ['main.py'], needsCode: true });
  assert.match(errors.code, /index\.js or index\.mjs or index\.cjs/);
});

test('an edit sends only what changed', () => {
  const current = {
    runtime: 'python3',
    handler: 'main.handler',
    backend: 'docker',
    timeout_ms: 3000,
    memory_mb: 128,
    cpus: 0.5,
    route: null,
    http_auth: 'key',
    env: { A: '1', B: '2' },
    min_warm: 0,
    max_concurrency: 10,
    keep_alive_s: 600,
    queue_timeout_ms: 10000,
    batch_max_size: 1,
    batch_max_wait_ms: 0,
    batch_concurrent: false,
  };
  const form = formFromFunction({ ...current, namespace: 'default', name: 'f' });
  const { config } = validateFunctionForm(form, { isNew: false });
  assert.deepEqual(configPatch(current, config), {}, 'unchanged');
  form.memory_mb = '256';
  form.env = [
    { key: 'B', value: '2' },
    { key: 'A', value: '1' },
    { key: 'C', value: '3' },
  ];
  form.route = '/hello';
  const { config: c2 } = validateFunctionForm(form, { isNew: false });
  assert.deepEqual(configPatch(current, c2), { memory_mb: 256, route: '/hello', env: { B: '2', A: '1', C: '3' } });
});

test('test event and key names', () => {
  assert.equal(checkEventName('my event-1_v2.json'), null);
  assert.notEqual(checkEventName(''), null);
  assert.notEqual(checkEventName('a/b'), null);
  assert.notEqual(checkEventName('x'.repeat(65)), null);
  assert.equal(checkKeyName('ci'), null);
  assert.notEqual(checkKeyName('  '), null);
  assert.notEqual(checkKeyName('x'.repeat(101)), null);
});

test('JSON with the line and column of an error', () => {
  assert.deepEqual(parseJson('{"a": 1}'), { ok: true, value: { a: 1 } });
  const bad = parseJson('{\n  "a": 1,\n}');
  assert.equal(bad.ok, false);
  assert.equal(bad.line, 3);
  assert.ok(bad.column >= 1);
});
