/**
 * The builtin writer's peak memory follows the formula of docs/squashfs.md ("Memory"), not the
 * size of the input: a small and a large generated tar (devkit/generated-tar.ts, streamed from
 * a generator, never stored) are written by the built library in child processes, whose own
 * peak RSS (getrusage) is compared with writerMemoryBound(). Both are under their bound, and
 * the large one exceeds the small one by no more than the per-entry term allows (plus the
 * Node runtime's variable part: young generation and not yet collected buffers).
 *
 * npm test: 16 MiB and CTRBAKE_SQUASHFS_MEMORY_MIB (default 160 MiB) of content. The 4 GiB
 * run: `npm run test:memory` (CTRBAKE_SQUASHFS_MEMORY_MIB=4096, ~15 min on 2 cores).
 * Seed: CTRBAKE_SQUASHFS_MEMORY_SEED, printed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatedTar, type GeneratedTarStats } from '../../devkit/generated-tar.js';
import { seedFrom } from '../../devkit/seeded-random.js';
import { writerRss, type WriterRssResult } from '../../devkit/writer-rss.js';
import { MEMORY_PER_ENTRY, writerMemoryBound } from '../../src/squashfs/writer/memory.js';

const MiB = 2 ** 20;
const SMALL_MIB = 16;
const LARGE_MIB = Number(process.env.CTRBAKE_SQUASHFS_MEMORY_MIB ?? 160);
/**
 * What of the runtime term varies with the length of a run, up to its plateau: V8's young
 * generation growing to its maximum and promoted buffers waiting for a full collection
 * (memory.ts; measured: 61 MiB at 16 MiB of tar, ~125 MiB at 1.6 GiB).
 */
const RUNTIME_VARIATION = 64 * MiB;
const OPTIONS = { compression: 'gzip', level: 1, workers: 2, blockSize: 131072 } as const;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ctrbake-sqfs-mem-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function run(mib: number, seed: number): Promise<WriterRssResult & GeneratedTarStats & { bound: number }> {
  const stats: GeneratedTarStats = { files: 0, entries: 0, contentBytes: 0 };
  const out = join(dir, `${mib}.sqfs`);
  const result = await writerRss(generatedTar({ bytes: mib * MiB, seed }, stats), out, OPTIONS);
  await rm(out, { force: true });
  const bound = writerMemoryBound({ ...OPTIONS, entries: stats.entries });
  console.log(
    `${mib} MiB generated (seed ${seed}): ${stats.entries} entries -> ${(result.bytes / MiB).toFixed(1)} MiB image, peak RSS ${(result.maxRssKiB / 1024).toFixed(1)} MiB, bound ${(bound / MiB).toFixed(1)} MiB`,
  );
  return { ...result, ...stats, bound };
}

describe('builtin writer: memory bounded by the formula, not by the input size', () => {
  it(`${SMALL_MIB} MiB and ${LARGE_MIB} MiB tars: each under its bound, the large one about the small one's`, { timeout: Math.max(180_000, LARGE_MIB * 600) }, async () => {
    expect(LARGE_MIB, 'CTRBAKE_SQUASHFS_MEMORY_MIB must be a size in MiB above 16').toBeGreaterThan(SMALL_MIB);
    const seed = seedFrom('CTRBAKE_SQUASHFS_MEMORY_SEED');
    console.log(`seed ${seed} (CTRBAKE_SQUASHFS_MEMORY_SEED=${seed} replays it)`);
    const small = await run(SMALL_MIB, seed);
    const large = await run(LARGE_MIB, seed);
    expect(large.contentBytes).toBeGreaterThanOrEqual(LARGE_MIB * MiB);
    expect(large.inodes).toBeGreaterThan(large.files);
    expect(small.maxRssKiB * 1024).toBeLessThanOrEqual(small.bound);
    expect(large.maxRssKiB * 1024).toBeLessThanOrEqual(large.bound);
    expect(large.maxRssKiB * 1024 - small.maxRssKiB * 1024).toBeLessThanOrEqual(MEMORY_PER_ENTRY * (large.entries - small.entries) + RUNTIME_VARIATION);
  });
});
