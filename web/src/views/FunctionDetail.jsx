// One function: what it is, and its tabs (code, test, monitor,
// invocations, versions, sandboxes), each at its own URL.

import { useState } from 'preact/hooks';
import * as api from '../api.js';
import { navigate } from '../state/router.js';
import { allowed } from '../state/session.js';
import { flash } from '../state/flash.js';
import { hrefs } from '../lib/routes.js';
import { fnLabel, formatMs, formatMiB, formatSeconds } from '../lib/format.js';
import { Loading, ErrorBox, Badge, Time, useLoad, useTitle } from '../components/ui.jsx';
import { Tabs } from '../components/Tabs.jsx';
import { DeleteDialog } from './Functions.jsx';
import { CodeTab } from './fn/CodeTab.jsx';
import { TestTab } from './fn/TestTab.jsx';
import { MonitorTab } from './fn/MonitorTab.jsx';
import { InvocationsTab } from './fn/InvocationsTab.jsx';
import { VersionsTab } from './fn/VersionsTab.jsx';
import { SandboxesTab } from './fn/SandboxesTab.jsx';

const TABS = [
  { id: 'code', label: 'Code', needs: 'read_functions', view: CodeTab },
  { id: 'test', label: 'Test', needs: 'invoke', view: TestTab },
  { id: 'monitor', label: 'Monitor', needs: 'read_metrics', view: MonitorTab },
  { id: 'invocations', label: 'Invocations', needs: 'read_logs', view: InvocationsTab },
  { id: 'versions', label: 'Versions', needs: 'read_functions', view: VersionsTab },
  { id: 'sandboxes', label: 'Sandboxes', needs: 'read_system', view: SandboxesTab },
];

export function FunctionDetail({ route: r }) {
  const { namespace, name, tab } = r.params;
  const label = fnLabel(namespace, name);
  useTitle(`${label} · ${tab}`);
  const fn = useLoad(() => api.get(api.fnPath(namespace, name)), [namespace, name]);
  const [deleting, setDeleting] = useState(false);
  const f = fn.data;

  if (fn.loading && !f) return <Loading what={`Loading ${label}`} />;
  if (!f) {
    return (
      <div class="page">
        <ErrorBox error={fn.error} title={`Could not load ${label}`} onRetry={() => fn.reload()} />
        <p>
          <a href={hrefs.functions()}>All functions</a>
        </p>
      </div>
    );
  }
  const tabs = TABS.filter((t) => allowed(t.needs, namespace));
  const current = tabs.find((t) => t.id === tab) ?? tabs[0];
  const View = current.view;
  const canWrite = allowed('write_functions', namespace);
  const note = flash.value?.path === r.path ? flash.value : null;

  return (
    <div class="page" data-testid="function-detail">
      <div class="fn-head">
        <h1>{name}</h1>
        <Badge kind="neutral">{namespace}</Badge>
        <Badge kind="accent" title="current version">
          <span data-testid="fn-version">v{f.version}</span>
        </Badge>
        <span class="btn-row" style={{ marginLeft: 'auto' }}>
          {canWrite && (
            <a class="btn" href={hrefs.edit(namespace, name)} data-testid="edit-function">
              Edit configuration
            </a>
          )}
          {canWrite && (
            <button type="button" class="btn danger" onClick={() => setDeleting(true)} data-testid="delete-function">
              Delete
            </button>
          )}
        </span>
      </div>
      <div class="fn-meta">
        <span>
          runtime <strong>{f.runtime}</strong>
        </span>
        <span>
          handler <strong class="mono">{f.handler}</strong>
        </span>
        <span>
          backend <strong>{f.backend}</strong>
        </span>
        <span>
          memory <strong>{formatMiB(f.memory_mb)}</strong> · cpus <strong>{f.cpus}</strong> · timeout{' '}
          <strong>{formatMs(f.timeout_ms)}</strong>
        </span>
        <span>
          route{' '}
          {f.route ? (
            <>
              <a href={`/fn${f.route}`} target="_blank" rel="noopener">
                <strong class="mono">/fn{f.route}</strong>
              </a>{' '}
              <Badge kind={f.http_auth === 'none' ? 'warn' : 'neutral'}>{f.http_auth === 'none' ? 'public' : 'needs a key'}</Badge>
            </>
          ) : (
            <strong>none</strong>
          )}
        </span>
        <span>
          pool <strong>{f.min_warm}</strong>–<strong>{f.max_concurrency}</strong>, keep-alive{' '}
          <strong>{formatSeconds(f.keep_alive_s)}</strong>
        </span>
        <span>
          updated <Time at={f.updated_at} relative />
        </span>
      </div>
      {note && (
        <div class="flash" role="status" data-testid="save-result">
          <div class="btn-row">
            <strong>{note.title}</strong>
            <button
              type="button"
              class="btn ghost small"
              onClick={() => (flash.value = null)}
              aria-label="Dismiss"
              style={{ marginLeft: 'auto' }}
            >
              ×
            </button>
          </div>
          {note.lines.length > 0 && (
            <ul>
              {note.lines.map((l) => (
                <li key={l} class="mono small">
                  {l}
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
      <Tabs
        label={`${label} tabs`}
        active={current.id}
        tabs={tabs.map((t) => ({ id: t.id, label: t.label, href: hrefs.fn(namespace, name, t.id) }))}
      />
      <section role="tabpanel" id="tabpanel" aria-labelledby={`tab-${current.id}`} class="tabpanel">
        <View fn={f} label={label} route={r} reload={() => fn.reload(true)} key={current.id} />
      </section>
      <DeleteDialog
        f={deleting ? f : null}
        onClose={() => setDeleting(false)}
        onDeleted={() => {
          flash.value = null;
          navigate(hrefs.functions());
        }}
      />
    </div>
  );
}
