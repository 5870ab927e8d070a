// A time-series chart (uPlot). The data arrive as uPlot columns; the chart
// is created once and only `setData` runs on updates, which is what makes
// a redraw a second of many charts cheap.

import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { formatUnit, formatTick, timeTickFormatter } from '../lib/format.js';
import { dark, cssVar } from '../state/theme.js';

let firstDrawn = false;

/**
 * @param {{
 *   title: string, unit: string, unit2?: string, help?: string,
 *   series: {label: string, color: string, scale?: 'y' | 'y2', dash?: boolean, fill?: boolean}[],
 *   data: (number | null)[][], xRange?: [number, number] | null, height?: number, testid?: string,
 *   note?: string,
 * }} props
 */
export function Chart({ title, unit, unit2, help, series, data, xRange, height = 170, testid, note }) {
  const box = useRef(/** @type {HTMLDivElement | null} */ (null));
  const plot = useRef(/** @type {uPlot | null} */ (null));
  const [showHelp, setShowHelp] = useState(false);
  const range = useRef(xRange);
  range.current = xRange;
  const isDark = dark.value;
  const shape = series.map((s) => `${s.label}:${s.scale ?? 'y'}`).join('|');

  useEffect(() => {
    const el = box.current;
    if (!el) return undefined;
    const axisColor = cssVar('--muted');
    const gridColor = cssVar('--grid');
    const fmt = (u) => (_, v) => formatUnit(u, v);
    const axis = (scale, u) => ({
      scale,
      stroke: axisColor,
      grid: { stroke: gridColor, width: 1 },
      ticks: { stroke: gridColor, width: 1 },
      values: (_, splits) => splits.map((v) => formatTick(u, v)),
      size: 58,
      side: scale === 'y2' ? 1 : 3,
    });
    const opts = {
      width: Math.max(200, el.clientWidth),
      height,
      padding: [8, 18, 0, 0],
      cursor: { drag: { x: false, y: false }, points: { size: 6 } },
      legend: { live: true },
      scales: {
        x: {
          time: true,
          range: (u, min, max) => (range.current ? [range.current[0], range.current[1]] : [min, max]),
        },
        y: { range: (u, min, max) => [Math.min(0, min ?? 0), Math.max(max ?? 1, unit === 'percent' ? 0.01 : 1)] },
        y2: { range: (u, min, max) => [0, Math.max(max ?? 1, 1)] },
      },
      axes: [
        {
          stroke: axisColor,
          grid: { stroke: gridColor, width: 1 },
          ticks: { stroke: gridColor, width: 1 },
          space: 80,
          values: (u, splits) => {
            const fmt = timeTickFormatter((u.scales.x.max ?? 0) - (u.scales.x.min ?? 0), {
              wholeMinutes: splits.every((s) => s % 60 === 0),
            });
            return splits.map(fmt);
          },
        },
        axis('y', unit),
        ...(series.some((s) => s.scale === 'y2') ? [axis('y2', unit2 ?? unit)] : []),
      ],
      series: [
        { value: (u, v) => (v == null ? '—' : new Date(v * 1000).toLocaleTimeString()) },
        ...series.map((s) => {
          const color = cssVar(`--${s.color}`) || s.color;
          return {
            label: s.label,
            scale: s.scale ?? 'y',
            stroke: color,
            width: 1.5,
            dash: s.dash ? [4, 3] : undefined,
            fill: s.fill ? `${color}22` : undefined,
            points: { show: false },
            spanGaps: false,
            value: fmt(s.scale === 'y2' ? (unit2 ?? unit) : unit),
          };
        }),
      ],
      hooks: {
        draw: [
          () => {
            if (!firstDrawn) {
              firstDrawn = true;
              performance.mark('ignis:first-chart');
            }
          },
        ],
      },
    };
    const u = new uPlot(opts, /** @type {any} */ (data), el);
    plot.current = u;
    const ro = new ResizeObserver(() => {
      const w = el.clientWidth;
      if (w > 0 && Math.abs(w - u.width) > 2) u.setSize({ width: w, height });
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
    // Rebuilt when the series or the theme change; data changes only setData.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shape, isDark, height, unit, unit2]);

  useEffect(() => {
    plot.current?.setData(/** @type {any} */ (data));
  }, [data]);

  // What the e2e test (and a curious reader of the DOM) can check: how many
  // points hold data, the newest and the largest value of the first series.
  const first = data[1] ?? [];
  let filled = 0;
  let lastValue = null;
  let max = null;
  for (const v of first) {
    if (v !== null && v !== undefined) {
      filled++;
      lastValue = v;
      if (max === null || v > max) max = v;
    }
  }
  return (
    <figure class="chart" data-testid={testid} data-points={filled} data-last={lastValue ?? ''} data-max={max ?? ''}>
      <figcaption>
        <span class="chart-title">{title}</span>
        {help && (
          <button
            type="button"
            class="help"
            title={help}
            aria-label={`What ${title} shows`}
            aria-expanded={showHelp ? 'true' : 'false'}
            onClick={() => setShowHelp(!showHelp)}
          >
            ?
          </button>
        )}
        {note && <span class="chart-note">{note}</span>}
      </figcaption>
      {help && showHelp && <p class="chart-help">{help}</p>}
      <div ref={box} class="chart-plot" />
    </figure>
  );
}
