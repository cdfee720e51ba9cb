/**
 * Property: random trees round-trip through a kernel mount, for every backend, with gzip, zstd
 * and lz4 in turn (seed modulo 3). The number
 * of trees comes from CTRBAKE_PROPERTY_RUNS (default 8; `npm run test:property` runs 200),
 * the first seed from CTRBAKE_PROPERTY_SEED (default 1): a failure names its seed, and
 * `CTRBAKE_PROPERTY_SEED=<seed> CTRBAKE_PROPERTY_RUNS=1` replays it.
 */
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSquashfs, type SquashfsBackendName } from '../../src/squashfs/index.js';
import { expectedTree, randomTree, tarStream } from '../fixtures/tars.js';
import { diffTrees, Mounts, sqfsdiff, sqfstarRootMtimeIsNow, treeFromDir, withoutRootMtime } from './squashfs-oracle.js';

const COMPRESSIONS = ['gzip', 'zstd', 'lz4'] as const;
const RUNS = Number(process.env.CTRBAKE_PROPERTY_RUNS ?? 8);
const FIRST_SEED = Number(process.env.CTRBAKE_PROPERTY_SEED ?? 1);
const SDE = 1_600_000_000;
const BACKENDS: SquashfsBackendName[] = ['builtin', 'tar2sqfs', 'sqfstar'];

const seeds = Array.from({ length: RUNS }, (_, i) => FIRST_SEED + i);
const mounts = new Mounts();
let sqfstarRootIsNow = false;

beforeAll(async () => {
  sqfstarRootIsNow = await sqfstarRootMtimeIsNow();
});
afterEach(async () => {
  await mounts.releaseAll();
});
afterAll(async () => {
  await mounts.releaseAll();
});

describe(`${RUNS} random trees from seed ${FIRST_SEED}`, () => {
  it.each(seeds)('seed %i: every backend\'s image mounts and shows the tree; builtin equals tar2sqfs', { timeout: 600_000 }, async (seed) => {
    // One tree in four has a directory of thousands of entries (directory index territory).
    const tree = randomTree({ seed, bigDir: seed % 4 === 0 ? 3000 : undefined });
    // Every compressor the builtin writer has, in turn (the same one for every backend).
    const compression = COMPRESSIONS[seed % COMPRESSIONS.length]!;
    const expected = expectedTree(tree.entries, { sourceDateEpoch: SDE, root: tree.tarOptions.root });
    const dir = await mounts.tempDir();
    const images: Partial<Record<SquashfsBackendName, string>> = {};
    const failures: string[] = [];
    for (const backend of BACKENDS) {
      const out = join(dir, `${backend}.sqfs`);
      try {
        await createSquashfs({ input: tarStream(tree.entries, tree.tarOptions), outPath: out, backend, compression, sourceDateEpoch: SDE, workers: 2, digest: false });
      } catch (error) {
        // sqfstar 4.5.x cannot give the root another owner than the caller: refused, by design.
        const root = tree.tarOptions.root;
        const refusedRoot = backend === 'sqfstar' && sqfstarRootIsNow && (error as { code?: string }).code === 'E_SQFSTAR_ROOT_OWNER' && root && (root.uid || root.gid);
        if (!refusedRoot) failures.push(`${backend} (${compression}): ${(error as Error).message}`);
        continue;
      }
      images[backend] = out;
      const actual = await treeFromDir(await mounts.mountSquashfs(out));
      const diff = backend === 'sqfstar' && sqfstarRootIsNow ? diffTrees(withoutRootMtime(actual), withoutRootMtime(expected)) : diffTrees(actual, expected);
      if (diff.length) failures.push(`${backend} (seed ${seed}): ${diff.slice(0, 20).join('\n  ')}${diff.length > 20 ? `\n  ... ${diff.length - 20} more` : ''}`);
    }
    if (images.builtin && images.tar2sqfs) {
      const { report } = await sqfsdiff(images.tar2sqfs, images.builtin);
      // Inode flavour (basic vs extended) is a layout choice the kernel does not show; the
      // hand-made tests in squashfs-roundtrip.test.ts compare it strictly.
      const lines = report.split('\n').filter((l) => l.trim() && !/ has (a basic|an extended) type$/.test(l));
      if (lines.length) failures.push(`sqfsdiff tar2sqfs vs builtin (seed ${seed}): ${lines.slice(0, 20).join('\n  ')}`);
    }
    expect(failures, `seed ${seed}`).toEqual([]);
  });
});
