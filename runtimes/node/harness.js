'use strict';
// The test harness of the Node.js bootstrap: a zip writer, and the real
// bootstrap in a child process with its channel. Used by the unit tests
// (test_bootstrap.js) and the conformance suite (conformance.test.js).

const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const zlib = require('node:zlib');
const { spawn } = require('node:child_process');

const BOOTSTRAP = path.join(__dirname, 'bootstrap.js');

// ---------------------------------------------------------------------------
// A zip writer (stored and deflate entries), enough for the tests.

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf) {
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** files: {name: string | Buffer}; method: 0 (stored) or 8 (deflate). */
function makeZip(files, method = 8) {
  const locals = [];
  const centrals = [];
  let offset = 0;
  for (const [name, content] of Object.entries(files)) {
    const data = Buffer.isBuffer(content) ? content : Buffer.from(content, 'utf8');
    const packed = method === 8 ? zlib.deflateRawSync(data) : data;
    const nameBuf = Buffer.from(name, 'utf8');
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x800, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(packed.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBuf.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(0x031e, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x800, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(packed.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(nameBuf.length, 28);
    central.writeUInt32LE(((0o100644 << 16) >>> 0), 38);
    central.writeUInt32LE(offset, 42);
    locals.push(local, nameBuf, packed);
    centrals.push(central, nameBuf);
    offset += local.length + nameBuf.length + packed.length;
  }
  const cd = Buffer.concat(centrals);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(Object.keys(files).length, 8);
  eocd.writeUInt16LE(Object.keys(files).length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, eocd]);
}

// ---------------------------------------------------------------------------
// A sandbox: the bootstrap process and its channel.

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class Sandbox {
  static async start() {
    const sb = new Sandbox();
    sb.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ignis-node-'));
    sb.codeDir = path.join(sb.dir, 'code');
    sb.sockPath = path.join(sb.dir, 'channel.sock');
    sb.proc = spawn(process.execPath, [BOOTSTRAP, '--socket', sb.sockPath, '--code-dir', sb.codeDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    sb.stdout = '';
    sb.stderr = '';
    sb.proc.stdout.on('data', (d) => { sb.stdout += d; });
    sb.proc.stderr.on('data', (d) => { sb.stderr += d; });
    sb.exited = new Promise((resolve) => sb.proc.on('exit', (code) => resolve(code)));
    const deadline = Date.now() + 10000;
    while (!fs.existsSync(sb.sockPath)) {
      if (sb.proc.exitCode !== null) throw new Error(`bootstrap exited: ${sb.stderr}`);
      if (Date.now() > deadline) throw new Error('the socket never appeared');
      await sleep(5);
    }
    assert.ok(!fs.existsSync(`${sb.sockPath}.tmp`));
    sb.sock = net.connect(sb.sockPath);
    await new Promise((resolve, reject) => {
      sb.sock.once('connect', resolve);
      sb.sock.once('error', reject);
    });
    sb.lines = [];
    sb.waiters = [];
    sb.closed = false;
    let parts = [];
    sb.sock.on('data', (chunk) => {
      let start = 0;
      for (;;) {
        const nl = chunk.indexOf(10, start);
        if (nl < 0) break;
        parts.push(chunk.subarray(start, nl));
        sb.deliver(Buffer.concat(parts).toString('utf8'));
        parts = [];
        start = nl + 1;
      }
      if (start < chunk.length) parts.push(chunk.subarray(start));
    });
    sb.sock.on('end', () => {
      sb.closed = true;
      for (const w of sb.waiters.splice(0)) w.reject(new Error(`channel closed; stderr: ${sb.stderr}`));
    });
    return sb;
  }

  deliver(line) {
    const w = this.waiters.shift();
    if (w) w.resolve(line);
    else this.lines.push(line);
  }

  sendRaw(text) {
    this.sock.write(text);
  }

  send(msg) {
    this.sock.write(JSON.stringify(msg) + '\n');
  }

  recv(timeoutMs = 30000) {
    if (this.lines.length > 0) return Promise.resolve(JSON.parse(this.lines.shift()));
    if (this.closed) return Promise.reject(new Error(`channel closed; stderr: ${this.stderr}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no message in ${timeoutMs} ms; stderr: ${this.stderr}`)), timeoutMs);
      this.waiters.push({
        resolve: (line) => { clearTimeout(timer); resolve(JSON.parse(line)); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
    });
  }

  init(files, handler = 'main.handler', extra = {}) {
    const zip = extra.zip || makeZip(files || {});
    const msg = {
      type: 'init',
      function: 'hello',
      version: 3,
      handler,
      env: extra.env || {},
      code_zip_b64: zip.toString('base64'),
      memory_mb: 128,
      timeout_ms: 3000,
      sandbox_id: 'sb-test',
      now_ms: Date.now(),
    };
    this.send(msg);
    return this.recv();
  }

  async invoke(events, { concurrent = false, timeoutMs = 3000, prefix = 'inv' } = {}) {
    const items = events.map((event, i) => ({
      id: `${prefix}-${i}`,
      event,
      deadline_ms: Date.now() + timeoutMs,
      timeout_ms: timeoutMs,
    }));
    this.send({ type: 'invoke', items, concurrent });
    const out = [];
    for (let i = 0; i < items.length; i++) out.push(await this.recv());
    return out;
  }

  async invoke1(event = null, opts) {
    return (await this.invoke([event], opts))[0];
  }

  /** Closes the channel; resolves with the exit code. */
  async close() {
    this.sock.end();
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 10000);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }

  cleanup() {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
    if (this.sock) this.sock.destroy();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}


module.exports = { Sandbox, makeZip, crc32, sleep, BOOTSTRAP };
