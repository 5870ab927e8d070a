// Just enough of the zip format for the console: list an uploaded archive
// (to check the handler's file is in it before sending), and write one
// from a dropped folder or from edited files plus the binary files of the
// current version, copied as they are (still compressed) so nothing needs
// inflating in the browser. Written entries are stored (the server
// recompresses what it keeps). No zip64: code is at most 50 MiB.

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_END = 0x06054b50;
const FLAG_UTF8 = 0x0800;
const FLAG_DATA_DESCRIPTOR = 0x0008;
// 1980-01-01 00:00: a fixed time makes the same files give the same bytes.
const DOS_TIME = 0;
const DOS_DATE = (0 << 9) | (1 << 5) | 1;

let table;
/** CRC-32 (IEEE), as zip uses. @param {Uint8Array} bytes */
export function crc32(bytes) {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = table[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/**
 * @typedef {object} ZipEntry
 * @property {string} name
 * @property {number} method 0 stored, 8 deflated
 * @property {number} crc
 * @property {number} compressedSize
 * @property {number} size
 * @property {number} flags
 * @property {number} externalAttrs
 * @property {boolean} isDir
 * @property {Uint8Array} data the entry's bytes as stored (compressed when method is 8)
 */

/**
 * The entries of a zip archive, from its central directory.
 * @param {Uint8Array} bytes
 * @returns {ZipEntry[]}
 */
export function readZip(bytes) {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let end = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 0xffff); i--) {
    if (dv.getUint32(i, true) === SIG_END) {
      end = i;
      break;
    }
  }
  if (end < 0) throw new Error('not a zip archive (no end of central directory)');
  const count = dv.getUint16(end + 10, true);
  let p = dv.getUint32(end + 16, true);
  const decoder = new TextDecoder();
  /** @type {ZipEntry[]} */
  const entries = [];
  for (let n = 0; n < count; n++) {
    if (p + 46 > bytes.length || dv.getUint32(p, true) !== SIG_CENTRAL) {
      throw new Error('corrupt zip archive (bad central directory)');
    }
    const flags = dv.getUint16(p + 8, true);
    const method = dv.getUint16(p + 10, true);
    const crc = dv.getUint32(p + 16, true);
    const compressedSize = dv.getUint32(p + 20, true);
    const size = dv.getUint32(p + 24, true);
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    const externalAttrs = dv.getUint32(p + 38, true);
    const local = dv.getUint32(p + 42, true);
    const name = decoder.decode(bytes.subarray(p + 46, p + 46 + nameLen));
    if (local + 30 > bytes.length || dv.getUint32(local, true) !== SIG_LOCAL) {
      throw new Error(`corrupt zip archive (bad local header of ${name})`);
    }
    const start = local + 30 + dv.getUint16(local + 26, true) + dv.getUint16(local + 28, true);
    if (start + compressedSize > bytes.length) throw new Error(`corrupt zip archive (${name} is cut short)`);
    entries.push({
      name,
      method,
      crc,
      compressedSize,
      size,
      flags,
      externalAttrs,
      isDir: name.endsWith('/'),
      data: bytes.subarray(start, start + compressedSize),
    });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

/**
 * A zip archive of `files`: each either new content (`data`, stored) or an
 * entry of another archive copied as it is (`entry`).
 * @param {({name: string, data: Uint8Array | string} | {name?: string, entry: ZipEntry})[]} files
 * @returns {Uint8Array}
 */
export function writeZip(files) {
  const enc = new TextEncoder();
  const parts = [];
  const central = [];
  let offset = 0;
  for (const f of files) {
    let name, data, method, crc, size, externalAttrs, flags;
    if ('entry' in f) {
      const e = f.entry;
      name = f.name ?? e.name;
      ({ data, method, crc, size, externalAttrs } = e);
      flags = (e.flags & ~FLAG_DATA_DESCRIPTOR) | FLAG_UTF8;
    } else {
      name = f.name;
      data = typeof f.data === 'string' ? enc.encode(f.data) : f.data;
      method = 0;
      crc = crc32(data);
      size = data.length;
      externalAttrs = (0o100644 << 16) >>> 0;
      flags = FLAG_UTF8;
    }
    const nameBytes = enc.encode(name);
    const local = new Uint8Array(30 + nameBytes.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, SIG_LOCAL, true);
    lv.setUint16(4, 20, true);
    lv.setUint16(6, flags, true);
    lv.setUint16(8, method, true);
    lv.setUint16(10, DOS_TIME, true);
    lv.setUint16(12, DOS_DATE, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, data.length, true);
    lv.setUint32(22, size, true);
    lv.setUint16(26, nameBytes.length, true);
    lv.setUint16(28, 0, true);
    local.set(nameBytes, 30);

    const cen = new Uint8Array(46 + nameBytes.length);
    const cv = new DataView(cen.buffer);
    cv.setUint32(0, SIG_CENTRAL, true);
    cv.setUint16(4, (3 << 8) | 20, true); // made by: Unix, 2.0
    cv.setUint16(6, 20, true);
    cv.setUint16(8, flags, true);
    cv.setUint16(10, method, true);
    cv.setUint16(12, DOS_TIME, true);
    cv.setUint16(14, DOS_DATE, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, data.length, true);
    cv.setUint32(24, size, true);
    cv.setUint16(28, nameBytes.length, true);
    cv.setUint32(38, externalAttrs >>> 0, true);
    cv.setUint32(42, offset, true);
    cen.set(nameBytes, 46);

    parts.push(local, data);
    central.push(cen);
    offset += local.length + data.length;
  }
  const cdSize = central.reduce((n, c) => n + c.length, 0);
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, SIG_END, true);
  ev.setUint16(8, files.length, true);
  ev.setUint16(10, files.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, offset, true);
  const all = [...parts, ...central, end];
  const out = new Uint8Array(all.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of all) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

/**
 * The paths of an archive's files (not directories), as the server's
 * packager reads them: as they are, less a leading "./".
 * @param {ZipEntry[]} entries
 */
export function filePaths(entries) {
  return entries.filter((e) => !e.isDir).map((e) => e.name.replace(/^\.\//, ''));
}

/** Base64 of bytes (standard alphabet, padded), in chunks so large archives do not overflow the stack. @param {Uint8Array} bytes */
export function toBase64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, /** @type {any} */ (bytes.subarray(i, i + 0x8000)));
  }
  return btoa(s);
}

/**
 * Whether bytes are UTF-8 text (the editor can show them): valid UTF-8
 * without NUL bytes.
 * @param {Uint8Array} bytes
 */
export function isText(bytes) {
  if (bytes.includes(0)) return false;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}
