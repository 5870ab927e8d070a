// The system-wide overview, live: tiles of the last minute, charts that
// move every second (from the stream), sandboxes by backend and state, the
// memory budget, the host, the top functions and the latest errors.

import { useEffect, useMemo, useRef } from 'preact/hooks';
import * as api from '../api.js';
import { route, setQuery } from '../state/router.js';
import { latest, onSnapshot, systemHistory } from '../state/live.js';
import { health, session } from '../state/session.js';
import { hrefs, WINDOWS } from '../lib/routes.js';
import {
  formatCount,
  formatPercent,
  formatMs,
  formatRate,
  formatMiB,
  formatBytes,
  formatPercentiles,
  parseLabel,
  NONE,
} from '../lib/format.js';
import { sortRows } from '../lib/table.js';
import { seesAll } from '../lib/roles.js';
import { backendCounts, lastCallAt } from '../lib/sandboxes.js';
import { Chart } from '../components/Chart.jsx';
import { Loading, Empty, ErrorBox, Time, Badge, WindowPicker, SortHeader, useLoad, useInterval, useTitle } from '../components/ui.jsx';
import { systemCharts } from './charts.js';
import { useWindowPoints, chartData } from './useWindow.js';

const STATES = ['stem', 'idle', 'busy', 'booting', 'initializing', 'draining'];

export function Overview({ route: r }) {
  useTitle('Overview');
  const window = WINDOWS.includes(r.query.window) ? r.query.window : '5m';
  const live = window === '5m';
  const snap = latest.value;
  const w = useWindowPoints(window, systemHistory.value === false ? null : '/metrics/series');
  const summary = useLoad(() => api.get(`/metrics/summary?window=${window}`), [window]);
  useInterval(() => summary.reload(true), live ? 5000 : 30_000, [window]);
  const all = seesAll(session.value);
  const defs = useMemo(() => systemCharts({ byBackend: all }), [all]);
  const charts = defs.filter((d) => live || !d.liveOnly);

  const sys = live ? snap?.system?.last_minute : summary.data?.system;
  const span = live ? 'last 60 s' : `last ${window}`;
  const res = snap?.resources;
  const host = res?.host ?? summary.data?.host;

  return (
    <div class="page overview" data-testid="overview">
      <div class="page-head">
        <h1>Overview</h1>
        <WindowPicker value={window} onChange={(v) => setQuery({ window: v === '5m' ? null : v })} />
      </div>
      {systemHistory.value === false && (
        <p class="notice" data-testid="no-system-history">
          {live
            ? 'This key is limited to some namespaces: the charts start from when this page opened (the system-wide history needs a key for every namespace).'
            : "System-wide history needs a key for every namespace: see each function's Monitor tab."}
        </p>
      )}
      <section class="tiles" aria-label={`Figures of the ${span}`}>
        <Tile label="Requests" span={span} testid="stat-requests" value={formatCount(sys?.requests)} sub={formatRate(sys?.rps)} />
        <Tile
          label="Error rate"
          span={span}
          testid="stat-error-rate"
          value={formatPercent(sys?.error_rate)}
          sub={`${formatCount(sys?.errors)} failed`}
          bad={sys?.errors > 0}
        />
        <Tile
          label="p99 latency"
          span={span}
          testid="stat-p99"
          value={formatMs(sys?.p99_ms)}
          sub={formatPercentiles(sys).split(' · ').slice(0, 2).join(' · ')}
        />
        <Tile
          label="Cold starts"
          span={span}
          value={formatPercent(sys?.requests ? sys.cold_start_rate : null)}
          sub={`mean init ${formatMs(sys?.mean_init_ms)}`}
        />
        <Tile label="Throttled (429)" span={span} value={formatCount(sys?.throttled)} bad={sys?.throttled > 0} />
        <Tile
          label="In flight / queued"
          span="now"
          testid="stat-inflight"
          value={snap ? `${snap.system.active} / ${snap.system.queued}` : NONE}
        />
        <Tile
          label="Sandboxes"
          span="now"
          value={formatCount(snap?.system?.resources?.sandboxes)}
          sub={snap ? formatBytes(snap.system.resources.memory_bytes) : ''}
        />
        <Tile
          label="Memory budget"
          span="reserved"
          value={res ? formatPercent(res.memory_reserved_mb / res.memory_budget_mb) : NONE}
          sub={res ? `${formatMiB(res.memory_reserved_mb)} of ${formatMiB(res.memory_budget_mb)}` : ''}
          meter={res ? res.memory_reserved_mb / res.memory_budget_mb : null}
        />
        <Tile
          label="Host CPU"
          span="now"
          value={formatPercent(host?.cpu_ratio)}
          sub={host ? `${host.cores} cores · load ${host.load1}` : ''}
          meter={host?.cpu_ratio}
        />
        <Tile
          label="Host memory"
          span="now"
          value={host ? formatPercent(host.memory_used_bytes / host.memory_total_bytes) : NONE}
          sub={host ? `${formatBytes(host.memory_used_bytes)} of ${formatBytes(host.memory_total_bytes)}` : ''}
          meter={host ? host.memory_used_bytes / host.memory_total_bytes : null}
        />
      </section>

      {w.error && <ErrorBox error={w.error} title="Could not load the history" />}
      {!live && systemHistory.value === false ? null : !live && w.loading && !w.grid ? (
        <Loading what="Loading the history" />
      ) : (
        <section class="charts" aria-label="Charts">
          {charts.map((d) => (
            <Chart
              key={d.id}
              testid={`chart-${d.id}`}
              title={d.title}
              unit={d.unit}
              unit2={d.unit2}
              help={d.help}
              series={d.series}
              data={chartData(d, w)}
              xRange={w.grid ? [w.grid.from, w.grid.to] : null}
              note={live ? 'live, per second' : `per ${w.grid ? formatMs(w.grid.step * 1000) : ''}`}
            />
          ))}
        </section>
      )}

      <div class="grid-2">
        <SandboxTable snap={snap} />
        <ErrorFeed />
      </div>
      <TopFunctions summary={summary} window={window} route={r} />
    </div>
  );
}

function Tile({ label, value, sub, span, testid, bad, meter }) {
  return (
    <div class={`tile${bad ? ' tile-bad' : ''}`} data-testid={testid}>
      <div class="tile-label">
        {label} <span class="tile-span">{span}</span>
      </div>
      <div class="tile-value" data-testid={testid ? `${testid}-value` : undefined}>
        {value}
      </div>
      {sub && <div class="tile-sub">{sub}</div>}
      {meter !== null && meter !== undefined && (
        <div class="meter" role="meter" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(meter * 100)} aria-label={label}>
          <span style={{ width: `${Math.min(100, meter * 100)}%` }} class={meter > 0.85 ? 'hot' : ''} />
        </div>
      )}
    </div>
  );
}

/** Sandboxes by backend (Docker, microVM) and state, now. */
function SandboxTable({ snap }) {
  const sb = snap?.resources?.sandboxes ?? {};
  const backends = health.value?.backends ?? [];
  const kinds = ['docker', 'microvm'];
  const shown = backendCounts(snap?.resources?.sandboxes, seesAll(session.value));
  return (
    <section class="card" aria-labelledby="sb-title" data-testid="sandbox-states">
      <h2 id="sb-title">Sandboxes by backend and state</h2>
      {!snap ? (
        <Loading what="Waiting for the live stream" />
      ) : shown === 'withheld' ? (
        <p class="muted" data-testid="sandbox-counts-withheld">
          The counts by backend and state cover every namespace's sandboxes (stem cells included), so the server gives them to keys for
          every namespace only. This key's sandboxes: {formatCount(snap.system?.resources?.sandboxes)} now (the Sandboxes tile); each
          function's are in its Sandboxes tab.
        </p>
      ) : (
        <div class="table-wrap">
          <table class="data compact">
            <thead>
              <tr>
                <th scope="col">Backend</th>
                {STATES.map((s) => (
                  <th scope="col" class="num" key={s}>
                    {s}
                  </th>
                ))}
                <th scope="col" class="num">
                  total
                </th>
              </tr>
            </thead>
            <tbody>
              {kinds.map((k) => {
                const states = sb[k] ?? {};
                const b = backends.find((x) => x.kind === k);
                const total = Object.values(states).reduce((n, v) => n + v, 0);
                return (
                  <tr key={k}>
                    <th scope="row">
                      {k === 'docker' ? 'Docker' : 'microVM'}{' '}
                      {!b ? (
                        <Badge kind="neutral">not running</Badge>
                      ) : !b.available ? (
                        <Badge kind="err">unavailable</Badge>
                      ) : b.accelerator ? (
                        <Badge kind="neutral">{b.accelerator.toUpperCase()}</Badge>
                      ) : null}
                    </th>
                    {STATES.map((s) => (
                      <td class="num" key={s}>
                        {states[s] ?? 0}
                      </td>
                    ))}
                    <td class="num">
                      <strong>{total}</strong>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      <p class="muted small">
        stem: booted ahead of any function, ready to specialize · idle: warm, waiting for a call · busy: running calls. See{' '}
        <a href={hrefs.sandboxes()}>Sandboxes</a> for pools and the Docker/microVM comparison.
      </p>
    </section>
  );
}

/** The latest failed calls, each linking to its invocation; refreshed when the stream shows new errors. */
function ErrorFeed() {
  const errors = useLoad(() => api.get('/metrics/errors?limit=15'), []);
  const last = useRef(0);
  useEffect(
    () =>
      onSnapshot((snap) => {
        const n = snap.system?.last_second?.errors ?? 0;
        if (n > 0 && Date.now() - last.current > 1500) {
          last.current = Date.now();
          errors.reload(true);
        }
      }),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [],
  );
  const list = errors.data?.errors ?? [];
  return (
    <section class="card" aria-labelledby="errors-title" data-testid="error-feed">
      <h2 id="errors-title">Latest errors</h2>
      {errors.error && <ErrorBox error={errors.error} />}
      {errors.loading && !errors.data ? (
        <Loading what="Loading errors" />
      ) : list.length === 0 ? (
        <Empty title="No failed calls recently." />
      ) : (
        <ul class="feed">
          {list.map((e) => (
            <li key={e.id}>
              <a href={hrefs.invocation(e.namespace, e.function, e.id)} data-testid="error-feed-item">
                <span class="feed-when">
                  <Time at={e.at_ms} relative />
                </span>
                <span class="feed-fn">{e.namespace === 'default' ? e.function : `${e.namespace}/${e.function}`}</span>
                <Badge kind="err">{e.error_type}</Badge>
                <span class="feed-msg">{e.message}</span>
              </a>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

/** Functions by calls over the window (sortable), with their last call. */
function TopFunctions({ summary, window, route: r }) {
  const sort = r.query.sort ?? 'requests';
  const dir = r.query.dir === 'asc' ? 'asc' : 'desc';
  const fns = summary.data?.functions ?? {};
  const liveFns = latest.value?.functions ?? {};
  const rows = Object.entries(fns).map(([label, s]) => ({
    label,
    ...parseLabel(label),
    requests: s.requests,
    errors: s.errors,
    error_rate: s.requests ? s.error_rate : null,
    p99_ms: s.p99_ms,
    last_call: lastCallAt(s.last_call_at_ms, liveFns[label]?.last_call_at_ms),
  }));
  const sorted = sortRows(rows, sort, dir, (x) => x.label);
  const onSort = (col, d) => setQuery({ sort: col, dir: d });
  return (
    <section class="card" aria-labelledby="top-title" data-testid="top-functions">
      <h2 id="top-title">
        Top functions <span class="muted small">last {window}</span>
      </h2>
      {summary.error && <ErrorBox error={summary.error} />}
      {summary.loading && !summary.data ? (
        <Loading what="Loading" />
      ) : rows.length === 0 ? (
        <Empty title="No functions yet.">
          <a href={hrefs.create()}>Create a function</a>
        </Empty>
      ) : (
        <div class="table-wrap">
          <table class="data">
            <thead>
              <tr>
                <SortHeader label="Function" col="label" sort={sort} dir={dir} onSort={onSort} />
                <SortHeader label="Calls" col="requests" sort={sort} dir={dir} onSort={onSort} numeric />
                <SortHeader label="Errors" col="errors" sort={sort} dir={dir} onSort={onSort} numeric />
                <SortHeader label="Error rate" col="error_rate" sort={sort} dir={dir} onSort={onSort} numeric />
                <SortHeader label="p99" col="p99_ms" sort={sort} dir={dir} onSort={onSort} numeric />
                <SortHeader label="Last call" col="last_call" sort={sort} dir={dir} onSort={onSort} numeric />
              </tr>
            </thead>
            <tbody>
              {sorted.slice(0, 20).map((x) => (
                <tr key={x.label}>
                  <td>
                    <a href={hrefs.fn(x.namespace, x.name, 'monitor')}>{x.label}</a>
                  </td>
                  <td class="num" data-testid={`top-calls-${x.label}`}>
                    {formatCount(x.requests)}
                  </td>
                  <td class={`num${x.errors ? ' text-err' : ''}`}>{formatCount(x.errors)}</td>
                  <td class="num">{formatPercent(x.error_rate)}</td>
                  <td class="num">{formatMs(x.p99_ms)}</td>
                  <td class="num" data-testid={`top-last-call-${x.label}`}>
                    <Time at={x.last_call} relative />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
