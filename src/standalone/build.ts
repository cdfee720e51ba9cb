/**
 * `ctrbake build`: the whole pipeline in one call, for Buildroot post-build scripts and
 * anyone without Yocto:
 *
 *   image list | compose file + target (BR2 options, .config or OS/ARCH)
 *     -> lock (reused when it matches)  -> fetch into the cache (BR2_DL_DIR)
 *     -> [--fetch-only stops here]      -> bake (offline)  -> loader
 *     -> a rootfs overlay dir, and with --partition-image the payload as a SquashFS partition
 *
 * Outputs appear whole or not at all: everything is made in a staging dir next to the
 * overlay dir and renamed into place once every step succeeded.
 */
import { renameSync } from 'node:fs';
import { copyFile, open, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { bake } from '../bake/bake.js';
import { checkBakeOutput, releaseEngineStaging } from '../bake/bake-output.js';
import { checkOverlayOutput } from '../loader/loader-output.js';
import { SQUASHFS_FILE_MAGIC } from '../squashfs/index.js';
import { checkOutput, startsWith, type NamedPath } from '../util/output.js';
import { recoverStagedOutputs, stageOutput } from '../util/staged-output.js';
import { CtrbakeError, InputError } from '../errors.js';
import { formatPlatform, type LockFile } from '../formats/index.js';
import { assertCacheComplete } from '../fetch/complete.js';
import { fetchImages } from '../fetch/fetch.js';
import { generateLoader } from '../loader/generate.js';
import { registerCleanup } from '../util/cleanup.js';
import { fsyncDir, sha256File, tempSiblingPath } from '../util/fs.js';
import { lockStep, readImageList } from './lock-step.js';
import { resolveStandaloneOptions, type ResolvedStandaloneConfig, type StandaloneBuildOptions } from './options.js';
import { emptyDirectory, mountOrderBefore, writeMountFiles, writePartitionImage } from './partition.js';
import { describeTarget } from './target.js';

export interface StandaloneFetchSummary {
  /** null: nothing was downloaded (complete cache, or --offline). */
  fetcher: string | null;
  blobsFetched: number;
  bytesFetched: number;
  blobsAlreadyCached: number;
}

export interface StandaloneBuildResult {
  platform: string;
  /** Where the platform came from (--platform, BR2_ARCH=..., a .config). */
  target: string;
  lockPath: string;
  /** True when this run resolved tags at the registry and wrote the lock. */
  lockResolved: boolean;
  cacheDir: string;
  fetch: StandaloneFetchSummary;
  images: Array<{ reference: string; digest: string }>;
  fetchOnly: boolean;
  layout?: string;
  init?: string;
  engine?: string;
  overlayDir?: string;
  /** Files of the overlay dir, relative, sorted. */
  files?: string[];
  partition?: { path: string; device: string; size: number; sha256: string };
  bakeDir?: string;
}

async function fetchStep(config: Readonly<ResolvedStandaloneConfig>, lock: LockFile): Promise<StandaloneFetchSummary> {
  if (config.offline) {
    try {
      const status = await assertCacheComplete(config.cacheDir, lock);
      const blobs = status.images.reduce((n, i) => n + 1 + i.layers.length, 0);
      config.reporter.event({ event: 'build.fetch.offline', message: `offline: every blob is in ${config.cacheDir}` });
      return { fetcher: null, blobsFetched: 0, bytesFetched: 0, blobsAlreadyCached: blobs };
    } catch (error) {
      if (error instanceof CtrbakeError && error.code === 'E_CACHE_MISS') {
        error.message = `${error.message}. With --offline nothing is downloaded: run ctrbake build --fetch-only with the same images, target and --cache first (Buildroot: make source)`;
      }
      throw error;
    }
  }
  const result = await fetchImages({
    lock,
    cacheDir: config.cacheDir,
    fetcher: config.fetcher,
    ...(config.authfile ? { authfile: config.authfile } : {}),
    insecureRegistries: config.insecureRegistries,
    reporter: config.reporter,
    ...(config.signal ? { signal: config.signal } : {}),
  });
  return { fetcher: result.fetcher, blobsFetched: result.blobsFetched, bytesFetched: result.bytesFetched, blobsAlreadyCached: result.blobsAlreadyCached };
}

/**
 * Puts a finished file beside `to` (renamed, or copied across filesystems) so that the final
 * rename into place is one synchronous call, made together with the overlay's commit.
 */
async function placeFileBeside(from: string, to: string): Promise<string> {
  const tmp = tempSiblingPath(to);
  try {
    await rename(from, tmp);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
    await copyFile(from, tmp);
  }
  const fh = await open(tmp, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  return tmp;
}

async function checkOutputParent(path: string, flag: string): Promise<void> {
  const parent = join(path, '..');
  const st = await stat(parent).catch(() => undefined);
  if (!st?.isDirectory()) throw new InputError('E_STANDALONE_OUTPUT', `${flag} ${path}: its directory ${parent} does not exist; create it first`);
}

/**
 * The output guard of every output of the build (src/util/output.ts), before any work: -o,
 * --bake-dir and --partition-image may replace only what ctrbake wrote, hold no input (images
 * or compose file, cache, lock) and not nest in one another. Returns -o, resolved.
 */
async function checkBuildOutputs(config: Readonly<ResolvedStandaloneConfig>): Promise<string | undefined> {
  const inputs: NamedPath[] = [
    ...(config.imagesFile ? [{ path: config.imagesFile, what: 'images file' }] : []),
    ...(config.composeFile ? [{ path: config.composeFile, what: 'compose file' }] : []),
    { path: config.cacheDir, what: 'cache' },
    ...(config.lockPath ? [{ path: config.lockPath, what: 'lock file' }] : []),
  ];
  const outputs: NamedPath[] = [
    ...(config.overlayDir ? [{ path: config.overlayDir, what: 'rootfs overlay dir (-o)' }] : []),
    ...(config.bakeDir ? [{ path: config.bakeDir, what: 'bake dir (--bake-dir)' }] : []),
    ...(config.partition ? [{ path: config.partition.image, what: 'partition image (--partition-image)' }] : []),
  ];
  const others = (self: string) => [...inputs, ...outputs.filter((o) => o.path !== self)];
  let overlay: string | undefined;
  if (config.overlayDir) overlay = (await checkOverlayOutput(config.overlayDir, 'build', others(config.overlayDir))).path;
  if (config.bakeDir) await checkBakeOutput(config.bakeDir, others(config.bakeDir));
  if (config.partition) {
    await checkOutput(
      { path: config.partition.image, flag: '--partition-image', command: 'build', kind: 'file', signature: 'a SquashFS image', isOurs: startsWith(SQUASHFS_FILE_MAGIC) },
      others(config.partition.image),
    );
  }
  return overlay;
}

export async function buildStandalone(options: StandaloneBuildOptions): Promise<StandaloneBuildResult> {
  const config = await resolveStandaloneOptions(options);
  const { reporter, signal } = config;
  // Before any network or engine work: a missing output dir would only show at the end.
  if (config.partition) await checkOutputParent(config.partition.image, '--partition-image');
  const overlayDir = await checkBuildOutputs(config);
  const references = await readImageList(config);
  reporter.event({ event: 'build.start', platform: formatPlatform(config.platform), images: references.length, message: `building ${references.length} image(s) for ${describeTarget(config.target)}` });

  const { lock, lockPath, resolved } = await lockStep(config, references);
  signal?.throwIfAborted();
  const fetch = await fetchStep(config, lock);
  const base: StandaloneBuildResult = {
    platform: formatPlatform(config.platform),
    target: config.target.source,
    lockPath,
    lockResolved: resolved,
    cacheDir: config.cacheDir,
    fetch,
    images: lock.images.map((i) => ({ reference: i.reference, digest: i.manifest.digest })),
    fetchOnly: config.fetchOnly,
  };
  if (config.fetchOnly) {
    reporter.event({ event: 'build.done', message: `fetched ${lock.images.length} image(s) into ${config.cacheDir}; the build can now run offline` });
    return base;
  }
  signal?.throwIfAborted();

  await recoverStagedOutputs(overlayDir!, releaseEngineStaging(undefined));
  const staged = await stageOutput(overlayDir!, { label: 'build staging', ...(signal ? { signal } : {}) });
  try {
    const bakeDir = config.bakeDir ?? join(staged.work, 'bake');
    reporter.event({ event: 'build.bake', message: `baking for the ${config.layout} layout (${config.mode}, ${config.engine} ${config.storageDriver}), offline` });
    const baked = await bake({
      lockPath,
      cacheDir: config.cacheDir,
      mode: config.mode,
      engine: config.engine,
      storageDriver: config.storageDriver,
      ...(config.builder ? { builder: config.builder } : {}),
      outDir: bakeDir,
      offline: true,
      sourceDateEpoch: config.sourceDateEpoch,
      reporter,
      ...(signal ? { signal } : {}),
    });
    const loader = await generateLoader({
      manifestPath: baked.manifestPath,
      layout: config.layout,
      init: config.init,
      outDir: staged.outTmp,
      payloadDir: config.payloadDir,
      ...(config.dataDir ? { dataDir: config.dataDir } : {}),
      ...(config.dataRoot ? { dataRoot: config.dataRoot } : {}),
      squashfsBackend: config.squashfsBackend,
      compression: config.compression,
      reporter,
      ...(signal ? { signal } : {}),
    });
    let files = loader.files;
    let partition: StandaloneBuildResult['partition'];
    let partitionTmp: string | undefined;
    if (config.partition) {
      const payload = join(staged.outTmp, config.payloadDir);
      partitionTmp = join(staged.work, 'partition.sqfs');
      reporter.event({ event: 'build.partition', message: `writing the payload ${config.payloadDir} as a SquashFS partition image (${config.compression})` });
      const image = await writePartitionImage({
        payloadDir: payload,
        outPath: partitionTmp,
        compression: config.compression,
        backend: config.squashfsBackend,
        sourceDateEpoch: config.sourceDateEpoch,
        reporter,
        ...(signal ? { signal } : {}),
      });
      await emptyDirectory(payload);
      const prefix = `${config.payloadDir.replace(/^\//, '')}/`;
      const mountFiles = await writeMountFiles({
        overlayDir: staged.outTmp,
        init: config.init,
        device: config.partition.device,
        payloadDir: config.payloadDir,
        ...(loader.mountUnit ? { storeMountUnit: loader.mountUnit } : {}),
        ...(config.init !== 'systemd' && mountOrderBefore(config.init, loader.files) !== undefined ? { order: mountOrderBefore(config.init, loader.files)! } : {}),
      });
      files = [...files.filter((f) => !f.startsWith(prefix)), ...mountFiles].sort();
      partition = { path: config.partition.image, device: config.partition.device, size: image.bytes, sha256: image.sha256 ?? (await sha256File(partitionTmp)) };
    }
    signal?.throwIfAborted();
    if (partitionTmp && config.partition) {
      const beside = await placeFileBeside(partitionTmp, config.partition.image);
      const unregister = registerCleanup(`remove ${beside}`, () => rm(beside, { force: true }));
      try {
        // The partition image and the overlay change together: no await between the two.
        signal?.throwIfAborted();
        renameSync(beside, config.partition.image);
        await staged.commit();
      } finally {
        await rm(beside, { force: true });
        unregister();
      }
      await fsyncDir(dirname(config.partition.image));
    } else {
      await staged.commit();
    }
    reporter.event({
      event: 'build.done',
      message: `wrote ${overlayDir} (${files.length} file(s), ${config.layout}, ${config.init})${partition ? ` and the partition image ${partition.path} (${partition.size} bytes)` : ''}`,
    });
    return {
      ...base,
      layout: config.layout,
      init: config.init,
      engine: config.engine,
      overlayDir,
      files,
      ...(partition ? { partition } : {}),
      ...(config.bakeDir ? { bakeDir: config.bakeDir } : {}),
    };
  } finally {
    await staged.discard();
  }
}
