// What the live view costs the server: the server process's CPU time
// (utime + stime from /proc/PID/stat) over 30 s with no browser open, then
// over 30 s with 5 pages open on the overview (each with its own live
// stream), and the ratio. Not part of `npm run e2e` (it takes a minute
// and a half): run `npm run live-cost`.
//
//   MEASURE_S=30 DASHBOARDS=5 npm run live-cost

import { chromium } from 'playwright-core';
import { startServer, waitFor, cpuSeconds, LAUNCH } from './server.mjs';

const MEASURE_S = Number(process.env.MEASURE_S || 30);
const DASHBOARDS = Number(process.env.DASHBOARDS || 5);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function measure(pid, seconds) {
  const c0 = cpuSeconds(pid);
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const c1 = cpuSeconds(pid);
  const wall = (performance.now() - t0) / 1000;
  return { cpu_s: c1 - c0, wall_s: wall };
}

const srv = await startServer();
let browser;
try {
  // A deployed, warm function: the snapshots carry one function, as on a real server.
  const created = await srv.api('POST', '/api/v1/namespaces/default/functions', {
    name: 'live-cost',
    runtime: 'python3',
    handler: 'main.handler',
    code: { files: { 'main.py': 'def handler(event, context):\n    return {"ok": True}\n' } },
  });
  if (created.status !== 201) throw new Error(`could not deploy: ${created.status} ${JSON.stringify(created.json)}`);
  const call = await srv.api('POST', '/api/v1/namespaces/default/functions/live-cost/invoke', {});
  if (call.status !== 200) throw new Error(`could not call: ${call.status} ${JSON.stringify(call.json)}`);
  await sleep(3000); // let the first start's work settle

  console.log(`measuring the server's CPU for ${MEASURE_S} s with no browser open…`);
  const idle = await measure(srv.pid, MEASURE_S);

  browser = await chromium.launch(LAUNCH);
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const first = await ctx.newPage();
  await first.goto(`${srv.url}/login`);
  await first.getByTestId('login-key').fill(srv.key);
  await first.getByTestId('login-submit').click();
  await first.getByTestId('overview').waitFor();
  const pages = [first];
  for (let i = 1; i < DASHBOARDS; i++) {
    const p = await ctx.newPage();
    await p.goto(`${srv.url}/`);
    pages.push(p);
  }
  for (const p of pages) {
    await waitFor(async () => /live/.test(await p.getByTestId('live-status').textContent()), 'a live stream on every page', {
      timeoutMs: 30_000,
    });
  }
  await sleep(3000); // past the backfill requests of the first second
  console.log(`measuring the server's CPU for ${MEASURE_S} s with ${DASHBOARDS} overviews open…`);
  const live = await measure(srv.pid, MEASURE_S);
  // Still live at the end (a hidden page would have closed its stream).
  for (const p of pages) {
    if (!/live/.test(await p.getByTestId('live-status').textContent())) throw new Error('a page stopped streaming during the measurement');
  }

  const pct = (m) => ((100 * m.cpu_s) / m.wall_s).toFixed(2);
  const ratio = idle.cpu_s > 0 ? live.cpu_s / idle.cpu_s : Infinity;
  const perDashboardMs = ((live.cpu_s - idle.cpu_s) / live.wall_s / DASHBOARDS) * 1000;
  const row = (label, m) => `  ${label.padEnd(22)} ${m.cpu_s.toFixed(3)} CPU-s  (${pct(m)} % of a core)`;
  console.log(`
live-cost (server process ${srv.pid}, ${MEASURE_S} s each):
${row('no browser:', idle)}
${row(`${DASHBOARDS} live overviews:`, live)}
  ${'ratio:'.padEnd(22)} ${Number.isFinite(ratio) ? ratio.toFixed(2) : 'inf'}x
  ${'per open overview:'.padEnd(22)} ${perDashboardMs.toFixed(2)} ms of server CPU per second`);
} finally {
  await browser?.close();
  await srv.stop();
}
