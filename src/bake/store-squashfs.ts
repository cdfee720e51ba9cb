/**
 * `bake --mode store --squashfs`: packs OUT/store.tar into OUT/store.sqfs (the payload the
 * store layouts ship) with the chosen SquashFS backend, and lists it in manifest.json.
 * If packing fails, the new OUT is removed: a failed bake leaves no output.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CtrbakeError } from '../errors.js';
import { createSquashfs, SQUASHFS_SUBCOMMAND_FLAGS } from '../squashfs/index.js';
import { sha256File } from '../util/fs.js';
import type { BakeResult } from './archive.js';
import type { ResolvedBakeConfig } from './options.js';
import { STORE_TAR } from './store.js';

export const STORE_SQFS = 'store.sqfs';

export async function addStoreSquashfs(result: BakeResult, config: Readonly<ResolvedBakeConfig>): Promise<BakeResult> {
  const options = config.squashfs;
  if (!options) return result;
  const outPath = join(result.outDir, STORE_SQFS);
  try {
    config.reporter.event({ event: 'bake.squashfs', message: `packing ${STORE_TAR} into ${STORE_SQFS} (${options.backend}, ${options.compression})` });
    const made = await createSquashfs({
      input: join(result.outDir, STORE_TAR),
      outPath,
      backend: options.backend,
      compression: options.compression,
      blockSize: options.blockSize,
      ...(options.gzipImplementation !== undefined ? { gzipImplementation: options.gzipImplementation } : {}),
      sourceDateEpoch: config.sourceDateEpoch,
      flags: SQUASHFS_SUBCOMMAND_FLAGS,
      reporter: config.reporter,
      ...(config.signal ? { signal: config.signal } : {}),
    });
    const sha256 = made.sha256 ?? (await sha256File(outPath));
    const outputs = [...result.manifest.outputs.filter((o) => o.path !== STORE_SQFS), { path: STORE_SQFS, sha256, size: made.bytes }];
    outputs.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return { ...result, manifest: { ...result.manifest, outputs }, squashfs: made };
  } catch (error) {
    await rm(result.outDir, { recursive: true, force: true });
    if (error instanceof CtrbakeError) throw error;
    throw new CtrbakeError('E_BAKE_SQUASHFS', `packing ${STORE_TAR} into ${STORE_SQFS} failed; no output was left in ${result.outDir}: ${(error as Error).message}`, { cause: error });
  }
}
