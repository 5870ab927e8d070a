// Environment variables as key/value rows; values are hidden until shown
// (they are often secrets), and the byte budget is counted as you type.

import { useState } from 'preact/hooks';
import { checkEnv, ENV_TOTAL_BYTES } from '../lib/validate.js';

/** @param {{rows: {key: string, value: string}[], onChange: (rows: any[]) => void, readOnly?: boolean, error?: string}} props */
export function EnvEditor({ rows, onChange, readOnly = false, error }) {
  const [shown, setShown] = useState(/** @type {Set<number>} */ (new Set()));
  const check = checkEnv(rows);
  const set = (i, field, value) => onChange(rows.map((r, j) => (j === i ? { ...r, [field]: value } : r)));
  const toggle = (i) => {
    const s = new Set(shown);
    if (s.has(i)) s.delete(i);
    else s.add(i);
    setShown(s);
  };
  return (
    <div class="env-editor" data-testid="env-editor">
      {rows.length === 0 && <p class="muted">No environment variables.</p>}
      {rows.map((r, i) => (
        <div key={i}>
          <div class="env-row">
            <input
              aria-label={`Name of variable ${i + 1}`}
              placeholder="NAME"
              value={r.key}
              readOnly={readOnly}
              spellcheck={false}
              autoComplete="off"
              onInput={(e) => set(i, 'key', /** @type {HTMLInputElement} */ (e.target).value)}
              aria-invalid={check.rowErrors[i] ? 'true' : undefined}
              data-testid={`env-key-${i}`}
            />
            <input
              aria-label={`Value of ${r.key || `variable ${i + 1}`}`}
              placeholder="value"
              type={shown.has(i) ? 'text' : 'password'}
              value={r.value}
              readOnly={readOnly}
              spellcheck={false}
              autoComplete="new-password"
              onInput={(e) => set(i, 'value', /** @type {HTMLInputElement} */ (e.target).value)}
              data-testid={`env-value-${i}`}
            />
            <button
              type="button"
              class="btn small env-show"
              onClick={() => toggle(i)}
              aria-pressed={shown.has(i) ? 'true' : 'false'}
              data-testid={`env-show-${i}`}
            >
              {shown.has(i) ? 'Hide' : 'Show'}
            </button>
            {!readOnly && (
              <button
                type="button"
                class="btn small danger"
                onClick={() => onChange(rows.filter((_, j) => j !== i))}
                aria-label={`Remove ${r.key || `variable ${i + 1}`}`}
              >
                Remove
              </button>
            )}
          </div>
          {check.rowErrors[i] && <p class="field-error">{check.rowErrors[i]}</p>}
        </div>
      ))}
      <div class="btn-row">
        {!readOnly && (
          <button type="button" class="btn small" onClick={() => onChange([...rows, { key: '', value: '' }])} data-testid="env-add">
            Add variable
          </button>
        )}
        <span class={`small ${check.total > ENV_TOTAL_BYTES ? 'text-err' : 'muted'}`}>
          {check.total} of {ENV_TOTAL_BYTES} bytes
        </span>
      </div>
      {error && (
        <p class="field-error" id="env-error" data-testid="error-env">
          {error}
        </p>
      )}
    </div>
  );
}
