// This function's sandboxes one by one (state, version, backend, memory,
// age, time in state, calls), its counts by state and pool figures, the
// stem cells it can start from, and "pre-warm N".

import { useState } from 'preact/hooks';
import * as api from '../../api.js';
import { allowed } from '../../state/session.js';
import { latest } from '../../state/live.js';
import { now } from '../../state/clock.js';
import { toast } from '../../state/toasts.js';
import { hrefs } from '../../lib/routes.js';
import { formatBytes, formatCores, formatCount, formatMiB, formatMs, formatSeconds } from '../../lib/format.js';
import { SANDBOX_STATES, sandboxesNow } from '../../lib/sandboxes.js';
import { Loading, ErrorBox, Field, Badge, useLoad, useInterval } from '../../components/ui.jsx';

const REFRESH_MS = 3000;

/** How a sandbox's state is badged. */
const STATE_KIND = { idle: 'ok', busy: 'accent', booting: 'neutral', initializing: 'neutral', draining: 'warn' };

export function SandboxesTab({ fn, label }) {
  const pools = useLoad(() => api.get('/pools'), []);
  const list = useLoad(async () => {
    const r = await api.get(api.fnPath(fn.namespace, fn.name, 'sandboxes'));
    return { sandboxes: r.sandboxes ?? [], at: Date.now() };
  }, [fn.namespace, fn.name]);
  useInterval(() => {
    pools.reload(true);
    list.reload(true);
  }, REFRESH_MS);
  const [count, setCount] = useState('1');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(/** @type {any} */ (null));
  const [warmed, setWarmed] = useState(/** @type {any} */ (null));
  const p = pools.data?.functions?.find((x) => x.function === label);
  const stems = (pools.data?.stem_cells ?? []).filter((s) => s.runtime === fn.runtime && s.backend === fn.backend);
  const res = latest.value?.resources?.functions?.[label];
  const n = Number(count);
  const countError = !Number.isInteger(n) || n < 1 || n > 100 ? '1 to 100' : null;
  const sandboxes = list.data ? sandboxesNow(list.data.sandboxes, list.data.at, now.value) : [];

  const warm = async (e) => {
    e.preventDefault();
    if (countError) return;
    setBusy(true);
    setError(null);
    try {
      const r = await api.post(api.fnPath(fn.namespace, fn.name, 'warm'), { count: n });
      setWarmed(r);
      toast(`Pre-warming: ${r.started} of ${r.requested} sandboxes started booting`);
      pools.reload(true);
      list.reload(true);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="stack" data-testid="sandboxes-tab">
      <section class="card" aria-labelledby="pool-title">
        <h2 id="pool-title">Sandboxes of {label}</h2>
        {pools.error && <ErrorBox error={pools.error} title="Could not load the pools" />}
        {pools.loading && !pools.data ? (
          <Loading what="Loading the pool" />
        ) : p ? (
          <div class="table-wrap">
            <table class="data compact" data-testid="pool-states">
              <caption class="sr-only">Sandboxes by state, calls queued and active, what the autoscaler wants</caption>
              <thead>
                <tr>
                  {SANDBOX_STATES.map((s) => (
                    <th scope="col" class="num" key={s}>
                      {s}
                    </th>
                  ))}
                  <th scope="col" class="num">
                    queued
                  </th>
                  <th scope="col" class="num">
                    active
                  </th>
                  <th scope="col" class="num">
                    desired
                  </th>
                </tr>
              </thead>
              <tbody>
                <tr>
                  {SANDBOX_STATES.map((s) => (
                    <td class="num" key={s} data-testid={`pool-${s}`}>
                      {p.sandboxes[s] ?? 0}
                    </td>
                  ))}
                  <td class="num">{p.queued}</td>
                  <td class="num">{p.active}</td>
                  <td class="num">{p.desired}</td>
                </tr>
              </tbody>
            </table>
          </div>
        ) : null}
        <SandboxList fn={fn} list={list} sandboxes={sandboxes} />
      </section>
      <div class="grid-2">
        <section class="card" aria-labelledby="pool-figures-title">
          <h2 id="pool-figures-title">Pool</h2>
          <dl class="kv">
            <dt>Version</dt>
            <dd>
              {p ? `v${p.version}` : `v${fn.version}`} on {fn.backend}
            </dd>
            <dt>Memory, CPU now</dt>
            <dd>
              {res
                ? `${res.sandboxes} sandboxes · ${formatBytes(res.memory_bytes)} · ${formatCores(res.cpu_cores)} · ${res.cpu_seconds.toFixed(2)} CPU-s since start`
                : '—'}
            </dd>
            <dt>Pool limits</dt>
            <dd>
              min warm {fn.min_warm} · max concurrency {fn.max_concurrency} · keep-alive {formatSeconds(fn.keep_alive_s)}
            </dd>
            {p?.autoscaler && (
              <>
                <dt>Autoscaler</dt>
                <dd class="mono small">
                  {Object.entries(p.autoscaler)
                    .map(([k, v]) => `${k} ${typeof v === 'number' ? Number(v.toFixed(3)) : v}`)
                    .join(' · ')}
                </dd>
              </>
            )}
          </dl>
          <h3>
            Stem cells for {fn.runtime} on {fn.backend}
          </h3>
          {stems.length === 0 ? (
            <p class="muted">None: a cold start boots a fresh sandbox.</p>
          ) : (
            <table class="data compact">
              <thead>
                <tr>
                  <th scope="col">Memory</th>
                  <th scope="col" class="num">
                    ready
                  </th>
                  <th scope="col" class="num">
                    booting
                  </th>
                  <th scope="col" class="num">
                    target
                  </th>
                  <th scope="col" class="num">
                    hits / misses
                  </th>
                </tr>
              </thead>
              <tbody>
                {stems.map((s) => (
                  <tr key={s.memory_mb}>
                    <td>
                      {s.memory_mb} MiB{s.memory_mb === fn.memory_mb ? ' (this function)' : ''}
                    </td>
                    <td class="num">{s.ready}</td>
                    <td class="num">{s.booting}</td>
                    <td class="num">{s.target}</td>
                    <td class="num">
                      {s.hits} / {s.misses}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
        <section class="card stack" aria-labelledby="warm-title">
          <h2 id="warm-title">Pre-warm</h2>
          <p class="muted">
            Boot sandboxes ahead of demand, so the next calls start warm (bounded by max concurrency and the memory budget).
          </p>
          {allowed('write_functions', fn.namespace) ? (
            <form class="btn-row" onSubmit={warm}>
              <Field id="warm-count" label="Sandboxes to start" error={countError}>
                <input
                  id="warm-count"
                  type="number"
                  min={1}
                  max={100}
                  value={count}
                  onInput={(e) => setCount(/** @type {HTMLInputElement} */ (e.target).value)}
                  data-testid="warm-count"
                />
              </Field>
              <button type="submit" class="btn primary" disabled={busy || Boolean(countError)} data-testid="prewarm">
                {busy ? 'Starting…' : `Pre-warm ${countError ? 'N' : n}`}
              </button>
            </form>
          ) : (
            <p class="muted">Your role cannot pre-warm.</p>
          )}
          {warmed && (
            <p data-testid="warm-result">
              Requested {warmed.requested}, {warmed.started} started booting.
            </p>
          )}
          <ErrorBox error={error} title="Could not pre-warm" />
        </section>
      </div>
    </div>
  );
}

/** The sandboxes one by one, newest first; each id links to the calls it served. */
function SandboxList({ fn, list, sandboxes }) {
  const canLogs = allowed('read_logs', fn.namespace);
  if (list.error && !list.data) return <ErrorBox error={list.error} title="Could not list the sandboxes" />;
  if (list.loading && !list.data) return <Loading what="Listing the sandboxes" />;
  if (sandboxes.length === 0) {
    return (
      <p class="muted" data-testid="no-sandboxes">
        No sandboxes now: the function has not been called since it was deployed, or its sandboxes stopped after keep-alive (
        {formatSeconds(fn.keep_alive_s)} idle).
      </p>
    );
  }
  return (
    <>
      <div class="table-wrap">
        <table class="data compact" data-testid="sandbox-list">
          <caption class="sr-only">The function's sandboxes, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Sandbox</th>
              <th scope="col">State</th>
              <th scope="col">Version</th>
              <th scope="col">Backend</th>
              <th scope="col" class="num">
                Memory
              </th>
              <th scope="col" class="num">
                Age
              </th>
              <th scope="col" class="num">
                In state
              </th>
              <th scope="col" class="num">
                Calls
              </th>
            </tr>
          </thead>
          <tbody>
            {sandboxes.map((s) => (
              <tr key={s.id} data-testid="sandbox-row" data-id={s.id} data-state={s.state} data-calls={s.calls}>
                <td class="mono small">
                  {canLogs ? (
                    <a
                      href={hrefs.fn(fn.namespace, fn.name, 'invocations', { sandbox: s.id })}
                      title={`The calls ${s.id} served`}
                      data-testid="sandbox-calls-link"
                    >
                      {s.id}
                    </a>
                  ) : (
                    s.id
                  )}
                </td>
                <td>
                  <Badge kind={STATE_KIND[s.state] ?? 'neutral'}>{s.state}</Badge>
                </td>
                <td>
                  v{s.version}
                  {s.version !== fn.version && <span class="muted small"> (not current)</span>}
                </td>
                <td>{s.backend}</td>
                <td class="num">{formatMiB(s.memory_mb)}</td>
                <td class="num">{formatMs(s.age_ms)}</td>
                <td class="num">{formatMs(s.in_state_ms)}</td>
                <td class="num" data-testid="sandbox-calls">
                  {formatCount(s.calls)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <p class="muted small">
        {sandboxes.length} sandbox{sandboxes.length === 1 ? '' : 'es'}, newest first, refreshed every {REFRESH_MS / 1000} s. Age counts
        from booking (boot included); memory is what the sandbox reserves; calls are those handed to it.
        {canLogs ? ' A sandbox’s id lists the calls it served.' : ''} Published versions (name:N) have pools of their own, not listed here.
      </p>
    </>
  );
}
