// The current version's files, read-only until "Edit"; "Deploy" makes a
// new version (binary files of the current version are kept as they are).

import { useState } from 'preact/hooks';
import * as api from '../../api.js';
import { allowed } from '../../state/session.js';
import { readZip, writeZip, toBase64 } from '../../lib/zip.js';
import { describeSave, describeChange } from '../../lib/diff.js';
import { checkHandlerFile, handlerFiles } from '../../lib/validate.js';
import { Loading, ErrorBox, useLoad } from '../../components/ui.jsx';
import { FileEditor } from '../../components/FileEditor.jsx';

export function CodeTab({ fn, reload }) {
  const files = useLoad(() => api.get(api.fnPath(fn.namespace, fn.name, 'files')), [fn.version]);
  const [draft, setDraft] = useState(/** @type {Record<string, string> | null} */ (null));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(/** @type {any} */ (null));
  const [result, setResult] = useState(/** @type {any} */ (null));
  const canWrite = allowed('write_functions', fn.namespace);

  if (files.loading && !files.data) return <Loading what="Loading the code" />;
  if (files.error && !files.data) return <ErrorBox error={files.error} title="Could not load the code" onRetry={() => files.reload()} />;
  const data = files.data;
  const editing = draft !== null;
  const shown = draft ?? data.files;
  const changed = editing && JSON.stringify(draft) !== JSON.stringify(data.files);

  const deploy = async () => {
    setError(null);
    setResult(null);
    const missing = checkHandlerFile(fn.runtime, fn.handler, [...Object.keys(draft), ...data.binary]);
    if (missing) {
      setError(new Error(missing));
      return;
    }
    setBusy(true);
    try {
      let code;
      if (data.binary.length) {
        // Rebuild the archive: edited text files, and the binary ones copied from the stored zip.
        const res = await fetch(`/api/v1${api.fnPath(fn.namespace, fn.name, 'code')}`, { credentials: 'same-origin' });
        if (!res.ok) throw await api.errorOf(res);
        const stored = readZip(new Uint8Array(await res.arrayBuffer()));
        const keep = stored.filter((e) => !e.isDir && data.binary.includes(e.name));
        const zip = writeZip([...keep.map((entry) => ({ entry })), ...Object.entries(draft).map(([name, text]) => ({ name, data: text }))]);
        code = { zip_base64: toBase64(zip) };
      } else {
        code = { files: draft };
      }
      const after = await api.put(api.fnPath(fn.namespace, fn.name), { code });
      const s = describeSave(fn, after);
      setResult({ ...s, lines: s.changes.map(describeChange) });
      setDraft(null);
      reload();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="stack" data-testid="code-tab">
      <div class="btn-row">
        <span class="muted">
          Version {data.version} · {Object.keys(data.files).length} text file{Object.keys(data.files).length === 1 ? '' : 's'}
          {data.binary.length ? `, ${data.binary.length} other` : ''}
        </span>
        <span style={{ marginLeft: 'auto' }} class="btn-row">
          <a class="btn small" href={`/api/v1${api.fnPath(fn.namespace, fn.name, 'code')}`} download>
            Download zip
          </a>
          {canWrite && !editing && (
            <button type="button" class="btn small" onClick={() => setDraft({ ...data.files })} data-testid="edit-code">
              Edit code
            </button>
          )}
          {editing && (
            <>
              <button type="button" class="btn small" onClick={() => setDraft(null)} disabled={busy}>
                Discard changes
              </button>
              <button type="button" class="btn small primary" onClick={deploy} disabled={busy || !changed} data-testid="deploy">
                {busy ? 'Deploying…' : `Deploy as version ${fn.version + 1}`}
              </button>
            </>
          )}
        </span>
      </div>
      {result && (
        <div class="flash" role="status" data-testid="deploy-result">
          <strong>{result.newVersion ? `Deployed version ${result.version}.` : `Nothing changed: still version ${result.version}.`}</strong>
          {result.lines.length > 0 && (
            <ul>
              {result.lines.map((l) => (
                <li key={l} class="mono small">
                  {l}
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
      <ErrorBox error={error} title="Could not deploy" testid="deploy-error" />
      <FileEditor
        files={shown}
        onChange={editing ? setDraft : undefined}
        readOnly={!editing}
        runtime={fn.runtime}
        binary={data.binary}
        key={`${data.version}:${editing}`}
        initial={handlerFiles(fn.runtime, fn.handler).find((p) => p in shown)}
      />
    </div>
  );
}
