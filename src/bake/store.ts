/**
 * `bake --mode store`: the engine's own image store with the locked images already in it,
 * as OUT/store.tar (paths relative to the data-root / graphroot) plus OUT/manifest.json.
 *
 *   1. a staging dir next to OUT (stageOutput: same filesystem, the final rename is atomic;
 *      the engine root can be large, so it does not go to /tmp)
 *   2. a time marker, then a private engine on STAGING/root with an explicit storage driver
 *   3. load every locked image from the cache (offline), check id and platform
 *   4. stop the engine cleanly, normalize its root (store-docker.ts / store-podman.ts:
 *      runtime state out, random names replaced by content-derived ones)
 *   5. everything the bake wrote gets mtime SOURCE_DATE_EPOCH; GNU tar writes store.tar
 *   6. the caller (bake.ts) adds store.sqfs and the fingerprint, writes manifest.json, then
 *      STAGING/out is renamed to OUT: no half OUT on failure or interruption
 */
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ConfigError, EngineError, InputError } from '../errors.js';
import type { BakeManifest, EngineName, LockFile, LockedImage, ManifestImage, Platform } from '../formats/index.js';
import { startEngine, type Engine } from '../engine/index.js';
import { formatPlatform } from '../formats/index.js';
import { buildManifest, MANIFEST_FILE, manifestImageOf, writeManifest } from '../formats/manifest.js';
import { blobPath, readCachedDiffIds, resolveLayerBlob } from '../fetch/cache.js';
import { assertCacheComplete } from '../fetch/complete.js';
import { configMatchesPlatform } from '../registry/platform.js';
import { silentReporter, type Reporter } from '../util/reporter.js';
import { sha256File } from '../util/fs.js';
import { DEFAULT_SOURCE_DATE_EPOCH } from '../util/sde.js';
import { ENGINE_STORAGE_DRIVERS } from '../layouts.js';
import { writeDockerArchive } from '../formats/docker-archive.js';
import { imageTag } from './archive.js';
import type { BakeInputs } from './inputs.js';
import { runnableEngine, type ResolvedBakeConfig } from './options.js';
import { stageOutput, type StagedOutput } from '../util/staged-output.js';
import { addDockerDigestReferences, normalizeDockerStore, type NormalizedStore } from './store-docker.js';
import { clampBakeTimes, writeTimeMarker } from './store-normalize.js';
import { normalizePodmanStore } from './store-podman.js';
import { checkGnuTar, writeStoreTar } from './store-tar.js';
import { normalizeListedReference } from './verify-store.js';

export const STORE_TAR = 'store.tar';

export interface BakeStoreOptions {
  lock: LockFile;
  cacheDir: string;
  engine: EngineName;
  /** docker: overlay2 (default) | vfs; podman: overlay (default) | vfs. */
  storageDriver?: string;
  outDir: string;
  sourceDateEpoch?: number;
  reporter?: Reporter;
  signal?: AbortSignal;
  /** Engine binary (dockerd / podman), for tests and unusual installs. */
  engineBinary?: string;
  /** Base of the engine's private dir (unix sockets: keep it short). */
  tmpBase?: string;
  /** The bake's shared cache check (inputs.ts); default: check the cache here. */
  checkCache?: () => Promise<unknown>;
}

export interface BakeStoreResult {
  outDir: string;
  manifest: BakeManifest;
  storeTar: { path: string; sha256: string; size: number };
}

export function resolveStoreDriver(engine: EngineName, storageDriver: string | undefined): string {
  // Podman calls overlay2 "overlay": accept the docker spelling, as bake's option resolution does.
  const driver = engine === 'podman' && storageDriver === 'overlay2' ? 'overlay' : (storageDriver ?? ENGINE_STORAGE_DRIVERS[engine][0]);
  if (!ENGINE_STORAGE_DRIVERS[engine].includes(driver)) {
    throw new ConfigError(
      'E_STORE_DRIVER',
      `storage driver ${driver} is not supported for a ${engine} store: use ${ENGINE_STORAGE_DRIVERS[engine].join(' or ')} (--storage-driver)`,
      { details: { engine, storageDriver: driver } },
    );
  }
  return driver;
}

function cacheMiss(image: LockedImage, digest: string, cacheDir: string): InputError {
  return new InputError(
    'E_CACHE_MISS',
    `${image.reference}: ${digest} is not in the cache ${cacheDir}; run ctrbake fetch with this lock first (bake is offline)`,
    { details: { reference: image.reference, digest } },
  );
}

async function loadImage(engine: Engine, image: LockedImage, platform: Platform, cacheDir: string, archivePath: string, sourceDateEpoch: number): Promise<string[]> {
  let configBytes: Buffer;
  try {
    configBytes = await readFile(blobPath(cacheDir, image.config.digest));
  } catch {
    throw cacheMiss(image, image.config.digest, cacheDir);
  }
  const diffIds = (await readCachedDiffIds(cacheDir, image.config.digest)) ?? [];
  if (diffIds.length !== image.layers.length) {
    throw new InputError('E_STORE_INPUT', `${image.reference}: the cached config declares ${diffIds.length} layers, the lock ${image.layers.length}`);
  }
  // Loaded under the tag (a reference pinned by digest only stays untagged: found by its id).
  const tag = imageTag(image);
  const layers = [];
  for (const [i, layer] of image.layers.entries()) {
    const blob = await resolveLayerBlob(cacheDir, layer, diffIds[i]);
    if (!blob) throw cacheMiss(image, layer.digest, cacheDir);
    layers.push({ path: blob.path, name: `${blob.digest.replace(/^sha256:/, '')}${blob.compressed ? '.tar.gz' : '.tar'}` });
  }
  await writeDockerArchive(
    archivePath,
    [{ configBytes, configName: `${image.config.digest.replace(/^sha256:/, '')}.json`, layers, repoTags: tag ? [tag] : [] }],
    sourceDateEpoch,
  );
  await engine.load(archivePath);
  await rm(archivePath, { force: true });
  const inspected = await engine.inspect(tag ?? image.config.digest);
  if (!inspected) throw new EngineError('E_ENGINE_COMMAND', `${engine.name} loaded ${image.reference} but does not list it as ${tag ?? image.config.digest}`);
  if (inspected.id !== image.config.digest) {
    throw new InputError(
      'E_DIGEST_MISMATCH',
      `${image.reference}: ${engine.name} loaded image id ${inspected.id}, the lock's config digest is ${image.config.digest}; the cache is damaged: run \`ctrbake fetch\` again`,
      { details: { reference: image.reference, imageId: inspected.id, expected: image.config.digest } },
    );
  }
  const have = { os: inspected.os, architecture: inspected.architecture, ...(inspected.variant ? { variant: inspected.variant } : {}) };
  if (!configMatchesPlatform(platform, have)) {
    throw new InputError(
      'E_WRONG_PLATFORM',
      `${image.reference} is ${formatPlatform(have)} in ${engine.name}, the lock is for ${formatPlatform(platform)}; lock it again with \`ctrbake lock --platform ${formatPlatform(platform)}\``,
      { details: { reference: image.reference, platform: have, expected: platform } },
    );
  }
  return diffIds;
}

function checkStoreHolds(store: NormalizedStore, lock: LockFile, engine: EngineName): void {
  for (const image of lock.images) {
    const found = store.images.find((i) => i.id === image.config.digest);
    const refs = (found?.references ?? []).map(normalizeListedReference);
    const tag = imageTag(image);
    if (!found || (tag !== undefined && !refs.includes(normalizeListedReference(tag)))) {
      throw new InputError('E_STORE_LAYOUT', `the ${engine} store lacks ${image.reference} (image ${image.config.digest}) after loading it`);
    }
  }
}

/**
 * Bakes the store into `staged.outTmp/store.tar` and returns the manifest; writes neither
 * manifest.json nor OUT (the caller adds what it adds, writes manifest.json and commits).
 */
export async function bakeStoreInto(options: BakeStoreOptions, staged: StagedOutput): Promise<BakeManifest> {
  const reporter = options.reporter ?? silentReporter;
  const sourceDateEpoch = options.sourceDateEpoch ?? DEFAULT_SOURCE_DATE_EPOCH;
  const driver = resolveStoreDriver(options.engine, options.storageDriver);
  if (options.lock.images.length === 0) throw new ConfigError('E_STORE_INPUT', 'the lock holds no image: nothing to bake');
  await checkGnuTar();
  options.signal?.throwIfAborted();

  await (options.checkCache ? options.checkCache() : assertCacheComplete(options.cacheDir, options.lock));
  let engine: Engine | undefined;
  try {
    const root = join(staged.staging, 'root');
    await mkdir(root, { mode: 0o710 });
    const marker = join(staged.work, 'bake-start');
    await writeTimeMarker(marker);

    reporter.event({
      event: 'bake.start',
      message: `baking a ${options.engine} ${driver} store of ${options.lock.images.length} image(s) for ${formatPlatform(options.lock.platform)}, offline`,
      mode: 'store',
      images: options.lock.images.length,
    });
    engine = await startEngine({
      engine: options.engine,
      storageDriver: driver,
      dataRoot: root,
      keepDataRoot: true,
      ...(options.engineBinary ? { binary: options.engineBinary } : {}),
      ...(options.tmpBase ? { tmpBase: options.tmpBase } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const version = engine.version;
    reporter.event({
      event: 'engine.started',
      message: `${engine.name} ${version} started (private, no network, ${driver})`,
      engine: engine.name,
      version,
      storageDriver: driver,
      privateDir: engine.privateDir,
    });
    const images: ManifestImage[] = [];
    for (const [index, image] of options.lock.images.entries()) {
      options.signal?.throwIfAborted();
      reporter.event({ event: 'image.loading', message: `loading ${image.reference}`, reference: image.reference, current: index, total: options.lock.images.length });
      const diffIds = await loadImage(engine, image, options.lock.platform, options.cacheDir, join(staged.work, 'load.tar'), sourceDateEpoch);
      images.push(manifestImageOf(image, diffIds));
    }
    await engine.stop();
    engine = undefined;
    reporter.event({ event: 'engine.stopped', message: `${options.engine} stopped cleanly; its root is kept for the store` });

    reporter.event({ event: 'store.normalize', message: 'keeping image metadata and layers, content-derived names' });
    const store =
      options.engine === 'docker'
        ? await normalizeDockerStore(root, driver as 'overlay2' | 'vfs')
        : await normalizePodmanStore(root, driver as 'overlay' | 'vfs', sourceDateEpoch);
    checkStoreHolds(store, options.lock, options.engine);
    if (options.engine === 'docker') {
      await addDockerDigestReferences(
        root,
        driver as 'overlay2' | 'vfs',
        options.lock.images.map((i) => ({ repository: `${i.registry}/${i.repository}`, digests: [...new Set([i.indexDigest, i.manifest.digest])], imageId: i.config.digest })),
      );
    }
    await clampBakeTimes(root, marker, sourceDateEpoch);

    reporter.event({ event: 'store.tar', message: `writing ${STORE_TAR}` });
    const tarPath = join(staged.outTmp, STORE_TAR);
    await writeStoreTar(root, store.members, tarPath, options.signal);
    const storeTar = { path: STORE_TAR, sha256: await sha256File(tarPath), size: (await stat(tarPath)).size };
    const manifest = buildManifest({
      mode: 'store',
      engine: { name: options.engine, version },
      storageDriver: driver,
      platform: options.lock.platform,
      sourceDateEpoch,
      images,
      outputs: [storeTar],
    });
    return manifest;
  } finally {
    if (engine) await engine.stop();
  }
}

/** A store bake on its own (library callers): stages, bakes, writes manifest.json and commits OUT. */
export async function bakeStore(options: BakeStoreOptions): Promise<BakeStoreResult> {
  const outDir = resolve(options.outDir);
  const staged = await stageOutput(outDir, { label: 'bake staging', ...(options.signal ? { signal: options.signal } : {}) });
  try {
    const manifest = await bakeStoreInto(options, staged);
    await writeManifest(join(staged.outTmp, MANIFEST_FILE), manifest);
    await staged.commit();
    const storeTar = manifest.outputs.find((o) => o.path === STORE_TAR)!;
    (options.reporter ?? silentReporter).event({ event: 'bake.done', message: storeDoneMessage(outDir, storeTar), outDir });
    return { outDir, manifest, storeTar: { ...storeTar, path: join(outDir, STORE_TAR) } };
  } finally {
    await staged.discard();
  }
}

export function storeDoneMessage(outDir: string, storeTar: { size: number; sha256: string }): string {
  return `wrote ${join(outDir, STORE_TAR)} (${storeTar.size} bytes, sha256 ${storeTar.sha256}) and manifest.json`;
}

/** The `bake --mode store` entry: the resolved bake config and the inputs bake read once, into the bake's staging dir. */
export async function bakeStoreFromConfigInto(config: Readonly<ResolvedBakeConfig>, inputs: BakeInputs, staged: StagedOutput): Promise<BakeManifest> {
  return bakeStoreInto(
    {
      lock: inputs.lock,
      checkCache: inputs.checkCache,
      cacheDir: config.cacheDir,
      engine: runnableEngine(config.engine),
      storageDriver: config.storageDriver,
      outDir: config.outDir,
      sourceDateEpoch: config.sourceDateEpoch,
      reporter: config.reporter,
      ...(config.engineBinary ? { engineBinary: config.engineBinary } : {}),
      ...(config.tmpBase ? { tmpBase: config.tmpBase } : {}),
      ...(config.signal ? { signal: config.signal } : {}),
    },
    staged,
  );
}
