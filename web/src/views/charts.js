// The charts of the overview and of a function's monitor tab: what each
// shows, in which unit, and how a point gives its value. `step` is the
// width of a point in seconds (1 for the live window).

/** @typedef {{id: string, title: string, unit: string, unit2?: string, help: string, liveOnly?: boolean, series: {label: string, color: string, scale?: 'y'|'y2', dash?: boolean, fill?: boolean, pick: (p: any, step: number) => number | null | undefined}[]}} ChartDef */

const per = (n, step) => (n === null || n === undefined ? null : n / step);

/**
 * Charts of a stats source: `stats(p)` gives a point's Stats (the
 * system's, or one function's).
 * @param {(p: any) => any} stats
 * @returns {ChartDef[]}
 */
export function statCharts(stats) {
  return [
    {
      id: 'requests',
      title: 'Requests',
      unit: 'rps',
      help: 'Calls that ended per second (throttled ones included), and of them the ones that failed.',
      series: [
        { label: 'calls/s', color: 'c1', fill: true, pick: (p, step) => per(stats(p)?.requests, step) },
        { label: 'errors/s', color: 'err', pick: (p, step) => per(stats(p)?.errors, step) },
      ],
    },
    {
      id: 'error-rate',
      title: 'Error rate',
      unit: 'percent',
      help: 'Failed calls (errors, timeouts, throttles) over all calls that ended.',
      series: [{ label: 'error rate', color: 'err', pick: (p) => (stats(p)?.requests ? stats(p).error_rate : null) }],
    },
    {
      id: 'latency',
      title: 'Latency',
      unit: 'ms',
      help: 'Arrival to answer (total_ms) percentiles of the calls that ended in each interval, queue and cold start included.',
      series: [
        { label: 'p50', color: 'c2', pick: (p) => stats(p)?.p50_ms },
        { label: 'p90', color: 'c3', pick: (p) => stats(p)?.p90_ms },
        { label: 'p99', color: 'c4', pick: (p) => stats(p)?.p99_ms },
      ],
    },
    {
      id: 'cold-starts',
      title: 'Cold starts',
      unit: 'percent',
      unit2: 'ms',
      help: 'Share of calls that started a sandbox (stem-cell starts included), and their mean init time (boot + init, right axis).',
      series: [
        { label: 'cold-start rate', color: 'c5', pick: (p) => (stats(p)?.requests ? stats(p).cold_start_rate : null) },
        { label: 'mean init', color: 'c6', scale: 'y2', dash: true, pick: (p) => stats(p)?.mean_init_ms },
      ],
    },
    {
      id: 'throttles',
      title: 'Throttles (429)',
      unit: 'per_s',
      help: 'Calls refused because the function was at max concurrency and its queue timed out or was full.',
      series: [{ label: 'throttled/s', color: 'warn', pick: (p, step) => per(stats(p)?.throttled, step) }],
    },
  ];
}

/**
 * The overview's system-wide charts. `byBackend`: whether the key gets the
 * sandbox counts by backend (a key for every namespace; the server gives
 * others none, and the lines would be zeros).
 * @param {{byBackend?: boolean}} [opts]
 * @returns {ChartDef[]}
 */
export function systemCharts({ byBackend = true } = {}) {
  return [
    ...statCharts((p) => p.sys),
    {
      id: 'concurrency',
      title: 'In flight and queued',
      unit: 'count',
      help: 'Calls running in a sandbox right now and calls waiting for one (live), or the mean number of calls in flight (history).',
      series: [
        { label: 'in flight', color: 'c1', pick: (p) => p.active ?? p.sys?.concurrency },
        { label: 'queued', color: 'warn', pick: (p) => p.queued },
      ],
    },
    {
      id: 'host',
      title: 'Host CPU and memory',
      unit: 'percent',
      liveOnly: true,
      help: "The host's CPU use (all cores) and memory in use, sampled every 2 s.",
      series: [
        { label: 'CPU', color: 'c2', pick: (p) => p.host?.cpu },
        { label: 'memory', color: 'c3', pick: (p) => (p.host ? p.host.memUsed / p.host.memTotal : null) },
      ],
    },
    {
      id: 'sandboxes',
      title: 'Sandboxes',
      unit: 'count',
      liveOnly: true,
      help: byBackend
        ? 'Live sandboxes of all functions, and how many of those are Docker containers and microVMs (stem cells included).'
        : "Live sandboxes of your namespaces' functions (the counts by backend cover every namespace, and need a key for every namespace).",
      series: [
        { label: 'functions', color: 'c1', pick: (p) => p.sandboxes },
        ...(byBackend
          ? [
              { label: 'docker (all)', color: 'c2', pick: (p) => (p.sb ? sumStates(p.sb.docker) : null) },
              { label: 'microvm (all)', color: 'c5', pick: (p) => (p.sb ? sumStates(p.sb.microvm) : null) },
            ]
          : []),
      ],
    },
  ];
}

/** One function's monitor charts. @param {string} label @returns {ChartDef[]} */
export function functionCharts(label, errorTypes) {
  const f = (p) => p.fns?.[label];
  const s = (p) => f(p)?.s;
  const base = statCharts(s);
  const errorsByType = {
    id: 'errors-by-type',
    title: 'Errors by type',
    unit: 'per_s',
    help: 'Failed calls per second, by error type (FunctionError, Timeout, OutOfMemory, …).',
    series: (errorTypes.length ? errorTypes : ['FunctionError']).map((t, i) => ({
      label: t,
      color: ['err', 'warn', 'c4', 'c6', 'c5', 'c3'][i % 6],
      pick: (p, step) => {
        const st = s(p);
        if (!st) return null;
        return per(st.errors_by_type?.[t] ?? 0, step);
      },
    })),
  };
  return [
    base[0],
    errorsByType,
    base[2],
    base[3],
    base[4],
    {
      id: 'concurrency',
      title: 'Concurrency',
      unit: 'count',
      help: 'Mean calls in flight over each interval; live, also the calls running and waiting right now.',
      series: [
        { label: 'mean in flight', color: 'c1', pick: (p) => s(p)?.concurrency },
        { label: 'running now', color: 'c2', dash: true, pick: (p) => f(p)?.active },
        { label: 'queued now', color: 'warn', dash: true, pick: (p) => f(p)?.queued },
      ],
    },
    {
      id: 'cpu',
      title: 'CPU per call',
      unit: 'ms',
      unit2: 'cores',
      help: "Mean CPU time of a call (the sandbox's CPU during its batch, shared among the calls), and live the CPU cores the function's sandboxes use (right axis).",
      series: [
        { label: 'CPU per call', color: 'c3', pick: (p) => s(p)?.mean_cpu_ms },
        { label: 'cores now', color: 'c4', scale: 'y2', dash: true, pick: (p) => f(p)?.cpu_cores },
      ],
    },
    {
      id: 'memory',
      title: 'Memory per call',
      unit: 'bytes',
      help: "Mean peak memory of the sandbox a call ran in, and live the memory all of the function's sandboxes use.",
      series: [
        { label: 'peak per call', color: 'c5', pick: (p) => s(p)?.mean_peak_memory_bytes },
        { label: 'sandboxes now', color: 'c6', dash: true, pick: (p) => f(p)?.memory_bytes },
      ],
    },
  ];
}

function sumStates(states) {
  if (!states) return 0;
  return Object.values(states).reduce((n, v) => n + v, 0);
}
