// Test a function: an event editor (JSON, checked as you type), saved test
// events (stored on the server, shared with the team), "Send" through the
// invoke API with the call's status, result, duration, start kind, id and
// logs; and, for a function with a route, a request builder that goes
// through the HTTP trigger.

import { useEffect, useState } from 'preact/hooks';
import * as api from '../../api.js';
import { allowed } from '../../state/session.js';
import { toast } from '../../state/toasts.js';
import { parseJson, checkEventName } from '../../lib/validate.js';
import { TEMPLATES } from '../../lib/templates.js';
import { hrefs } from '../../lib/routes.js';
import { formatMs, formatBytes } from '../../lib/format.js';
import { Loading, ErrorBox, Badge, JsonView, Segmented, Field, Time, useLoad } from '../../components/ui.jsx';

export function TestTab({ fn, route: r }) {
  const [mode, setMode] = useState(r.query.mode === 'http' && fn.route ? 'http' : 'event');
  return (
    <div class="stack" data-testid="test-tab">
      {fn.route && (
        <Segmented
          label="How to call"
          options={[
            { value: 'event', label: 'Invoke with an event' },
            { value: 'http', label: `HTTP request to /fn${fn.route}` },
          ]}
          value={mode}
          onChange={setMode}
          testid="test-mode"
        />
      )}
      {mode === 'event' ? <EventTest fn={fn} /> : <HttpTest fn={fn} />}
    </div>
  );
}

function EventTest({ fn }) {
  const events = useLoad(() => api.get(api.fnPath(fn.namespace, fn.name, 'test-events')), [fn.namespace, fn.name]);
  const [selected, setSelected] = useState('');
  const [text, setText] = useState(JSON.stringify(TEMPLATES[fn.runtime]?.event ?? {}, null, 2));
  const [saveName, setSaveName] = useState('');
  const [saveError, setSaveError] = useState(/** @type {any} */ (null));
  const [sending, setSending] = useState(false);
  const [call, setCall] = useState(/** @type {any} */ (null));
  const [callError, setCallError] = useState(/** @type {any} */ (null));
  const canWrite = allowed('write_functions', fn.namespace);
  const parsed = parseJson(text);
  const list = events.data?.events ?? [];

  // The first saved event opens by default.
  useEffect(() => {
    if (!selected && list.length) choose(list[0].name);
  }, [events.data]);

  const choose = (name) => {
    setSelected(name);
    const ev = list.find((e) => e.name === name);
    if (ev) {
      setText(JSON.stringify(ev.event, null, 2));
      setSaveName(ev.name);
    }
  };

  const send = async () => {
    if (!parsed.ok) return;
    setSending(true);
    setCall(null);
    setCallError(null);
    try {
      const res = await api.invoke(fn.namespace, fn.name, JSON.stringify(parsed.value));
      setCall({ ...res, record: undefined });
      if (res.invocationId && allowed('read_logs', fn.namespace)) {
        const record = await api.waitForRecord(fn.namespace, fn.name, res.invocationId);
        setCall((c) => (c && c.invocationId === res.invocationId ? { ...c, record } : c));
      }
    } catch (e) {
      setCallError(e);
    } finally {
      setSending(false);
    }
  };

  const save = async (e) => {
    e.preventDefault();
    setSaveError(null);
    const bad = checkEventName(saveName);
    if (bad) return setSaveError(new Error(`Event name: ${bad}`));
    if (!parsed.ok) return setSaveError(new Error('The event is not valid JSON.'));
    try {
      await api.request('PUT', api.fnPath(fn.namespace, fn.name, `test-events/${encodeURIComponent(saveName)}`), {
        body: JSON.stringify(parsed.value),
        headers: { 'Content-Type': 'application/json' },
      });
      toast(`Saved test event “${saveName}”`);
      setSelected(saveName);
      events.reload(true);
    } catch (err) {
      setSaveError(err);
    }
  };
  const remove = async () => {
    if (!selected || !confirm(`Delete the test event “${selected}”?`)) return;
    try {
      await api.del(api.fnPath(fn.namespace, fn.name, `test-events/${encodeURIComponent(selected)}`));
      toast(`Deleted test event “${selected}”`);
      setSelected('');
      events.reload(true);
    } catch (err) {
      setSaveError(err);
    }
  };

  return (
    <div class="test-layout">
      <section class="card stack" aria-labelledby="event-title">
        <h2 id="event-title">Event</h2>
        <div class="btn-row">
          <label for="saved-events">Saved events</label>
          {events.loading && !events.data ? (
            <Loading what="Loading" />
          ) : (
            <select
              id="saved-events"
              value={selected}
              onChange={(e) => choose(/** @type {HTMLSelectElement} */ (e.target).value)}
              data-testid="saved-events"
            >
              <option value="">{list.length ? '— choose one —' : 'none saved yet'}</option>
              {list.map((ev) => (
                <option value={ev.name} key={ev.name}>
                  {ev.name}
                </option>
              ))}
            </select>
          )}
          {selected && (
            <span class="muted small">
              saved <Time at={list.find((e) => e.name === selected)?.updated_at_ms} relative />
            </span>
          )}
        </div>
        <div class={`field${parsed.ok ? '' : ' has-error'}`}>
          <label for="event-json">Event JSON (the handler's first argument)</label>
          <textarea
            id="event-json"
            rows={12}
            spellcheck={false}
            value={text}
            onInput={(e) => setText(/** @type {HTMLTextAreaElement} */ (e.target).value)}
            onKeyDown={(e) => {
              if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') send();
            }}
            aria-invalid={parsed.ok ? undefined : 'true'}
            aria-describedby="event-json-status"
            data-testid="event-json"
          />
          <p id="event-json-status" class={parsed.ok ? 'hint' : 'field-error'} data-testid="event-json-status">
            {parsed.ok
              ? 'Valid JSON. Ctrl+Enter sends.'
              : `Not valid JSON${parsed.line ? ` (line ${parsed.line}, column ${parsed.column})` : ''}: ${parsed.message}`}
          </p>
        </div>
        <div class="btn-row">
          <button type="button" class="btn primary" onClick={send} disabled={sending || !parsed.ok} data-testid="send-event">
            {sending ? 'Sending…' : 'Send'}
          </button>
          <button
            type="button"
            class="btn small"
            onClick={() => parsed.ok && setText(JSON.stringify(parsed.value, null, 2))}
            disabled={!parsed.ok}
          >
            Format
          </button>
        </div>
        {canWrite && (
          <form class="btn-row" onSubmit={save}>
            <label for="save-name" class="sr-only">
              Test event name
            </label>
            <input
              id="save-name"
              placeholder="name to save as"
              value={saveName}
              onInput={(e) => setSaveName(/** @type {HTMLInputElement} */ (e.target).value)}
              data-testid="save-event-name"
            />
            <button type="submit" class="btn small" data-testid="save-event">
              Save event
            </button>
            {selected && (
              <button type="button" class="btn small danger" onClick={remove} data-testid="delete-event">
                Delete “{selected}”
              </button>
            )}
          </form>
        )}
        <ErrorBox error={saveError} title="Could not save" />
        <ErrorBox error={events.error} title="Could not load the saved events" />
      </section>
      <section class="card stack" aria-labelledby="result-title" aria-live="polite">
        <h2 id="result-title">Call</h2>
        <ErrorBox error={callError} title="The call failed to reach ignis" />
        {!call && !callError && <p class="muted">Send the event to see the result, the call's figures and its logs.</p>}
        {call && <CallResult call={call} fn={fn} />}
      </section>
    </div>
  );
}

/** What a call returned: status, figures, the result or the error, and the logs. */
function CallResult({ call, fn, http }) {
  const rec = call.record;
  const err = call.error;
  return (
    <div class="stack" data-testid="call-result">
      <div class="result-head">
        <Badge kind={call.ok ? 'ok' : call.status === 429 ? 'warn' : 'err'}>
          <span data-testid="call-status">{call.status}</span>
        </Badge>
        {err && <code class="error-type">{err.type}</code>}
        <span>
          duration <strong data-testid="call-duration">{formatMs(call.durationMs ?? rec?.total_ms)}</strong>
        </span>
        {call.start && (
          <span>
            start{' '}
            <Badge kind={call.start === 'warm' ? 'ok' : 'warn'}>
              <span data-testid="call-start">{call.start}</span>
            </Badge>
          </span>
        )}
        {call.version && (
          <span>
            version <strong data-testid="call-version">{call.version}</strong>
          </span>
        )}
        <span class="muted small">round trip {formatMs(call.roundTripMs)}</span>
      </div>
      {call.invocationId && (
        <p class="small">
          invocation{' '}
          <a href={hrefs.invocation(fn.namespace, fn.name, call.invocationId)} data-testid="call-id">
            <code>{call.invocationId}</code>
          </a>
        </p>
      )}
      {err ? (
        <div class="error-box" data-testid="call-error">
          <p>
            <strong>{err.type}</strong>
          </p>
          <p class="error-message">{err.message}</p>
          {err.stack && <pre class="stack">{err.stack}</pre>}
        </div>
      ) : http ? (
        <>
          <h3>Response headers</h3>
          <JsonView value={call.headers} />
          <h3>Body</h3>
          {call.json !== undefined ? (
            <JsonView value={call.json} testid="invoke-result" />
          ) : (
            <JsonView text={call.text} testid="invoke-result" />
          )}
        </>
      ) : (
        <>
          <h3>Result</h3>
          {call.json !== undefined ? (
            <JsonView value={call.json} testid="invoke-result" />
          ) : (
            <JsonView text={call.text} testid="invoke-result" />
          )}
        </>
      )}
      <h3>Logs</h3>
      {rec === undefined && call.invocationId ? (
        <Loading what="Waiting for the invocation record" />
      ) : rec ? (
        <Logs rec={rec} />
      ) : (
        <p class="muted">No record of this call{call.invocationId ? ' yet' : ''}.</p>
      )}
    </div>
  );
}

/** stdout and stderr of a call (64 KiB each at most). */
export function Logs({ rec }) {
  const none = !rec.stdout && !rec.stderr;
  return (
    <div data-testid="invoke-logs">
      {none && <p class="muted">The call printed nothing.</p>}
      {rec.stdout && (
        <>
          <p class="muted small">stdout</p>
          <pre class="logs">{rec.stdout}</pre>
        </>
      )}
      {rec.stderr && (
        <>
          <p class="muted small">stderr</p>
          <pre class="logs">{rec.stderr}</pre>
        </>
      )}
      {rec.logs_truncated && <p class="muted small">The logs were cut at 64 KiB per stream.</p>}
      <p class="muted small">
        queue {formatMs(rec.queue_ms)} · init {formatMs(rec.init_ms)} · exec {formatMs(rec.exec_ms)} · response{' '}
        {formatBytes(rec.response_bytes)}
        {rec.peak_memory_bytes ? ` · peak memory ${formatBytes(rec.peak_memory_bytes)}` : ''}
        {rec.cpu_ms !== null && rec.cpu_ms !== undefined ? ` · CPU ${formatMs(rec.cpu_ms)}` : ''}
      </p>
    </div>
  );
}

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'];

/** A request through the HTTP trigger, as a browser or curl would send it. */
function HttpTest({ fn }) {
  const [req, setReq] = useState({ method: 'GET', sub: '', query: '', headers: 'Accept: application/json', body: '' });
  const [sending, setSending] = useState(false);
  const [call, setCall] = useState(/** @type {any} */ (null));
  const [error, setError] = useState(/** @type {any} */ (null));
  const set = (k) => (e) => setReq({ ...req, [k]: /** @type {HTMLInputElement} */ (e.target).value });
  const headerErrors = [];
  const headers = {};
  for (const line of req.headers.split('\n')) {
    if (!line.trim()) continue;
    const i = line.indexOf(':');
    const k = i > 0 ? line.slice(0, i).trim() : '';
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k)) headerErrors.push(line);
    else headers[k] = line.slice(i + 1).trim();
  }
  const sub = req.sub.trim();
  const subError = sub && !/^\/[A-Za-z0-9._~\-/%]*$/.test(sub) ? 'a sub-path starts with "/"' : null;
  const send = async (e) => {
    e.preventDefault();
    if (headerErrors.length || subError) return;
    setSending(true);
    setError(null);
    setCall(null);
    try {
      const res = await api.httpTrigger({ method: req.method, path: `${fn.route}${sub}`, query: req.query, headers, body: req.body });
      setCall({ ...res, record: undefined });
      if (res.invocationId && allowed('read_logs', fn.namespace)) {
        const record = await api.waitForRecord(fn.namespace, fn.name, res.invocationId);
        setCall((c) => (c && c.invocationId === res.invocationId ? { ...c, record } : c));
      }
    } catch (err) {
      setError(err);
    } finally {
      setSending(false);
    }
  };
  const withBody = !['GET', 'HEAD'].includes(req.method);
  return (
    <div class="test-layout">
      <form class="card stack" onSubmit={send} aria-labelledby="http-title" data-testid="http-form">
        <h2 id="http-title">HTTP request</h2>
        <div class="fields">
          <Field id="http-method" label="Method">
            <select id="http-method" value={req.method} onChange={set('method')} data-testid="http-method">
              {METHODS.map((m) => (
                <option key={m}>{m}</option>
              ))}
            </select>
          </Field>
          <Field id="http-sub" label={`Path after /fn${fn.route}`} hint="optional, e.g. /items/42" error={subError}>
            <input id="http-sub" value={req.sub} onInput={set('sub')} placeholder="/sub/path" spellcheck={false} data-testid="http-path" />
          </Field>
          <Field id="http-query" label="Query string" hint="e.g. name=ada&limit=5">
            <input id="http-query" value={req.query} onInput={set('query')} spellcheck={false} data-testid="http-query" />
          </Field>
        </div>
        <Field
          id="http-headers"
          label="Headers (one per line, Name: value)"
          error={headerErrors.length ? `not a header: ${headerErrors[0]}` : null}
        >
          <textarea id="http-headers" rows={3} value={req.headers} onInput={set('headers')} spellcheck={false} data-testid="http-headers" />
        </Field>
        {withBody && (
          <Field id="http-body" label="Body">
            <textarea id="http-body" rows={6} value={req.body} onInput={set('body')} spellcheck={false} data-testid="http-body" />
          </Field>
        )}
        <p class="muted small mono">
          {req.method} /fn{fn.route}
          {sub}
          {req.query ? `?${req.query.replace(/^\?/, '')}` : ''}
          {fn.http_auth === 'key' ? ' (private: your session is the credential)' : ' (public)'}
        </p>
        <div class="btn-row">
          <button type="submit" class="btn primary" disabled={sending} data-testid="send-http">
            {sending ? 'Sending…' : 'Send request'}
          </button>
        </div>
      </form>
      <section class="card stack" aria-live="polite">
        <h2>Response</h2>
        <ErrorBox error={error} title="The request failed" />
        {!call && !error && <p class="muted">Send the request to see the response.</p>}
        {call && <CallResult call={call} fn={fn} http />}
      </section>
    </div>
  );
}
