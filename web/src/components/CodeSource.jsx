// Where a function's code comes from: the built-in editor (starter
// template per runtime), a zip upload, or a dropped folder. Produces a
// `code` value the form turns into the request's `code` field.

import { useEffect, useState } from 'preact/hooks';
import { Segmented, ErrorBox } from './ui.jsx';
import { FileEditor } from './FileEditor.jsx';
import { readZip, filePaths, writeZip, toBase64, isText } from '../lib/zip.js';
import { MAX_CODE_BYTES } from '../lib/validate.js';
import { formatBytes } from '../lib/format.js';

/**
 * @typedef {{kind: 'keep'} | {kind: 'files', files: Record<string, string>} |
 *   {kind: 'zip', name: string, bytes: Uint8Array, paths: string[]} |
 *   {kind: 'folder', name: string, entries: {path: string, bytes: Uint8Array}[], paths: string[]}} Code
 */

/** The paths a code value holds (null: unknown, i.e. kept as it is). @param {Code} code */
export function codePaths(code) {
  switch (code.kind) {
    case 'files':
      return Object.keys(code.files);
    case 'zip':
    case 'folder':
      return code.paths;
    default:
      return null;
  }
}

/** The request's `code` field for a code value (undefined: unchanged). @param {Code} code */
export function codeBody(code) {
  switch (code.kind) {
    case 'files':
      return { files: code.files };
    case 'zip':
      return { zip_base64: toBase64(code.bytes) };
    case 'folder': {
      const text = code.entries.every((e) => isText(e.bytes));
      if (text) {
        const dec = new TextDecoder();
        return { files: Object.fromEntries(code.entries.map((e) => [e.path, dec.decode(e.bytes)])) };
      }
      return { zip_base64: toBase64(writeZip(code.entries.map((e) => ({ name: e.path, data: e.bytes })))) };
    }
    default:
      return undefined;
  }
}

const SKIP = /(^|\/)(\.git|__pycache__|\.DS_Store)(\/|$)/;

/** Files of a dropped folder (DataTransfer items), paths relative to it. */
async function readDropped(items) {
  /** @type {{path: string, file: File}[]} */
  const out = [];
  const walk = async (entry, prefix) => {
    if (entry.isFile) {
      const file = await new Promise((res, rej) => entry.file(res, rej));
      out.push({ path: prefix + entry.name, file });
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((res, rej) => reader.readEntries(res, rej));
        if (!batch.length) break;
        for (const e of batch) await walk(e, `${prefix}${entry.name}/`);
      }
    }
  };
  const entries = [...items].map((it) => it.webkitGetAsEntry?.()).filter(Boolean);
  for (const e of entries) await walk(e, '');
  return out;
}

/** Removes the one folder every path starts with (the dropped folder itself). */
function stripTop(list) {
  const tops = new Set(list.map((f) => f.path.split('/')[0]));
  if (tops.size === 1 && list.every((f) => f.path.includes('/'))) {
    const top = [...tops][0];
    return { name: top, list: list.map((f) => ({ ...f, path: f.path.slice(top.length + 1) })) };
  }
  return { name: 'folder', list };
}

async function toFolderCode(raw) {
  const { name, list } = stripTop(raw);
  const kept = list.filter((f) => !SKIP.test(f.path));
  const total = kept.reduce((n, f) => n + f.file.size, 0);
  if (total > MAX_CODE_BYTES) throw new Error(`the folder holds ${formatBytes(total)}, the limit is ${formatBytes(MAX_CODE_BYTES)}`);
  if (!kept.length) throw new Error('the folder holds no files');
  const entries = await Promise.all(kept.map(async (f) => ({ path: f.path, bytes: new Uint8Array(await f.file.arrayBuffer()) })));
  entries.sort((a, b) => a.path.localeCompare(b.path));
  return { kind: 'folder', name, entries, paths: entries.map((e) => e.path) };
}

/**
 * @param {{code: Code, onChange: (c: Code) => void, runtime: string, allowKeep?: boolean, keepLabel?: string, error?: string, templateFiles: Record<string, string>}} props
 */
export function CodeSource({ code, onChange, runtime, allowKeep, keepLabel, error, templateFiles }) {
  const [mode, setMode] = useState(code.kind === 'keep' ? 'keep' : code.kind === 'files' ? 'editor' : code.kind);
  const [problem, setProblem] = useState(/** @type {Error | null} */ (null));
  const [over, setOver] = useState(false);
  const [editorFiles, setEditorFiles] = useState(code.kind === 'files' ? code.files : templateFiles);
  // The form may replace the files (a runtime change swaps the starter).
  useEffect(() => {
    if (code.kind === 'files' && code.files !== editorFiles) setEditorFiles(code.files);
  }, [code]);

  const pick = (m) => {
    setMode(m);
    setProblem(null);
    if (m === 'keep') onChange({ kind: 'keep' });
    else if (m === 'editor') onChange({ kind: 'files', files: editorFiles });
  };
  const editFiles = (files) => {
    setEditorFiles(files);
    onChange({ kind: 'files', files });
  };

  const onZip = async (e) => {
    const file = /** @type {HTMLInputElement} */ (e.target).files?.[0];
    if (!file) return;
    setProblem(null);
    try {
      if (file.size > MAX_CODE_BYTES)
        throw new Error(`${file.name} is ${formatBytes(file.size)}, the limit is ${formatBytes(MAX_CODE_BYTES)}`);
      const bytes = new Uint8Array(await file.arrayBuffer());
      const paths = filePaths(readZip(bytes));
      if (!paths.length) throw new Error(`${file.name} holds no files`);
      onChange({ kind: 'zip', name: file.name, bytes, paths });
    } catch (err) {
      setProblem(err);
    }
  };

  const onFolderFiles = async (files) => {
    setProblem(null);
    try {
      const list = [...files].map((f) => ({ path: f.webkitRelativePath || f.name, file: f }));
      useFolder(await toFolderCode(list));
    } catch (err) {
      setProblem(err);
    }
  };
  const onDrop = async (e) => {
    e.preventDefault();
    setOver(false);
    setProblem(null);
    try {
      const items = e.dataTransfer?.items;
      const list =
        items && items.length && items[0].webkitGetAsEntry
          ? await readDropped(items)
          : [...(e.dataTransfer?.files ?? [])].map((f) => ({ path: f.name, file: f }));
      useFolder(await toFolderCode(list));
    } catch (err) {
      setProblem(err);
    }
  };
  /** Text-only folders open in the editor (to look and change); others go as a zip. */
  const useFolder = (folder) => {
    const small = folder.entries.reduce((n, x) => n + x.bytes.length, 0) < 2 * 1024 * 1024;
    if (small && folder.entries.every((x) => isText(x.bytes))) {
      const dec = new TextDecoder();
      const files = Object.fromEntries(folder.entries.map((x) => [x.path, dec.decode(x.bytes)]));
      setEditorFiles(files);
      setMode('editor');
      onChange({ kind: 'files', files });
    } else {
      onChange(folder);
    }
  };

  const options = [
    ...(allowKeep ? [{ value: 'keep', label: keepLabel ?? 'Keep current code' }] : []),
    { value: 'editor', label: 'Editor' },
    { value: 'zip', label: 'Upload zip' },
    { value: 'folder', label: 'Drop folder' },
  ];

  return (
    <div class="code-source">
      <div class="btn-row">
        <Segmented label="Code source" options={options} value={mode} onChange={pick} testid="code-source" />
        {mode === 'editor' && (
          <button type="button" class="btn small" onClick={() => editFiles({ ...templateFiles })} data-testid="use-template">
            Reset to the {runtime === 'nodejs' ? 'Node.js' : 'Python'} starter
          </button>
        )}
      </div>
      {mode === 'keep' && <p class="muted">The code stays as it is; edit it in the Code tab, or pick another source here.</p>}
      {mode === 'editor' && <FileEditor files={editorFiles} onChange={editFiles} runtime={runtime} />}
      {mode === 'zip' && (
        <div class="drop-zone">
          <label for="zip-file">
            <strong>Choose a .zip file</strong> (up to 50 MiB; paths inside are taken as they are)
          </label>
          <br />
          <input id="zip-file" type="file" accept=".zip,application/zip" onChange={onZip} data-testid="zip-input" />
          {code.kind === 'zip' && <FileList title={`${code.name}: ${formatBytes(code.bytes.length)}`} paths={code.paths} />}
        </div>
      )}
      {mode === 'folder' && (
        <div
          class={`drop-zone${over ? ' over' : ''}`}
          onDragOver={(e) => {
            e.preventDefault();
            setOver(true);
          }}
          onDragLeave={() => setOver(false)}
          onDrop={onDrop}
          data-testid="folder-drop"
        >
          <p>
            <strong>Drop a folder here</strong>, or{' '}
            <label for="folder-input" class="link-label">
              choose one
            </label>
            . Its contents become the code (<code>.git</code> and <code>__pycache__</code> are left out). A folder of text files opens in
            the editor.
          </p>
          <input
            id="folder-input"
            type="file"
            multiple
            {...{ webkitdirectory: true }}
            onChange={(e) => onFolderFiles(/** @type {HTMLInputElement} */ (e.target).files ?? [])}
            data-testid="folder-input"
          />
          {code.kind === 'folder' && <FileList title={`${code.name}: ${code.paths.length} files`} paths={code.paths} />}
        </div>
      )}
      <ErrorBox error={problem} title="Could not read the code" testid="code-problem" />
      {error && (
        <p class="field-error" id="code-error" data-testid="error-code">
          {error}
        </p>
      )}
    </div>
  );
}

function FileList({ title, paths }) {
  return (
    <div class="file-list" data-testid="code-files">
      <p>
        <strong>{title}</strong>
      </p>
      <ul class="small mono">
        {paths.slice(0, 30).map((p) => (
          <li key={p}>{p}</li>
        ))}
        {paths.length > 30 && <li>… {paths.length - 30} more</li>}
      </ul>
    </div>
  );
}
