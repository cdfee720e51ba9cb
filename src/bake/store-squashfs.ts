/**
 * `bake --mode store --squashfs`: packs store.tar into store.sqfs (the payload the store
 * layouts ship) with the chosen SquashFS backend, in the bake's staging dir before the commit:
 * a failed or interrupted packing leaves the previous OUT as it was.
 */
import { join } from 'node:path';
import { CtrbakeError } from '../errors.js';
import type { BakeManifest } from '../formats/index.js';
import { createSquashfs, SQUASHFS_SUBCOMMAND_FLAGS, type SquashfsResult } from '../squashfs/index.js';
import { sha256File } from '../util/fs.js';
import type { ResolvedBakeConfig } from './options.js';
import { STORE_TAR } from './store.js';

export const STORE_SQFS = 'store.sqfs';

/** Writes DIR/store.sqfs from DIR/store.tar; returns the manifest with it listed. */
export async function addStoreSquashfs(dir: string, manifest: BakeManifest, config: Readonly<ResolvedBakeConfig>): Promise<{ manifest: BakeManifest; squashfs?: SquashfsResult }> {
  const options = config.squashfs;
  if (!options) return { manifest };
  const outPath = join(dir, STORE_SQFS);
  try {
    config.reporter.event({ event: 'bake.squashfs', message: `packing ${STORE_TAR} into ${STORE_SQFS} (${options.backend}, ${options.compression})` });
    const made = await createSquashfs({
      input: join(dir, STORE_TAR),
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
    const outputs = [...manifest.outputs.filter((o) => o.path !== STORE_SQFS), { path: STORE_SQFS, sha256, size: made.bytes }];
    outputs.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return { manifest: { ...manifest, outputs }, squashfs: { ...made, path: join(config.outDir, STORE_SQFS) } };
  } catch (error) {
    if (error instanceof CtrbakeError) throw error;
    if (config.signal?.aborted) throw config.signal.reason;
    throw new CtrbakeError('E_BAKE_SQUASHFS', `packing ${STORE_TAR} into ${STORE_SQFS} failed; ${config.outDir} was left as it was: ${(error as Error).message}`, { cause: error });
  }
}
