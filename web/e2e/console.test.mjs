// The console in a real browser (Debian's Chromium, driven by
// playwright-core) against a real ignis server with real Docker: every
// step a user takes, from logging in to deleting a function. Screenshots
// of each main view go to e2e/screenshots/ as the test runs. Waits are on
// conditions (with generous timeouts for cold starts), never fixed sleeps.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join, dirname } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startServer, waitFor, LAUNCH, MICROVM } from './server.mjs';
import { writeZip } from '../src/lib/zip.js';

const here = dirname(fileURLToPath(import.meta.url));
const SHOTS = join(here, 'screenshots');
const COLD = 60_000; // a first call (cold start) on a busy 2-core machine
const VIEWPORT = { width: 1280, height: 800 };

let srv;
let browser;
let ctx;
let page;
const started = Date.now();
const figures = {};
/** Requests the browser made to anything but the ignis server (there must be none). */
const external = [];
const watchRequests = (p) =>
  p.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(srv.url) && !u.startsWith('data:') && !u.startsWith('blob:')) external.push(u);
  });
let invokerKey = '';

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  srv = await startServer();
  const home = await (await fetch(`${srv.url}/`)).text();
  if (home.includes('The console is not built')) {
    throw new Error(
      `${srv.url} serves no console: this ignis binary was built without web/dist. Set IGNIS_CONSOLE_DIR=$PWD/dist (after npm run build), or use a binary built after it.`,
    );
  }
  browser = await chromium.launch(LAUNCH);
  ctx = await browser.newContext({ viewport: VIEWPORT, colorScheme: 'light' });
  ctx.setDefaultTimeout(30_000);
  ctx.on('page', watchRequests);
  page = await ctx.newPage();
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
});

after(async () => {
  await browser?.close();
  await srv?.stop();
  console.log(`\nconsole e2e: ${JSON.stringify(figures)}; took ${((Date.now() - started) / 1000).toFixed(1)} s`);
});

const shot = async (name, p = page) => {
  // Let charts and fonts settle on the current frame; no data waits here.
  await p.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  await p.screenshot({ path: join(SHOTS, name) });
};
const tid = (id, p = page) => p.getByTestId(id);
/** Waits until the element's text matches. */
const textMatches = async (locator, re, timeout = 30_000) => {
  await waitFor(async () => re.test((await locator.textContent({ timeout: 2000 })) ?? ''), `${locator} to match ${re}`, {
    timeoutMs: timeout,
  });
};

/** Replaces the whole text of the CodeMirror editor under `scope`. */
async function setEditor(scope, text) {
  const content = scope.locator('.cm-content');
  await content.waitFor({ state: 'visible', timeout: 30_000 });
  await content.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(text);
  await waitFor(async () => (await content.textContent()).includes(text.split('\n')[0].trim()), 'the editor to hold the new code');
}

const PY_V1 = `import json

def handler(event, context):
    print("hello from v1", json.dumps(event))
    return {"hello": event.get("name", "world"), "version": 1}
`;
const PY_V2 = `def handler(event, context):
    print("hello from v2")
    return {"hello": event.get("name", "world"), "version": 2}
`;
const PY_FAIL = `def check(name):
    raise ValueError("no greeting for " + name)

def handler(event, context):
    print("about to fail")
    return check(event.get("name", "nobody"))
`;

test('log in with the admin key', async () => {
  await page.goto(`${srv.url}/`);
  await page.waitForURL(/\/login/);
  await tid('login-key').waitFor();
  await shot('login.png');
  await tid('login-key').fill('ign_not-a-real-key');
  await tid('login-submit').click();
  await textMatches(tid('login-error'), /not valid/);
  await tid('login-key').fill(srv.key);
  await tid('login-submit').click();
  await tid('overview').waitFor();
  await textMatches(tid('role'), /^admin$/);
  await textMatches(tid('live-status'), /live/, COLD);
});

test('first load: size and time to the first chart', async () => {
  // A new context: empty cache, the session cookie carried over.
  const fresh = await browser.newContext({ viewport: VIEWPORT, storageState: await ctx.storageState() });
  const p = await fresh.newPage();
  watchRequests(p);
  const assets = [];
  p.on('response', async (res) => {
    const u = new URL(res.url());
    if (/\.(js|css)$/.test(u.pathname)) assets.push({ path: u.pathname, body: await res.body().catch(() => Buffer.alloc(0)) });
  });
  await p.goto(`${srv.url}/`);
  await tid('chart-requests', p).waitFor();
  const ms = await p.waitForFunction(() => performance.getEntriesByName('ignis:first-chart')[0]?.startTime, null, { timeout: 30_000 });
  figures.first_chart_ms = Math.round(await ms.jsonValue());
  const live = await p.waitForFunction(() => performance.getEntriesByName('ignis:first-snapshot')[0]?.startTime, null, { timeout: 30_000 });
  figures.first_live_data_ms = Math.round(await live.jsonValue());
  await waitFor(() => assets.length >= 2, 'the initial assets');
  const editorLoaded = assets.some((a) => a.path.includes('/editor-'));
  assert.equal(editorLoaded, false, 'the overview does not load the editor');
  figures.initial_gzip_kb = Number((assets.reduce((n, a) => n + gzipSync(a.body, { level: 9 }).length, 0) / 1024).toFixed(1));
  // The editor chunk, when an editor opens.
  const editorAssets = [];
  p.on('response', async (res) => {
    if (/\/editor-.*\.js$/.test(new URL(res.url()).pathname)) editorAssets.push(await res.body());
  });
  await p.goto(`${srv.url}/functions/new`);
  await p.locator('.cm-content').waitFor({ timeout: 30_000 });
  await waitFor(() => editorAssets.length > 0, 'the editor chunk');
  figures.editor_gzip_kb = Number((gzipSync(editorAssets[0], { level: 9 }).length / 1024).toFixed(1));
  console.log(
    `first load: first chart drawn ${figures.first_chart_ms} ms after navigation start, first live snapshot at ${figures.first_live_data_ms} ms; initial JS+CSS ${figures.initial_gzip_kb} KB gzipped; editor ${figures.editor_gzip_kb} KB gzipped`,
  );
  assert.ok(figures.initial_gzip_kb < 250, 'initial load under 250 KB gzipped');
  await fresh.close();
});

test('create a Python function in the editor', async () => {
  await page.goto(`${srv.url}/functions`);
  await tid('functions-empty').waitFor();
  await tid('create-function').click();
  await page.waitForURL(/\/functions\/new/);
  await tid('field-name').fill('Bad Name');
  await tid('save-function').click();
  await tid('error-name').waitFor();
  await tid('field-name').fill('hello-py');
  if (MICROVM) await tid('field-backend').selectOption('microvm');
  await setEditor(tid('code-editor'), PY_V1);
  await shot('create-function.png');
  await tid('save-function').click();
  await page.waitForURL(/\/functions\/default\/hello-py\/test/);
  await textMatches(tid('save-result'), /Created hello-py, version 1/);
});

test('send a test event: result, figures and logs', async () => {
  await tid('event-json').fill('{"name": "ada"');
  await textMatches(tid('event-json-status'), /Not valid JSON/);
  assert.equal(await tid('send-event').isDisabled(), true);
  await tid('event-json').fill('{"name": "ada"}');
  await tid('save-event-name').fill('ada');
  await tid('save-event').click();
  await waitFor(async () => (await tid('saved-events').locator('option').allTextContents()).includes('ada'), 'the saved event in the list');
  await tid('send-event').click();
  await textMatches(tid('call-status'), /^200$/, COLD);
  await textMatches(tid('invoke-result'), /"hello": "ada"/);
  await textMatches(tid('call-start'), /^(cold|stem|warm)$/);
  await textMatches(tid('call-id'), /^inv-/);
  await textMatches(tid('call-duration'), /\d+(\.\d+)? (ms|s)/);
  await textMatches(tid('invoke-logs'), /hello from v1 \{"name": "ada"\}/);
  await shot('function-test.png');
  // Saved on the server: a teammate sees it.
  const ev = await srv.api('GET', '/api/v1/namespaces/default/functions/hello-py/test-events');
  assert.deepEqual(
    ev.json.events.map((e) => [e.name, e.event]),
    [['ada', { name: 'ada' }]],
  );
});

test('change the code and redeploy: version 2 answers', async () => {
  await tid('tab-code').click();
  await tid('edit-code').click();
  await setEditor(tid('code-tab'), PY_V2);
  await tid('deploy').click();
  await textMatches(tid('deploy-result'), /Deployed version 2/);
  await textMatches(tid('fn-version'), /v2/);
  await shot('function-code.png');
  await tid('tab-test').click();
  await textMatches(tid('saved-events'), /ada/);
  await tid('send-event').click();
  await textMatches(tid('call-version'), /^2$/, COLD);
  await textMatches(tid('invoke-result'), /"version": 2/);
  await textMatches(tid('invoke-logs'), /hello from v2/);
});

test('make it fail: the error and its stack in the invocations tab', async () => {
  await tid('tab-code').click();
  await tid('edit-code').click();
  await setEditor(tid('code-tab'), PY_FAIL);
  await tid('deploy').click();
  await textMatches(tid('deploy-result'), /Deployed version 3/);
  await tid('tab-test').click();
  await textMatches(tid('saved-events'), /ada/);
  await tid('send-event').click();
  await textMatches(tid('call-error'), /FunctionError[\s\S]*ValueError: no greeting for ada/, COLD);
  await tid('tab-invocations').click();
  const row = page.locator('[data-testid="invocation-row"][data-status="error"]').first();
  await row.waitFor({ timeout: 30_000 });
  await row.getByTestId('expand-invocation').click();
  await textMatches(tid('invocation-error'), /FunctionError[\s\S]*ValueError: no greeting for ada/);
  await textMatches(tid('invocation-stack'), /Traceback[\s\S]*line 2, in check/);
  await textMatches(tid('invocation-detail'), /about to fail/);
  await shot('function-invocations.png');
});

test('the overview moves after a burst of calls', async () => {
  // The last-call column comes from the summary and the stream, not from one records request per row.
  const recordRequests = [];
  const onRequest = (r) => {
    if (/\/invocations\?limit=1(&|$)/.test(r.url())) recordRequests.push(r.url());
  };
  page.on('request', onRequest);
  await page.goto(`${srv.url}/`);
  await textMatches(tid('live-status'), /live/);
  const before = Number((await tid('stat-requests-value').textContent()).replace(/,/g, '')) || 0;
  // A burst through the API (as any client would call): 40 calls, 5 at a
  // time, in rounds of about 250 ms, so the charts show its shape rather
  // than one spike. (The pacing shapes the load; nothing waits on it.)
  for (let round = 0; round < 8; round++) {
    const t0 = Date.now();
    await Promise.all(
      [0, 1, 2, 3, 4].map((w) => srv.api('POST', '/api/v1/namespaces/default/functions/hello-py/invoke', { name: `burst-${round}-${w}` })),
    );
    await new Promise((r) => setTimeout(r, Math.max(0, 250 - (Date.now() - t0))));
  }
  await waitFor(
    async () => Number((await tid('stat-requests-value').textContent()).replace(/,/g, '')) >= Math.max(40, before + 1),
    'the request counter to count the burst',
    { timeoutMs: 15_000 },
  );
  await waitFor(async () => Number(await tid('chart-requests').getAttribute('data-max')) > 0, 'the requests chart to show the burst', {
    timeoutMs: 15_000,
  });
  await tid('error-feed-item').first().waitFor();
  await textMatches(tid('top-last-call-hello-py'), /^(just now|\d+ s ago)$/);
  await shot('overview.png');
  page.off('request', onRequest);
  assert.deepEqual(recordRequests, [], 'the overview asks for no invocation records');
  // The phone-size overview.
  const phone = await ctx.newPage();
  await phone.setViewportSize({ width: 390, height: 844 });
  await phone.goto(`${srv.url}/`);
  await tid('chart-requests', phone).waitFor();
  await waitFor(async () => Number(await tid('chart-requests', phone).getAttribute('data-max')) > 0, 'the phone chart to show the burst', {
    timeoutMs: 15_000,
  });
  assert.equal(await tid('nav-functions', phone).isVisible(), false, 'the nav is collapsed on a phone');
  await shot('overview-phone.png', phone);
  // The dark theme follows the system's.
  const darkPage = await ctx.newPage();
  await darkPage.emulateMedia({ colorScheme: 'dark' });
  await darkPage.goto(`${srv.url}/`);
  await waitFor(
    async () => Number(await tid('chart-requests', darkPage).getAttribute('data-max')) > 0,
    'the dark chart to show the burst',
    {
      timeoutMs: 15_000,
    },
  );
  await shot('overview-dark.png', darkPage);
  await darkPage.close();
  await tid('menu-button', phone).click();
  await tid('nav-functions', phone).waitFor({ state: 'visible' });
  await phone.close();
  // The error feed links to the failed invocation, expanded.
  await tid('error-feed-item').first().click();
  await page.waitForURL(/\/invocations\?id=inv-/);
  await textMatches(tid('invocation-error'), /ValueError/);
});

test('monitor, versions and sandboxes tabs', async () => {
  await page.goto(`${srv.url}/functions/default/hello-py/monitor`);
  await tid('fn-chart-requests').waitFor();
  await waitFor(async () => Number(await tid('fn-chart-requests').getAttribute('data-max')) > 0, 'the function chart to show its calls', {
    timeoutMs: 20_000,
  });
  await shot('function-monitor.png');
  await tid('tab-versions').click();
  await waitFor(async () => (await page.getByTestId('version-row').count()) === 3, 'three versions');
  await textMatches(tid('versions-table'), /code changed/);
  await shot('function-versions.png');
  await tid('tab-sandboxes').click();
  await tid('pool-states').waitFor();
  // The calls above left warm sandboxes: listed one by one, at least one idle that served calls.
  const rows = () =>
    page.$$eval('[data-testid="sandbox-row"]', (trs) => trs.map((tr) => ({ id: tr.dataset.id, state: tr.dataset.state, calls: Number(tr.dataset.calls) })));
  const served = await waitFor(
    async () => (await rows()).find((x) => x.state === 'idle' && x.calls >= 1),
    'an idle sandbox that served calls in the Sandboxes tab',
  );
  assert.match(served.id, /^sb-/);
  const before = (await rows()).length;
  await tid('warm-count').fill('2');
  await tid('prewarm').click();
  await textMatches(tid('warm-result'), /Requested 2/);
  const started = Number(/(\d+) started/.exec(await tid('warm-result').textContent())[1]);
  // The list is refreshed while the tab is open: the pre-warmed ones appear, and boot.
  await waitFor(
    async () => {
      const now = await rows();
      return now.length >= before + started && now.every((x) => x.state === 'idle' || x.state === 'busy');
    },
    `${started} pre-warmed sandboxes listed and booted`,
    { timeoutMs: COLD },
  );
  await shot('function-sandboxes.png');
  // A sandbox's id lists the calls it served.
  await page.locator(`[data-testid="sandbox-row"][data-id="${served.id}"] [data-testid="sandbox-calls-link"]`).click();
  await page.waitForURL(/\/invocations\?sandbox=sb-/);
  await textMatches(tid('sandbox-filter'), new RegExp(served.id));
  await waitFor(async () => (await page.getByTestId('invocation-row').count()) >= 1, "the sandbox's calls");
  const shown = await page.$$eval('[data-testid="invocation-row"]', (trs) => trs.map((tr) => tr.dataset.sandbox));
  assert.ok(
    shown.every((id) => id === served.id),
    `only the calls of ${served.id}: ${shown.join(', ')}`,
  );
});

test('create a Node.js function from a zip upload, then edit an env var', async () => {
  const zipPath = join(tmpdir(), `hello-node-${process.pid}.zip`);
  writeFileSync(
    zipPath,
    writeZip([
      {
        name: 'index.js',
        data: "exports.handler = async (event) => ({ hello: event.name ?? 'world', greeting: process.env.GREETING ?? null, runtime: 'node ' + process.version });\n",
      },
      { name: 'package.json', data: '{"name": "hello-node", "version": "1.0.0"}\n' },
    ]),
  );
  await page.goto(`${srv.url}/functions/new`);
  await tid('field-name').fill('hello-node');
  await tid('field-runtime').selectOption('nodejs');
  assert.equal(await tid('field-handler').inputValue(), 'index.handler', 'the handler follows the runtime');
  await tid('code-source').getByRole('radio', { name: 'Upload zip' }).click();
  await tid('zip-input').setInputFiles(zipPath);
  await textMatches(tid('code-files'), /index\.js[\s\S]*package\.json/);
  await tid('field-route').fill('/hello-node');
  await tid('save-function').click();
  await page.waitForURL(/\/functions\/default\/hello-node\/test/);
  await tid('test-mode')
    .getByRole('radio', { name: /Invoke/ })
    .click();
  await tid('send-event').click();
  await textMatches(tid('call-status'), /^200$/, COLD);
  await textMatches(tid('invoke-result'), /"runtime": "node v\d+/);
  await textMatches(tid('invoke-result'), /"greeting": null/);

  await tid('edit-function').click();
  await page.waitForURL(/\/edit$/);
  await tid('env-add').click();
  await tid('env-key-0').fill('GREETING');
  await tid('env-value-0').fill('hi there');
  assert.equal(await tid('env-value-0').getAttribute('type'), 'password', 'values are hidden by default');
  await tid('save-function').click();
  await page.waitForURL(/\/functions\/default\/hello-node$/);
  await textMatches(tid('save-result'), /Saved version 2[\s\S]*env\.GREETING added/);
  // Change the value: still reported without the secret.
  await tid('edit-function').click();
  await tid('env-value-0').fill('hello again');
  await tid('save-function').click();
  await textMatches(tid('save-result'), /Saved version 3[\s\S]*env\.GREETING value changed/);
  await tid('tab-test').click();
  // Through the HTTP trigger this time (private route: the session is the credential).
  await tid('test-mode').getByRole('radio', { name: /HTTP/ }).click();
  await tid('send-http').click();
  await textMatches(tid('call-status'), /^200$/, COLD);
  await textMatches(tid('invoke-result'), /"greeting": "hello again"/);
});

test('functions list, sandboxes page, keys and audit', async () => {
  await page.goto(`${srv.url}/functions`);
  await tid('function-row-hello-node').waitFor();
  await tid('function-row-hello-py').waitFor();
  await tid('function-search').fill('node');
  await waitFor(async () => (await page.locator('[data-testid^="function-row-"]').count()) === 1, 'the search to filter');
  await tid('function-search').fill('');
  await waitFor(async () => (await page.locator('[data-testid^="function-row-"]').count()) === 2, 'both functions');
  // Both were called: the list says when, from the summary's last_call_at_ms (and the live stream).
  await textMatches(tid('last-call-hello-py'), /^(just now|\d+ (s|min) ago)$/);
  await textMatches(tid('last-call-hello-node'), /^(just now|\d+ (s|min) ago)$/);
  await shot('functions.png');

  await tid('nav-sandboxes').click();
  await tid('backend-docker').waitFor();
  await textMatches(tid('backend-docker'), /available/);
  await textMatches(tid('cost-explained'), /per vCPU-hour/);
  await shot('sandboxes.png');

  await tid('nav-keys').click();
  await tid('key-name').fill('e2e-invoker');
  await tid('key-role').selectOption('invoker');
  await tid('create-key').click();
  await textMatches(tid('new-key-secret'), /^ign_/);
  invokerKey = (await tid('new-key-secret').textContent()).trim();
  await tid('key-row-e2e-invoker').waitFor();
  await shot('keys.png');

  await tid('nav-audit').click();
  await textMatches(tid('audit-table'), /key\.create[\s\S]*function\.update/);
  await shot('audit.png');
});

test('an invoker key: no create button, and the API refuses', async () => {
  const inv = await browser.newContext({ viewport: VIEWPORT });
  const p = await inv.newPage();
  watchRequests(p);
  await p.goto(`${srv.url}/login`);
  await tid('login-key', p).fill(invokerKey);
  await tid('login-submit', p).click();
  await p.waitForURL(/\/invoke$/);
  await textMatches(tid('role', p), /^invoker$/);
  assert.equal(await tid('nav-functions', p).count(), 0, 'no functions page in the nav');
  await p.goto(`${srv.url}/functions`);
  await tid('forbidden', p).waitFor();
  assert.equal(await tid('create-function', p).count(), 0, 'no create button');
  // The server refuses whatever the page shows.
  const refused = await p.evaluate(async () => {
    const s = await (await fetch('/api/v1/session')).json();
    const list = await fetch('/api/v1/functions?all_namespaces=true');
    const create = await fetch('/api/v1/namespaces/default/functions', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Ignis-Csrf': s.csrf },
      body: JSON.stringify({
        name: 'sneaky',
        runtime: 'python3',
        handler: 'main.handler',
        code: { files: { 'main.py': 'def handler(e, c):\n    return 1\n' } },
      }),
    });
    return { list: list.status, create: create.status, type: (await create.json()).error.type };
  });
  assert.deepEqual(refused, { list: 403, create: 403, type: 'Forbidden' });
  // What it may do: invoke by name.
  await p.goto(`${srv.url}/invoke`);
  await tid('invoke-name', p).fill('hello-node');
  await tid('invoke-send', p).click();
  await textMatches(tid('invoke-result', p), /"greeting": "hello again"/, COLD);
  await inv.close();
});

test('a key limited to a namespace: its own totals, no counts by backend', async () => {
  assert.equal((await srv.api('POST', '/api/v1/namespaces', { name: 'team-a' })).status, 201);
  const made = await srv.api('POST', '/api/v1/keys', { name: 'e2e-team-a', role: 'viewer', namespaces: ['team-a'] });
  assert.equal(made.status, 201, JSON.stringify(made.json));
  const limited = await browser.newContext({ viewport: VIEWPORT });
  const p = await limited.newPage();
  watchRequests(p);
  await p.goto(`${srv.url}/login`);
  await tid('login-key', p).fill(made.json.key);
  await tid('login-submit', p).click();
  await tid('overview', p).waitFor();
  await textMatches(tid('live-status', p), /live/);
  await tid('no-system-history', p).waitFor();
  // The server gives such a key no sandbox counts by backend (they cover every namespace): said, not zeros.
  await textMatches(tid('sandbox-states', p), /every namespace/);
  // Totals over its own namespace only: none of the default namespace's calls.
  await p.goto(`${srv.url}/?window=1h`);
  await textMatches(tid('stat-requests-value', p), /^0$/);
  await p.goto(`${srv.url}/sandboxes`);
  await tid('backend-docker', p).waitFor();
  await textMatches(tid('backend-sandboxes-withheld-docker', p), /every namespace/);
  await limited.close();
});

test('delete a function', async () => {
  await page.goto(`${srv.url}/functions`);
  await tid('delete-hello-node').click();
  await tid('confirm-dialog').waitFor({ state: 'visible' });
  await tid('confirm-button').click();
  await tid('function-row-hello-node').waitFor({ state: 'detached' });
  assert.equal((await srv.api('GET', '/api/v1/namespaces/default/functions/hello-node')).status, 404);
  await tid('function-row-hello-py').waitFor();
});

test('nothing was loaded from anywhere but the ignis server', () => {
  assert.deepEqual(external, []);
});
