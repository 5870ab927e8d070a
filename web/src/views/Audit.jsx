// The audit log (admin): who did what, to what, and whether it worked.

import * as api from '../api.js';
import { setQuery } from '../state/router.js';
import { matches } from '../lib/table.js';
import { Loading, ErrorBox, Empty, Badge, Time, useLoad, useTitle } from '../components/ui.jsx';

export function Audit({ route: r }) {
  useTitle('Audit');
  const limit = [100, 500, 1000].includes(Number(r.query.limit)) ? Number(r.query.limit) : 100;
  const q = r.query.q ?? '';
  const audit = useLoad(() => api.get(`/audit?limit=${limit}`), [limit]);
  const entries = (audit.data?.entries ?? []).filter((e) => matches(q, [e.action, e.target, e.key_name, e.outcome]));
  return (
    <div class="page" data-testid="audit">
      <div class="page-head">
        <h1>Audit log</h1>
        <input
          type="search"
          aria-label="Filter the audit log"
          placeholder="Filter: action, target, key, outcome"
          value={q}
          onInput={(e) => setQuery({ q: /** @type {HTMLInputElement} */ (e.target).value })}
        />
        <label for="audit-limit" class="muted small">
          last
        </label>
        <select id="audit-limit" value={limit} onChange={(e) => setQuery({ limit: /** @type {HTMLSelectElement} */ (e.target).value })}>
          <option value="100">100</option>
          <option value="500">500</option>
          <option value="1000">1000</option>
        </select>
        <button type="button" class="btn small" onClick={() => audit.reload()}>
          Refresh
        </button>
      </div>
      {audit.error && <ErrorBox error={audit.error} title="Could not load the audit log" />}
      {audit.loading && !audit.data ? (
        <Loading what="Loading the audit log" />
      ) : entries.length === 0 ? (
        <Empty title={q ? 'Nothing matches.' : 'Nothing audited yet.'} />
      ) : (
        <div class="card">
          <div class="table-wrap">
            <table class="data" data-testid="audit-table">
              <thead>
                <tr>
                  <th scope="col">Time</th>
                  <th scope="col">Key</th>
                  <th scope="col">Action</th>
                  <th scope="col">Target</th>
                  <th scope="col">Outcome</th>
                </tr>
              </thead>
              <tbody>
                {entries.map((e, i) => (
                  <tr key={`${e.at_ms}-${i}`}>
                    <td>
                      <Time at={e.at_ms} />
                    </td>
                    <td>{e.key_name ?? <span class="muted">unknown key</span>}</td>
                    <td class="mono">{e.action}</td>
                    <td class="mono">{e.target || <span class="muted">—</span>}</td>
                    <td>
                      <Badge kind={e.outcome === 'ok' ? 'ok' : 'err'}>{e.outcome}</Badge>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </div>
      )}
    </div>
  );
}
