// The functions of every namespace the key sees: runtime, backend, route,
// version, calls/errors/p99 over the window and a sparkline of the calls,
// the last call; search and sort (kept in the URL); create; delete with
// confirmation.

import { useMemo, useState } from 'preact/hooks';
import * as api from '../api.js';
import { setQuery } from '../state/router.js';
import { allowed } from '../state/session.js';
import { latest } from '../state/live.js';
import { toast } from '../state/toasts.js';
import { hrefs, WINDOWS } from '../lib/routes.js';
import { formatCount, formatMs, formatPercent, fnLabel } from '../lib/format.js';
import { sortRows, matches } from '../lib/table.js';
import { lastCallAt } from '../lib/sandboxes.js';
import { Sparkline } from '../components/Sparkline.jsx';
import {
  Loading,
  Empty,
  ErrorBox,
  Badge,
  WindowPicker,
  SortHeader,
  ConfirmDialog,
  useLoad,
  useInterval,
  useTitle,
  Time,
} from '../components/ui.jsx';

export function Functions({ route: r }) {
  useTitle('Functions');
  const window = WINDOWS.includes(r.query.window) ? r.query.window : '1h';
  const q = r.query.q ?? '';
  const sort = r.query.sort ?? 'name';
  const dir = r.query.dir === 'desc' ? 'desc' : 'asc';
  const list = useLoad(() => api.get('/functions?all_namespaces=true'), []);
  const summary = useLoad(() => api.get(`/metrics/summary?window=${window}`).catch(() => null), [window]);
  useInterval(() => summary.reload(true), 15_000, [window]);
  const [deleting, setDeleting] = useState(/** @type {any} */ (null));

  const functions = list.data?.functions ?? [];
  const sparks = useSparklines(functions, window);
  const liveFns = latest.value?.functions ?? {};
  const rows = functions.map((f) => {
    const label = fnLabel(f.namespace, f.name);
    const s = summary.data?.functions?.[label];
    return {
      f,
      label,
      name: f.name,
      namespace: f.namespace,
      runtime: f.runtime,
      backend: f.backend,
      route: f.route ?? '',
      version: f.version,
      requests: s?.requests ?? null,
      errors: s?.errors ?? null,
      p99_ms: s?.p99_ms ?? null,
      last_call: lastCallAt(s?.last_call_at_ms, liveFns[label]?.last_call_at_ms),
      updated: Date.parse(f.updated_at),
    };
  });
  const shown = sortRows(
    rows.filter((x) => matches(q, [x.name, x.namespace, x.runtime, x.backend, x.route])),
    sort,
    dir,
    (x) => x.label,
  );
  const onSort = (col, d) => setQuery({ sort: col, dir: d });
  const canWrite = allowed('write_functions');

  return (
    <div class="page" data-testid="functions">
      <div class="page-head">
        <h1>Functions</h1>
        <input
          type="search"
          placeholder="Search name, namespace, runtime, route"
          aria-label="Search functions"
          value={q}
          onInput={(e) => setQuery({ q: /** @type {HTMLInputElement} */ (e.target).value })}
          data-testid="function-search"
        />
        <WindowPicker value={window} onChange={(v) => setQuery({ window: v === '1h' ? null : v })} />
        {canWrite && (
          <a class="btn primary" href={hrefs.create()} data-testid="create-function">
            Create function
          </a>
        )}
      </div>
      {list.error && <ErrorBox error={list.error} title="Could not list the functions" onRetry={() => list.reload()} />}
      {list.loading && !list.data ? (
        <Loading what="Loading functions" />
      ) : functions.length === 0 ? (
        <Empty title="No functions yet" testid="functions-empty">
          {canWrite ? (
            <p>
              <a href={hrefs.create()}>Create one</a> from a starter template, a zip or a folder.
            </p>
          ) : (
            <p>Your role can read functions but not create them.</p>
          )}
        </Empty>
      ) : (
        <div class="card">
          <div class="table-wrap">
            <table class="data" data-testid="functions-table">
              <thead>
                <tr>
                  <SortHeader label="Name" col="name" sort={sort} dir={dir} onSort={onSort} />
                  <SortHeader label="Namespace" col="namespace" sort={sort} dir={dir} onSort={onSort} />
                  <SortHeader label="Runtime" col="runtime" sort={sort} dir={dir} onSort={onSort} />
                  <SortHeader label="Backend" col="backend" sort={sort} dir={dir} onSort={onSort} />
                  <SortHeader label="Route" col="route" sort={sort} dir={dir} onSort={onSort} />
                  <SortHeader label="Version" col="version" sort={sort} dir={dir} onSort={onSort} numeric />
                  <SortHeader label={`Calls (${window})`} col="requests" sort={sort} dir={dir} onSort={onSort} numeric />
                  <SortHeader label="Errors" col="errors" sort={sort} dir={dir} onSort={onSort} numeric />
                  <SortHeader label="p99" col="p99_ms" sort={sort} dir={dir} onSort={onSort} numeric />
                  <th scope="col">Calls over {window}</th>
                  <SortHeader label="Last call" col="last_call" sort={sort} dir={dir} onSort={onSort} numeric />
                  <SortHeader label="Updated" col="updated" sort={sort} dir={dir} onSort={onSort} numeric />
                  {canWrite && (
                    <th scope="col">
                      <span class="sr-only">Actions</span>
                    </th>
                  )}
                </tr>
              </thead>
              <tbody>
                {shown.map((x) => (
                  <tr key={x.label} data-testid={`function-row-${x.label}`}>
                    <td>
                      <a href={hrefs.fn(x.namespace, x.name)} data-testid="function-link">
                        <strong>{x.name}</strong>
                      </a>
                    </td>
                    <td>{x.namespace}</td>
                    <td>{x.runtime}</td>
                    <td>
                      <Badge kind={x.backend === 'microvm' ? 'accent' : 'neutral'}>{x.backend}</Badge>
                    </td>
                    <td>
                      {x.route ? (
                        <span>
                          <code>{x.route}</code>{' '}
                          <Badge kind={x.f.http_auth === 'none' ? 'warn' : 'neutral'}>{x.f.http_auth === 'none' ? 'public' : 'key'}</Badge>
                        </span>
                      ) : (
                        <span class="muted">—</span>
                      )}
                    </td>
                    <td class="num">v{x.version}</td>
                    <td class="num">{formatCount(x.requests)}</td>
                    <td class={`num${x.errors ? ' text-err' : ''}`}>
                      {formatCount(x.errors)}
                      {x.errors ? <span class="muted small"> ({formatPercent(x.errors / x.requests)})</span> : null}
                    </td>
                    <td class="num">{formatMs(x.p99_ms)}</td>
                    <td>
                      <Sparkline values={sparks[x.label]} label={`Calls of ${x.label} over the last ${window}`} />
                    </td>
                    <td class="num" data-testid={`last-call-${x.label}`}>
                      <Time at={x.last_call} relative />
                    </td>
                    <td class="num">
                      <Time at={x.updated} relative />
                    </td>
                    {canWrite && (
                      <td>
                        <button
                          type="button"
                          class="btn small danger"
                          onClick={() => setDeleting(x.f)}
                          disabled={!allowed('write_functions', x.namespace)}
                          data-testid={`delete-${x.label}`}
                        >
                          Delete
                        </button>
                      </td>
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {shown.length === 0 && <Empty title={`No function matches “${q}”.`} />}
          <p class="muted small">
            {functions.length} function{functions.length === 1 ? '' : 's'}
            {q ? `, ${shown.length} shown` : ''}. Calls, errors and p99 over the last {window}.
          </p>
        </div>
      )}
      <DeleteDialog f={deleting} onClose={() => setDeleting(null)} onDeleted={() => list.reload(true)} />
    </div>
  );
}

/** The delete confirmation of a function. */
export function DeleteDialog({ f, onClose, onDeleted }) {
  return (
    <ConfirmDialog
      open={Boolean(f)}
      title={f ? `Delete ${f.name}?` : ''}
      confirmLabel="Delete"
      danger
      onClose={onClose}
      onConfirm={async () => {
        await api.del(api.fnPath(f.namespace, f.name));
        toast(`Deleted ${fnLabel(f.namespace, f.name)}`);
        onDeleted();
      }}
    >
      {f && (
        <p>
          The function <strong>{fnLabel(f.namespace, f.name)}</strong> (version {f.version}), its code, versions and saved test events are
          deleted, and its warm sandboxes stop. Its invocation records stay until they expire.
        </p>
      )}
    </ConfirmDialog>
  );
}

/**
 * One series per function (requests over the window), a few at a time,
 * refreshed every minute: the sparklines of the table.
 */
function useSparklines(functions, window) {
  const key = functions.map((f) => `${f.namespace}/${f.name}`).join(',');
  const step = window === '5m' ? '10s' : window === '1h' ? '2m' : window === '24h' ? '30m' : '4h';
  const data = useLoad(async () => {
    /** @type {Record<string, (number | null)[]>} */
    const out = {};
    const queue = [...functions];
    const worker = async () => {
      while (queue.length) {
        const f = queue.shift();
        try {
          const s = await api.get(api.fnPath(f.namespace, f.name, `metrics?window=${window}&step=${step}`));
          out[fnLabel(f.namespace, f.name)] = s.points.map((p) => p.requests);
        } catch {
          // a function deleted meanwhile, or no metrics permission
        }
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    return out;
  }, [key, window]);
  useInterval(() => data.reload(true), 60_000, [key, window]);
  return useMemo(() => data.data ?? {}, [data.data]);
}
