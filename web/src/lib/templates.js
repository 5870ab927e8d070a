// Starter code per runtime: what a new function's editor opens with.

export const TEMPLATES = {
  python3: {
    handler: 'main.handler',
    files: {
      'main.py': 'def handler(event, context):\n    return {"hello": event.get("name", "world")}\n',
    },
    event: { name: 'world' },
  },
  nodejs: {
    handler: 'index.handler',
    files: {
      'index.js': "exports.handler = async (event, context) => ({ hello: event.name ?? 'world' });\n",
    },
    event: { name: 'world' },
  },
};

/** The editor's language for a path. @param {string} path */
export function languageOf(path) {
  if (/\.py$/i.test(path)) return 'python';
  if (/\.(c|m)?js$/i.test(path) || /\.ts$/i.test(path)) return 'javascript';
  if (/\.json$/i.test(path)) return 'json';
  return 'text';
}

/** The file a new file gets by default for a runtime. @param {string} runtime */
export function newFileName(runtime, existing) {
  const ext = runtime === 'nodejs' ? 'js' : 'py';
  for (let i = 1; ; i++) {
    const name = `module${i === 1 ? '' : i}.${ext}`;
    if (!existing.includes(name)) return name;
  }
}

/**
 * A file path the editor accepts (the server's archive path rules):
 * relative, "/"-separated, no empty, "." or ".." segment, no "\\" or ":".
 * @param {string} path
 */
export function checkFilePath(path) {
  if (!path) return 'a file needs a name';
  if (path.length > 512) return 'longer than 512 characters';
  if (path.startsWith('/') || path.includes('\\') || path.includes(':') || path.includes('\0')) {
    return 'use a relative path with "/" between folders';
  }
  if (path.split('/').some((s) => s === '' || s === '.' || s === '..')) return 'no empty, "." or ".." part';
  return null;
}

/**
 * The file tree of a set of paths: folders first, then files, each sorted.
 * @param {string[]} paths
 * @returns {{name: string, path: string, children?: any[]}[]}
 */
export function fileTree(paths) {
  const root = { children: new Map() };
  for (const p of paths) {
    const parts = p.split('/');
    let node = root;
    parts.forEach((part, i) => {
      const isFile = i === parts.length - 1;
      const key = (isFile ? 'f:' : 'd:') + part;
      if (!node.children.has(key)) {
        node.children.set(
          key,
          isFile ? { name: part, path: p } : { name: part, path: parts.slice(0, i + 1).join('/'), children: new Map() },
        );
      }
      node = node.children.get(key);
    });
  }
  const out = (n) =>
    [...n.children.values()]
      .sort((a, b) => (a.children ? 0 : 1) - (b.children ? 0 : 1) || a.name.localeCompare(b.name))
      .map((c) => (c.children ? { name: c.name, path: c.path, children: out(c) } : c));
  return out(root);
}
