// Several files in the code editor: a file tree (add, rename, delete) and
// the CodeMirror view, loaded on first use from its own chunk.

import { useEffect, useRef, useState } from 'preact/hooks';
import { fileTree, languageOf, newFileName, checkFilePath } from '../lib/templates.js';
import { dark } from '../state/theme.js';
import { Loading, ErrorBox } from './ui.jsx';

/** @type {Promise<any> | null} */
let editorModule = null;
/** Loads the editor chunk once. */
export function loadEditor() {
  editorModule ??= import('../editor/editor.js');
  return editorModule;
}

/**
 * @param {{
 *   files: Record<string, string>, onChange?: (files: Record<string, string>) => void,
 *   readOnly?: boolean, runtime: string, binary?: string[], initial?: string, testid?: string,
 * }} props
 */
export function FileEditor({ files, onChange, readOnly = false, runtime, binary = [], initial, testid = 'code-editor' }) {
  const paths = Object.keys(files).sort();
  const [active, setActive] = useState(initial && files[initial] !== undefined ? initial : (paths[0] ?? ''));
  const [error, setError] = useState(null);
  const [ready, setReady] = useState(false);
  const [naming, setNaming] = useState(/** @type {null | {mode: 'new' | 'rename', value: string, error?: string}} */ (null));
  const host = useRef(/** @type {HTMLDivElement | null} */ (null));
  const ed = useRef(/** @type {any} */ (null));
  const filesRef = useRef(files);
  filesRef.current = files;
  const onChangeRef = useRef(onChange);
  onChangeRef.current = onChange;
  const isDark = dark.value;

  // The active file must exist (after a delete, or new files from outside).
  const current = files[active] !== undefined ? active : (paths[0] ?? '');
  useEffect(() => {
    if (current !== active) setActive(current);
  }, [current, active]);

  useEffect(() => {
    let cancelled = false;
    loadEditor().then(
      (m) => {
        if (cancelled || !host.current) return;
        ed.current = m.createEditor(host.current, {
          dark: isDark,
          onChange: (path, text) => {
            const cur = filesRef.current;
            if (cur[path] === text) return;
            onChangeRef.current?.({ ...cur, [path]: text });
          },
        });
        ed.current.setReadOnly(readOnly);
        setReady(true);
      },
      (e) => setError(e),
    );
    return () => {
      cancelled = true;
      ed.current?.destroy();
      ed.current = null;
      setReady(false);
    };
  }, [isDark]);

  useEffect(() => {
    if (ready && ed.current) ed.current.setReadOnly(readOnly);
  }, [readOnly, ready]);

  useEffect(() => {
    if (ready && ed.current && current) ed.current.open(current, files[current], languageOf(current));
    // Reopen when the file or its content changes from outside the editor.
  }, [ready, current, ready && current ? files[current] : null]);

  const startNew = () => setNaming({ mode: 'new', value: newFileName(runtime, paths) });
  const startRename = () => setNaming({ mode: 'rename', value: current });
  const commitName = (e) => {
    e.preventDefault();
    const name = naming.value.trim();
    const bad = checkFilePath(name);
    if (bad) return setNaming({ ...naming, error: bad });
    if (naming.mode === 'rename' && name === current) return setNaming(null);
    if (files[name] !== undefined || binary.includes(name)) return setNaming({ ...naming, error: `${name} exists` });
    if (naming.mode === 'new') {
      onChange?.({ ...files, [name]: '' });
    } else {
      const next = { ...files };
      next[name] = next[current];
      delete next[current];
      ed.current?.forget(current);
      onChange?.(next);
    }
    setActive(name);
    setNaming(null);
  };
  const remove = () => {
    if (!current || paths.length <= 1) return;
    if (!confirm(`Delete ${current}?`)) return;
    const next = { ...files };
    delete next[current];
    ed.current?.forget(current);
    onChange?.(next);
  };

  const renderTree = (nodes) => (
    <ul>
      {nodes.map((n) =>
        n.children ? (
          <li key={`d:${n.path}`}>
            <div class="folder">{n.name}/</div>
            {renderTree(n.children)}
          </li>
        ) : (
          <li key={n.path}>
            <button
              type="button"
              class="file"
              aria-current={n.path === current ? 'true' : undefined}
              onClick={() => setActive(n.path)}
              title={n.path}
              data-testid={`file-${n.path}`}
            >
              {n.name}
            </button>
          </li>
        ),
      )}
    </ul>
  );

  return (
    <div class="code-layout" data-testid={testid}>
      <nav class="file-tree" aria-label="Files">
        {renderTree(fileTree(paths))}
        {binary.length > 0 && (
          <p class="muted small" title={binary.join('\n')}>
            + {binary.length} binary or large file{binary.length === 1 ? '' : 's'} (kept as they are)
          </p>
        )}
        {!readOnly && onChange && (
          <div class="tree-actions">
            {naming ? (
              <form onSubmit={commitName} class="field">
                <label for="file-name">{naming.mode === 'new' ? 'New file' : `Rename ${current}`}</label>
                <input
                  id="file-name"
                  value={naming.value}
                  onInput={(e) => setNaming({ ...naming, value: /** @type {HTMLInputElement} */ (e.target).value, error: undefined })}
                  onKeyDown={(e) => e.key === 'Escape' && setNaming(null)}
                  autoFocus
                  aria-invalid={naming.error ? 'true' : undefined}
                  data-testid="file-name"
                />
                {naming.error && <p class="field-error">{naming.error}</p>}
                <div class="btn-row">
                  <button type="submit" class="btn small primary" data-testid="file-name-ok">
                    OK
                  </button>
                  <button type="button" class="btn small" onClick={() => setNaming(null)}>
                    Cancel
                  </button>
                </div>
              </form>
            ) : (
              <>
                <button type="button" class="btn small" onClick={startNew} data-testid="file-new">
                  New file
                </button>
                <button type="button" class="btn small" onClick={startRename} disabled={!current}>
                  Rename
                </button>
                <button type="button" class="btn small danger" onClick={remove} disabled={paths.length <= 1}>
                  Delete
                </button>
              </>
            )}
          </div>
        )}
      </nav>
      <div class="editor-box">
        <div class="editor-bar">
          <span>{current || 'no file'}</span>
          <span class="muted">{languageOf(current)}</span>
          {readOnly && <span class="badge">read-only</span>}
        </div>
        <ErrorBox error={error} title="Could not load the editor" />
        {!ready && !error && <Loading what="Loading the editor" />}
        <div ref={host} class="editor-host" data-testid={`${testid}-host`} />
      </div>
    </div>
  );
}
