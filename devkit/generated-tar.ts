/**
 * A tar of any size, generated on the fly and never stored: input for the SquashFS writer's
 * memory test and bench at sizes (GiBs) no fixture could hold. Deterministic for a seed.
 *
 * It looks like a root filesystem in the ways that cost the writer memory: many files per
 * byte (sizes log-uniform from 0 to 1 MiB, mean ~75 KiB, so ~14,000 files per GiB), in
 * directories of ~64 entries, one file in 16 a duplicate of an earlier one (dedup table),
 * one in 32 with an xattr, symlinks and hard links. Content: half of each 4 KiB run text-like
 * (compresses ~4x), half taken from a random pool (does not compress), at seeded offsets, so
 * no two files are equal unless made so and every block goes through the compressor.
 */
import { encodeTar, type TarWriteEntry } from '../src/formats/tar/encode.js';
import { prng } from './seeded-random.js';

export interface GeneratedTarOptions {
  /** Stop adding files once this many bytes of content were emitted. */
  bytes: number;
  seed: number;
}

export interface GeneratedTarStats {
  files: number;
  entries: number;
  contentBytes: number;
}

const POOL = 1 << 20;
const RUN = 4096;

function pools(seed: number): { random: Buffer; text: Buffer } {
  const rand = prng(seed ^ 0x5eed);
  const random = Buffer.allocUnsafe(POOL + RUN);
  for (let i = 0; i < random.length; i += 4) random.writeUInt32LE(Math.floor(rand() * 2 ** 32), i);
  const words = ['lib', 'usr', 'share', 'config', 'value', 'error', 'return', 'static', 'const', 'int', 'void', 'struct', 'the', 'a', 'of', '0x', '\n', '{', '}', ';'];
  const text = Buffer.allocUnsafe(POOL + RUN);
  let at = 0;
  while (at < text.length) at += text.write(`${words[Math.floor(rand() * words.length)]} `, at, 'latin1');
  return { random, text };
}

/** The content of a file: `size` bytes drawn from the pools at offsets from `fileSeed`. */
function* content(size: number, fileSeed: number, p: { random: Buffer; text: Buffer }): Generator<Buffer> {
  const rand = prng(fileSeed);
  let left = size;
  const chunk = Buffer.allocUnsafe(Math.min(size, 64 * 1024));
  while (left > 0) {
    const n = Math.min(left, chunk.length);
    for (let at = 0; at < n; at += RUN) {
      const m = Math.min(RUN, n - at);
      const half = m >> 1;
      const t = Math.floor(rand() * POOL);
      const r = Math.floor(rand() * POOL);
      p.text.copy(chunk, at, t, t + half);
      p.random.copy(chunk, at + half, r, r + (m - half));
    }
    left -= n;
    yield Buffer.from(chunk.subarray(0, n));
  }
}

/** The entries of a generated tree; `stats` is filled in as they are produced. */
export function* generatedEntries(options: GeneratedTarOptions, stats: GeneratedTarStats = { files: 0, entries: 0, contentBytes: 0 }): Generator<TarWriteEntry> {
  const rand = prng(options.seed);
  const p = pools(options.seed);
  const mtime = 1_700_000_000;
  const made: Array<{ path: string; size: number; seed: number }> = [];
  let dir = -1;
  while (stats.contentBytes < options.bytes) {
    if (stats.files % 64 === 0) {
      dir++;
      stats.entries++;
      yield { path: `d${Math.floor(dir / 64)}/s${dir % 64}/`, type: 'dir', mode: 0o755, mtime };
    }
    const base = `d${Math.floor(dir / 64)}/s${dir % 64}/f${stats.files}`;
    stats.files++;
    stats.entries++;
    const pick = rand();
    if (pick < 1 / 64 && made.length > 0) {
      stats.entries++;
      yield { path: `${base}.lnk`, type: 'symlink', mode: 0o777, mtime, linkname: made[made.length - 1]!.path };
    }
    if (pick > 1 - 1 / 64 && made.length > 0) {
      yield { path: `${base}.hl`, type: 'hardlink', mode: 0o644, mtime, linkname: made[made.length - 1]!.path };
      continue;
    }
    let size: number;
    let seed: number;
    if (rand() < 1 / 16 && made.length > 0) {
      const earlier = made[Math.floor(rand() * made.length)]!;
      ({ size, seed } = earlier);
    } else {
      // log-uniform 1 B .. 1 MiB, some empty files
      size = rand() < 0.03 ? 0 : Math.floor(Math.exp(rand() * Math.log(1 << 20)));
      seed = Math.floor(rand() * 2 ** 31);
    }
    // Remember a bounded sample for duplicates and links (the generator stays small too).
    if (made.length < 4096) made.push({ path: base, size, seed });
    else made[Math.floor(rand() * 4096)] = { path: base, size, seed };
    stats.contentBytes += size;
    const xattrs = rand() < 1 / 32 ? new Map([['user.generated', Buffer.from(String(seed))]]) : undefined;
    yield { path: base, type: 'file', mode: 0o644, mtime, uid: 1000, gid: 1000, size, content: content(size, seed, p) as unknown as AsyncIterable<Uint8Array>, ...(xattrs ? { xattrs } : {}) };
  }
}

/** The generated tree as a tar byte stream. */
export function generatedTar(options: GeneratedTarOptions, stats?: GeneratedTarStats): AsyncGenerator<Buffer> {
  return encodeTar(generatedEntries(options, stats));
}
