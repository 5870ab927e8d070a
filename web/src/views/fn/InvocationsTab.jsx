// The recent invocation records, newest first: filter by status, expand
// one to see its figures, logs and error with its stack; a live tail
// refreshes the list when the stream shows calls of this function; with
// `?sandbox=sb-...` (a link from the Sandboxes tab) only the calls that
// sandbox served, among the records loaded.

import { useEffect, useRef, useState } from 'preact/hooks';
import * as api from '../../api.js';
import { setQuery } from '../../state/router.js';
import { onSnapshot } from '../../state/live.js';
import { formatMs, formatBytes } from '../../lib/format.js';
import { hrefs } from '../../lib/routes.js';
import { recordsOfSandbox } from '../../lib/sandboxes.js';
import { Loading, Empty, ErrorBox, Badge, Time, Segmented, statusKind, useLoad, useInterval } from '../../components/ui.jsx';
import { Logs } from './TestTab.jsx';

const STATUSES = ['all', 'success', 'error', 'timeout', 'throttled'];

export function InvocationsTab({ fn, label, route: r }) {
  const status = STATUSES.includes(r.query.status) ? r.query.status : 'all';
  const sandbox = r.query.sandbox || null;
  // A sandbox's calls are picked from the records loaded: load more of them by default.
  const limit = [50, 200, 1000].includes(Number(r.query.limit)) ? Number(r.query.limit) : sandbox ? 200 : 50;
  const tail = r.query.tail !== 'off';
  const wanted = r.query.id ?? null;
  const [open, setOpen] = useState(() => new Set(wanted ? [wanted] : []));
  const list = useLoad(
    () => api.get(api.fnPath(fn.namespace, fn.name, `invocations?limit=${limit}${status === 'all' ? '' : `&status=${status}`}`)),
    [status, limit, fn.namespace, fn.name],
  );
  // A linked record (from the error feed) that is not in the page of records.
  const inList = (list.data?.invocations ?? []).some((x) => x.id === wanted);
  const single = useLoad(async () => {
    if (!wanted || !list.data || inList) return null;
    return api.waitForRecord(fn.namespace, fn.name, wanted, { tries: 3 });
  }, [wanted, Boolean(list.data), inList]);

  // Live tail: reload when the stream shows calls of this function (at most once a second).
  const last = useRef(0);
  useEffect(() => {
    if (!tail) return undefined;
    return onSnapshot((snap) => {
      const n = snap.functions?.[label]?.last_second?.requests ?? 0;
      if (n > 0 && Date.now() - last.current > 1000) {
        last.current = Date.now();
        // The records are written just after the metrics: give them a moment.
        setTimeout(() => list.reload(true), 300);
      }
    });
  }, [tail, label, status, limit]);
  useInterval(() => list.reload(true), tail ? 10_000 : 0, [status, limit]);

  useEffect(() => {
    if (wanted) setTimeout(() => document.getElementById(`inv-${wanted}`)?.scrollIntoView({ block: 'center' }), 50);
  }, [wanted, Boolean(list.data)]);

  const toggle = (id) => {
    const s = new Set(open);
    if (s.has(id)) s.delete(id);
    else s.add(id);
    setOpen(s);
  };
  const loaded = list.data?.invocations ?? [];
  const records = recordsOfSandbox([...(single.data ? [single.data] : []), ...loaded], sandbox);

  return (
    <div class="stack" data-testid="invocations-tab">
      <div class="btn-row">
        <Segmented
          label="Status"
          options={STATUSES}
          value={status}
          onChange={(v) => setQuery({ status: v === 'all' ? null : v, id: null })}
          testid="status-filter"
        />
        <label class="check" for="tail">
          <input
            id="tail"
            type="checkbox"
            checked={tail}
            onChange={(e) => setQuery({ tail: /** @type {HTMLInputElement} */ (e.target).checked ? null : 'off' })}
            data-testid="live-tail"
          />
          live tail
        </label>
        <label for="limit" class="muted small">
          show
        </label>
        <select id="limit" value={limit} onChange={(e) => setQuery({ limit: /** @type {HTMLSelectElement} */ (e.target).value })}>
          <option value="50">50</option>
          <option value="200">200</option>
          <option value="1000">1000</option>
        </select>
        <button type="button" class="btn small" onClick={() => list.reload()}>
          Refresh
        </button>
      </div>
      {sandbox && (
        <p class="notice btn-row" data-testid="sandbox-filter">
          <span>
            Calls served by sandbox <code>{sandbox}</code>, among the {loaded.length} most recent records.
          </span>
          <a class="btn small" href={hrefs.fn(fn.namespace, fn.name, 'invocations', { status: r.query.status })}>
            All sandboxes
          </a>
        </p>
      )}
      {list.error && <ErrorBox error={list.error} title="Could not load the invocations" />}
      {list.loading && !list.data ? (
        <Loading what="Loading invocations" />
      ) : records.length === 0 ? (
        <Empty
          title={
            sandbox
              ? `No${status === 'all' ? '' : ` ${status}`} calls of this sandbox among the records loaded.`
              : status === 'all'
                ? 'No calls recorded yet.'
                : `No ${status} calls recorded.`
          }
          testid="invocations-empty"
        >
          <p>Records are kept 24 hours. Send a test event from the Test tab.</p>
        </Empty>
      ) : (
        <div class="card">
          <div class="table-wrap">
            <table class="data" data-testid="invocations-table">
              <thead>
                <tr>
                  <th scope="col">
                    <span class="sr-only">Expand</span>
                  </th>
                  <th scope="col">Time</th>
                  <th scope="col">Status</th>
                  <th scope="col">Start</th>
                  <th scope="col" class="num">
                    Duration
                  </th>
                  <th scope="col" class="num">
                    Init
                  </th>
                  <th scope="col">Version</th>
                  <th scope="col">Trigger</th>
                  <th scope="col">Error</th>
                  <th scope="col">Id</th>
                </tr>
              </thead>
              <tbody>
                {records.map((x) => (
                  <Row key={x.id} x={x} fn={fn} open={open.has(x.id)} onToggle={() => toggle(x.id)} />
                ))}
              </tbody>
            </table>
          </div>
          <p class="muted small">
            {sandbox ? `${records.length} of the ` : ''}
            {loaded.length} most recent{status === 'all' ? '' : ` ${status}`} calls; times in your time zone.
          </p>
        </div>
      )}
    </div>
  );
}

function Row({ x, fn, open, onToggle }) {
  return (
    <>
      <tr id={`inv-${x.id}`} data-testid="invocation-row" data-status={x.status} data-id={x.id} data-sandbox={x.sandbox_id ?? ''}>
        <td>
          <button
            type="button"
            class="btn ghost small"
            aria-expanded={open ? 'true' : 'false'}
            aria-controls={`inv-detail-${x.id}`}
            onClick={onToggle}
            data-testid="expand-invocation"
          >
            <span aria-hidden="true">{open ? '▾' : '▸'}</span>
            <span class="sr-only">Details of {x.id}</span>
          </button>
        </td>
        <td>
          <Time at={x.started_at_ms} />
        </td>
        <td>
          <Badge kind={statusKind(x.status)}>{x.status}</Badge>
        </td>
        <td>{x.start ?? <span class="muted">—</span>}</td>
        <td class="num">{formatMs(x.total_ms)}</td>
        <td class="num">{formatMs(x.init_ms)}</td>
        <td>v{x.version}</td>
        <td>{x.trigger}</td>
        <td class="wrap">{x.error_type ? <code class="error-type">{x.error_type}</code> : <span class="muted">—</span>}</td>
        <td class="mono small">{x.id.slice(0, 16)}…</td>
      </tr>
      {open && (
        <tr class="expanded-row" id={`inv-detail-${x.id}`}>
          <td colSpan={10}>
            <Detail x={x} fn={fn} />
          </td>
        </tr>
      )}
    </>
  );
}

function Detail({ x, fn }) {
  return (
    <div class="stack" data-testid="invocation-detail">
      <dl class="kv">
        <dt>Id</dt>
        <dd class="mono">{x.id}</dd>
        <dt>Figures</dt>
        <dd>
          total {formatMs(x.total_ms)} = queue {formatMs(x.queue_ms)} + exec {formatMs(x.exec_ms)}
          {x.init_ms !== null ? ` (of which init ${formatMs(x.init_ms)})` : ''} · batch {x.batch_size} · response{' '}
          {formatBytes(x.response_bytes)}
        </dd>
        <dt>Sandbox</dt>
        <dd>
          {x.backend} ·{' '}
          {x.sandbox_id ? (
            <a href={hrefs.fn(fn.namespace, fn.name, 'invocations', { sandbox: x.sandbox_id })} title="The calls of this sandbox">
              {x.sandbox_id}
            </a>
          ) : (
            '—'
          )}{' '}
          · peak memory {formatBytes(x.peak_memory_bytes)} · CPU {formatMs(x.cpu_ms)}
        </dd>
      </dl>
      {x.error_type && (
        <div class="error-box" data-testid="invocation-error">
          <p>
            <code class="error-type">{x.error_type}</code>
          </p>
          {x.error_message && <p class="error-message">{x.error_message}</p>}
          {x.error_stack && (
            <pre class="stack" data-testid="invocation-stack">
              {x.error_stack}
            </pre>
          )}
        </div>
      )}
      <Logs rec={x} />
    </div>
  );
}
