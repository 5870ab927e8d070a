// Builds the console into dist/: index.html (never cached, no hash in its
// name) and hashed, immutable assets under dist/assets/. The editor
// (CodeMirror) is its own entry point, loaded with import() only when an
// editor opens. Prints the gzipped size of the initial load and of the
// editor, and fails when the initial load is over the budget.
//
//   node build.mjs            build once
//   node build.mjs --watch    rebuild on every change (with --console-dir, reload the page)

import * as esbuild from 'esbuild';
import { gzipSync } from 'node:zlib';
import { readFileSync, writeFileSync, readdirSync, rmSync, mkdirSync, existsSync } from 'node:fs';
import { join, relative, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, 'dist');
const assets = join(dist, 'assets');
const BUDGET_GZIP = 250 * 1024;
const watch = process.argv.includes('--watch');

/** @type {esbuild.BuildOptions} */
const options = {
  absWorkingDir: root,
  entryPoints: { main: 'src/main.jsx', editor: 'src/editor/editor.js' },
  outdir: 'dist/assets',
  bundle: true,
  splitting: true,
  format: 'esm',
  minify: true,
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  entryNames: '[name]-[hash]',
  chunkNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  publicPath: '/assets/',
  metafile: true,
  jsx: 'automatic',
  jsxImportSource: 'preact',
  loader: { '.svg': 'file' },
  define: { 'process.env.NODE_ENV': '"production"' },
  logLevel: 'warning',
  plugins: [{ name: 'index-html', setup: (b) => b.onEnd((r) => r.metafile && finish(r.metafile)) }],
};

/** The output of an entry point, by its source path. */
function outputOf(meta, entry) {
  const [path] = Object.entries(meta.outputs).find(([, o]) => o.entryPoint === entry) ?? [];
  if (!path) throw new Error(`no output for ${entry}`);
  return path;
}

/** An output and every chunk it imports statically (what loads with it). */
function closure(meta, start, skip = new Set()) {
  const seen = new Set();
  const visit = (p) => {
    if (seen.has(p) || skip.has(p)) return;
    seen.add(p);
    for (const imp of meta.outputs[p].imports) if (imp.kind === 'import-statement') visit(imp.path);
  };
  visit(start);
  return seen;
}

const gz = (path) => gzipSync(readFileSync(join(root, path)), { level: 9 }).length;
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
const url = (path) => `/${relative('dist', path).split('\\').join('/')}`;

function finish(meta) {
  const main = outputOf(meta, 'src/main.jsx');
  const editor = outputOf(meta, 'src/editor/editor.js');
  const initial = closure(meta, main);
  const css = meta.outputs[main].cssBundle;
  if (css) initial.add(css);
  const editorFiles = closure(meta, editor, initial);
  const editorCss = meta.outputs[editor].cssBundle;
  if (editorCss) editorFiles.add(editorCss);

  const template = readFileSync(join(root, 'src/index.html'), 'utf8');
  const preload = [...initial]
    .filter((p) => p !== main && p.endsWith('.js'))
    .sort()
    .map((p) => `<link rel="modulepreload" href="${url(p)}">`)
    .join('\n    ');
  const html = template
    .replace('<!--css-->', css ? `<link rel="stylesheet" href="${url(css)}">` : '')
    .replace('<!--preload-->', preload)
    .replace('<!--js-->', `<script type="module" src="${url(main)}"></script>`);
  writeFileSync(join(dist, 'index.html'), html);

  // Drop the assets of earlier builds (watch mode, or a stale dist/).
  const keep = new Set(Object.keys(meta.outputs).map((p) => join(root, p)));
  for (const f of readdirSync(assets)) if (!keep.has(join(assets, f))) rmSync(join(assets, f));

  const initialGz = [...initial].reduce((n, p) => n + gz(p), 0);
  const editorGz = [...editorFiles].reduce((n, p) => n + gz(p), 0);
  const lines = [...initial].sort().map((p) => `    ${url(p).padEnd(40)} ${kb(gz(p)).padStart(9)} gzip`);
  console.log(`console size (gzipped):
  initial load (JS+CSS): ${kb(initialGz)} of a ${kb(BUDGET_GZIP)} budget
${lines.join('\n')}
  editor (loaded when an editor opens): ${kb(editorGz)} in ${editorFiles.size} file(s)`);
  if (initialGz > BUDGET_GZIP) {
    console.error(`build failed: the initial load is ${kb(initialGz)} gzipped, over the ${kb(BUDGET_GZIP)} budget`);
    if (!watch) process.exitCode = 1;
  }
}

mkdirSync(assets, { recursive: true });
if (watch) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
  console.log('watching src/ (Ctrl-C to stop)');
} else {
  await esbuild.build(options);
  if (!existsSync(join(dist, 'index.html'))) process.exitCode = 1;
}
