// API keys (admin): create one (its secret is shown once, with a copy
// button), list, revoke; and the namespaces keys can be limited to.

import { useState } from 'preact/hooks';
import * as api from '../api.js';
import { loadNamespaces, session } from '../state/session.js';
import { toast } from '../state/toasts.js';
import { checkKeyName, checkName } from '../lib/validate.js';
import { Loading, ErrorBox, Empty, Badge, Time, Field, ConfirmDialog, CopyButton, useLoad, useTitle } from '../components/ui.jsx';

const ROLES = [
  { value: 'admin', help: 'everything, keys and audit included' },
  { value: 'developer', help: 'functions read/write, invoke, logs, metrics' },
  { value: 'viewer', help: 'read functions (env values masked), logs, metrics' },
  { value: 'invoker', help: 'invoke only' },
];
const EXPIRY = [
  { value: '', label: 'never' },
  { value: '3600', label: '1 hour' },
  { value: '86400', label: '1 day' },
  { value: '2592000', label: '30 days' },
  { value: '7776000', label: '90 days' },
  { value: '31536000', label: '1 year' },
];

export function Keys() {
  useTitle('Keys');
  const keys = useLoad(() => api.get('/keys'), []);
  const ns = useLoad(() => api.get('/namespaces'), []);
  const [created, setCreated] = useState(/** @type {any} */ (null));
  const [revoking, setRevoking] = useState(/** @type {any} */ (null));
  const list = keys.data?.keys ?? [];
  const nsList = (ns.data?.namespaces ?? []).map((n) => n.name);

  return (
    <div class="page" data-testid="keys">
      <div class="page-head">
        <h1>API keys</h1>
      </div>
      {created && (
        <section class="card stack flash" role="status" data-testid="new-key">
          <h2>Key “{created.name}” created</h2>
          <p>
            <strong>Copy it now: it is shown only this once.</strong> Use it as <code>Authorization: Bearer …</code> or to log in here.
          </p>
          <div class="btn-row">
            <code class="secret" data-testid="new-key-secret">
              {created.key}
            </code>
            <CopyButton text={created.key} label="Copy key" testid="copy-key" />
          </div>
          <div>
            <button type="button" class="btn small" onClick={() => setCreated(null)}>
              I have stored it
            </button>
          </div>
        </section>
      )}
      <div class="grid-2">
        <CreateKey
          namespaces={nsList}
          onCreated={(k) => {
            setCreated(k);
            keys.reload(true);
          }}
        />
        <Namespaces
          ns={ns}
          onChange={() => {
            ns.reload(true);
            loadNamespaces();
          }}
        />
      </div>
      <section class="card" aria-labelledby="keys-title">
        <h2 id="keys-title">Keys</h2>
        {keys.error && <ErrorBox error={keys.error} title="Could not list the keys" />}
        {keys.loading && !keys.data ? (
          <Loading what="Loading keys" />
        ) : list.length === 0 ? (
          <Empty title="No keys." />
        ) : (
          <div class="table-wrap">
            <table class="data" data-testid="keys-table">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Role</th>
                  <th scope="col">Namespaces</th>
                  <th scope="col">Prefix</th>
                  <th scope="col">Created</th>
                  <th scope="col">Last used</th>
                  <th scope="col">Expires</th>
                  <th scope="col">State</th>
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {list.map((k) => {
                  const revoked = k.revoked_at_ms !== null;
                  const expired = k.expires_at_ms !== null && k.expires_at_ms < Date.now();
                  return (
                    <tr key={k.id} data-testid={`key-row-${k.name}`}>
                      <td>
                        <strong>{k.name}</strong>
                        <div class="muted small mono">{k.id}</div>
                      </td>
                      <td>
                        <Badge kind="neutral">{k.role}</Badge>
                      </td>
                      <td>{k.namespaces === '*' ? 'all' : k.namespaces.join(', ')}</td>
                      <td class="mono">{k.prefix}…</td>
                      <td>
                        <Time at={k.created_at_ms} />
                      </td>
                      <td>{k.last_used_at_ms ? <Time at={k.last_used_at_ms} relative /> : <span class="muted">never</span>}</td>
                      <td>{k.expires_at_ms ? <Time at={k.expires_at_ms} /> : <span class="muted">never</span>}</td>
                      <td>
                        {revoked ? (
                          <Badge kind="err">
                            revoked <Time at={k.revoked_at_ms} relative />
                          </Badge>
                        ) : expired ? (
                          <Badge kind="warn">expired</Badge>
                        ) : (
                          <Badge kind="ok">active</Badge>
                        )}
                        {k.id === session.value?.key_id && <span class="muted small"> (this session)</span>}
                      </td>
                      <td>
                        {!revoked && (
                          <button type="button" class="btn small danger" onClick={() => setRevoking(k)} data-testid={`revoke-${k.name}`}>
                            Revoke
                          </button>
                        )}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <ConfirmDialog
        open={Boolean(revoking)}
        title={revoking ? `Revoke ${revoking.name}?` : ''}
        confirmLabel="Revoke"
        danger
        onClose={() => setRevoking(null)}
        onConfirm={async () => {
          await api.del(`/keys/${encodeURIComponent(revoking.id)}`);
          toast(`Revoked ${revoking.name}`);
          keys.reload(true);
        }}
      >
        {revoking && (
          <p>
            Requests with <strong>{revoking.name}</strong> ({revoking.prefix}…, {revoking.role}) are refused from now on, and its console
            sessions end.
            {revoking.id === session.value?.key_id && ' This is the key of your own session: you will be logged out.'}
          </p>
        )}
      </ConfirmDialog>
    </div>
  );
}

function CreateKey({ namespaces, onCreated }) {
  const [form, setForm] = useState({ name: '', role: 'developer', all: true, namespaces: /** @type {string[]} */ ([]), expires: '' });
  const [touched, setTouched] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(/** @type {any} */ (null));
  const nameError = checkKeyName(form.name);
  const nsError = !form.all && form.role !== 'admin' && form.namespaces.length === 0 ? 'choose at least one namespace' : null;
  const submit = async (e) => {
    e.preventDefault();
    setTouched(true);
    setError(null);
    if (nameError || nsError) return;
    setBusy(true);
    try {
      const body = { name: form.name.trim(), role: form.role, namespaces: form.all || form.role === 'admin' ? '*' : form.namespaces };
      if (form.expires) body.expires_in_s = Number(form.expires);
      const k = await api.post('/keys', body);
      onCreated(k);
      setForm({ ...form, name: '' });
      setTouched(false);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const toggleNs = (n) =>
    setForm({ ...form, namespaces: form.namespaces.includes(n) ? form.namespaces.filter((x) => x !== n) : [...form.namespaces, n] });
  return (
    <form class="card stack" onSubmit={submit} aria-labelledby="create-key-title" data-testid="create-key-form" noValidate>
      <h2 id="create-key-title">Create a key</h2>
      <div class="fields">
        <Field id="key-name" label="Name" hint="what or who it is for, e.g. ci, alice" error={touched ? nameError : null}>
          <input
            id="key-name"
            value={form.name}
            onInput={(e) => setForm({ ...form, name: /** @type {HTMLInputElement} */ (e.target).value })}
            aria-invalid={touched && nameError ? 'true' : undefined}
            data-testid="key-name"
          />
        </Field>
        <Field id="key-role" label="Role" hint={ROLES.find((r) => r.value === form.role)?.help}>
          <select
            id="key-role"
            value={form.role}
            onChange={(e) => setForm({ ...form, role: /** @type {HTMLSelectElement} */ (e.target).value })}
            data-testid="key-role"
          >
            {ROLES.map((r) => (
              <option key={r.value} value={r.value}>
                {r.value}
              </option>
            ))}
          </select>
        </Field>
        <Field id="key-expires" label="Expires">
          <select
            id="key-expires"
            value={form.expires}
            onChange={(e) => setForm({ ...form, expires: /** @type {HTMLSelectElement} */ (e.target).value })}
          >
            {EXPIRY.map((x) => (
              <option key={x.value} value={x.value}>
                {x.label}
              </option>
            ))}
          </select>
        </Field>
      </div>
      {form.role !== 'admin' && (
        <fieldset class="fieldset">
          <legend>Namespaces</legend>
          <label class="check" for="key-all">
            <input
              id="key-all"
              type="checkbox"
              checked={form.all}
              onChange={(e) => setForm({ ...form, all: /** @type {HTMLInputElement} */ (e.target).checked })}
            />
            every namespace (now and future)
          </label>
          {!form.all &&
            namespaces.map((n) => (
              <label class="check" key={n} for={`key-ns-${n}`}>
                <input id={`key-ns-${n}`} type="checkbox" checked={form.namespaces.includes(n)} onChange={() => toggleNs(n)} />
                {n}
              </label>
            ))}
          {touched && nsError && <p class="field-error">{nsError}</p>}
        </fieldset>
      )}
      <ErrorBox error={error} title="The server refused" />
      <div>
        <button type="submit" class="btn primary" disabled={busy} data-testid="create-key">
          {busy ? 'Creating…' : 'Create key'}
        </button>
      </div>
    </form>
  );
}

function Namespaces({ ns, onChange }) {
  const [name, setName] = useState('');
  const [error, setError] = useState(/** @type {any} */ (null));
  const [touched, setTouched] = useState(false);
  const nameError = checkName(name, 'namespace');
  const create = async (e) => {
    e.preventDefault();
    setTouched(true);
    setError(null);
    if (nameError) return;
    try {
      await api.post('/namespaces', { name });
      toast(`Created namespace ${name}`);
      setName('');
      setTouched(false);
      onChange();
    } catch (err) {
      setError(err);
    }
  };
  const remove = async (n) => {
    if (!confirm(`Delete the namespace ${n}? Only an empty namespace can be deleted.`)) return;
    setError(null);
    try {
      await api.del(`/namespaces/${encodeURIComponent(n)}`);
      toast(`Deleted namespace ${n}`);
      onChange();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <section class="card stack" aria-labelledby="ns-title" data-testid="namespaces">
      <h2 id="ns-title">Namespaces</h2>
      {ns.loading && !ns.data ? (
        <Loading what="Loading" />
      ) : (
        <table class="data compact">
          <tbody>
            {(ns.data?.namespaces ?? []).map((n) => (
              <tr key={n.name}>
                <td>
                  <strong>{n.name}</strong>
                </td>
                <td>
                  created <Time at={n.created_at_ms} />
                </td>
                <td>
                  {n.name !== 'default' && (
                    <button type="button" class="btn small danger" onClick={() => remove(n.name)}>
                      Delete
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form class="btn-row" onSubmit={create} noValidate>
        <label for="ns-name" class="sr-only">
          New namespace
        </label>
        <input
          id="ns-name"
          placeholder="new namespace"
          value={name}
          onInput={(e) => setName(/** @type {HTMLInputElement} */ (e.target).value)}
          aria-invalid={touched && nameError ? 'true' : undefined}
        />
        <button type="submit" class="btn small">
          Create namespace
        </button>
      </form>
      {touched && nameError && <p class="field-error">{nameError}</p>}
      <ErrorBox error={error} title="The server refused" />
    </section>
  );
}
