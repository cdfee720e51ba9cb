/**
 * OUT appears whole or not at all: a bake writes into a staging dir next to OUT (same
 * filesystem, so the engine's data-root and the final rename stay on it) and renames it into
 * place at the end. The staging dir is removed on failure and on SIGINT/SIGTERM.
 */
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { registerCleanup } from '../util/cleanup.js';
import { fsyncDir } from '../util/fs.js';

export interface StagedOutput {
  /** The private staging dir (0700): scratch space lives here too. */
  staging: string;
  /** What becomes OUT. */
  outTmp: string;
  /** Scratch dir inside staging (removed with it). */
  work: string;
  /** Renames outTmp to OUT (replacing an existing OUT) and removes the staging dir. */
  commit(): Promise<void>;
  /** Removes the staging dir; idempotent. */
  discard(): Promise<void>;
}

export async function stageOutput(outDir: string): Promise<StagedOutput> {
  const parent = dirname(outDir);
  await mkdir(parent, { recursive: true });
  const staging = await mkdtemp(join(parent, `.${basename(outDir)}.ctrbake-`));
  let discarded: Promise<void> | undefined;
  const discard = (): Promise<void> => {
    discarded ??= rm(staging, { recursive: true, force: true, maxRetries: 3 }).then(() => unregister());
    return discarded;
  };
  const unregister = registerCleanup(`bake staging ${staging}`, discard);
  const outTmp = join(staging, 'out');
  const work = join(staging, 'work');
  await mkdir(outTmp, { mode: 0o755 });
  await mkdir(work);
  return {
    staging,
    outTmp,
    work,
    async commit() {
      try {
        await rename(outTmp, outDir);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOTDIR') throw error;
        // An existing OUT: swap it out, move the new one in, drop the old one.
        const old = join(staging, 'old');
        await rename(outDir, old);
        await rename(outTmp, outDir);
      }
      await fsyncDir(parent);
      await discard();
    },
    discard,
  };
}
