/** `ctrbake bake`: resolves the options once, then runs the mode's implementation. */
import type { BakeMode } from '../formats.js';
import { assertCacheComplete } from '../fetch/complete.js';
import { readLockForFetch } from '../fetch/lock-input.js';
import { checkBakeBudget, resolveBudget } from '../report/index.js';
import { bakeArchive, type BakeResult } from './archive.js';
import { resolveBakeOptions, type BakeOptions, type ResolvedBakeConfig } from './options.js';
import { bakeStoreFromConfig } from './store.js';

type BakeImplementation = (config: Readonly<ResolvedBakeConfig>) => Promise<BakeResult>;

const MODES: Record<BakeMode, BakeImplementation> = {
  archive: bakeArchive,
  store: bakeStoreFromConfig,
};

export async function bake(options: BakeOptions): Promise<BakeResult> {
  const config = resolveBakeOptions(options);
  await checkFit(options, config);
  return MODES[config.mode](config);
}

/**
 * The budget check (docs/report.md): before any engine starts or any output is written, from
 * the lock and the cache alone. Over budget: DoesNotFitError (exit 3) and no OUT is created.
 */
async function checkFit(options: BakeOptions, config: Readonly<ResolvedBakeConfig>): Promise<void> {
  const fit = options.fit;
  if (!fit || !resolveBudget(fit)) return;
  const lock = await readLockForFetch(config.lockPath);
  await assertCacheComplete(config.cacheDir, lock);
  await checkBakeBudget({
    ...fit,
    lock,
    lockPath: config.lockPath,
    cacheDir: config.cacheDir,
    mode: config.mode,
    engine: config.engine,
    storageDriver: config.storageDriver,
    reporter: config.reporter,
    ...(config.signal ? { signal: config.signal } : {}),
  });
}
