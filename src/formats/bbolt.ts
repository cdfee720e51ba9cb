/**
 * bbolt database files (go.etcd.io/bbolt 1.3.x and 1.4.x, the format containerd's meta.db
 * uses), written whole from a tree of buckets, and read back for checks. The writer is
 * deterministic: the same tree gives the same bytes (keys sorted as bbolt sorts them,
 * pages allocated depth-first in key order, transaction ids 0 and 1 as `bolt.Open` writes a
 * new file, no free pages).
 *
 * File layout (little-endian, as bbolt writes it on every little-endian CPU; bbolt files are
 * not portable to big-endian machines):
 *   page 0, 1  meta: magic 0xED0CDAED, version 2, page size, flags, root bucket {root pgid,
 *              sequence}, freelist pgid, high-water pgid, txid, FNV-1a 64 checksum
 *   page 2     the freelist (empty)
 *   page 3..   one leaf page per non-inline bucket (overflow pages when it is larger than a
 *              page; bbolt splits nodes only when it rewrites them, so one big leaf is valid)
 * A bucket without sub-buckets whose leaf fits in a quarter page is stored inline in its
 * parent's value (bucket header with root 0, then the page), as bbolt itself does.
 */

export const BOLT_PAGE_SIZE = 4096;
const MAGIC = 0xed0cdaed;
const VERSION = 2;
const PAGE_HEADER = 16;
const ELEMENT = 16;
const BUCKET_HEADER = 16;
const BRANCH_PAGE = 0x01;
const LEAF_PAGE = 0x02;
const META_PAGE = 0x04;
const FREELIST_PAGE = 0x10;
const BUCKET_LEAF = 0x01;

/** A bucket: keys to values (Buffer) or nested buckets. */
export interface BoltBucket {
  [key: string]: Buffer | BoltBucket;
}

function isBucket(value: Buffer | BoltBucket): value is BoltBucket {
  return !Buffer.isBuffer(value);
}

interface Element {
  key: Buffer;
  value: Buffer;
  flags: number;
}

/** bbolt orders keys by bytes.Compare. */
function sortedEntries(bucket: BoltBucket): Array<[Buffer, Buffer | BoltBucket]> {
  return Object.entries(bucket)
    .map(([k, v]) => [Buffer.from(k, 'utf8'), v] as [Buffer, Buffer | BoltBucket])
    .sort((a, b) => Buffer.compare(a[0], b[0]));
}

function leafPage(elements: readonly Element[], pgid: number): Buffer {
  const size = PAGE_HEADER + ELEMENT * elements.length + elements.reduce((n, e) => n + e.key.length + e.value.length, 0);
  if (elements.length > 0xffff) throw new Error(`bbolt writer: a bucket of ${elements.length} keys does not fit one leaf page`);
  const page = Buffer.alloc(size);
  page.writeBigUInt64LE(BigInt(pgid), 0);
  page.writeUInt16LE(LEAF_PAGE, 8);
  page.writeUInt16LE(elements.length, 10);
  let data = PAGE_HEADER + ELEMENT * elements.length;
  elements.forEach((e, i) => {
    const at = PAGE_HEADER + ELEMENT * i;
    page.writeUInt32LE(e.flags, at);
    page.writeUInt32LE(data - at, at + 4);
    page.writeUInt32LE(e.key.length, at + 8);
    page.writeUInt32LE(e.value.length, at + 12);
    e.key.copy(page, data);
    e.value.copy(page, data + e.key.length);
    data += e.key.length + e.value.length;
  });
  return page;
}

function bucketHeader(root: number): Buffer {
  const header = Buffer.alloc(BUCKET_HEADER);
  header.writeBigUInt64LE(BigInt(root), 0);
  return header;
}

/** FNV-1a 64, bbolt's meta checksum. */
function fnv1a64(bytes: Buffer): bigint {
  let hash = 0xcbf29ce484222325n;
  for (const byte of bytes) hash = BigInt.asUintN(64, (hash ^ BigInt(byte)) * 0x100000001b3n);
  return hash;
}

function metaPage(pgid: number, root: number, highWater: number, txid: number, pageSize: number): Buffer {
  const page = Buffer.alloc(pageSize);
  page.writeBigUInt64LE(BigInt(pgid), 0);
  page.writeUInt16LE(META_PAGE, 8);
  const m = PAGE_HEADER;
  page.writeUInt32LE(MAGIC, m);
  page.writeUInt32LE(VERSION, m + 4);
  page.writeUInt32LE(pageSize, m + 8);
  page.writeUInt32LE(0, m + 12);
  page.writeBigUInt64LE(BigInt(root), m + 16);
  page.writeBigUInt64LE(0n, m + 24);
  page.writeBigUInt64LE(2n, m + 32);
  page.writeBigUInt64LE(BigInt(highWater), m + 40);
  page.writeBigUInt64LE(BigInt(txid), m + 48);
  page.writeBigUInt64LE(fnv1a64(page.subarray(m, m + 56)), m + 56);
  return page;
}

/** The whole database file for this root bucket (whose values must all be buckets, as bbolt requires). */
export function writeBolt(root: BoltBucket, pageSize = BOLT_PAGE_SIZE): Buffer {
  for (const [key, value] of Object.entries(root)) {
    if (!isBucket(value)) throw new Error(`bbolt writer: the root holds only buckets, ${JSON.stringify(key)} is a value`);
  }
  const pages: Buffer[] = [];
  let next = 3;
  const place = (leaf: (pgid: number) => Buffer): number => {
    const pgid = next;
    const page = leaf(pgid);
    const count = Math.max(1, Math.ceil(page.length / pageSize));
    page.writeUInt32LE(count - 1, 12);
    const padded = Buffer.alloc(count * pageSize);
    page.copy(padded);
    pages.push(padded);
    next += count;
    return pgid;
  };
  const elementsOf = (bucket: BoltBucket): Element[] =>
    sortedEntries(bucket).map(([key, value]) => (isBucket(value) ? { key, value: bucketValue(value), flags: BUCKET_LEAF } : { key, value, flags: 0 }));
  const bucketValue = (bucket: BoltBucket): Buffer => {
    const elements = elementsOf(bucket);
    const inline = leafPage(elements, 0);
    if (elements.every((e) => e.flags === 0) && BUCKET_HEADER + inline.length <= pageSize / 4) return Buffer.concat([bucketHeader(0), inline]);
    return bucketHeader(place((pgid) => leafPage(elements, pgid)));
  };
  const rootElements = elementsOf(root);
  const rootPgid = place((pgid) => leafPage(rootElements, pgid));
  const freelist = Buffer.alloc(pageSize);
  freelist.writeBigUInt64LE(2n, 0);
  freelist.writeUInt16LE(FREELIST_PAGE, 8);
  return Buffer.concat([metaPage(0, rootPgid, next, 0, pageSize), metaPage(1, rootPgid, next, 1, pageSize), freelist, ...pages]);
}

/** Reads a bbolt file back into a tree (checks, tests): the meta with the higher valid txid, as bbolt does. */
export function readBolt(file: Buffer): BoltBucket {
  const metas = [0, 1].flatMap((i) => {
    const pageSize = i === 0 ? BOLT_PAGE_SIZE : readMetaPageSize(file);
    const m = i * pageSize + PAGE_HEADER;
    if (file.length < m + 64 || file.readUInt32LE(m) !== MAGIC || file.readUInt32LE(m + 4) !== VERSION) return [];
    if (file.readBigUInt64LE(m + 56) !== fnv1a64(file.subarray(m, m + 56))) return [];
    return [{ pageSize: file.readUInt32LE(m + 8), root: Number(file.readBigUInt64LE(m + 16)), txid: file.readBigUInt64LE(m + 48) }];
  });
  const meta = metas.sort((a, b) => (a.txid > b.txid ? -1 : 1))[0];
  if (!meta) throw new Error('not a bbolt file: no valid meta page');
  const readNode = (page: Buffer): Array<{ key: Buffer; value: Buffer; flags: number; child?: number }> => {
    const flags = page.readUInt16LE(8);
    const count = page.readUInt16LE(10);
    const out: Array<{ key: Buffer; value: Buffer; flags: number; child?: number }> = [];
    for (let i = 0; i < count; i++) {
      const at = PAGE_HEADER + ELEMENT * i;
      if (flags & LEAF_PAGE) {
        const pos = at + page.readUInt32LE(at + 4);
        const ksize = page.readUInt32LE(at + 8);
        const vsize = page.readUInt32LE(at + 12);
        out.push({ flags: page.readUInt32LE(at), key: page.subarray(pos, pos + ksize), value: page.subarray(pos + ksize, pos + ksize + vsize) });
      } else if (flags & BRANCH_PAGE) {
        const pos = at + page.readUInt32LE(at);
        const ksize = page.readUInt32LE(at + 4);
        out.push({ flags: 0, key: page.subarray(pos, pos + ksize), value: Buffer.alloc(0), child: Number(page.readBigUInt64LE(at + 8)) });
      } else throw new Error(`bbolt page with flags ${flags} where a leaf or branch was expected`);
    }
    return out;
  };
  const pageAt = (pgid: number): Buffer => {
    const start = pgid * meta.pageSize;
    const overflow = file.readUInt32LE(start + 12);
    return file.subarray(start, start + (overflow + 1) * meta.pageSize);
  };
  const readTree = (page: Buffer): BoltBucket => {
    const out: BoltBucket = {};
    for (const e of readNode(page)) {
      if (e.child !== undefined) Object.assign(out, readTree(pageAt(e.child)));
      else if (e.flags & BUCKET_LEAF) {
        const root = Number(e.value.readBigUInt64LE(0));
        out[e.key.toString('utf8')] = readTree(root === 0 ? e.value.subarray(BUCKET_HEADER) : pageAt(root));
      } else out[e.key.toString('utf8')] = Buffer.from(e.value);
    }
    return out;
  };
  return readTree(pageAt(meta.root));
}

function readMetaPageSize(file: Buffer): number {
  return file.length >= PAGE_HEADER + 12 ? file.readUInt32LE(PAGE_HEADER + 8) : BOLT_PAGE_SIZE;
}
