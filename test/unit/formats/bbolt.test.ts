import { describe, expect, it } from 'vitest';
import { BOLT_PAGE_SIZE, readBolt, writeBolt, type BoltBucket } from '../../../src/formats/bbolt.js';
import { prng, seedFrom } from '../../../devkit/seeded-random.js';

/** A random tree: nested buckets, values of 0..3000 bytes, binary-looking and plain keys. */
function randomTree(next: () => number, depth: number): BoltBucket {
  const out: BoltBucket = {};
  const n = Math.floor(next() * 12);
  for (let i = 0; i < n; i++) {
    const key = `k${Math.floor(next() * 1e6).toString(36)}-${i}`;
    if (depth > 0 && next() < 0.35) out[key] = randomTree(next, depth - 1);
    else out[key] = Buffer.alloc(Math.floor(next() ** 3 * 3000), Math.floor(next() * 256));
  }
  return out;
}

/** Every path with its value's sha-free fingerprint (length + hex head), in key order: quick to compare. */
function flatten(b: BoltBucket, prefix = ''): string[] {
  return Object.entries(b).flatMap(([k, v]) => (Buffer.isBuffer(v) ? [`${prefix}${k}=${v.length}:${v.toString('hex', 0, 8)}`] : [`${prefix}${k}/`, ...flatten(v, `${prefix}${k}/`)]));
}

describe('bbolt writer', () => {
  it('reads back what it wrote, on seeded random trees (inline buckets, page buckets, overflow pages)', () => {
    const seed = seedFrom('CTRBAKE_BBOLT_SEED');
    console.log(`bbolt round trip: seed ${seed} (CTRBAKE_BBOLT_SEED=${seed} replays it)`);
    const next = prng(seed);
    for (let run = 0; run < 20; run++) {
      const tree: BoltBucket = { a: randomTree(next, 3), b: randomTree(next, 2) };
      expect(flatten(readBolt(writeBolt(tree))).sort()).toEqual(flatten(tree).sort());
    }
  });

  it('is deterministic, page-aligned, and its two meta pages carry txids 0 and 1 with valid checksums', () => {
    const tree = (): BoltBucket => ({ v1: { version: Buffer.from([6]), ns: { images: {} } } });
    const a = writeBolt(tree());
    expect(writeBolt(tree()).equals(a)).toBe(true);
    expect(a.length % BOLT_PAGE_SIZE).toBe(0);
    expect(a.readUInt32LE(16)).toBe(0xed0cdaed);
    expect([a.readBigUInt64LE(16 + 48), a.readBigUInt64LE(BOLT_PAGE_SIZE + 16 + 48)]).toEqual([0n, 1n]);
    // High-water mark = number of pages in the file.
    expect(Number(a.readBigUInt64LE(16 + 40)) * BOLT_PAGE_SIZE).toBe(a.length);
  });

  it('a bucket larger than a page spills into overflow pages, read back whole', () => {
    const big: BoltBucket = {};
    for (let i = 0; i < 500; i++) big[`sha256:${i.toString(16).padStart(64, '0')}`] = { size: Buffer.from([i & 0x7f]) };
    const file = writeBolt({ big });
    expect(file.length).toBeGreaterThan(4 * BOLT_PAGE_SIZE);
    expect(readBolt(file)).toEqual({ big });
  });

  it('keys in bbolt order (bytes), not insertion order', () => {
    const file = writeBolt({ r: { b: Buffer.from('2'), B: Buffer.from('1'), a: Buffer.from('3') } });
    expect(Object.keys(readBolt(file).r as BoltBucket)).toEqual(['B', 'a', 'b']);
  });

  it.each([
    ['a root value', { v: Buffer.from('x') }],
  ])('refuses %s', (_what, tree) => {
    expect(() => writeBolt(tree as BoltBucket)).toThrow(/root holds only buckets/);
  });

  it('readBolt refuses a file whose meta checksums do not match', () => {
    const file = writeBolt({ a: {} });
    file[16 + 20] ^= 1;
    file[BOLT_PAGE_SIZE + 16 + 20] ^= 1;
    expect(() => readBolt(file)).toThrow(/no valid meta page/);
  });
});
