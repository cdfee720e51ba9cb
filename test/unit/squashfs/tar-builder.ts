/**
 * A tiny tar writer for the SquashFS unit tests: ustar headers plus PAX records with raw
 * byte values (binary xattrs, which tar-stream's pack cannot write).
 */

export interface TestEntry {
  name: string;
  type?: 'file' | 'dir' | 'symlink' | 'hardlink' | 'chardev' | 'blockdev' | 'fifo';
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  content?: Buffer;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string | Buffer>;
  /** Raw name bytes (ustar field, at most 100 bytes), overriding `name`. */
  rawName?: Buffer;
  /** Raw typeflag, overriding `type`. */
  flag?: string;
}

const FLAG = { file: '0', hardlink: '1', symlink: '2', chardev: '3', blockdev: '4', dir: '5', fifo: '6' } as const;

function octal(buf: Buffer, value: number, at: number, length: number): void {
  buf.write(`${value.toString(8).padStart(length - 1, '0')}\0`, at, length, 'latin1');
}

function header(name: string, flag: string, size: number, e: TestEntry): Buffer {
  const h = Buffer.alloc(512);
  h.write(name.slice(0, 100), 0, 100, 'latin1');
  octal(h, e.mode ?? (flag === '5' ? 0o755 : 0o644), 100, 8);
  octal(h, e.uid ?? 0, 108, 8);
  octal(h, e.gid ?? 0, 116, 8);
  octal(h, size, 124, 12);
  octal(h, e.mtime ?? 1_700_000_000, 136, 12);
  h[156] = flag.charCodeAt(0);
  h.write((e.linkname ?? '').slice(0, 100), 157, 100, 'latin1');
  h.write('ustar\x0000', 257, 8, 'latin1');
  octal(h, e.devmajor ?? 0, 329, 8);
  octal(h, e.devminor ?? 0, 337, 8);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return h;
}

function pad(data: Buffer): Buffer[] {
  const rest = (512 - (data.length % 512)) % 512;
  return rest ? [data, Buffer.alloc(rest)] : [data];
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  let length = body.length + 1;
  while (String(length).length + body.length !== length) length = String(length).length + body.length;
  return Buffer.concat([Buffer.from(String(length)), body]);
}

/** The tar bytes (with the end-of-archive marker unless `end` is false). */
export function buildTar(entries: TestEntry[], end = true): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const type = e.type ?? 'file';
    const content = type === 'file' ? (e.content ?? Buffer.alloc(0)) : Buffer.alloc(0);
    const pax: Record<string, string | Buffer> = { ...e.pax };
    if (Buffer.byteLength(e.name) > 100) pax.path = e.name;
    if (e.linkname && Buffer.byteLength(e.linkname) > 100) pax.linkpath = e.linkname;
    const records = Object.entries(pax);
    if (records.length > 0) {
      const data = Buffer.concat(records.map(([k, v]) => paxRecord(k, Buffer.isBuffer(v) ? v : Buffer.from(v, 'utf8'))));
      parts.push(header('PaxHeader', 'x', data.length, { name: 'PaxHeader' }), ...pad(data));
    }
    parts.push(header((e.rawName ?? Buffer.from(e.name, 'utf8')).toString('latin1'), e.flag ?? FLAG[type], content.length, e), ...pad(content));
  }
  if (end) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** Deterministic pseudo-random bytes. */
export function randomBytesSeeded(length: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}
