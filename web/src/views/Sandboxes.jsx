// Sandboxes and virtualization: the pools (stem cells per runtime, backend
// and memory; warm sandboxes per function), and Docker and microVM side by
// side: latency, cold starts, memory per sandbox, sandbox counts, and the
// cost of a million calls on each, with the accelerator in use.

import { useEffect, useState } from 'preact/hooks';
import * as api from '../api.js';
import { Ring } from '../lib/ring.js';
import { Chart } from '../components/Chart.jsx';
import { setQuery } from '../state/router.js';
import { latest } from '../state/live.js';
import { session } from '../state/session.js';
import { seesAll } from '../lib/roles.js';
import { backendCounts } from '../lib/sandboxes.js';
import { hrefs } from '../lib/routes.js';
import { formatMs, formatPercent, formatBytes, formatUsd, formatCount, formatMiB, formatPercentiles, parseLabel } from '../lib/format.js';
import { Loading, ErrorBox, Empty, Badge, WindowPicker, useLoad, useInterval, useTitle } from '../components/ui.jsx';

const FN_STATES = ['booting', 'initializing', 'idle', 'busy', 'draining'];

export function Sandboxes({ route: r }) {
  useTitle('Sandboxes');
  const window = ['5m', '1h', '24h', '7d'].includes(r.query.window) ? r.query.window : '5m';
  const pools = useLoad(() => api.get('/pools'), []);
  const backends = useLoad(() => api.get(`/metrics/backends?window=${window}`), [window]);
  useInterval(() => pools.reload(true), 3000);
  useInterval(() => backends.reload(true), 5000, [window]);
  const snap = latest.value;
  // A key limited to some namespaces gets no counts by backend (they cover every namespace).
  const withheld = backendCounts(snap?.resources?.sandboxes, seesAll(session.value)) === 'withheld';

  return (
    <div class="page" data-testid="sandboxes">
      <div class="page-head">
        <h1>Sandboxes &amp; virtualization</h1>
        <WindowPicker value={window} onChange={(v) => setQuery({ window: v === '5m' ? null : v })} />
      </div>

      <section aria-labelledby="backends-title" class="stack">
        <h2 id="backends-title">Docker and microVM, side by side</h2>
        {backends.error && <ErrorBox error={backends.error} title="Could not load the backends" />}
        {backends.loading && !backends.data ? (
          <Loading what="Loading the backends" />
        ) : backends.data ? (
          <>
            <div class="backends">
              {['docker', 'microvm'].map((kind) => (
                <BackendCard
                  key={kind}
                  kind={kind}
                  b={backends.data.backends.find((x) => x.backend === kind)}
                  window={window}
                  live={snap?.resources?.sandboxes?.[kind]}
                  withheld={withheld}
                />
              ))}
            </div>
            <p class="muted small" data-testid="cost-explained">
              Cost per 1M calls: a million calls at the measured mean CPU time per call ({formatUsd(backends.data.usd_per_vcpu_hour)} per
              vCPU-hour), plus each call holding its sandbox's memory (the measured mean per sandbox) for its mean duration (
              {formatUsd(backends.data.usd_per_gib_hour)} per GiB-hour): the reference prices of a general-purpose cloud VM split into its
              parts. It needs calls with CPU and memory measured in the window; "—" means not enough data yet. Use it to compare backends
              for the same kind of function, not as a bill.
            </p>
          </>
        ) : null}
      </section>

      <BackendLatency />

      <section class="card" aria-labelledby="budget-title">
        <h2 id="budget-title">Memory budget</h2>
        {pools.data ? (
          <>
            <p>
              <span class="big">{formatPercent(pools.data.memory_used_mb / pools.data.memory_budget_mb)}</span> reserved:{' '}
              {formatMiB(pools.data.memory_used_mb)} of {formatMiB(pools.data.memory_budget_mb)} (sandboxes reserve their function's memory;
              stem cells included)
            </p>
            <div
              class="meter"
              role="meter"
              aria-label="Memory budget used"
              aria-valuemin={0}
              aria-valuemax={100}
              aria-valuenow={Math.round((100 * pools.data.memory_used_mb) / pools.data.memory_budget_mb)}
            >
              <span style={{ width: `${Math.min(100, (100 * pools.data.memory_used_mb) / pools.data.memory_budget_mb)}%` }} />
            </div>
          </>
        ) : (
          <Loading what="Loading" />
        )}
      </section>

      {pools.error && <ErrorBox error={pools.error} title="Could not load the pools" />}
      <div class="grid-2">
        <section class="card" aria-labelledby="stem-title" data-testid="stem-cells">
          <h2 id="stem-title">Stem cells</h2>
          <p class="muted small">
            Sandboxes booted ahead of any function, per runtime, backend and memory size: a cold start takes one and only loads the code.
          </p>
          {!pools.data ? (
            <Loading what="Loading" />
          ) : pools.data.stem_cells.length === 0 ? (
            <Empty title="No stem cell pools yet." />
          ) : (
            <div class="table-wrap">
              <table class="data compact">
                <thead>
                  <tr>
                    <th scope="col">Runtime</th>
                    <th scope="col">Backend</th>
                    <th scope="col" class="num">
                      Memory
                    </th>
                    <th scope="col" class="num">
                      Ready
                    </th>
                    <th scope="col" class="num">
                      Booting
                    </th>
                    <th scope="col" class="num">
                      Target
                    </th>
                    <th scope="col" class="num">
                      Hits
                    </th>
                    <th scope="col" class="num">
                      Misses
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {pools.data.stem_cells.map((s) => (
                    <tr key={`${s.runtime}-${s.backend}-${s.memory_mb}`}>
                      <td>{s.runtime}</td>
                      <td>{s.backend}</td>
                      <td class="num">{formatMiB(s.memory_mb)}</td>
                      <td class="num">{s.ready}</td>
                      <td class="num">{s.booting}</td>
                      <td class="num">{s.target}</td>
                      <td class="num">{formatCount(s.hits)}</td>
                      <td class="num">{formatCount(s.misses)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </section>
        <section class="card" aria-labelledby="warm-title" data-testid="function-pools">
          <h2 id="warm-title">Warm sandboxes per function</h2>
          {!pools.data ? (
            <Loading what="Loading" />
          ) : pools.data.functions.length === 0 ? (
            <Empty title="No function has sandboxes now." />
          ) : (
            <div class="table-wrap">
              <table class="data compact">
                <thead>
                  <tr>
                    <th scope="col">Function</th>
                    <th scope="col">Backend</th>
                    {FN_STATES.map((s) => (
                      <th scope="col" class="num" key={s}>
                        {s}
                      </th>
                    ))}
                    <th scope="col" class="num">
                      queued
                    </th>
                    <th scope="col" class="num">
                      desired
                    </th>
                    <th scope="col" class="num">
                      memory
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {pools.data.functions.map((p) => {
                    const { namespace, name } = parseLabel(p.function);
                    const res = snap?.resources?.functions?.[p.function];
                    return (
                      <tr key={p.function}>
                        <td>
                          <a href={hrefs.fn(namespace, name, 'sandboxes')}>{p.function}</a> <span class="muted small">v{p.version}</span>
                        </td>
                        <td>{p.backend}</td>
                        {FN_STATES.map((s) => (
                          <td class="num" key={s}>
                            {p.sandboxes[s] ?? 0}
                          </td>
                        ))}
                        <td class="num">{p.queued}</td>
                        <td class="num">{p.desired}</td>
                        <td class="num">{formatBytes(res?.memory_bytes)}</td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          )}
        </section>
      </div>
    </div>
  );
}

function BackendCard({ kind, b, window, live, withheld }) {
  const title = kind === 'docker' ? 'Docker' : 'microVM';
  if (!b) {
    return (
      <section class="card backend-card" data-testid={`backend-${kind}`}>
        <h2>
          {title} <Badge kind="neutral">not running</Badge>
        </h2>
        <p class="muted">
          This server runs without the {title} backend
          {kind === 'microvm' ? ' (started with --no-microvm, or no QEMU/KVM on the host)' : ' (started with --no-docker)'}. Functions set
          to it do not run here.
        </p>
      </section>
    );
  }
  const s = b.stats;
  const sb = live ?? b.sandboxes ?? {};
  const total = Object.values(sb).reduce((n, v) => n + v, 0);
  return (
    <section class="card backend-card" data-testid={`backend-${kind}`}>
      <h2>
        {title}
        {b.available ? <Badge kind="ok">available</Badge> : <Badge kind="err">unavailable</Badge>}
        {kind === 'microvm' && (
          <Badge kind={b.accelerator === 'kvm' ? 'ok' : 'warn'} title="KVM: hardware virtualization; TCG: QEMU's emulation, much slower">
            <span data-testid="accelerator">{b.accelerator ? b.accelerator.toUpperCase() : 'no accelerator'}</span>
          </Badge>
        )}
      </h2>
      <p class="muted small">{b.detail}</p>
      <dl class="kv">
        <dt>Cost per 1M calls</dt>
        <dd>
          <span class="big" data-testid={`cost-${kind}`}>
            {formatUsd(b.usd_per_million_calls)}
          </span>
        </dd>
        <dt>Latency ({window})</dt>
        <dd>{formatPercentiles(s)}</dd>
        <dt>Calls</dt>
        <dd>
          {formatCount(s.requests)} · {formatPercent(s.requests ? s.error_rate : null)} failed
        </dd>
        <dt>Cold starts</dt>
        <dd>
          {formatPercent(s.requests ? s.cold_start_rate : null)} of calls · mean init {formatMs(s.mean_init_ms)}
        </dd>
        <dt>Memory per sandbox</dt>
        <dd>{formatBytes(b.memory_per_sandbox_bytes)}</dd>
        <dt>CPU per call</dt>
        <dd>{formatMs(b.cpu_ms_per_call)}</dd>
        <dt>Sandboxes now</dt>
        {withheld ? (
          <dd class="muted" data-testid={`backend-sandboxes-withheld-${kind}`}>
            counted over every namespace: shown to keys for every namespace only
          </dd>
        ) : (
          <dd>
            {total}
            {total > 0 && (
              <span class="muted">
                {' '}
                (
                {Object.entries(sb)
                  .filter(([, v]) => v > 0)
                  .map(([k, v]) => `${v} ${k}`)
                  .join(', ')}
                )
              </span>
            )}
          </dd>
        )}
        <dt>Functions on it</dt>
        <dd>{b.functions}</dd>
      </dl>
    </section>
  );
}

/**
 * Samples of each backend's latency over the last 30 s, taken every 5 s
 * (the backends endpoint has no series; the samples stay while the
 * console is open, so coming back to this page shows the last minutes).
 */
const samples = new Ring(120);
function BackendLatency() {
  const [, setN] = useState(0);
  const sample = async () => {
    try {
      const r = await api.get('/metrics/backends?window=30s');
      const by = Object.fromEntries(r.backends.map((b) => [b.backend, b.stats]));
      samples.push({ t: Math.floor(Date.now() / 1000), docker: by.docker ?? null, microvm: by.microvm ?? null });
      setN((n) => n + 1);
    } catch {
      // shown by the cards' own error
    }
  };
  useEffect(() => {
    sample();
  }, []);
  useInterval(sample, 5000);
  const pts = samples.toArray();
  const col = (f) => pts.map(f);
  const data = [
    col((p) => p.t),
    col((p) => p.docker?.p50_ms ?? null),
    col((p) => p.docker?.p99_ms ?? null),
    col((p) => p.microvm?.p50_ms ?? null),
    col((p) => p.microvm?.p99_ms ?? null),
    col((p) => p.docker?.mean_init_ms ?? null),
    col((p) => p.microvm?.mean_init_ms ?? null),
  ];
  const last = pts.length ? pts[pts.length - 1].t : Math.floor(Date.now() / 1000);
  return (
    <Chart
      testid="chart-backend-latency"
      title="Latency by backend"
      unit="ms"
      help="p50 and p99 of each backend's calls over the last 30 s, and the mean init time of their cold starts, sampled every 5 s while this page is open."
      note="last 30 s, every 5 s"
      xRange={[last - 600, last]}
      series={[
        { label: 'docker p50', color: 'c2' },
        { label: 'docker p99', color: 'c2', dash: true },
        { label: 'microVM p50', color: 'c5' },
        { label: 'microVM p99', color: 'c5', dash: true },
        { label: 'docker init', color: 'c3' },
        { label: 'microVM init', color: 'c4' },
      ]}
      data={data}
      height={200}
    />
  );
}
