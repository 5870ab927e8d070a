// The points behind a set of charts for a window: the live ring buffer for
// the 5-minute window (moving every second), or the series API for the
// longer ones (stored rollups, refreshed every 30 s).

import { useMemo } from 'preact/hooks';
import * as api from '../api.js';
import { tick, livePoints, LIVE_SECONDS } from '../state/live.js';
import { seriesPoints, gridColumns, stepFor, windowSeconds } from '../lib/snapshot.js';
import { useLoad, useInterval } from '../components/ui.jsx';

export const HISTORY_REFRESH_MS = 30_000;

/**
 * @param {string} window 5m (live) or 1h / 24h / 7d
 * @param {string | null} seriesPath the series endpoint (without the query), null when not allowed
 * @param {string} [label] a function's label (its stats go under fns[label])
 */
export function useWindowPoints(window, seriesPath, label) {
  const live = window === '5m';
  const history = useLoad(async () => {
    if (live || !seriesPath) return null;
    const sep = seriesPath.includes('?') ? '&' : '?';
    return api.get(`${seriesPath}${sep}window=${window}&step=${stepFor(window)}`);
  }, [window, seriesPath]);
  useInterval(() => history.reload(true), live ? 0 : HISTORY_REFRESH_MS, [window]);

  // Live: re-read the ring on every snapshot.
  const t = live ? tick.value : 0;
  return useMemo(() => {
    if (live) {
      const points = livePoints();
      const last = points.length ? points[points.length - 1].t : Math.floor(Date.now() / 1000) - 1;
      return { live, points, grid: { from: last - (LIVE_SECONDS - 1), to: last, step: 1 }, loading: false, error: null };
    }
    const s = history.data;
    if (!s) return { live, points: [], grid: null, loading: history.loading, error: history.error };
    const points = seriesPoints(s, label);
    const step = s.step_s;
    const to = points.length ? points[points.length - 1].t : Math.floor(Date.now() / 1000);
    const from = points.length ? points[0].t : to - windowSeconds(window);
    return { live, points, grid: { from, to, step }, loading: false, error: history.error };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [live, t, history.data, history.error, history.loading, label]);
}

/**
 * The uPlot columns of a chart definition over the window's points.
 * @param {import('./charts.js').ChartDef} def
 * @param {{points: any[], grid: {from: number, to: number, step: number} | null}} w
 */
export function chartData(def, w) {
  if (!w.grid) return [[], ...def.series.map(() => [])];
  const step = w.grid.step;
  return gridColumns(
    w.points,
    def.series.map((s) => (p) => s.pick(p, step)),
    w.grid,
  );
}
