/**
 * `bake --mode store --engine docker --builder native`: the docker overlay2 or vfs store written by
 * ctrbake itself (docker-store.ts), no engine started, no privilege needed. Same OUT as the
 * engine path: OUT/store.tar and the manifest (the caller, bake.ts, adds store.sqfs, writes
 * manifest.json and commits the staging dir). The manifest names the engine version the
 * store was written for (`--engine-version`), not an installed engine's.
 */
import { createWriteStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ConfigError, InputError } from '../errors.js';
import type { BakeManifest, LockedImage, LockFile, ManifestImage } from '../formats/index.js';
import { formatPlatform } from '../formats/index.js';
import { assertCacheComplete } from '../fetch/complete.js';
import { blobPath } from '../fetch/cache.js';
import { diffIdsOfConfig } from '../formats/oci.js';
import { configMatchesPlatform } from '../registry/platform.js';
import { sha256File } from '../util/fs.js';
import { silentReporter, type Reporter } from '../util/reporter.js';
import type { StagedOutput } from '../util/staged-output.js';
import { VERSION } from '../version.js';
import { dockerStoreTar, planDockerStore, type DockerStoreDriver, type DockerStorePlan } from './docker-store.js';
import { planPodmanStore, podmanStoreTar, podmanTarSplitFlavour } from './podman-store.js';
import { checkContainerdBlobs, CONTAINERD_DB_VERSION, containerdStoreTar, planContainerdStore } from './containerd-store.js';

/** The engine versions whose store format the builder writes and the oracle tests prove. */
export const DEFAULT_ENGINE_VERSION = '20.10';
export const DEFAULT_PODMAN_VERSION = '4.3';

/** `--engine-version`'s default for an engine. */
export function defaultEngineVersion(engine: string): string {
  return engine === 'podman' ? DEFAULT_PODMAN_VERSION : DEFAULT_ENGINE_VERSION;
}

const STORE_TAR = 'store.tar';

export interface NativeStoreOptions {
  lock: LockFile;
  /** docker (default) or podman. */
  engine?: string;
  cacheDir: string;
  storageDriver: string;
  engineVersion: string;
  sourceDateEpoch: number;
  reporter?: Reporter;
  signal?: AbortSignal;
  /** The cache check (every blob sized and hashed); default: run it here. A bake passes its own, run once. */
  checkCache?: () => Promise<unknown>;
}

/** The manifest's record of an image: the lock's, with each layer's diff id. */
function manifestImage(image: LockedImage, diffIds: readonly string[]): ManifestImage {
  const { reference, repository, tag, indexDigest, platform } = image;
  const layers = image.layers.map((layer, i) => Object.assign({}, layer, { diffId: diffIds[i]! }));
  return { reference, repository, tag, digest: image.manifest.digest, indexDigest, imageId: image.config.digest, platform, layers };
}

/** The image's config must be for the lock's platform (E_WRONG_PLATFORM otherwise). */
export function assertConfigPlatform(image: LockedImage, config: Buffer, lock: LockFile): void {
  const parsed = JSON.parse(config.toString('utf8')) as { os?: string; architecture?: string; variant?: string };
  const have = { os: parsed.os ?? '', architecture: parsed.architecture ?? '', ...(parsed.variant ? { variant: parsed.variant } : {}) };
  if (!configMatchesPlatform(lock.platform, have)) {
    throw new InputError(
      'E_WRONG_PLATFORM',
      `${image.reference} is ${formatPlatform(have)}, the lock is for ${formatPlatform(lock.platform)}; lock it again with \`ctrbake lock --platform ${formatPlatform(lock.platform)}\``,
      { details: { reference: image.reference, platform: have, expected: lock.platform } },
    );
  }
}

function checkPlatforms(plan: Pick<DockerStorePlan, 'images'>, lock: LockFile): void {
  for (const { image, config } of plan.images) assertConfigPlatform(image, config, lock);
}

/** Writes `outTmp/store.tar` and returns the manifest (without writing it). */
export async function bakeNativeStoreInto(options: NativeStoreOptions, outTmp: string): Promise<BakeManifest> {
  const reporter = options.reporter ?? silentReporter;
  const engine = options.engine ?? 'docker';
  if (options.lock.images.length === 0) throw new ConfigError('E_STORE_INPUT', 'the lock holds no image: nothing to bake');
  await (options.checkCache ? options.checkCache() : assertCacheComplete(options.cacheDir, options.lock));
  reporter.event({
    event: 'bake.start',
    message: `building a ${engine} ${options.storageDriver} store of ${options.lock.images.length} image(s) for ${formatPlatform(options.lock.platform)} with ctrbake's builder (for ${engine} ${options.engineVersion}), offline, no engine`,
    mode: 'store',
    images: options.lock.images.length,
  });
  const storeOptions = {
    lock: options.lock,
    cacheDir: options.cacheDir,
    engineVersion: options.engineVersion,
    sourceDateEpoch: options.sourceDateEpoch,
    storageDriver: options.storageDriver as DockerStoreDriver,
    // The staging dir: on OUT's filesystem, removed with it if the bake fails.
    spoolDir: outTmp,
    onLayer: (done: number, total: number, layer: { digest: string; reference: string }) =>
      reporter.event({ event: 'layer.written', message: `layer ${done}/${total} written (${layer.digest.slice(0, 19)}, ${layer.reference})`, done, total, digest: layer.digest }),
  };
  // Plans read the cache; the tar generators start only when piped (after the platform check).
  let plan: Pick<DockerStorePlan, 'images'>;
  let tar: AsyncIterable<Buffer>;
  if (engine === 'podman') {
    podmanTarSplitFlavour(options.engineVersion);
    const podmanPlan = await planPodmanStore(storeOptions);
    [plan, tar] = [podmanPlan, podmanStoreTar(podmanPlan, storeOptions)];
  } else {
    const dockerPlan = await planDockerStore(storeOptions);
    [plan, tar] = [dockerPlan, dockerStoreTar(dockerPlan, storeOptions)];
  }
  checkPlatforms(plan, options.lock);
  reporter.event({ event: 'store.tar', message: `writing ${STORE_TAR}` });
  const tarPath = join(outTmp, STORE_TAR);
  await pipeline(Readable.from(tar), createWriteStream(tarPath), ...(options.signal ? [{ signal: options.signal }] : []));
  const images = plan.images.map(({ image, diffIds }) => manifestImage(image, diffIds));
  return {
    manifestVersion: 1,
    ctrbakeVersion: VERSION,
    mode: 'store',
    engine: { name: engine === 'podman' ? 'podman' : 'docker', version: options.engineVersion },
    storageDriver: options.storageDriver,
    platform: options.lock.platform,
    sourceDateEpoch: options.sourceDateEpoch,
    images,
    outputs: [{ path: STORE_TAR, sha256: await sha256File(tarPath), size: (await stat(tarPath)).size }],
  };
}

/** The containerd schema the builder writes (meta.db v1, dbVersion 3: containerd 1.6 and 2.x; docs/containerd.md). */
export const CONTAINERD_STORE_VERSION = `meta.db v1/${CONTAINERD_DB_VERSION}`;

export interface ContainerdBakeOptions {
  lock: LockFile;
  cacheDir: string;
  namespace: string;
  sourceDateEpoch: number;
  reporter?: Reporter;
  signal?: AbortSignal;
}

/**
 * `bake --mode store --engine containerd`: containerd's content store and meta.db (the
 * registry's blobs as fetched, images recorded in one namespace) as OUT/store.tar.
 */
export async function bakeContainerdStoreInto(options: ContainerdBakeOptions, outTmp: string): Promise<BakeManifest> {
  const reporter = options.reporter ?? silentReporter;
  if (options.lock.images.length === 0) throw new ConfigError('E_STORE_INPUT', 'the lock holds no image: nothing to bake');
  await assertCacheComplete(options.cacheDir, options.lock);
  reporter.event({
    event: 'bake.start',
    message: `building a containerd content store of ${options.lock.images.length} image(s) for ${formatPlatform(options.lock.platform)} in namespace ${options.namespace} with ctrbake's builder, offline, no engine`,
    mode: 'store',
    images: options.lock.images.length,
  });
  const plan = planContainerdStore({ lock: options.lock, namespace: options.namespace });
  await checkContainerdBlobs(plan, options.cacheDir);
  const tarPath = join(outTmp, STORE_TAR);
  reporter.event({ event: 'store.tar', message: `writing ${STORE_TAR}` });
  await pipeline(Readable.from(containerdStoreTar(plan, options)), createWriteStream(tarPath), ...(options.signal ? [{ signal: options.signal }] : []));
  const images = await Promise.all(
    options.lock.images.map(async (image) => manifestImage(image, diffIdsOfConfig((await readFile(blobPath(options.cacheDir, image.config.digest))).toString('utf8')) ?? [])),
  );
  return {
    manifestVersion: 1,
    ctrbakeVersion: VERSION,
    mode: 'store',
    engine: { name: 'containerd', version: CONTAINERD_STORE_VERSION },
    storageDriver: 'overlayfs',
    namespace: options.namespace,
    platform: options.lock.platform,
    sourceDateEpoch: options.sourceDateEpoch,
    images,
    outputs: [{ path: STORE_TAR, sha256: await sha256File(tarPath), size: (await stat(tarPath)).size }],
  };
}

/** The bake dispatch's entry: the resolved bake config (structurally), into the bake's staging dir. */
export async function bakeNativeStoreFromConfigInto(
  config: Readonly<{ cacheDir: string; engine: string; namespace?: string; storageDriver: string; engineVersion: string; sourceDateEpoch: number; reporter: Reporter; signal?: AbortSignal }>,
  inputs: Readonly<{ lock: LockFile; checkCache: () => Promise<unknown> }>,
  staged: StagedOutput,
): Promise<BakeManifest> {
  const { cacheDir, engine, storageDriver, engineVersion, sourceDateEpoch, reporter, signal } = config;
  const { lock, checkCache } = inputs;
  // Every blob checked against its digest before anything is written (once: the bake's check), as the engine path does.
  if (engine === 'containerd') {
    await checkCache();
    return bakeContainerdStoreInto({ lock, cacheDir, namespace: config.namespace ?? 'default', sourceDateEpoch, reporter, ...(signal ? { signal } : {}) }, staged.outTmp);
  }
  return bakeNativeStoreInto({ lock, cacheDir, engine, storageDriver, engineVersion, sourceDateEpoch, reporter, checkCache, ...(signal ? { signal } : {}) }, staged.outTmp);
}
