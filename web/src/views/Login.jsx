// Login: an API key once; the server answers with a session cookie
// (HttpOnly) and a CSRF token, and the key is forgotten.

import { useState } from 'preact/hooks';
import { login, health } from '../state/session.js';
import { ApiError } from '../api.js';
import { useTitle } from '../components/ui.jsx';

export function Login() {
  useTitle('Log in');
  const [key, setKey] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(/** @type {string | null} */ (null));
  const h = health.value;

  const submit = async (e) => {
    e.preventDefault();
    if (!key.trim()) {
      setError('Paste an API key (it starts with ign_).');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await login(key);
      setKey('');
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) setError('That key is not valid (unknown, revoked or expired).');
      else if (err instanceof ApiError && err.status === 429) {
        setError(`Too many failed attempts from this address. Try again in ${err.retryAfter ?? 60} s.`);
      } else setError(err.message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="login-page">
      <form class="login card" onSubmit={submit} data-testid="login-form" noValidate>
        <h1>
          <svg viewBox="0 0 32 32" width="28" height="28" aria-hidden="true">
            <path fill="var(--accent)" d="M16 2c2 6 9 9 9 17a9 9 0 0 1-18 0c0-5 3-8 5-10 0 3 1 5 3 6-1-5 0-9 1-13z" />
          </svg>
          ignis console
        </h1>
        <p class="muted">
          Log in with an API key. The first admin key was printed when the server first started (and is in <code>DATA_DIR/admin.key</code>).
        </p>
        <div class={`field${error ? ' has-error' : ''}`}>
          <label for="login-key">API key</label>
          <input
            id="login-key"
            type="password"
            autoComplete="off"
            spellcheck={false}
            placeholder="ign_…"
            value={key}
            onInput={(e) => setKey(/** @type {HTMLInputElement} */ (e.target).value)}
            aria-invalid={error ? 'true' : undefined}
            aria-describedby={error ? 'login-error' : 'login-hint'}
            autoFocus
            data-testid="login-key"
          />
          {error ? (
            <p class="field-error" id="login-error" role="alert" data-testid="login-error">
              {error}
            </p>
          ) : (
            <p class="hint" id="login-hint">
              The console keeps a session cookie, not the key.
            </p>
          )}
        </div>
        <button type="submit" class="btn primary" disabled={busy} data-testid="login-submit">
          {busy ? 'Logging in…' : 'Log in'}
        </button>
        {h && (
          <p class="muted small">
            Server {h.instance} · ignis {h.version} · {h.status}
          </p>
        )}
      </form>
    </div>
  );
}
