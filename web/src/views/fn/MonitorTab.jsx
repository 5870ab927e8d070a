// One function's charts over a window: live (per second, from the stream)
// for 5 minutes, from the stored rollups for 1 h / 24 h / 7 d.

import { useEffect, useMemo } from 'preact/hooks';
import * as api from '../../api.js';
import { setQuery } from '../../state/router.js';
import { backfillFunction, latest } from '../../state/live.js';
import { WINDOWS } from '../../lib/routes.js';
import { errorTypes } from '../../lib/snapshot.js';
import { formatCount, formatPercent, formatMs, formatPercentiles, formatBytes, formatCores } from '../../lib/format.js';
import { Chart } from '../../components/Chart.jsx';
import { ErrorBox, Loading, WindowPicker, useLoad, useInterval } from '../../components/ui.jsx';
import { functionCharts } from '../charts.js';
import { useWindowPoints, chartData } from '../useWindow.js';

export function MonitorTab({ fn, label, route: r }) {
  const window = WINDOWS.includes(r.query.window) ? r.query.window : '5m';
  const live = window === '5m';
  const path = api.fnPath(fn.namespace, fn.name, 'metrics');
  const w = useWindowPoints(window, path, label);
  useEffect(() => {
    if (live) backfillFunction(fn.namespace, fn.name, label).catch(() => {});
  }, [live, label]);
  const summary = useLoad(() => api.get(`/metrics/summary?window=${window}`), [window]);
  useInterval(() => summary.reload(true), live ? 5000 : 30_000, [window]);
  const s = summary.data?.functions?.[label];
  const types = errorTypes(w.points, (p) => p.fns?.[label]?.s?.errors_by_type).slice(0, 6);
  const defs = useMemo(() => functionCharts(label, types), [label, types.join(',')]);
  const now = latest.value?.functions?.[label];
  const res = latest.value?.resources?.functions?.[label] ?? now?.resources;

  return (
    <div class="stack" data-testid="monitor-tab">
      <div class="btn-row">
        <WindowPicker value={window} onChange={(v) => setQuery({ window: v === '5m' ? null : v })} />
        <span class="muted small">
          {live ? 'live: one point a second from the stream' : 'from the stored per-minute rollups, refreshed every 30 s'}
        </span>
      </div>
      <dl class="kv summary-line" data-testid="monitor-summary">
        <dt>Calls ({window})</dt>
        <dd>
          {formatCount(s?.requests)} · {formatCount(s?.errors)} failed ({formatPercent(s?.requests ? s.error_rate : null)}) ·{' '}
          {formatCount(s?.throttled)} throttled
        </dd>
        <dt>Latency</dt>
        <dd>
          {formatPercentiles(s)} · max {formatMs(s?.max_ms)}
        </dd>
        <dt>Cold starts</dt>
        <dd>
          {formatCount(s?.cold_starts)} ({formatPercent(s?.requests ? s.cold_start_rate : null)}), {formatCount(s?.stem_starts)} from stem
          cells · mean init {formatMs(s?.mean_init_ms)}
        </dd>
        <dt>Now</dt>
        <dd>
          {now ? `${now.active} running, ${now.queued} queued, ${now.idle} idle` : '—'} ·{' '}
          {res
            ? `${res.sandboxes} sandbox${res.sandboxes === 1 ? '' : 'es'}, ${formatBytes(res.memory_bytes)}, ${formatCores(res.cpu_cores)}`
            : ''}
        </dd>
      </dl>
      {w.error && <ErrorBox error={w.error} title="Could not load the metrics" />}
      {!live && w.loading && !w.grid ? (
        <Loading what="Loading the metrics" />
      ) : (
        <section class="charts" aria-label="Charts">
          {defs.map((d) => (
            <Chart
              key={d.id}
              testid={`fn-chart-${d.id}`}
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
    </div>
  );
}
