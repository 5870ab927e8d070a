// Small building blocks shared by the views.

import { useEffect, useRef, useState } from 'preact/hooks';
import { formatTime, formatTimeFull, formatRelative } from '../lib/format.js';
import { now } from '../state/clock.js';
import { ApiError } from '../api.js';

/** A loading state that says what is loading. */
export function Loading({ what = 'Loading' }) {
  return (
    <p class="loading" role="status">
      <span class="spinner" aria-hidden="true" />
      {what}…
    </p>
  );
}

/** An empty state: what is missing and what to do about it. */
export function Empty({ title, children, testid }) {
  return (
    <div class="empty" data-testid={testid}>
      <p class="empty-title">{title}</p>
      {children && <div class="empty-body">{children}</div>}
    </div>
  );
}

/** An error where it happened: the server's type, message and stack when it has one. */
export function ErrorBox({ error, title, testid = 'error', onRetry }) {
  if (!error) return null;
  const api = error instanceof ApiError ? error : null;
  const type = api?.type ?? error.type ?? 'Error';
  const hint =
    api?.status === 403
      ? "This key's role or namespaces do not allow it."
      : api?.status === 0
        ? 'Check that the ignis server is running.'
        : null;
  return (
    <div class="error-box" role="alert" data-testid={testid}>
      <p>
        <strong>{title ?? 'Error'}</strong> <code class="error-type">{type}</code>
        {api?.status ? <span class="muted"> (HTTP {api.status})</span> : null}
      </p>
      <p class="error-message">{error.message}</p>
      {hint && <p class="muted">{hint}</p>}
      {(api?.serverStack || error.stack_text) && <pre class="stack">{api?.serverStack ?? error.stack_text}</pre>}
      {onRetry && (
        <button type="button" class="btn small" onClick={onRetry}>
          Retry
        </button>
      )}
    </div>
  );
}

/** A time in the user's time zone, with the full date on hover. */
export function Time({ at, relative = false }) {
  if (at === null || at === undefined) return <span class="muted">—</span>;
  const t = typeof at === 'number' ? at : new Date(at).getTime();
  return (
    <time dateTime={new Date(t).toISOString()} title={formatTimeFull(t)}>
      {relative ? formatRelative(t, now.value) : formatTime(t)}
    </time>
  );
}

/** A status badge: success / error / timeout / throttled, roles, states. */
export function Badge({ kind, children, title }) {
  return (
    <span class={`badge badge-${kind}`} title={title}>
      {children}
    </span>
  );
}

export function statusKind(status) {
  return status === 'success' ? 'ok' : status === 'throttled' ? 'warn' : 'err';
}

/**
 * A labelled form field: the label, the input (children), a hint, and the
 * error tied to the input with aria-describedby.
 */
export function Field({ id, label, hint, error, children, wide }) {
  return (
    <div class={`field${error ? ' has-error' : ''}${wide ? ' wide' : ''}`}>
      <label for={id}>{label}</label>
      {children}
      {hint && !error && (
        <p class="hint" id={`${id}-hint`}>
          {hint}
        </p>
      )}
      {error && (
        <p class="field-error" id={`${id}-error`} data-testid={`error-${id}`}>
          {error}
        </p>
      )}
    </div>
  );
}

/** The aria attributes an input of a Field carries. */
export function describedBy(id, error, hint) {
  return {
    id,
    'aria-invalid': error ? 'true' : undefined,
    'aria-describedby': error ? `${id}-error` : hint ? `${id}-hint` : undefined,
  };
}

/** A group of toggle buttons (windows, filters): a radio group for assistive tech. */
export function Segmented({ label, options, value, onChange, testid }) {
  return (
    <div class="segmented" role="radiogroup" aria-label={label} data-testid={testid}>
      {options.map((o) => {
        const v = typeof o === 'string' ? o : o.value;
        const text = typeof o === 'string' ? o : o.label;
        return (
          <button
            type="button"
            role="radio"
            aria-checked={v === value ? 'true' : 'false'}
            class={v === value ? 'active' : ''}
            onClick={() => onChange(v)}
            key={v}
          >
            {text}
          </button>
        );
      })}
    </div>
  );
}

/** The window picker of the charts. */
export function WindowPicker({ value, onChange, windows = ['5m', '1h', '24h', '7d'] }) {
  return (
    <Segmented
      label="Window"
      testid="window-picker"
      options={windows.map((w) => ({ value: w, label: w.replace('m', ' m').replace('h', ' h').replace('d', ' d') }))}
      value={value}
      onChange={onChange}
    />
  );
}

/**
 * A confirmation dialog (a native <dialog>: focus is trapped, Escape
 * cancels). `onConfirm` may be async; its error is shown in the dialog.
 */
export function ConfirmDialog({ open, title, children, confirmLabel = 'Confirm', danger, onConfirm, onClose }) {
  const ref = useRef(/** @type {HTMLDialogElement | null} */ (null));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) {
      setError(null);
      d.showModal();
    } else if (!open && d.open) d.close();
  }, [open]);
  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      await onConfirm();
      onClose();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <dialog ref={ref} class="dialog" onClose={onClose} onCancel={onClose} data-testid="confirm-dialog">
      <h2>{title}</h2>
      <div class="dialog-body">{children}</div>
      <ErrorBox error={error} />
      <div class="dialog-actions">
        <button type="button" class="btn" onClick={onClose} disabled={busy}>
          Cancel
        </button>
        <button type="button" class={`btn ${danger ? 'danger' : 'primary'}`} onClick={confirm} disabled={busy} data-testid="confirm-button">
          {busy ? 'Working…' : confirmLabel}
        </button>
      </div>
    </dialog>
  );
}

/** Copies text to the clipboard (with a fallback for pages that are not a secure context). */
export function CopyButton({ text, label = 'Copy', testid }) {
  const [done, setDone] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      const ta = document.createElement('textarea');
      ta.value = text;
      document.body.appendChild(ta);
      ta.select();
      document.execCommand('copy');
      ta.remove();
    }
    setDone(true);
    setTimeout(() => setDone(false), 2000);
  };
  return (
    <button type="button" class="btn small" onClick={copy} data-testid={testid}>
      {done ? 'Copied' : label}
    </button>
  );
}

/** Pretty JSON (or the raw text when it is not JSON). */
export function JsonView({ value, text, testid }) {
  let shown = text ?? '';
  if (value !== undefined) shown = JSON.stringify(value, null, 2);
  return (
    <pre class="json" data-testid={testid}>
      {shown}
    </pre>
  );
}

/** A table header cell that sorts its column. */
export function SortHeader({ label, col, sort, dir, onSort, numeric }) {
  const active = sort === col;
  return (
    <th aria-sort={active ? (dir === 'asc' ? 'ascending' : 'descending') : 'none'} class={numeric ? 'num' : ''} scope="col">
      <button
        type="button"
        class="sort"
        onClick={() => onSort(col, active && dir === 'desc' ? 'asc' : active ? 'desc' : numeric ? 'desc' : 'asc')}
      >
        {label}
        <span aria-hidden="true" class="sort-mark">
          {active ? (dir === 'asc' ? '▲' : '▼') : ''}
        </span>
      </button>
    </th>
  );
}

/** Runs `load` now and whenever `deps` change; `reload` runs it again. */
export function useLoad(load, deps) {
  const [state, setState] = useState({ data: undefined, error: null, loading: true });
  const seq = useRef(0);
  const run = async (quiet = false) => {
    const my = ++seq.current;
    if (!quiet) setState((s) => ({ ...s, loading: true }));
    try {
      const data = await load();
      if (my === seq.current) setState({ data, error: null, loading: false });
    } catch (e) {
      if (my === seq.current) setState((s) => ({ data: s.data, error: e, loading: false }));
    }
  };
  useEffect(() => {
    run();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
  return { ...state, reload: (quiet) => run(quiet) };
}

/** Calls `fn` every `ms` while the page is visible. */
export function useInterval(fn, ms, deps = []) {
  const saved = useRef(fn);
  saved.current = fn;
  useEffect(() => {
    if (!ms) return undefined;
    const id = setInterval(() => {
      if (!document.hidden) saved.current();
    }, ms);
    return () => clearInterval(id);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [ms, ...deps]);
}

/** Sets the page's title. */
export function useTitle(title) {
  useEffect(() => {
    document.title = title ? `${title} · ignis` : 'ignis console';
  }, [title]);
}
