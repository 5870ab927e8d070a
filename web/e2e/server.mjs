// Starts a real ignis server for the browser tests: the binary of
// IGNIS_BIN (default /tmp/ignis-dev/ignis) on a free loopback port with a
// fresh data directory, without microVMs unless IGNIS_E2E_MICROVM=1, and
// serving web/dist only when IGNIS_CONSOLE_DIR says so (a CI binary has
// the console built in). Reads the URL from its "listening on" line and
// the admin key from DATA_DIR/admin.key.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import { createInterface } from 'node:readline';

export const BIN = resolvePath(process.env.IGNIS_BIN || '/tmp/ignis-dev/ignis');
export const MICROVM = process.env.IGNIS_E2E_MICROVM === '1';

/** Chromium as Debian ships it, without the calls home it would make. */
export const LAUNCH = {
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  args: [
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
};

/** The IGNIS_* variables the server under test may inherit: where the images are (CI sets it), and the console's directory (passed as --console-dir too). */
export const KEPT_IGNIS_VARS = ['IGNIS_IMAGE_DIR', 'IGNIS_CONSOLE_DIR'];

/**
 * The environment of the server under test: the caller's, without any
 * IGNIS_* variable but KEPT_IGNIS_VARS. Every server setting is also an
 * environment variable (IGNIS_AUTH, IGNIS_RECORD, IGNIS_DOCKER,
 * IGNIS_METRICS_PUBLIC, ...; docs/configuration.md), so one left in the
 * caller's shell would change the server the test drives.
 * @param {Record<string, string | undefined>} parent
 * @returns {Record<string, string>}
 */
export function serverEnv(parent) {
  /** @type {Record<string, string>} */
  const env = {};
  for (const [k, v] of Object.entries(parent)) {
    if (v === undefined) continue;
    if (k.startsWith('IGNIS_') && (!KEPT_IGNIS_VARS.includes(k) || v === '')) continue;
    // The server runs in its data directory: a relative directory would move with it.
    env[k] = KEPT_IGNIS_VARS.includes(k) ? resolvePath(v) : v;
  }
  return env;
}

/**
 * @returns {Promise<{url: string, key: string, pid: number, dataDir: string, api: (method: string, path: string, body?: any) => Promise<any>, stop: () => Promise<void>, log: () => string}>}
 */
export async function startServer({ timeoutMs = 60_000 } = {}) {
  if (!existsSync(BIN)) throw new Error(`no ignis binary at ${BIN} (set IGNIS_BIN)`);
  const dataDir = mkdtempSync(join(tmpdir(), 'ignis-e2e-'));
  const args = ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir];
  if (!MICROVM) args.push('--no-microvm');
  if (process.env.IGNIS_CONSOLE_DIR) args.push('--console-dir', resolvePath(process.env.IGNIS_CONSOLE_DIR));
  const env = serverEnv(process.env);
  // In the fresh data directory, so that no ignis.toml of the caller's working directory applies either.
  const child = spawn(BIN, args, { env, cwd: dataDir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stderr.on('data', (d) => {
    output += d;
    if (output.length > 200_000) output = output.slice(-100_000);
  });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`ignis did not say where it listens within ${timeoutMs} ms:\n${output.slice(-3000)}`)),
      timeoutMs,
    );
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      output += `${line}\n`;
      const m = /^ignis: listening on (http:\/\/\S+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`ignis exited (${code}) before listening:\n${output.slice(-3000)}`));
    });
  });
  const key = readFileSync(join(dataDir, 'admin.key'), 'utf8').trim();

  /** The API with the admin key (for setting up and checking, never for what the test shows in the browser). */
  const api = async (method, path, body) => {
    const res = await fetch(url + path, {
      method,
      headers: { Authorization: `Bearer ${key}`, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let json;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = text;
    }
    return { status: res.status, json, headers: res.headers };
  };

  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 40_000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  return { url, key, pid: child.pid, dataDir, api, stop, log: () => output };
}

/**
 * Waits until `fn` returns a truthy value (polling), or fails with `what`.
 * @template T
 * @param {() => Promise<T> | T} fn
 * @param {string} what
 * @param {{timeoutMs?: number, intervalMs?: number}} [opts]
 * @returns {Promise<T>}
 */
export async function waitFor(fn, what, { timeoutMs = 30_000, intervalMs = 200 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** CPU time (utime + stime) of a process, seconds, from /proc/PID/stat. */
export function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name may hold spaces: fields start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / 100; // USER_HZ is 100 on Linux
}
