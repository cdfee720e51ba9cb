/**
 * `ctrbake bake`: resolves the options once, checks OUT (the output guard: ctrbake replaces
 * only a previous bake output, never an input), restores OUT from what a killed bake left,
 * skips the bake when OUT is up to date (./up-to-date.ts), else bakes in a staging dir next to
 * OUT: the mode's outputs, store.sqfs, manifest.json with the input fingerprint, and only then
 * the commit (util/staged-output.ts). A failed or interrupted bake leaves OUT as it was.
 */
import { join } from 'node:path';
import type { BakeManifest, BakeMode } from '../formats/index.js';
import { MANIFEST_FILE, writeManifest } from '../formats/manifest.js';
import { checkBakeBudget, resolveBudget } from '../report/index.js';
import { stageOutput, type StagedOutput } from '../util/staged-output.js';
import { bakeArchiveInto, type BakeResult } from './archive.js';
import { checkBakeOutput, recoverBakeOutput } from './bake-output.js';
import { readBakeInputs, type BakeInputs } from './inputs.js';
import { checkBakePrerequisites, resolveBakeOptions, type BakeOptions, type ResolvedBakeConfig } from './options.js';
import { bakeStoreFromConfigInto, storeDoneMessage, STORE_TAR } from './store.js';
import { addStoreSquashfs } from './store-squashfs.js';
import { checkNativeScope } from '../builder/scope.js';
import { CONTAINERD_STORE_VERSION } from '../builder/bake-native.js';
import { checkUpToDate, engineBinaryVersion, inputFingerprint } from './up-to-date.js';

type BakeImplementation = (config: Readonly<ResolvedBakeConfig>, inputs: BakeInputs, staged: StagedOutput) => Promise<BakeManifest>;

const MODES: Record<BakeMode, BakeImplementation> = {
  archive: bakeArchiveInto,
  store: bakeStoreFromConfigInto,
};

export async function bake(options: BakeOptions): Promise<BakeResult> {
  const resolved = resolveBakeOptions(options);
  await checkBakePrerequisites(resolved);
  // Before any work: OUT must be absent, empty or a previous bake output, and hold no input.
  const checked = await checkBakeOutput(resolved.outDir, [
    { path: resolved.lockPath, what: 'lock file' },
    { path: resolved.cacheDir, what: 'cache' },
  ]);
  const config: Readonly<ResolvedBakeConfig> = Object.freeze({ ...resolved, outDir: checked.path });
  const { reporter, outDir } = config;
  for (const r of await recoverBakeOutput(outDir, config.tmpBase)) {
    reporter.event({
      event: 'bake.recovered',
      message: `a killed bake left ${r.staging}: ${r.restored === 'none' ? 'removed it' : `restored the ${r.restored === 'new' ? 'output it had completed' : 'previous output'} as ${outDir} and removed it`}`,
      staging: r.staging,
      restored: r.restored,
    });
  }
  // The lock is read and the cache checked once, here; everything below takes them.
  const inputs = await readBakeInputs(config);
  await checkFit(options, config, inputs);
  const native = config.builder === 'native';
  const engineVersion = native ? (config.engine === 'containerd' ? `ctrbake builder for containerd ${CONTAINERD_STORE_VERSION}` : `ctrbake builder for ${config.engine} ${config.engineVersion}`) : await engineBinaryVersion(config);
  const fingerprint = inputFingerprint({ lock: inputs.lock, config, engineVersion });
  if (!config.force) {
    const state = await checkUpToDate(outDir, fingerprint, config.verifyOutputs);
    if (state.upToDate) {
      const manifestPath = join(outDir, MANIFEST_FILE);
      reporter.event({ event: 'bake.uptodate', message: `${outDir} is up to date (same lock, options and versions; outputs ${config.verifyOutputs ? 'verified by sha256' : 'present with their sizes'}): nothing to do`, outDir, verified: config.verifyOutputs });
      const storeTar = config.mode === 'store' ? state.manifest.outputs.find((o) => o.path === STORE_TAR) : undefined;
      return { outDir, manifestPath, manifest: state.manifest, upToDate: true, ...(storeTar ? { storeTar: { ...storeTar, path: join(outDir, STORE_TAR) } } : {}) };
    }
    if (state.manifestFound) reporter.event({ event: 'bake.outdated', message: `baking again: ${state.reason}`, reason: state.reason });
  }

  const staged = await stageOutput(outDir, { label: 'bake staging', ...(config.signal ? { signal: config.signal } : {}) });
  try {
    const baked = await (native ? checkNativeScope(config).write : MODES[config.mode])(config, inputs, staged);
    const packed = await addStoreSquashfs(staged.outTmp, baked, config);
    // Written last: the up-to-date check takes an output newer than manifest.json as touched.
    const manifest: BakeManifest = { ...packed.manifest, inputFingerprint: fingerprint };
    await writeManifest(join(staged.outTmp, MANIFEST_FILE), manifest);
    await staged.commit();
    const manifestPath = join(outDir, MANIFEST_FILE);
    const storeTar = manifest.outputs.find((o) => o.path === STORE_TAR);
    reporter.event({
      event: 'bake.done',
      message: config.mode === 'store' && storeTar ? storeDoneMessage(outDir, storeTar) : `wrote ${manifest.outputs.length} archive(s) and ${manifestPath}`,
      outDir,
    });
    return {
      outDir,
      manifestPath,
      manifest,
      upToDate: false,
      ...(storeTar && config.mode === 'store' ? { storeTar: { ...storeTar, path: join(outDir, STORE_TAR) } } : {}),
      ...(packed.squashfs ? { squashfs: packed.squashfs } : {}),
    };
  } finally {
    await staged.discard();
  }
}

/**
 * The budget check (docs/report.md): before any engine starts or any output is written, from
 * the lock and the cache alone. Over budget: DoesNotFitError (exit 3) and no OUT is created.
 */
async function checkFit(options: BakeOptions, config: Readonly<ResolvedBakeConfig>, inputs: BakeInputs): Promise<void> {
  const fit = options.fit;
  if (!fit || !resolveBudget(fit)) return;
  await inputs.checkCache();
  await checkBakeBudget({
    ...fit,
    lock: inputs.lock,
    lockPath: config.lockPath,
    cacheDir: config.cacheDir,
    mode: config.mode,
    engine: config.engine,
    storageDriver: config.storageDriver,
    reporter: config.reporter,
    ...(config.signal ? { signal: config.signal } : {}),
  });
}
