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
import { copyFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { bake } from '../bake/bake.js';
import { stageOutput } from '../util/staged-output.js';
import { CtrbakeError, InputError } from '../errors.js';
import { formatPlatform, type LockFile } from '../formats.js';
import { assertCacheComplete } from '../fetch/complete.js';
import { fetchImages } from '../fetch/fetch.js';
import { generateLoader } from '../loader/generate.js';
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
  [key: string]: unknown;
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

/** Moves a finished file into place, across filesystems if it must; durable. */
async function moveFileInto(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
    const tmp = tempSiblingPath(to);
    try {
      await copyFile(from, tmp);
      await rename(tmp, to);
    } catch (copyError) {
      await rm(tmp, { force: true });
      throw copyError;
    }
  }
  await fsyncDir(join(to, '..'));
}

async function checkOutputParent(path: string, flag: string): Promise<void> {
  const parent = join(path, '..');
  const st = await stat(parent).catch(() => undefined);
  if (!st?.isDirectory()) throw new InputError('E_STANDALONE_OUTPUT', `${flag} ${path}: its directory ${parent} does not exist; create it first`);
}

export async function buildStandalone(options: StandaloneBuildOptions): Promise<StandaloneBuildResult> {
  const config = await resolveStandaloneOptions(options);
  const { reporter, signal } = config;
  // Before any network or engine work: a missing output dir would only show at the end.
  if (config.partition) await checkOutputParent(config.partition.image, '--partition-image');
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

  const overlayDir = config.overlayDir!;
  const staged = await stageOutput(overlayDir);
  try {
    const bakeDir = config.bakeDir ?? join(staged.work, 'bake');
    reporter.event({ event: 'build.bake', message: `baking for the ${config.layout} layout (${config.mode}, ${config.engine} ${config.storageDriver}), offline` });
    const baked = await bake({
      lockPath,
      cacheDir: config.cacheDir,
      mode: config.mode,
      engine: config.engine,
      storageDriver: config.storageDriver,
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
    if (partitionTmp && config.partition) await moveFileInto(partitionTmp, config.partition.image);
    await staged.commit();
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
