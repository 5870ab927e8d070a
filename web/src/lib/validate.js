// The function model's rules, the same as the server's
// (crates/ignis-core/src/function.rs): the form says what is wrong before
// sending, and the server still checks everything.

export const LIMITS = Object.freeze({
  timeout_ms: { min: 100, max: 900_000, default: 3000, integer: true },
  memory_mb: { min: 64, max: 4096, default: 128, integer: true },
  cpus: { min: 0.05, max: 16, default: 0.5, integer: false },
  min_warm: { min: 0, max: 100, default: 0, integer: true },
  max_concurrency: { min: 1, max: 1000, default: 10, integer: true },
  batch_max_size: { min: 1, max: 64, default: 1, integer: true },
  batch_max_wait_ms: { min: 0, max: 1000, default: 0, integer: true },
  queue_timeout_ms: { min: 0, max: 900_000, default: 10_000, integer: true },
  keep_alive_s: { min: 0, max: 86_400, default: 600, integer: true },
});

export const ENV_TOTAL_BYTES = 4096;
export const ROUTE_MAX_LEN = 256;
export const HANDLER_MAX_LEN = 256;
export const MAX_CODE_BYTES = 50 * 1024 * 1024;
export const RUNTIMES = ['python3', 'nodejs'];
export const BACKENDS = ['docker', 'microvm'];
export const HTTP_AUTH = ['key', 'none'];

/** Every configuration field of a function (FunctionConfig), in form order. */
export const CONFIG_FIELDS = [
  'runtime',
  'handler',
  'backend',
  'timeout_ms',
  'memory_mb',
  'cpus',
  'route',
  'http_auth',
  'env',
  'min_warm',
  'max_concurrency',
  'keep_alive_s',
  'queue_timeout_ms',
  'batch_max_size',
  'batch_max_wait_ms',
  'batch_concurrent',
];

const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const IDENT_RE = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const HANDLER_SEGMENT_RE = /^[A-Za-z0-9_.-]+$/;
const ROUTE_SEGMENT_RE = /^[A-Za-z0-9._~-]+$/;
const ENV_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const EVENT_NAME_RE = /^[A-Za-z0-9 ._-]{1,64}$/;

/** @param {string} s */
const utf8Len = (s) => new TextEncoder().encode(s).length;

/** A function or namespace name: null when valid, else why not. @param {string} name */
export function checkName(name, what = 'name') {
  if (!name) return `a ${what} is required`;
  if (name.length > 64) return `a ${what} has at most 64 characters`;
  if (!NAME_RE.test(name)) {
    return `use a-z, 0-9, "-" and "_", starting with a letter or digit`;
  }
  return null;
}

/** @param {string} handler */
export function checkHandler(handler) {
  if (!handler) return 'a handler is required, e.g. main.handler';
  if (utf8Len(handler) > HANDLER_MAX_LEN) return 'longer than 256 characters';
  const dot = handler.lastIndexOf('.');
  if (dot < 0) return 'expected FILE.FUNCTION such as main.handler (no "." between file and function)';
  const module = handler.slice(0, dot);
  const func = handler.slice(dot + 1);
  if (!IDENT_RE.test(func)) return 'the function name (after the last ".") is not an identifier';
  if (!module || module.startsWith('/')) return 'the file part must be a relative path';
  for (const seg of module.split('/')) {
    if (seg === '' || seg === '.' || seg === '..') return 'the file part has an empty, "." or ".." segment';
    if (!HANDLER_SEGMENT_RE.test(seg)) return 'the file part may only hold A-Z, a-z, 0-9, "_", "-", "." and "/"';
  }
  return null;
}

/** @param {string} route  an empty route means "no HTTP trigger" */
export function checkRoute(route) {
  if (route === '' || route === null || route === undefined) return null;
  if (!route.startsWith('/')) return 'a route starts with "/"';
  if (utf8Len(route) > ROUTE_MAX_LEN) return 'longer than 256 characters';
  for (const seg of route.slice(1).split('/')) {
    if (seg === '') return 'empty path segment (double or trailing "/", or "/" alone)';
    if (seg === '.' || seg === '..') return '"." and ".." segments are not allowed';
    if (!ROUTE_SEGMENT_RE.test(seg)) return 'segments may only hold A-Z, a-z, 0-9, ".", "_", "~" and "-"';
  }
  return null;
}

/**
 * A number field from its text: the value, or why not.
 * @param {string} field a key of LIMITS
 * @param {string | number} raw
 * @returns {{value?: number, error?: string}}
 */
export function checkNumber(field, raw) {
  const lim = LIMITS[field];
  const text = String(raw ?? '').trim();
  if (text === '') return { error: 'required' };
  if (!/^-?(\d+(\.\d*)?|\.\d+)$/.test(text)) return { error: 'must be a number' };
  const value = Number(text);
  if (lim.integer && !Number.isInteger(value)) return { error: 'must be a whole number' };
  if (value < lim.min || value > lim.max) return { error: `must be between ${lim.min} and ${lim.max}` };
  return { value };
}

/**
 * Environment variables from the editor's rows: the map, and errors by row
 * index (`key` / `value`) and overall.
 * @param {{key: string, value: string}[]} rows
 */
export function checkEnv(rows) {
  /** @type {Record<string, string>} */
  const env = {};
  /** @type {Record<number, string>} */
  const rowErrors = {};
  let total = 0;
  rows.forEach((row, i) => {
    const key = row.key.trim();
    const value = row.value ?? '';
    if (key === '' && value === '') return; // an empty row is ignored
    if (!ENV_KEY_RE.test(key)) {
      rowErrors[i] = 'names use A-Z, a-z, 0-9 and "_", not starting with a digit';
    } else if (key.startsWith('IGNIS_') || key.startsWith('AWS_LAMBDA_')) {
      rowErrors[i] = 'reserved: the prefixes IGNIS_ and AWS_LAMBDA_ are set by ignis';
    } else if (value.includes('\0')) {
      rowErrors[i] = 'the value contains a NUL byte';
    } else if (Object.prototype.hasOwnProperty.call(env, key)) {
      rowErrors[i] = `${key} is set twice`;
    }
    env[key] = value;
    total += utf8Len(key) + utf8Len(value);
  });
  const error = total > ENV_TOTAL_BYTES ? `environment variables take ${total} bytes, the limit is ${ENV_TOTAL_BYTES}` : null;
  return { env, rowErrors, total, error };
}

/**
 * The files that may hold the handler's module, in lookup order (as the
 * server's `handler_files`).
 * @param {string} runtime
 * @param {string} handler
 */
export function handlerFiles(runtime, handler) {
  const dot = handler.lastIndexOf('.');
  const module = dot < 0 ? handler : handler.slice(0, dot);
  const exts = runtime === 'nodejs' ? ['js', 'mjs', 'cjs'] : ['py'];
  return exts.map((e) => `${module}.${e}`);
}

/**
 * Whether the code holds the handler's module: null when it does (or when
 * the file list is unknown), else the message.
 * @param {string} runtime
 * @param {string} handler
 * @param {string[] | null} paths
 */
export function checkHandlerFile(runtime, handler, paths) {
  if (!paths || checkHandler(handler)) return null;
  const candidates = handlerFiles(runtime, handler);
  if (candidates.some((c) => paths.includes(c))) return null;
  return `handler ${handler} needs ${candidates.join(' or ')} in the code`;
}

/**
 * The whole form. `form` holds the inputs' raw values (strings for numbers,
 * env as rows, route '' for none). Returns the request body's
 * configuration and the errors by field; `errors` is empty when valid.
 * @param {any} form
 * @param {{isNew: boolean, codePaths?: string[] | null, needsCode?: boolean}} opts
 */
export function validateFunctionForm(form, opts) {
  /** @type {Record<string, string>} */
  const errors = {};
  /** @type {Record<string, any>} */
  const config = {};

  if (opts.isNew) {
    const e = checkName(form.name ?? '');
    if (e) errors.name = e;
    const ns = checkName(form.namespace ?? '', 'namespace');
    if (ns) errors.namespace = ns;
  }
  if (!RUNTIMES.includes(form.runtime)) errors.runtime = 'choose python3 or nodejs';
  else config.runtime = form.runtime;
  const h = checkHandler(form.handler ?? '');
  if (h) errors.handler = h;
  else config.handler = form.handler;
  if (!BACKENDS.includes(form.backend)) errors.backend = 'choose docker or microvm';
  else config.backend = form.backend;

  for (const field of Object.keys(LIMITS)) {
    const { value, error } = checkNumber(field, form[field]);
    if (error) errors[field] = error;
    else config[field] = value;
  }
  if (!errors.min_warm && !errors.max_concurrency && config.min_warm > config.max_concurrency) {
    errors.min_warm = `cannot exceed max concurrency (${config.max_concurrency})`;
  }

  const route = (form.route ?? '').trim();
  const r = checkRoute(route);
  if (r) errors.route = r;
  else config.route = route === '' ? null : route;
  if (!HTTP_AUTH.includes(form.http_auth)) errors.http_auth = 'choose key or none';
  else config.http_auth = form.http_auth;

  const env = checkEnv(form.env ?? []);
  if (Object.keys(env.rowErrors).length) errors.env = Object.values(env.rowErrors)[0];
  else if (env.error) errors.env = env.error;
  config.env = env.env;
  config.batch_concurrent = Boolean(form.batch_concurrent);

  if (opts.needsCode && (!opts.codePaths || opts.codePaths.length === 0)) {
    errors.code = 'add code: write it in the editor, upload a zip or drop a folder';
  } else if (!errors.handler && config.runtime) {
    const f = checkHandlerFile(config.runtime, config.handler, opts.codePaths ?? null);
    if (f) errors.code = f;
  }
  return { config, errors, envRowErrors: env.rowErrors };
}

/** A form's initial values: from a function, or the defaults for a new one. */
export function formFromFunction(f) {
  const base = f ?? {
    namespace: 'default',
    name: '',
    runtime: 'python3',
    handler: 'main.handler',
    backend: 'docker',
    route: null,
    http_auth: 'key',
    env: {},
    batch_concurrent: false,
    ...Object.fromEntries(Object.entries(LIMITS).map(([k, v]) => [k, v.default])),
  };
  const form = {
    namespace: base.namespace,
    name: base.name,
    runtime: base.runtime,
    handler: base.handler,
    backend: base.backend,
    route: base.route ?? '',
    http_auth: base.http_auth,
    env: Object.entries(base.env ?? {}).map(([key, value]) => ({ key, value })),
    batch_concurrent: Boolean(base.batch_concurrent),
  };
  for (const k of Object.keys(LIMITS)) form[k] = String(base[k]);
  return form;
}

/**
 * The fields of `config` that differ from `current` (what a PUT sends, so
 * an unchanged form changes nothing).
 */
export function configPatch(current, config) {
  /** @type {Record<string, any>} */
  const patch = {};
  for (const k of CONFIG_FIELDS) {
    if (!(k in config)) continue;
    if (JSON.stringify(canon(current[k])) !== JSON.stringify(canon(config[k]))) patch[k] = config[k];
  }
  return patch;
}

/** Key order does not matter for env maps. */
function canon(v) {
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, v[k]]),
    );
  }
  return v ?? null;
}

/** A test event's name (server: 1-64 of A-Z a-z 0-9 space - _ .). @param {string} name */
export function checkEventName(name) {
  return EVENT_NAME_RE.test(name) ? null : '1 to 64 characters from A-Z, a-z, 0-9, space, "-", "_", "."';
}

/** An API key's name (1 to 100 characters). @param {string} name */
export function checkKeyName(name) {
  const n = [...(name ?? '').trim()].length;
  return n >= 1 && n <= 100 ? null : 'a key name has 1 to 100 characters';
}

/**
 * JSON text: the value, or the error with its line and column.
 * @param {string} text
 * @returns {{ok: true, value: any} | {ok: false, message: string, line?: number, column?: number}}
 */
export function parseJson(text) {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (e) {
    const message = String(/** @type {Error} */ (e).message);
    const lc = /line (\d+) column (\d+)/.exec(message);
    if (lc) return { ok: false, message, line: Number(lc[1]), column: Number(lc[2]) };
    const pos = /position (\d+)/.exec(message);
    if (pos) {
      const before = text.slice(0, Number(pos[1]));
      const line = before.split('\n').length;
      const column = before.length - before.lastIndexOf('\n');
      return { ok: false, message, line, column };
    }
    return { ok: false, message };
  }
}
