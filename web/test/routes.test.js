import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRoute, hrefs, withQuery, isConsolePath } from '../src/lib/routes.js';

test('every view has a URL', () => {
  const name = (p, q) => parseRoute(p, q).name;
  assert.equal(name('/'), 'overview');
  assert.equal(name('/login'), 'login');
  assert.equal(name('/functions'), 'functions');
  assert.equal(name('/functions/'), 'functions', 'trailing slash');
  assert.equal(name('/functions/new'), 'create');
  assert.equal(name('/sandboxes'), 'sandboxes');
  assert.equal(name('/keys'), 'keys');
  assert.equal(name('/audit'), 'audit');
  assert.equal(name('/invoke'), 'invoke');
  assert.equal(name('/nope'), 'notfound');
  assert.equal(name('/functions/a/b/nope'), 'notfound');
  assert.equal(name('/keys/x'), 'notfound');
});

test('function pages: namespace, name, tab', () => {
  assert.deepEqual(parseRoute('/functions/default/hello').params, { namespace: 'default', name: 'hello', tab: 'code' });
  assert.deepEqual(parseRoute('/functions/team-a/hello/monitor').params, { namespace: 'team-a', name: 'hello', tab: 'monitor' });
  assert.deepEqual(parseRoute('/functions/default/hello/edit'), {
    name: 'edit',
    params: { namespace: 'default', name: 'hello' },
    query: {},
    path: '/functions/default/hello/edit',
  });
  const r = parseRoute('/functions/default/hello/invocations', '?id=inv-1&status=error');
  assert.equal(r.params.tab, 'invocations');
  assert.deepEqual(r.query, { id: 'inv-1', status: 'error' });
});

test('links round-trip through the parser', () => {
  assert.equal(hrefs.fn('default', 'hello'), '/functions/default/hello');
  assert.equal(hrefs.fn('default', 'hello', 'test'), '/functions/default/hello/test');
  assert.equal(hrefs.invocation('ns', 'f', 'inv-9'), '/functions/ns/f/invocations?id=inv-9');
  assert.equal(hrefs.overview('5m'), '/');
  assert.equal(hrefs.overview('1h'), '/?window=1h');
  assert.equal(hrefs.login('/functions'), '/login?next=%2Ffunctions');
  assert.equal(hrefs.login('/'), '/login');
  const u = new URL(hrefs.invocation('ns', 'f', 'inv-9'), 'http://x');
  assert.equal(parseRoute(u.pathname, u.search).query.id, 'inv-9');
  assert.equal(withQuery('/functions', { q: 'a b', sort: '', dir: undefined }), '/functions?q=a+b');
});

test('what the router handles and what it leaves to the browser', () => {
  const o = 'http://127.0.0.1:8080';
  assert.equal(isConsolePath('/functions', o), true);
  assert.equal(isConsolePath('http://127.0.0.1:8080/keys', o), true);
  assert.equal(isConsolePath('/api/v1/functions/x/code', o), false);
  assert.equal(isConsolePath('/fn/hello', o), false);
  assert.equal(isConsolePath('/metrics', o), false);
  assert.equal(isConsolePath('https://example.com/', o), false);
});
