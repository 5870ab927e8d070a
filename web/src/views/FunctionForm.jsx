// Create or edit a function: every field of the function model, checked
// in the browser with the server's limits, the server's typed error shown
// when it still refuses; code from the editor, a zip or a folder. Saving
// creates the function or updates it (a new version only when something
// changed) and says what changed.

import { useMemo, useRef, useState } from 'preact/hooks';
import * as api from '../api.js';
import { navigate } from '../state/router.js';
import { namespaces, allowed, health } from '../state/session.js';
import { flash } from '../state/flash.js';
import { hrefs } from '../lib/routes.js';
import { fnLabel } from '../lib/format.js';
import { validateFunctionForm, formFromFunction, configPatch, LIMITS, RUNTIMES } from '../lib/validate.js';
import { describeSave, describeChange } from '../lib/diff.js';
import { TEMPLATES } from '../lib/templates.js';
import { Field, describedBy, Loading, ErrorBox, useLoad, useTitle } from '../components/ui.jsx';
import { EnvEditor } from '../components/EnvEditor.jsx';
import { CodeSource, codePaths, codeBody } from '../components/CodeSource.jsx';

/** Which form field a server message is about (it names fields in backticks or words). */
function fieldOfMessage(msg) {
  const m = /`([a-z_]+)`/.exec(msg);
  if (m && (m[1] in LIMITS || ['runtime', 'handler', 'route', 'http_auth', 'backend', 'env', 'name', 'code'].includes(m[1]))) return m[1];
  if (/function name/.test(msg)) return 'name';
  if (/handler/.test(msg)) return /needs .* in the code/.test(msg) ? 'code' : 'handler';
  if (/route/.test(msg)) return 'route';
  if (/environment variable/.test(msg)) return 'env';
  if (/code archive|`code`/.test(msg)) return 'code';
  if (/namespace/.test(msg)) return 'namespace';
  return null;
}

export function FunctionForm({ route: r }) {
  const isNew = r.name === 'create';
  const { namespace, name } = r.params;
  useTitle(isNew ? 'Create function' : `Edit ${name}`);
  const existing = useLoad(() => (isNew ? Promise.resolve(null) : api.get(api.fnPath(namespace, name))), [isNew, namespace, name]);
  if (!isNew && existing.loading && !existing.data) return <Loading what={`Loading ${name}`} />;
  if (!isNew && existing.error) return <ErrorBox error={existing.error} title={`Could not load ${name}`} />;
  return <Form isNew={isNew} current={existing.data} initialNs={r.query.namespace} key={existing.data?.version ?? 'new'} />;
}

function Form({ isNew, current, initialNs }) {
  const writable = (namespaces.value ?? ['default']).filter((ns) => allowed('write_functions', ns));
  const [form, setForm] = useState(() => {
    const f = formFromFunction(current);
    if (isNew)
      f.namespace = writable.includes(initialNs) ? initialNs : writable.includes('default') ? 'default' : (writable[0] ?? 'default');
    return f;
  });
  const [code, setCode] = useState(
    /** @type {any} */ (isNew ? { kind: 'files', files: { ...TEMPLATES.python3.files } } : { kind: 'keep' }),
  );
  const [touched, setTouched] = useState(false);
  const [busy, setBusy] = useState(false);
  const [serverError, setServerError] = useState(/** @type {any} */ (null));
  const errorRef = useRef(/** @type {HTMLDivElement | null} */ (null));

  const paths = codePaths(code);
  const check = useMemo(() => validateFunctionForm(form, { isNew, codePaths: paths, needsCode: isNew }), [form, code]);
  const serverField = serverError ? fieldOfMessage(serverError.message) : null;
  const errorOf = (f) => (touched ? check.errors[f] : null) ?? (serverField === f ? serverError.message : null);

  const set = (field) => (e) => {
    const t = /** @type {HTMLInputElement} */ (e.target);
    setForm({ ...form, [field]: t.type === 'checkbox' ? t.checked : t.value });
  };
  const setRuntime = (e) => {
    const runtime = /** @type {HTMLSelectElement} */ (e.target).value;
    const prev = TEMPLATES[form.runtime];
    const next = TEMPLATES[runtime];
    const f = { ...form, runtime };
    if (form.handler === prev.handler) f.handler = next.handler;
    setForm(f);
    // Untouched starter code follows the runtime.
    if (code.kind === 'files' && JSON.stringify(code.files) === JSON.stringify(prev.files)) {
      setCode({ kind: 'files', files: { ...next.files } });
    }
  };

  const save = async (e) => {
    e.preventDefault();
    setTouched(true);
    setServerError(null);
    if (Object.keys(check.errors).length) {
      setTimeout(() => {
        const el = document.querySelector('[aria-invalid="true"], .field-error');
        /** @type {HTMLElement | null} */ (el)?.focus?.();
        el?.scrollIntoView({ block: 'center' });
      }, 0);
      return;
    }
    setBusy(true);
    try {
      let after;
      let summary;
      if (isNew) {
        const body = { name: form.name, ...check.config, code: codeBody(code) };
        after = await api.post(api.fnPath(form.namespace), body);
        summary = describeSave(null, after);
      } else {
        const patch = configPatch(current, check.config);
        const c = codeBody(code);
        if (!Object.keys(patch).length && !c) {
          flash.value = {
            path: hrefs.fn(current.namespace, current.name),
            title: `Nothing changed: still version ${current.version}.`,
            lines: [],
          };
          navigate(flash.value.path);
          return;
        }
        after = await api.put(api.fnPath(current.namespace, current.name), { ...patch, ...(c ? { code: c } : {}) });
        summary = describeSave(current, after);
      }
      const path = hrefs.fn(after.namespace, after.name, isNew ? 'test' : 'code');
      flash.value = {
        path,
        title: summary.created
          ? `Created ${fnLabel(after.namespace, after.name)}, version ${after.version}.`
          : summary.newVersion
            ? `Saved version ${after.version}.`
            : `Nothing changed: still version ${after.version}.`,
        lines: summary.changes.map(describeChange),
      };
      navigate(path);
    } catch (err) {
      setServerError(err);
      setTimeout(() => errorRef.current?.scrollIntoView({ block: 'center' }), 0);
    } finally {
      setBusy(false);
    }
  };

  const backends = health.value?.backends ?? [];
  const backendNote = (kind) => {
    const b = backends.find((x) => x.kind === kind);
    if (!b) return ' (not running on this server)';
    if (!b.available) return ' (unavailable)';
    return b.accelerator ? ` (${b.accelerator.toUpperCase()})` : '';
  };
  const num = (field, label, hint, step) => (
    <Field id={field} label={label} hint={hint ?? `${LIMITS[field].min} to ${LIMITS[field].max}`} error={errorOf(field)}>
      <input
        {...describedBy(field, errorOf(field), true)}
        type="number"
        inputMode={LIMITS[field].integer ? 'numeric' : 'decimal'}
        min={LIMITS[field].min}
        max={LIMITS[field].max}
        step={step ?? (LIMITS[field].integer ? 1 : 0.05)}
        value={form[field]}
        onInput={set(field)}
        required
        data-testid={`field-${field}`}
      />
    </Field>
  );
  const templateFiles = TEMPLATES[form.runtime].files;

  return (
    <form class="page form" onSubmit={save} noValidate data-testid="function-form">
      <div class="page-head">
        <h1>{isNew ? 'Create a function' : `Edit ${fnLabel(current.namespace, current.name)}`}</h1>
        {!isNew && (
          <span class="sub">
            version {current.version}: saving a change makes version {current.version + 1}
          </span>
        )}
      </div>
      <div ref={errorRef}>
        <ErrorBox error={serverError} title="The server refused" testid="server-error" />
        {touched && Object.keys(check.errors).length > 0 && (
          <p class="field-error" role="alert" data-testid="form-invalid">
            Fix {Object.keys(check.errors).length === 1 ? 'the field' : `the ${Object.keys(check.errors).length} fields`} marked below:{' '}
            {Object.keys(check.errors).join(', ')}.
          </p>
        )}
      </div>

      <fieldset class="fieldset">
        <legend>Function</legend>
        <div class="fields">
          {isNew ? (
            <>
              <Field id="namespace" label="Namespace" error={errorOf('namespace')}>
                <select
                  {...describedBy('namespace', errorOf('namespace'))}
                  value={form.namespace}
                  onChange={set('namespace')}
                  data-testid="field-namespace"
                >
                  {writable.map((ns) => (
                    <option value={ns} key={ns}>
                      {ns}
                    </option>
                  ))}
                </select>
              </Field>
              <Field id="name" label="Name" hint="a-z, 0-9, - and _; up to 64" error={errorOf('name')}>
                <input
                  {...describedBy('name', errorOf('name'), true)}
                  value={form.name}
                  onInput={set('name')}
                  autoComplete="off"
                  spellcheck={false}
                  required
                  autoFocus
                  data-testid="field-name"
                />
              </Field>
            </>
          ) : null}
          <Field id="runtime" label="Runtime" error={errorOf('runtime')}>
            <select {...describedBy('runtime', errorOf('runtime'))} value={form.runtime} onChange={setRuntime} data-testid="field-runtime">
              {RUNTIMES.map((rt) => (
                <option value={rt} key={rt}>
                  {rt === 'python3' ? 'Python 3 (python3)' : 'Node.js (nodejs)'}
                </option>
              ))}
            </select>
          </Field>
          <Field
            id="handler"
            label="Handler"
            hint={form.runtime === 'nodejs' ? 'FILE.FUNCTION, e.g. index.handler' : 'FILE.FUNCTION, e.g. main.handler'}
            error={errorOf('handler')}
          >
            <input
              {...describedBy('handler', errorOf('handler'), true)}
              value={form.handler}
              onInput={set('handler')}
              spellcheck={false}
              data-testid="field-handler"
            />
          </Field>
          <Field
            id="backend"
            label="Backend"
            hint="Docker container or microVM (see Sandboxes for the cost of each)"
            error={errorOf('backend')}
          >
            <select
              {...describedBy('backend', errorOf('backend'), true)}
              value={form.backend}
              onChange={set('backend')}
              data-testid="field-backend"
            >
              <option value="docker">Docker{backendNote('docker')}</option>
              <option value="microvm">microVM{backendNote('microvm')}</option>
            </select>
          </Field>
        </div>
      </fieldset>

      <fieldset class="fieldset">
        <legend>Code</legend>
        <CodeSource
          code={code}
          onChange={setCode}
          runtime={form.runtime}
          allowKeep={!isNew}
          keepLabel={!isNew ? `Keep version ${current.version}'s code` : undefined}
          error={errorOf('code')}
          templateFiles={templateFiles}
        />
      </fieldset>

      <fieldset class="fieldset">
        <legend>Resources</legend>
        <div class="fields">
          {num('timeout_ms', 'Timeout (ms)', '100 ms to 15 min (900000)', 100)}
          {num('memory_mb', 'Memory (MiB)', '64 to 4096 MiB', 64)}
          {num('cpus', 'CPUs', '0.05 to 16')}
        </div>
      </fieldset>

      <fieldset class="fieldset">
        <legend>HTTP trigger</legend>
        <div class="fields">
          <Field id="route" label="Route" hint="e.g. /hello, called at /fn/hello; empty for none" error={errorOf('route')}>
            <input
              {...describedBy('route', errorOf('route'), true)}
              value={form.route}
              onInput={set('route')}
              placeholder="/hello"
              spellcheck={false}
              data-testid="field-route"
            />
          </Field>
          <Field
            id="http_auth"
            label="Who may call it"
            hint="key: a key or console session that may invoke; none: anyone (public)"
            error={errorOf('http_auth')}
          >
            <select
              {...describedBy('http_auth', errorOf('http_auth'), true)}
              value={form.http_auth}
              onChange={set('http_auth')}
              data-testid="field-http_auth"
            >
              <option value="key">key (private)</option>
              <option value="none">none (public)</option>
            </select>
          </Field>
        </div>
      </fieldset>

      <fieldset class="fieldset">
        <legend>Environment variables</legend>
        <EnvEditor rows={form.env} onChange={(env) => setForm({ ...form, env })} error={errorOf('env')} />
      </fieldset>

      <fieldset class="fieldset">
        <legend>Pool</legend>
        <div class="fields">
          {num('min_warm', 'Minimum warm sandboxes', '0 to 100, at most max concurrency')}
          {num('max_concurrency', 'Max concurrency', '1 to 1000 calls at once')}
          {num('keep_alive_s', 'Keep alive (s)', 'idle sandboxes stop after; 0 to 86400')}
          {num('queue_timeout_ms', 'Queue timeout (ms)', 'a call waits this long for a sandbox, then 429; 0 to 900000', 100)}
        </div>
      </fieldset>

      <fieldset class="fieldset">
        <legend>Batching</legend>
        <div class="fields">
          {num('batch_max_size', 'Batch max size', 'calls per invoke message; 1 to 64')}
          {num('batch_max_wait_ms', 'Batch max wait (ms)', 'wait this long to fill a batch; 0 to 1000')}
          <div class="field">
            <span class="label-like">Concurrent batch</span>
            <label class="check" for="batch_concurrent">
              <input
                id="batch_concurrent"
                type="checkbox"
                checked={form.batch_concurrent}
                onChange={set('batch_concurrent')}
                data-testid="field-batch_concurrent"
              />
              run a batch's calls concurrently in the sandbox
            </label>
          </div>
        </div>
      </fieldset>

      <div class="btn-row sticky-actions">
        <button type="submit" class="btn primary" disabled={busy} data-testid="save-function">
          {busy ? 'Saving…' : isNew ? 'Create function' : 'Save'}
        </button>
        <a class="btn" href={isNew ? hrefs.functions() : hrefs.fn(current.namespace, current.name)}>
          Cancel
        </a>
      </div>
    </form>
  );
}
