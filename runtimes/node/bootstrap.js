'use strict';
// ignis Node.js bootstrap: the sandbox side of the channel protocol.
//
// Usage:
//   node bootstrap.js --socket PATH [--code-dir DIR]
//   node bootstrap.js --device PATH [--code-dir DIR] [--drop-privileges UID]
//
// The protocol is specified in docs/protocol.md. Standard library only,
// CommonJS, Node.js 18 or later. Protocol messages travel only on the
// channel; the handler's output is captured per call and never reaches it.

const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const zlib = require('node:zlib');
const { pathToFileURL } = require('node:url');
const { AsyncLocalStorage } = require('node:async_hooks');
const { performance } = require('node:perf_hooks');

// Defaults of the limits the host sends in `init` (`limits`): the host is
// the one place they are set.
let LOG_CAP = 65536; // bytes of UTF-8 per stream and call
let MAX_RESPONSE_BYTES = 6291456;

/** Takes the host's `limits` from `init` (missing ones keep the defaults). */
function applyLimits(limits) {
  if (!limits || typeof limits !== 'object') return;
  if (Number.isSafeInteger(limits.max_log_bytes) && limits.max_log_bytes > 0) {
    LOG_CAP = limits.max_log_bytes;
  }
  if (Number.isSafeInteger(limits.max_response_bytes) && limits.max_response_bytes > 0) {
    MAX_RESPONSE_BYTES = limits.max_response_bytes;
  }
}
const DEFAULT_CODE_DIR = '/var/task';
const SKEW_THRESHOLD_MS = 1000;

const realStdoutWrite = process.stdout.write.bind(process.stdout);
const realStderrWrite = process.stderr.write.bind(process.stderr);

function logReal(text) {
  try {
    realStderrWrite(text.endsWith('\n') ? text : text + '\n');
  } catch (_) {
    // nowhere left to report it
  }
}

// ---------------------------------------------------------------------------
// Output capture

/** The captured output of one call (or of the import at init). */
class Capture {
  constructor() {
    this.out = [];
    this.outBytes = 0;
    this.err = [];
    this.errBytes = 0;
    this.truncated = false;
    this.done = false;
    this.fail = null; // set for calls: fails the call (uncaught errors)
  }

  add(isErr, chunk, encoding) {
    let buf;
    let shared = false; // whether buf is the caller's memory (to be copied)
    if (typeof chunk === 'string') {
      buf = Buffer.from(chunk, typeof encoding === 'string' && Buffer.isEncoding(encoding) ? encoding : 'utf8');
    } else if (chunk instanceof Uint8Array) {
      buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      shared = true;
    } else {
      buf = Buffer.from(String(chunk), 'utf8');
    }
    if (buf.length === 0) return;
    const used = isErr ? this.errBytes : this.outBytes;
    if (used >= LOG_CAP) {
      this.truncated = true;
      return;
    }
    const room = LOG_CAP - used;
    const list = isErr ? this.err : this.out;
    if (buf.length <= room) {
      list.push(shared ? Buffer.from(buf) : buf); // the caller may reuse its buffer
      if (isErr) this.errBytes = used + buf.length;
      else this.outBytes = used + buf.length;
      return;
    }
    let cut = room;
    while (cut > 0 && (buf[cut] & 0xc0) === 0x80) cut--;
    if (cut > 0) list.push(Buffer.from(buf.subarray(0, cut)));
    if (isErr) this.errBytes = LOG_CAP;
    else this.outBytes = LOG_CAP;
    this.truncated = true;
  }

  finish() {
    this.done = true;
    return {
      stdout: this.out.length ? Buffer.concat(this.out).toString('utf8') : '',
      stderr: this.err.length ? Buffer.concat(this.err).toString('utf8') : '',
      logs_truncated: this.truncated,
    };
  }
}

const als = new AsyncLocalStorage();
/** Calls running now (Capture objects). */
const running = new Set();

/** Where output written now belongs, or null for the real stream. */
function currentCapture() {
  const store = als.getStore();
  if (store && !store.done) return store;
  // Code outside any call's async context (a listener or timer set up at
  // import time): attributable only when one call is running.
  if (running.size === 1) {
    for (const c of running) return c;
  }
  return null;
}

/** The running call an escaped error belongs to, or null. An error from a
 * call that has already answered is only logged. */
function failingCall() {
  const store = als.getStore();
  let cap = null;
  if (store) cap = store;
  else if (running.size === 1) for (const c of running) cap = c;
  return cap && !cap.done && cap.fail ? cap : null;
}

function makeWrite(isErr, realWrite) {
  return function write(chunk, encoding, cb) {
    if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    const cap = currentCapture();
    if (cap === null) return realWrite(chunk, encoding, cb);
    cap.add(isErr, chunk, encoding);
    if (typeof cb === 'function') process.nextTick(cb);
    return true;
  };
}

process.stdout.write = makeWrite(false, realStdoutWrite);
process.stderr.write = makeWrite(true, realStderrWrite);

// ---------------------------------------------------------------------------
// Errors

class InitFailure extends Error {
  constructor(type, message, stack) {
    super(message);
    this.body = { type, message, stack: stack || '' };
  }
}

function errorName(e) {
  let name = e && typeof e.name === 'string' && e.name ? e.name : 'Error';
  if (name === 'Error' && e && e.constructor && typeof e.constructor.name === 'string' &&
      e.constructor.name && e.constructor.name !== 'Error' && e.constructor.name !== 'Object') {
    name = e.constructor.name;
  }
  return name;
}

function describe(v) {
  if (typeof v === 'string') return v;
  try {
    const s = JSON.stringify(v);
    if (s !== undefined) return s;
  } catch (_) {
    // fall through
  }
  return String(v);
}

/** The string with lone surrogates replaced (the host rejects strings that
 * are not valid Unicode). */
function wellFormed(s) {
  return Buffer.from(s, 'utf8').toString('utf8');
}

/** `{type, message, stack}` of a thrown / rejected value. */
function errorBody(type, e) {
  const body = rawErrorBody(type, e);
  body.message = wellFormed(body.message);
  body.stack = wellFormed(body.stack);
  return body;
}

function rawErrorBody(type, e) {
  if (e instanceof Error || (e && typeof e === 'object' && typeof e.message === 'string')) {
    const name = errorName(e);
    const msg = e.message ? `${name}: ${e.message}` : name;
    let stack = '';
    try {
      stack = typeof e.stack === 'string' ? e.stack : '';
    } catch (_) {
      stack = '';
    }
    return { type, message: msg, stack };
  }
  return { type, message: `Error: ${describe(e)}`, stack: '' };
}

// ---------------------------------------------------------------------------
// Zip reading (central directory; stored and deflate)

function readZip(data) {
  const fail = (why) => {
    throw new InitFailure('InvalidArchive', `bad code archive: ${why}`);
  };
  if (data.length < 22) fail('too short to be a zip file');
  let eocd = -1;
  const lowest = Math.max(0, data.length - 22 - 65535);
  for (let i = data.length - 22; i >= lowest; i--) {
    if (data.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) fail('no end of central directory record');
  const count = data.readUInt16LE(eocd + 10);
  const cdSize = data.readUInt32LE(eocd + 12);
  const cdOffset = data.readUInt32LE(eocd + 16);
  if (count === 0xffff || cdOffset === 0xffffffff || cdSize === 0xffffffff) {
    fail('zip64 archives are not supported');
  }
  if (cdOffset + cdSize > data.length) fail('central directory out of bounds');
  const entries = [];
  let p = cdOffset;
  for (let n = 0; n < count; n++) {
    if (p + 46 > data.length || data.readUInt32LE(p) !== 0x02014b50) fail('bad central directory entry');
    const flags = data.readUInt16LE(p + 8);
    const method = data.readUInt16LE(p + 10);
    const csize = data.readUInt32LE(p + 20);
    const usize = data.readUInt32LE(p + 24);
    const nameLen = data.readUInt16LE(p + 28);
    const extraLen = data.readUInt16LE(p + 30);
    const commentLen = data.readUInt16LE(p + 32);
    const attrs = data.readUInt32LE(p + 38);
    const local = data.readUInt32LE(p + 42);
    if (p + 46 + nameLen > data.length) fail('bad central directory entry');
    const name = data.toString(flags & 0x800 ? 'utf8' : 'latin1', p + 46, p + 46 + nameLen);
    entries.push({ name, flags, method, csize, usize, local, mode: (attrs >>> 16) & 0xffff });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

function entryData(data, e) {
  const fail = (why) => {
    throw new InitFailure('InvalidArchive', `bad code archive: ${e.name}: ${why}`);
  };
  if (e.flags & 0x1) fail('encrypted entries are not supported');
  const p = e.local;
  if (p + 30 > data.length || data.readUInt32LE(p) !== 0x04034b50) fail('bad local header');
  const start = p + 30 + data.readUInt16LE(p + 26) + data.readUInt16LE(p + 28);
  const end = start + e.csize;
  if (end > data.length) fail('data out of bounds');
  const raw = data.subarray(start, end);
  let out;
  if (e.method === 0) out = raw;
  else if (e.method === 8) {
    try {
      out = zlib.inflateRawSync(raw);
    } catch (err) {
      fail(`inflate: ${err.message}`);
    }
  } else fail(`unsupported compression method ${e.method}`);
  if (out.length !== e.usize) fail(`size mismatch (${out.length} != ${e.usize})`);
  return out;
}

function safeMember(name) {
  if (!name || name.includes('\0')) return false;
  if (name.startsWith('/') || name.startsWith('\\') || /^[A-Za-z]:/.test(name)) return false;
  return !name.replace(/\\/g, '/').split('/').includes('..');
}

function extractZip(data, dir) {
  const entries = readZip(data);
  for (const e of entries) {
    if (!safeMember(e.name)) {
      throw new InitFailure('InvalidArchive', `unsafe path in the code archive: ${JSON.stringify(e.name)}`);
    }
  }
  fs.mkdirSync(dir, { recursive: true });
  for (const e of entries) {
    const rel = e.name.replace(/\\/g, '/');
    const target = path.join(dir, rel);
    if (rel.endsWith('/')) {
      fs.mkdirSync(target, { recursive: true });
      continue;
    }
    const content = entryData(data, e);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    const exec = (e.mode & 0o170000) === 0o100000 && (e.mode & 0o111) !== 0;
    fs.writeFileSync(target, content, { mode: exec ? 0o755 : 0o644 });
  }
}

// ---------------------------------------------------------------------------
// Handler loading

function isFile(p) {
  try {
    return fs.statSync(p).isFile();
  } catch (_) {
    return false;
  }
}

async function loadModule(file) {
  if (file.endsWith('.mjs')) return import(pathToFileURL(file).href);
  if (file.endsWith('.cjs')) return require(file);
  try {
    return require(file);
  } catch (e) {
    if (e && e.code === 'ERR_REQUIRE_ESM') return import(pathToFileURL(file).href);
    throw e;
  }
}

async function loadHandler(codeDir, spec) {
  const bad = () => new InitFailure('HandlerNotFound', `bad handler ${JSON.stringify(spec)}: expected PATH.FUNCTION`);
  if (typeof spec !== 'string') throw bad();
  const dot = spec.lastIndexOf('.');
  if (dot <= 0 || dot === spec.length - 1) throw bad();
  const func = spec.slice(dot + 1);
  const parts = spec.slice(0, dot).replace(/\\/g, '/').split('/').filter((s) => s !== '');
  if (parts.length === 0 || parts.includes('..')) throw bad();
  const base = path.join(codeDir, ...parts);
  const file = ['.js', '.mjs', '.cjs'].map((ext) => base + ext).find(isFile);
  const shown = parts.join('/');
  if (!file) {
    throw new InitFailure('HandlerNotFound',
      `handler module ${JSON.stringify(shown)} not found (no ${shown}.js, ${shown}.mjs or ${shown}.cjs in the code archive)`);
  }
  let mod;
  try {
    mod = await loadModule(file);
  } catch (e) {
    throw new InitFailure('ImportError', errorBody('ImportError', e).message, errorBody('ImportError', e).stack);
  }
  let fn = mod == null ? undefined : mod[func];
  if (fn === undefined && mod && mod.default != null && typeof mod.default === 'object') fn = mod.default[func];
  if (fn === undefined) {
    throw new InitFailure('HandlerNotFound', `module ${JSON.stringify(path.basename(file))} has no export ${JSON.stringify(func)}`);
  }
  if (typeof fn !== 'function') {
    throw new InitFailure('HandlerNotFound', `${shown}.${func} is not a function (it is ${typeof fn})`);
  }
  return fn;
}

// ---------------------------------------------------------------------------
// Running a handler

function isThenable(v) {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof v.then === 'function';
}

/** Calls the handler; resolves/rejects with its outcome whatever its style. */
function callHandler(fn, event, context, cap) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const ok = (v) => {
      if (!settled) {
        settled = true;
        resolve(v);
      }
    };
    const ko = (e) => {
      if (!settled) {
        settled = true;
        reject(e);
      }
    };
    cap.fail = ko;
    const callback = (err, value) => {
      if (err !== null && err !== undefined) ko(err);
      else ok(value);
    };
    context.done = callback;
    context.succeed = (value) => ok(value);
    context.fail = (err) => ko(err === undefined || err === null ? new Error('handler failed') : err);
    try {
      if (fn.length >= 3) {
        const r = fn(event, context, callback);
        if (isThenable(r)) r.then(ok, ko);
      } else {
        const r = fn(event, context);
        if (isThenable(r)) r.then(ok, ko);
        else ok(r);
      }
    } catch (e) {
      ko(e);
    }
  });
}

// ---------------------------------------------------------------------------
// The bootstrap

// ---------------------------------------------------------------------------
// A restored microVM clone's own identity (docs/protocol.md, `restore`)

/**
 * Node.js cannot ioctl, so a root bootstrap starts a small Python helper
 * (`bootstrap.py --reseed DIR`) before the snapshot is taken; a clone hands
 * it the `restore` message through a FIFO and it reseeds the kernel and sets
 * the clock. Synchronous FIFO I/O, not child-process streams: in a clone
 * under TCG every JS path run for the first time costs, and streams cost
 * ~0.6 s there.
 */
function startReseedHelper() {
  const { spawn } = require('node:child_process');
  const dir = fs.mkdtempSync('/run/ignis-reseed-');
  const helper = spawn('/usr/bin/python3', ['-S', '-B', path.join(__dirname, 'bootstrap.py'), '--reseed', dir], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  helper.on('error', () => {});
  const pathIn = path.join(dir, 'in');
  return {
    /**
     * Resolves once the helper waits on its FIFO: `booted` is sent only
     * then, so that a snapshot never holds a helper still starting (which
     * every clone would have to finish, ~0.7 s under TCG).
     */
    ready() {
      return new Promise((resolve) => {
        const check = () => {
          if (fs.existsSync(pathIn) || helper.exitCode !== null) resolve();
          else setTimeout(check, 5);
        };
        check();
      });
    },
    /**
     * Blocks until the helper answered (at most `timeoutMs`); returns
     * `{ code, helperMs }`. Non-blocking FIFO opens: a dead helper is an
     * error, not a bootstrap stuck forever.
     */
    reseed(msg, timeoutMs = 10000) {
      const deadline = Date.now() + timeoutMs;
      const pause = new Int32Array(new SharedArrayBuffer(4));
      const nap = () => Atomics.wait(pause, 0, 0, 2);
      const { O_WRONLY, O_RDONLY, O_NONBLOCK } = fs.constants;
      // Writing: ENXIO/ENOENT until the helper waits on its FIFO.
      let fd = -1;
      while (fd < 0) {
        try {
          fd = fs.openSync(pathIn, O_WRONLY | O_NONBLOCK);
        } catch (e) {
          if (Date.now() > deadline || helper.exitCode !== null) {
            return { code: -1, stderr: `the helper is not listening (${e.code})` };
          }
          nap();
        }
      }
      try {
        fs.writeSync(fd, JSON.stringify({ seed: msg.seed, now_ms: msg.now_ms }) + '\n');
      } finally {
        fs.closeSync(fd);
      }
      // Reading: EOF until the helper opens its end, EAGAIN until it writes.
      const out = fs.openSync(path.join(dir, 'out'), O_RDONLY | O_NONBLOCK);
      let reply = '';
      try {
        const buf = Buffer.alloc(4096);
        while (!reply.includes('\n')) {
          let n = 0;
          try {
            n = fs.readSync(out, buf, 0, buf.length, null);
          } catch (e) {
            if (e.code !== 'EAGAIN') throw e;
          }
          if (n > 0) reply += buf.toString('utf8', 0, n);
          else if (Date.now() > deadline) return { code: -1, stderr: 'the helper did not answer in time' };
          else nap();
        }
      } finally {
        fs.closeSync(out);
      }
      const m = /^ok ([0-9.]+)/.exec(reply);
      return m ? { code: 0, helperMs: Number(m[1]) } : { code: -1, stderr: reply };
    },
    dismiss() {
      helper.kill('SIGKILL');
    },
  };
}

/** Math.random from the (reseeded) CSPRNG: V8 offers no way to reseed its own. */
function reseedMathRandom() {
  const crypto = require('node:crypto');
  const pool = Buffer.alloc(4096);
  let pos = pool.length;
  Math.random = function random() {
    if (pos + 8 > pool.length) {
      crypto.randomFillSync(pool);
      pos = 0;
    }
    const hi = pool.readUInt32LE(pos) >>> 5; // 27 bits
    const lo = pool.readUInt32LE(pos + 4) >>> 6; // 26 bits
    pos += 8;
    return (hi * 67108864 + lo) / 9007199254740992;
  };
}

function dropPrivileges(uid) {
  process.setgroups([]);
  process.setgid(uid);
  process.setuid(uid);
}

class Bootstrap {
  constructor(channel, codeDir, dropUid = null, reseedHelper = null) {
    this.channel = channel;
    this.codeDir = codeDir;
    // In a microVM the bootstrap starts as root so that a restored clone can
    // reseed the kernel; it becomes `dropUid` before any user code runs.
    this.dropUid = dropUid;
    this.reseedHelper = reseedHelper;
    this.firstMessageSeen = false;
    this.handler = null;
    this.initError = null;
    this.initialized = false;
    this.function = '';
    this.version = '';
    this.memoryMb = 0;
    this.sandboxId = '';
    this.skewMs = 0;
    this.queue = [];
    this.busy = false;
    this.eof = false;
  }

  send(msg) {
    this.channel.send(JSON.stringify(msg) + '\n');
  }

  /** One line from the channel (a Buffer without its newline). */
  onLine(line) {
    this.queue.push(line);
    if (!this.busy) this.drain();
  }

  onEof() {
    this.eof = true;
    if (!this.busy) this.exit(0);
  }

  exit(code) {
    this.channel.close(() => process.exit(code));
  }

  async drain() {
    this.busy = true;
    try {
      while (this.queue.length > 0) {
        const line = this.queue.shift();
        try {
          await this.handle(line);
        } catch (e) {
          logReal(`ignis bootstrap: error handling a message: ${e && e.stack ? e.stack : e}`);
        }
      }
    } finally {
      this.busy = false;
    }
    if (this.eof) this.exit(0);
  }

  async handle(line) {
    const text = line.toString('utf8');
    if (text.trim() === '') return;
    let msg;
    try {
      msg = JSON.parse(text);
    } catch (e) {
      this.send({ type: 'error', message: `invalid JSON: ${e.message}` });
      return;
    }
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) {
      this.send({ type: 'error', message: 'a message must be a JSON object' });
      return;
    }
    if (msg.type === 'restore') {
      await this.restore(msg);
      return;
    }
    this.firstMessageSeen = true;
    this.dropPrivileges();
    if (msg.type === 'invoke') await this.invoke(msg);
    else if (msg.type === 'init') await this.init(msg);
    else this.send({ type: 'error', message: `unknown message type ${JSON.stringify(msg.type)}` });
  }

  dropPrivileges() {
    if (this.reseedHelper) {
      this.reseedHelper.dismiss();
      this.reseedHelper = null;
    }
    if (this.dropUid !== null) {
      dropPrivileges(this.dropUid);
      this.dropUid = null;
    }
  }

  // -- restore: the first message to a clone restored from a snapshot

  async restore(msg) {
    if (this.firstMessageSeen) {
      this.send({ type: 'error', message: 'restore must be the first message' });
      return;
    }
    this.firstMessageSeen = true;
    try {
      if (!/^([0-9a-fA-F]{2}){16,}$/.test(String(msg.seed))) {
        throw new Error('restore needs a `seed` of at least 16 bytes in hex');
      }
      const t0 = performance.now();
      let kernel = false;
      if (this.reseedHelper) {
        const helper = this.reseedHelper;
        this.reseedHelper = null;
        const { code, stderr, helperMs } = helper.reseed(msg);
        helper.dismiss();
        this.helperMs = helperMs;
        if (code !== 0) throw new Error(`the reseed helper failed: ${String(stderr).trim()}`);
        kernel = true;
      }
      const t1 = performance.now();
      // OpenSSL reseeds on its next use: a clone's clock (just set) is
      // earlier than the template's, which makes its DRBGs reseed.
      reseedMathRandom();
      this.dropPrivileges();
      const t2 = performance.now();
      this.send({ type: 'restored', kernel_reseeded: kernel, kernel_ms: t1 - t0, helper_ms: this.helperMs, runtime_ms: t2 - t1 });
    } catch (e) {
      this.send({ type: 'error', message: `restore failed: ${e.message}` });
    }
  }

  // -- init

  async init(msg) {
    if (this.initialized) {
      this.send({ type: 'error', message: 'init was already received' });
      return;
    }
    this.initialized = true;
    const cap = new Capture();
    running.add(cap);
    let error = null;
    try {
      await als.run(cap, () => this.doInit(msg));
    } catch (e) {
      error = e instanceof InitFailure ? e.body : errorBody('ImportError', e);
    }
    running.delete(cap);
    const logs = cap.finish();
    if (error === null) {
      this.send({ type: 'ready', ...logs });
    } else {
      this.initError = error;
      this.send({ type: 'init_error', error, ...logs });
    }
  }

  async doInit(msg) {
    applyLimits(msg.limits);
    if (typeof msg.now_ms === 'number') {
      const skew = msg.now_ms - Date.now();
      // The same clock (Docker) differs only by the message's transit; a
      // guest with its own clock (microVM) may be far off.
      this.skewMs = Math.abs(skew) > SKEW_THRESHOLD_MS ? skew : 0;
    }
    this.function = msg.function == null ? '' : String(msg.function);
    this.version = msg.version == null ? '' : String(msg.version);
    this.memoryMb = Number.isFinite(Number(msg.memory_mb)) ? Math.trunc(Number(msg.memory_mb)) : 0;
    this.sandboxId = msg.sandbox_id == null ? '' : String(msg.sandbox_id);
    const codeDir = this.codeDir;

    // Code.
    if (typeof msg.code_zip_b64 === 'string' && msg.code_zip_b64.length > 0) {
      try {
        extractZip(Buffer.from(msg.code_zip_b64, 'base64'), codeDir);
      } catch (e) {
        if (e instanceof InitFailure) throw e;
        // Out of space on the code tmpfs, say.
        throw new InitFailure('InvalidArchive', `extracting the code archive: ${errorBody('InvalidArchive', e).message}`);
      }
    } else {
      fs.mkdirSync(codeDir, { recursive: true });
    }

    // Environment.
    const env = msg.env && typeof msg.env === 'object' ? msg.env : {};
    for (const k of Object.keys(env)) {
      if (k && !k.includes('=') && !k.includes('\0')) {
        process.env[k] = env[k] == null ? '' : String(env[k]);
      }
    }
    Object.assign(process.env, {
      IGNIS_FUNCTION_NAME: this.function,
      IGNIS_FUNCTION_VERSION: this.version,
      AWS_LAMBDA_FUNCTION_NAME: this.function,
      AWS_LAMBDA_FUNCTION_VERSION: this.version,
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(this.memoryMb),
      LAMBDA_TASK_ROOT: codeDir,
    });

    // Module path: the code directory first for bare `require`s.
    try {
      process.chdir(codeDir);
    } catch (_) {
      // keep the current directory
    }
    const prev = process.env.NODE_PATH;
    process.env.NODE_PATH = [path.join(codeDir, 'node_modules'), codeDir, prev].filter(Boolean).join(path.delimiter);
    const Module = require('node:module');
    if (typeof Module._initPaths === 'function') Module._initPaths();

    this.handler = await loadHandler(codeDir, msg.handler);
  }

  // -- invoke

  async invoke(msg) {
    const items = msg.items;
    if (!Array.isArray(items)) {
      this.send({ type: 'error', message: 'invoke without an items list' });
      return;
    }
    const valid = [];
    for (const item of items) {
      if (item === null || typeof item !== 'object' || Array.isArray(item)) {
        this.send({ type: 'error', message: 'an invoke item must be an object' });
      } else {
        valid.push(item);
      }
    }
    if (msg.concurrent === true && valid.length > 1) {
      await Promise.all(valid.map((item) => this.runItem(item, true).then((line) => this.channel.send(line))));
    } else {
      let first = true;
      for (const item of valid) {
        const line = await this.runItem(item, first);
        this.channel.send(line);
        first = false;
      }
    }
  }

  /** Runs one call; resolves with its encoded `result` line. */
  async runItem(item, first) {
    const id = item.id;
    if (this.handler === null) {
      const error = this.initError || { type: 'NotInitialized', message: 'invoke before a successful init', stack: '' };
      return resultLine(id, false, null, error, { stdout: '', stderr: '', logs_truncated: false }, 0);
    }
    // Deadline: the host's for the first call of a batch (and for concurrent
    // calls); a later call run after the previous one is timed from its own
    // start.
    let deadline = typeof item.deadline_ms === 'number' ? item.deadline_ms : 0;
    const skew = this.skewMs;
    if (!first && typeof item.timeout_ms === 'number' && item.timeout_ms > 0) {
      deadline = Math.max(deadline, Date.now() + skew + item.timeout_ms);
    }
    const context = {
      functionName: this.function,
      functionVersion: this.version,
      memoryLimitInMB: String(this.memoryMb),
      awsRequestId: id,
      invokedFunctionArn: `arn:ignis:function:${this.function}`,
      logGroupName: `/ignis/functions/${this.function}`,
      logStreamName: this.sandboxId,
      callbackWaitsForEmptyEventLoop: true,
      getRemainingTimeInMillis() {
        return Math.max(0, Math.trunc(deadline - (Date.now() + skew)));
      },
    };
    const cap = new Capture();
    running.add(cap);
    const t0 = performance.now();
    let ok = true;
    let value;
    let error;
    try {
      value = await als.run(cap, () => callHandler(this.handler, item.event, context, cap));
    } catch (e) {
      ok = false;
      error = errorBody('FunctionError', e);
    }
    const duration = performance.now() - t0;
    running.delete(cap);
    const logs = cap.finish();
    if (!ok) return resultLine(id, false, null, error, logs, duration);
    let json;
    try {
      json = JSON.stringify(value === undefined ? null : value);
    } catch (e) {
      return resultLine(id, false, null, {
        type: 'InvalidResult',
        message: `the result is not JSON-serializable: ${errorBody('InvalidResult', e).message}`,
        stack: '',
      }, logs, duration);
    }
    if (json === undefined) json = 'null'; // a function or a symbol
    const size = Buffer.byteLength(json, 'utf8');
    if (size > MAX_RESPONSE_BYTES) {
      return resultLine(id, false, null, {
        type: 'ResponseTooLarge',
        message: `the result is ${size} bytes, the limit is ${MAX_RESPONSE_BYTES} bytes`,
        stack: '',
      }, logs, duration);
    }
    return resultLine(id, true, json, null, logs, duration);
  }
}

function resultLine(id, ok, json, error, logs, duration) {
  const msg = {
    type: 'result',
    id: id === undefined ? null : id,
    ok,
    stdout: logs.stdout,
    stderr: logs.stderr,
    logs_truncated: logs.logs_truncated,
    duration_ms: Math.round(duration * 1000) / 1000,
  };
  if (!ok) {
    msg.error = error;
    return JSON.stringify(msg) + '\n';
  }
  const head = JSON.stringify(msg);
  return head.slice(0, -1) + ',"value":' + json + '}\n';
}

// ---------------------------------------------------------------------------
// Channel transports

/** Splits a byte stream into lines (Buffers without the newline). */
class LineSplitter {
  constructor(onLine) {
    this.onLine = onLine;
    this.parts = [];
  }

  push(chunk) {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl < 0) break;
      let line = chunk.subarray(start, nl);
      if (this.parts.length > 0) {
        this.parts.push(line);
        line = Buffer.concat(this.parts);
        this.parts = [];
      }
      this.onLine(line);
      start = nl + 1;
    }
    if (start < chunk.length) this.parts.push(chunk.subarray(start));
  }

  end() {
    if (this.parts.length > 0) {
      const line = Buffer.concat(this.parts);
      this.parts = [];
      this.onLine(line);
    }
  }
}

function serveSocket(socketPath, makeBootstrap) {
  const tmp = `${socketPath}.tmp`;
  for (const p of [tmp, socketPath]) {
    try {
      fs.unlinkSync(p);
    } catch (_) {
      // not there
    }
  }
  const server = net.createServer({ allowHalfOpen: true });
  server.on('error', (e) => {
    logReal(`ignis bootstrap: listening on ${socketPath}: ${e.stack || e}`);
    process.exit(1);
  });
  server.once('connection', (sock) => {
    server.close();
    let closed = false;
    const channel = {
      send(text) {
        if (!closed) sock.write(text);
      },
      close(done) {
        if (closed) {
          done();
          return;
        }
        closed = true;
        sock.end(done);
        setTimeout(done, 1000).unref();
      },
    };
    const boot = makeBootstrap(channel);
    const lines = new LineSplitter((line) => boot.onLine(line));
    sock.on('data', (chunk) => lines.push(chunk));
    sock.on('end', () => {
      lines.end();
      boot.onEof();
    });
    sock.on('error', (e) => {
      // The host went away: the same as EOF.
      if (e && e.code !== 'EPIPE' && e.code !== 'ECONNRESET') logReal(`ignis bootstrap: channel: ${e.message}`);
      closed = true;
      boot.onEof();
    });
  });
  server.listen(tmp, () => {
    fs.chmodSync(tmp, 0o666);
    fs.renameSync(tmp, socketPath); // the socket appearing is the "booted" signal
  });
}

function serveDevice(devicePath, makeBootstrap, ready = Promise.resolve()) {
  const fd = fs.openSync(devicePath, fs.constants.O_RDWR | (fs.constants.O_NOCTTY || 0));
  // Writes are queued and written in order, retrying partial writes.
  const pending = [];
  let writing = false;
  const pump = () => {
    if (writing || pending.length === 0) return;
    writing = true;
    const buf = pending[0];
    fs.write(fd, buf, 0, buf.length, null, (err, n) => {
      writing = false;
      if (err) {
        if (err.code === 'EAGAIN' || err.code === 'EINTR') {
          setTimeout(pump, 1);
          return;
        }
        logReal(`ignis bootstrap: writing to ${devicePath}: ${err.message}`);
        process.exit(1);
      }
      if (n < buf.length) pending[0] = buf.subarray(n);
      else pending.shift();
      pump();
    });
  };
  const channel = {
    send(text) {
      pending.push(Buffer.from(text, 'utf8'));
      pump();
    },
    close(done) {
      done();
    },
  };
  const boot = makeBootstrap(channel);
  // On a device the host cannot see a socket appear: say we are up.
  ready.then(() => channel.send('{"type":"booted"}\n'));
  const lines = new LineSplitter((line) => boot.onLine(line));
  const buf = Buffer.allocUnsafe(262144);
  const read = () => {
    fs.read(fd, buf, 0, buf.length, null, (err, n) => {
      if (err) {
        if (err.code === 'EAGAIN' || err.code === 'EINTR' || err.code === 'EIO') {
          setTimeout(read, 10);
          return;
        }
        logReal(`ignis bootstrap: reading ${devicePath}: ${err.message}`);
        process.exit(1);
      }
      if (n === 0) {
        // EOF: the host end is not connected (yet); try again.
        setTimeout(read, 10);
        return;
      }
      lines.push(Buffer.from(buf.subarray(0, n)));
      read();
    });
  };
  read();
}

// ---------------------------------------------------------------------------
// Entry point

const USAGE =
  'usage: bootstrap.js (--socket PATH | --device PATH) [--code-dir DIR] [--drop-privileges UID]';

function parseArgs(argv) {
  const opts = { socket: null, device: null, codeDir: DEFAULT_CODE_DIR, dropPrivileges: null };
  const keys = {
    '--socket': 'socket',
    '--device': 'device',
    '--code-dir': 'codeDir',
    '--drop-privileges': 'dropPrivileges',
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf('=');
    const key = eq >= 0 ? arg.slice(0, eq) : arg;
    if (!(key in keys)) throw new Error(`unknown argument ${JSON.stringify(arg)}\n${USAGE}`);
    let val;
    if (eq >= 0) val = arg.slice(eq + 1);
    else {
      i++;
      if (i >= argv.length) throw new Error(`${key} needs a value\n${USAGE}`);
      val = argv[i];
    }
    opts[keys[key]] = val;
  }
  if (!opts.socket === !opts.device) throw new Error(USAGE);
  if (opts.dropPrivileges !== null) {
    if (!/^[0-9]+$/.test(opts.dropPrivileges)) throw new Error('--drop-privileges needs a numeric uid');
    opts.dropPrivileges = Number(opts.dropPrivileges);
  }
  return opts;
}

function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    logReal(`bootstrap: ${e.message}`);
    process.exit(2);
  }
  const codeDir = path.resolve(opts.codeDir);

  // Errors that escape a handler: they fail the call they belong to when
  // that call can be told; otherwise they are logged and the bootstrap goes on.
  const escaped = (what) => (e) => {
    const cap = failingCall();
    if (cap) cap.fail(e);
    else logReal(`ignis bootstrap: ${what}: ${e && e.stack ? e.stack : describe(e)}`);
  };
  process.on('uncaughtException', escaped('uncaught exception'));
  process.on('unhandledRejection', escaped('unhandled rejection'));

  const root = opts.dropPrivileges !== null && process.getuid && process.getuid() === 0;
  const helper = root ? startReseedHelper() : null;
  // Loaded before a snapshot is taken, not in every clone.
  if (root) require('node:crypto').randomFillSync(Buffer.alloc(8));
  const make = (channel) => new Bootstrap(channel, codeDir, opts.dropPrivileges, helper);
  if (opts.socket) serveSocket(opts.socket, make);
  else serveDevice(opts.device, make, helper ? helper.ready() : undefined);
}

try {
  main();
} catch (e) {
  logReal(`ignis bootstrap: fatal error\n${e && e.stack ? e.stack : e}`);
  process.exit(1);
}
