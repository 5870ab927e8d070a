import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { crc32, readZip, writeZip, filePaths, toBase64, isText } from '../src/lib/zip.js';

test('crc32 of known strings', () => {
  assert.equal(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
  assert.equal(crc32(new Uint8Array()), 0);
});

test('writes a zip that reads back, deterministically', () => {
  const files = [
    { name: 'main.py', data: 'def handler(e, c):\n    return 1\n' },
    { name: 'lib/util.py', data: new Uint8Array([0, 1, 2, 255]) },
  ];
  const a = writeZip(files);
  const b = writeZip(files);
  assert.deepEqual(a, b, 'same input, same bytes');
  const entries = readZip(a);
  assert.deepEqual(filePaths(entries), ['main.py', 'lib/util.py']);
  assert.equal(new TextDecoder().decode(entries[0].data), files[0].data);
  assert.deepEqual([...entries[1].data], [0, 1, 2, 255]);
  assert.equal(entries[1].crc, crc32(new Uint8Array([0, 1, 2, 255])));
});

test('copies a deflated entry of another archive without inflating it', () => {
  const content = new TextEncoder().encode('x'.repeat(1000));
  // A deflated entry as another zip would hold it.
  const deflated = deflateRawSync(content);
  const source = {
    name: 'blob.bin',
    method: 8,
    crc: crc32(content),
    compressedSize: deflated.length,
    size: content.length,
    flags: 0x0008,
    externalAttrs: (0o100755 << 16) >>> 0,
    isDir: false,
    data: new Uint8Array(deflated),
  };
  const out = readZip(writeZip([{ entry: source }, { name: 'index.js', data: 'exports.handler=1' }]));
  assert.equal(out[0].method, 8);
  assert.equal(out[0].size, 1000);
  assert.equal(out[0].flags & 0x0008, 0, 'no data descriptor in the copy');
  assert.deepEqual(new Uint8Array(inflateRawSync(out[0].data)), content);
});

test('unzip accepts what writeZip writes (when unzip is installed)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ignis-zip-'));
  const path = join(dir, 'code.zip');
  writeFileSync(path, writeZip([{ name: 'a/b.txt', data: 'hello' }]));
  try {
    execFileSync('unzip', ['-o', '-q', path, '-d', dir]);
  } catch (e) {
    if (e.code === 'ENOENT') return t.skip('unzip is not installed');
    throw e;
  }
  assert.ok(existsSync(join(dir, 'a/b.txt')));
  assert.equal(readFileSync(join(dir, 'a/b.txt'), 'utf8'), 'hello');
});

test('reads a zip made by another tool (python zipfile, when installed)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ignis-zip-'));
  const path = join(dir, 'py.zip');
  try {
    execFileSync('python3', [
      '-c',
      `import zipfile
z = zipfile.ZipFile(${JSON.stringify(path)}, 'w', zipfile.ZIP_DEFLATED)
z.writestr('index.js', 'exports.handler = async () => 1;\\n' * 50)
z.writestr('dir/', '')
z.close()`,
    ]);
  } catch (e) {
    if (e.code === 'ENOENT') return t.skip('python3 is not installed');
    throw e;
  }
  const entries = readZip(new Uint8Array(readFileSync(path)));
  assert.deepEqual(filePaths(entries), ['index.js']);
  assert.equal(entries.find((e) => e.name === 'dir/').isDir, true);
  assert.match(inflateRawSync(entries[0].data).toString(), /exports.handler/);
});

test('rejects what is not a zip', () => {
  assert.throws(() => readZip(new TextEncoder().encode('not a zip at all, no')), /not a zip/);
});

test('base64 of large inputs, text detection', () => {
  const big = new Uint8Array(200_000).map((_, i) => i % 256);
  assert.equal(toBase64(big), Buffer.from(big).toString('base64'));
  assert.equal(isText(new TextEncoder().encode('héllo\n')), true);
  assert.equal(isText(new Uint8Array([0x68, 0x00])), false);
  assert.equal(isText(new Uint8Array([0xff, 0xfe, 0xfd])), false);
});
