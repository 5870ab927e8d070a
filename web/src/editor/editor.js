// The code editor (CodeMirror 6 with Python, JavaScript and JSON). This
// module is its own chunk: the console imports it only when an editor
// opens, so the initial load stays small.

import { EditorView, basicSetup } from 'codemirror';
import { EditorState, Compartment } from '@codemirror/state';
import { keymap } from '@codemirror/view';
import { indentWithTab } from '@codemirror/commands';
import { python } from '@codemirror/lang-python';
import { javascript } from '@codemirror/lang-javascript';
import { json } from '@codemirror/lang-json';
import { oneDark } from '@codemirror/theme-one-dark';

const languages = {
  python: () => python(),
  javascript: () => javascript(),
  json: () => json(),
  text: () => [],
};

/**
 * An editor in `parent` that edits one file at a time; each file keeps its
 * own state (undo history, selection) while others are shown.
 * @param {HTMLElement} parent
 * @param {{dark: boolean, onChange: (path: string, text: string) => void}} opts
 */
export function createEditor(parent, { dark, onChange }) {
  /** @type {Map<string, EditorState>} */
  const states = new Map();
  const readOnly = new Compartment();
  let current = '';
  let ro = false;

  const extensions = (lang) => [
    basicSetup,
    keymap.of([indentWithTab]),
    (languages[lang] ?? languages.text)(),
    dark ? oneDark : [],
    readOnly.of([EditorState.readOnly.of(ro), EditorView.editable.of(!ro)]),
    EditorView.contentAttributes.of({ 'aria-label': 'Code editor (Escape then Tab leaves the editor)' }),
    EditorView.updateListener.of((u) => {
      if (u.docChanged) onChange(current, u.state.doc.toString());
    }),
  ];

  const view = new EditorView({ parent, state: EditorState.create({ doc: '', extensions: extensions('text') }) });

  return {
    /** Shows `path` (its saved state when it was open before and `text` is unchanged). */
    open(path, text, lang) {
      if (current) states.set(current, view.state);
      current = path;
      let st = states.get(path);
      if (!st || st.doc.toString() !== text) st = EditorState.create({ doc: text, extensions: extensions(lang) });
      view.setState(st);
      view.dispatch({ effects: readOnly.reconfigure([EditorState.readOnly.of(ro), EditorView.editable.of(!ro)]) });
    },
    setReadOnly(value) {
      ro = value;
      view.dispatch({ effects: readOnly.reconfigure([EditorState.readOnly.of(ro), EditorView.editable.of(!ro)]) });
    },
    /** Forgets a file's state (deleted or renamed). */
    forget(path) {
      states.delete(path);
    },
    focus() {
      view.focus();
    },
    destroy() {
      view.destroy();
    },
  };
}
