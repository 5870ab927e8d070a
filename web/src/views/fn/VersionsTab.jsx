// The version history (the last 10): when, what changed from the version
// before (config and code hash, computed here), and a comparison of any two.

import { useState } from 'preact/hooks';
import * as api from '../../api.js';
import { diffVersions, describeChange } from '../../lib/diff.js';
import { shortHash } from '../../lib/format.js';
import { Loading, ErrorBox, Empty, Time, Badge, useLoad } from '../../components/ui.jsx';

export function VersionsTab({ fn }) {
  const versions = useLoad(() => api.get(api.fnPath(fn.namespace, fn.name, 'versions')), [fn.version]);
  const list = versions.data?.versions ?? [];
  const [from, setFrom] = useState(/** @type {number | null} */ (null));
  const [to, setTo] = useState(/** @type {number | null} */ (null));
  if (versions.loading && !versions.data) return <Loading what="Loading versions" />;
  if (versions.error) return <ErrorBox error={versions.error} title="Could not load the versions" />;
  if (!list.length) return <Empty title="No versions kept." />;
  const a = list.find((v) => v.version === (from ?? list[Math.min(1, list.length - 1)].version));
  const b = list.find((v) => v.version === (to ?? list[0].version));
  const compared = a && b ? diffVersions(a, b) : [];
  return (
    <div class="stack" data-testid="versions-tab">
      <div class="card">
        <div class="table-wrap">
          <table class="data" data-testid="versions-table">
            <thead>
              <tr>
                <th scope="col">Version</th>
                <th scope="col">Created</th>
                <th scope="col">Code</th>
                <th scope="col">What changed from the version before</th>
              </tr>
            </thead>
            <tbody>
              {list.map((v, i) => {
                const older = list[i + 1];
                const changes = diffVersions(older, v);
                return (
                  <tr key={v.version} data-testid="version-row">
                    <td>
                      <strong>v{v.version}</strong> {v.version === fn.version && <Badge kind="ok">current</Badge>}
                    </td>
                    <td>
                      <Time at={v.created_at} />
                    </td>
                    <td class="mono small" title={v.code_sha256}>
                      {shortHash(v.code_sha256)}
                    </td>
                    <td class="wrap">
                      {!older ? (
                        <span class="muted">{v.version === 1 ? 'created' : 'the oldest version kept'}</span>
                      ) : changes.length === 0 ? (
                        <span class="muted">nothing</span>
                      ) : (
                        <ul class="changes">
                          {changes.map((c) => (
                            <li key={c.field}>{describeChange(c)}</li>
                          ))}
                        </ul>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      </div>
      {list.length > 1 && (
        <section class="card stack" aria-labelledby="compare-title">
          <h2 id="compare-title">Compare two versions</h2>
          <div class="btn-row">
            <label for="cmp-from">from</label>
            <select id="cmp-from" value={a?.version} onChange={(e) => setFrom(Number(/** @type {HTMLSelectElement} */ (e.target).value))}>
              {list.map((v) => (
                <option value={v.version} key={v.version}>
                  v{v.version}
                </option>
              ))}
            </select>
            <label for="cmp-to">to</label>
            <select id="cmp-to" value={b?.version} onChange={(e) => setTo(Number(/** @type {HTMLSelectElement} */ (e.target).value))}>
              {list.map((v) => (
                <option value={v.version} key={v.version}>
                  v{v.version}
                </option>
              ))}
            </select>
          </div>
          {compared.length === 0 ? (
            <p class="muted">No difference.</p>
          ) : (
            <div class="table-wrap">
              <table class="data compact" data-testid="version-diff">
                <thead>
                  <tr>
                    <th scope="col">Field</th>
                    <th scope="col">v{a.version}</th>
                    <th scope="col">v{b.version}</th>
                  </tr>
                </thead>
                <tbody>
                  {compared.map((c) => (
                    <tr key={c.field}>
                      <th scope="row" class="mono">
                        {c.field}
                      </th>
                      <td class="mono">{cell(c.field, c.from)}</td>
                      <td class="mono">{cell(c.field, c.to)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <p class="muted small">Environment values are not shown: only whether they changed.</p>
        </section>
      )}
    </div>
  );
}

function cell(field, v) {
  if (v === undefined) return <span class="muted">(unset)</span>;
  if (field.startsWith('env.')) return '••••••';
  if (field === 'code') return shortHash(v);
  if (v === null) return <span class="muted">none</span>;
  return typeof v === 'string' ? v : JSON.stringify(v);
}
