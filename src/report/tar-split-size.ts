/**
 * The size of the tar-split file an engine keeps per layer (docker:
 * image/<driver>/layerdb/sha256/<chain>/tar-split.json.gz; podman:
 * overlay-layers/<id>.tar-split.gz), computed from the layer tar as it streams by.
 *
 * tar-split (vbatts/tar-split, which both engines use) records, for every tar entry, one JSON
 * line with the raw bytes the tar reader read for its headers (the previous entry's padding,
 * PAX and GNU long-name headers, the header block), base64-encoded, and one JSON line with the
 * entry's name, size and the CRC-64 of its content; the end-of-archive blocks are a last
 * segment. The whole is gzipped (Go's default level; Node's zlib level 6 gives sizes within a
 * few percent). The CRC is stood in for by 8 bytes of a hash: as incompressible as a CRC.
 */
import { createHash } from 'node:crypto';
import { createGzip, type Gzip } from 'node:zlib';

const BLOCK = 512;

function octal(block: Buffer, start: number, length: number): number {
  // GNU base-256 for large values: first byte has the high bit set.
  if ((block[start]! & 0x80) !== 0) {
    let v = 0;
    for (let i = start + 1; i < start + length; i++) v = v * 256 + block[i]!;
    return v;
  }
  const text = block.toString('latin1', start, start + length).replace(/\0.*$/s, '').trim();
  return text === '' ? 0 : parseInt(text, 8);
}

function cString(block: Buffer, start: number, length: number): string {
  const end = block.indexOf(0, start);
  return block.toString('utf8', start, end === -1 || end > start + length ? start + length : end);
}

function paxPath(data: Buffer): string | undefined {
  let path: string | undefined;
  let i = 0;
  while (i < data.length) {
    const space = data.indexOf(0x20, i);
    if (space === -1) break;
    const len = Number(data.toString('latin1', i, space));
    if (!Number.isInteger(len) || len <= 0) break;
    const record = data.toString('utf8', space + 1, i + len - 1);
    const eq = record.indexOf('=');
    if (record.slice(0, eq) === 'path') path = record.slice(eq + 1);
    i += len;
  }
  return path;
}

/** Feeds raw tar bytes; `finish()` returns the gzipped tar-split size in bytes. */
export class TarSplitSizer {
  private readonly gzip: Gzip;
  private gzBytes = 0;
  private readonly done: Promise<void>;
  private position = 0;
  private segment: Buffer[] = [];
  private pending = Buffer.alloc(0);
  /** Bytes of file content to skip, then padding bytes that belong to the next segment. */
  private skip = 0;
  private padding = 0;
  /** Meta-header (PAX x/g, GNU L/K) data still to collect, and what it is. */
  private meta?: { type: string; left: number; data: Buffer[] };
  private metaSize = 0;
  private longName?: string;
  private pax?: string;
  private ended = false;

  constructor() {
    this.gzip = createGzip({ level: 6 });
    this.gzip.on('data', (chunk: Buffer) => (this.gzBytes += chunk.length));
    this.done = new Promise((resolve, reject) => {
      this.gzip.on('end', resolve);
      this.gzip.on('error', reject);
    });
  }

  private line(entry: Record<string, unknown>): void {
    this.gzip.write(`${JSON.stringify({ ...entry, position: this.position++ })}\n`);
  }

  private flushSegment(): void {
    const bytes = Buffer.concat(this.segment);
    this.segment = [];
    this.line({ type: 2, payload: bytes.toString('base64') });
  }

  private header(block: Buffer): void {
    this.segment.push(block);
    if (block.every((b) => b === 0)) {
      this.ended = true;
      return;
    }
    const type = String.fromCharCode(block[156]!);
    const size = octal(block, 124, 12);
    if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
      this.meta = { type, left: Math.ceil(size / BLOCK) * BLOCK, data: [] };
      this.metaSize = size;
      return;
    }
    const magic = block.toString('latin1', 257, 263);
    const prefix = magic.startsWith('ustar') && magic !== 'ustar ' ? cString(block, 345, 155) : '';
    const name = this.pax ?? this.longName ?? (prefix ? `${prefix}/${cString(block, 0, 100)}` : cString(block, 0, 100));
    this.pax = undefined;
    this.longName = undefined;
    const hasData = type === '0' || type === '\0' || type === '7';
    const dataSize = hasData ? size : 0;
    this.flushSegment();
    const crc = dataSize > 0 ? createHash('sha256').update(name).update(String(dataSize)).digest().subarray(0, 8).toString('base64') : null;
    this.line({ type: 1, name, ...(dataSize > 0 ? { size: dataSize } : {}), payload: crc });
    this.skip = dataSize;
    this.padding = (BLOCK - (dataSize % BLOCK)) % BLOCK;
  }

  write(chunk: Uint8Array): void {
    let buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    while (buf.length > 0) {
      if (this.ended) {
        this.segment.push(Buffer.from(buf));
        return;
      }
      if (this.skip > 0) {
        const n = Math.min(this.skip, buf.length);
        this.skip -= n;
        buf = buf.subarray(n);
        continue;
      }
      if (this.padding > 0) {
        const n = Math.min(this.padding, buf.length);
        this.segment.push(Buffer.from(buf.subarray(0, n)));
        this.padding -= n;
        buf = buf.subarray(n);
        continue;
      }
      if (this.meta) {
        const n = Math.min(this.meta.left, buf.length);
        const part = Buffer.from(buf.subarray(0, n));
        this.segment.push(part);
        this.meta.data.push(part);
        this.meta.left -= n;
        buf = buf.subarray(n);
        if (this.meta.left === 0) {
          const data = Buffer.concat(this.meta.data).subarray(0, this.metaSize);
          if (this.meta.type === 'x') this.pax = paxPath(data) ?? this.pax;
          else if (this.meta.type === 'L') this.longName = data.toString('utf8').replace(/\0.*$/s, '');
          this.meta = undefined;
        }
        continue;
      }
      const need = BLOCK - this.pending.length;
      const take = buf.subarray(0, need);
      this.pending = Buffer.concat([this.pending, take]);
      buf = buf.subarray(take.length);
      if (this.pending.length === BLOCK) {
        const block = this.pending;
        this.pending = Buffer.alloc(0);
        this.header(block);
      }
    }
  }

  async finish(): Promise<number> {
    if (this.pending.length > 0) this.segment.push(this.pending);
    if (this.segment.length > 0) this.flushSegment();
    this.gzip.end();
    await this.done;
    return this.gzBytes;
  }
}
