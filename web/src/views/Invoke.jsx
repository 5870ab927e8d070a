// Invoke by name: what an invoker key can do in the console (it may not
// list functions, so the name is typed).

import { useState } from 'preact/hooks';
import * as api from '../api.js';
import { namespaces, session } from '../state/session.js';
import { parseJson, checkName } from '../lib/validate.js';
import { formatMs } from '../lib/format.js';
import { Field, ErrorBox, Badge, JsonView, useTitle } from '../components/ui.jsx';

export function Invoke() {
  useTitle('Invoke');
  const nsList = namespaces.value ?? (session.value?.namespaces === '*' ? ['default'] : (session.value?.namespaces ?? []));
  const [ns, setNs] = useState(nsList.includes('default') ? 'default' : (nsList[0] ?? 'default'));
  const [name, setName] = useState('');
  const [text, setText] = useState('{}');
  const [busy, setBusy] = useState(false);
  const [call, setCall] = useState(/** @type {any} */ (null));
  const [error, setError] = useState(/** @type {any} */ (null));
  const [touched, setTouched] = useState(false);
  const parsed = parseJson(text);
  const nameError = checkName(name);
  const send = async (e) => {
    e.preventDefault();
    setTouched(true);
    if (nameError || !parsed.ok) return;
    setBusy(true);
    setError(null);
    setCall(null);
    try {
      setCall(await api.invoke(ns, name, JSON.stringify(parsed.value)));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="page" data-testid="invoke">
      <div class="page-head">
        <h1>Invoke a function</h1>
      </div>
      <p class="muted">
        Your key ({session.value?.role}) may call functions but not list or change them. Type the function's name and an event.
      </p>
      <div class="test-layout">
        <form class="card stack" onSubmit={send} noValidate>
          <div class="fields">
            <Field id="inv-ns" label="Namespace">
              <select id="inv-ns" value={ns} onChange={(e) => setNs(/** @type {HTMLSelectElement} */ (e.target).value)}>
                {nsList.map((n) => (
                  <option key={n}>{n}</option>
                ))}
              </select>
            </Field>
            <Field id="inv-name" label="Function name" error={touched ? nameError : null}>
              <input
                id="inv-name"
                value={name}
                onInput={(e) => setName(/** @type {HTMLInputElement} */ (e.target).value)}
                aria-invalid={touched && nameError ? 'true' : undefined}
                data-testid="invoke-name"
              />
            </Field>
          </div>
          <Field id="inv-event" label="Event JSON" error={parsed.ok ? null : `Not valid JSON: ${parsed.message}`}>
            <textarea
              id="inv-event"
              rows={10}
              value={text}
              onInput={(e) => setText(/** @type {HTMLTextAreaElement} */ (e.target).value)}
              spellcheck={false}
              data-testid="invoke-event"
            />
          </Field>
          <div>
            <button type="submit" class="btn primary" disabled={busy} data-testid="invoke-send">
              {busy ? 'Sending…' : 'Send'}
            </button>
          </div>
        </form>
        <section class="card stack" aria-live="polite">
          <h2>Result</h2>
          <ErrorBox error={error} title="The call did not reach ignis" />
          {!call && !error && <p class="muted">The result shows here.</p>}
          {call && (
            <div class="stack" data-testid="invoke-call">
              <div class="result-head">
                <Badge kind={call.ok ? 'ok' : 'err'}>{call.status}</Badge>
                {call.start && <span>start {call.start}</span>}
                <span>duration {formatMs(call.durationMs)}</span>
                {call.invocationId && <code class="small">{call.invocationId}</code>}
              </div>
              {call.error ? (
                <ErrorBox error={{ ...call.error, stack_text: call.error.stack }} title="The function failed" />
              ) : (
                <JsonView value={call.json} text={call.text} testid="invoke-result" />
              )}
            </div>
          )}
        </section>
      </div>
    </div>
  );
}
