/**
 * `ctrbake bake`: resolves the options once, skips the bake when OUT is up to date
 * (./up-to-date.ts), else runs the mode's implementation and records the input fingerprint.
 */
import { join } from 'node:path';
import type { BakeMode } from '../formats.js';
import { assertCacheComplete } from '../fetch/complete.js';
import { readLockForFetch } from '../fetch/lock-input.js';
import { checkBakeBudget, resolveBudget } from '../report/index.js';
import { bakeArchive, type BakeResult } from './archive.js';
import { checkBakePrerequisites, resolveBakeOptions, type BakeOptions, type ResolvedBakeConfig } from './options.js';
import { bakeStoreFromConfig, STORE_TAR } from './store.js';
import { addStoreSquashfs } from './store-squashfs.js';
import { checkUpToDate, engineBinaryVersion, inputFingerprint, recordFingerprint } from './up-to-date.js';

type BakeImplementation = (config: Readonly<ResolvedBakeConfig>) => Promise<BakeResult>;

const MODES: Record<BakeMode, BakeImplementation> = {
  archive: bakeArchive,
  store: bakeStoreFromConfig,
};

export async function bake(options: BakeOptions): Promise<BakeResult> {
  const config = resolveBakeOptions(options);
  await checkBakePrerequisites(config);
  await checkFit(options, config);
  const { reporter } = config;
  const lock = await readLockForFetch(config.lockPath);
  const fingerprint = inputFingerprint({ lock, config, engineVersion: await engineBinaryVersion(config) });
  if (!config.force) {
    const state = await checkUpToDate(config.outDir, fingerprint, config.verifyOutputs);
    if (state.upToDate) {
      const manifestPath = join(config.outDir, 'manifest.json');
      reporter.event({ event: 'bake.uptodate', message: `${config.outDir} is up to date (same lock, options and versions; outputs ${config.verifyOutputs ? 'verified by sha256' : 'present with their sizes'}): nothing to do`, outDir: config.outDir, verified: config.verifyOutputs });
      const storeTar = config.mode === 'store' ? state.manifest.outputs.find((o) => o.path === STORE_TAR) : undefined;
      return { outDir: config.outDir, manifestPath, manifest: state.manifest, upToDate: true, ...(storeTar ? { storeTar: { ...storeTar, path: join(config.outDir, STORE_TAR) } } : {}) };
    }
    if (state.manifestFound) reporter.event({ event: 'bake.outdated', message: `baking again: ${state.reason}`, reason: state.reason });
  }
  const baked = await MODES[config.mode](config);
  const result = config.squashfs ? await addStoreSquashfs(baked, config) : baked;
  const manifest = await recordFingerprint(result.manifestPath, result.manifest, fingerprint);
  return { ...result, manifest, upToDate: false };
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
