/**
 * bake --mode archive: from the lock and the cache, fully offline, one archive per image.
 *
 * For each image: write a docker-archive from the cached config and layer blobs, load it into
 * the private engine (no network), check the image id (= the lock's config digest) and the
 * platform, save it with the engine, and normalize the saved tar (or convert it to an OCI
 * archive). The caller writes OUT/manifest.json in the staging dir and renames it to OUT at the end.
 */
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { EngineError, InputError } from '../errors.js';
import { formatPlatform, type BakeManifest, type LockedImage, type LockFile, type ManifestImage, type OutputFile } from '../formats/index.js';
import { startEngine, type Engine } from '../engine/index.js';
import { buildManifest, MANIFEST_FILE, manifestImageOf, writeManifest } from '../formats/manifest.js';
import { blobPath } from '../fetch/cache.js';
import { configMatchesPlatform } from '../registry/platform.js';
import { sha256File } from '../util/fs.js';
import { readDockerArchive, writeDockerArchive } from '../formats/docker-archive.js';
import { writeOciArchive } from '../formats/oci-archive.js';
import { archiveFileName, imageTag } from '../formats/image-layout.js';
import { indexTarFile, normalizeTar } from '../formats/tar/index.js';
import { readBakeInputs, type BakeInputs } from './inputs.js';
import { runnableEngine, type ResolvedBakeConfig } from './options.js';
import type { SquashfsResult } from '../squashfs/index.js';
import { stageOutput, type StagedOutput } from '../util/staged-output.js';

export interface BakeResult {
  outDir: string;
  manifestPath: string;
  manifest: BakeManifest;
  /** bake(): true when OUT was up to date and nothing was baked. */
  upToDate?: boolean;
  /** Store mode: OUT/store.tar. */
  storeTar?: { path: string; sha256: string; size: number };
  /** Store mode with squashfs: OUT/store.sqfs. */
  squashfs?: SquashfsResult;
}

// Archive names are shared with ctrbake's own builder (builder/archive-native.ts): they live on the floor.
export { archiveFileName, imageTag } from '../formats/image-layout.js';

async function loadAndCheck(engine: Engine, image: LockedImage, lock: LockFile, inputArchive: string): Promise<string> {
  await engine.load(inputArchive);
  const ref = imageTag(image) ?? image.config.digest;
  const inspected = await engine.inspect(ref);
  if (!inspected) throw new EngineError('E_ENGINE_COMMAND', `${engine.name} loaded ${image.reference} but does not list it as ${ref}`);
  if (inspected.id !== image.config.digest) {
    throw new InputError('E_DIGEST_MISMATCH', `${image.reference}: ${engine.name} loaded image id ${inspected.id}, the lock's config digest is ${image.config.digest}; the cache is damaged: run \`ctrbake fetch\` again`, {
      details: { reference: image.reference, imageId: inspected.id, expected: image.config.digest },
    });
  }
  const have = { os: inspected.os, architecture: inspected.architecture, ...(inspected.variant ? { variant: inspected.variant } : {}) };
  if (!configMatchesPlatform(lock.platform, have)) {
    throw new InputError('E_WRONG_PLATFORM', `${image.reference} is ${formatPlatform(have)} in ${engine.name}, the lock is for ${formatPlatform(lock.platform)}; lock it again with \`ctrbake lock --platform ${formatPlatform(lock.platform)}\``, {
      details: { reference: image.reference, platform: have, expected: lock.platform },
    });
  }
  return ref;
}

/**
 * Bakes the archives into `staged.outTmp/archives` and returns the manifest; writes neither
 * manifest.json nor OUT: the caller (bake.ts) adds the fingerprint, writes manifest.json and
 * commits, so an interrupted run never changes OUT.
 */
export async function bakeArchiveInto(config: Readonly<ResolvedBakeConfig>, inputs: BakeInputs, staged: StagedOutput): Promise<BakeManifest> {
  const { reporter, signal } = config;
  const { lock } = inputs;
  reporter.event({ event: 'bake.start', message: `baking ${lock.images.length} image(s) for ${formatPlatform(lock.platform)} with ${config.engine} (${config.storageDriver}), offline`, mode: 'archive', images: lock.images.length });
  const cache = await inputs.checkCache();
  signal?.throwIfAborted();

  let engine: Engine | undefined;
  try {
    engine = await startEngine({
      engine: runnableEngine(config.engine),
      storageDriver: config.storageDriver,
      dataRoot: join(staged.staging, 'engine'),
      ...(config.engineBinary ? { binary: config.engineBinary } : {}),
      ...(config.tmpBase ? { tmpBase: config.tmpBase } : {}),
      ...(signal ? { signal } : {}),
    });
    reporter.event({ event: 'engine.started', message: `${engine.name} ${engine.version} started (private, no network, ${engine.storageDriver})`, engine: engine.name, version: engine.version, storageDriver: engine.storageDriver, privateDir: engine.privateDir });

    const taken = new Set<string>();
    const images: ManifestImage[] = [];
    const outputs: OutputFile[] = [];
    for (const [i, image] of lock.images.entries()) {
      signal?.throwIfAborted();
      const status = cache.images[i]!;
      const configBytes = await readFile(blobPath(config.cacheDir, image.config.digest));
      const inputArchive = join(staged.work, `in-${i}.tar`);
      await writeDockerArchive(
        inputArchive,
        [
          {
            configBytes,
            configName: `${image.config.digest.slice(7)}.json`,
            layers: status.layers.map((l, n) => ({ path: l!.path, name: `layers/${n}-${l!.digest.slice(7)}` })),
            repoTags: imageTag(image) ? [imageTag(image)!] : [],
          },
        ],
        config.sourceDateEpoch,
      );
      const ref = await loadAndCheck(engine, image, lock, inputArchive);
      await rm(inputArchive, { force: true });
      reporter.event({ event: 'image.loaded', message: `loaded ${image.reference} (${image.config.digest.slice(0, 19)}, ${formatPlatform(lock.platform)})`, reference: image.reference, imageId: image.config.digest });

      signal?.throwIfAborted();
      const raw = join(staged.work, `saved-${i}.tar`);
      await engine.save(ref, raw);
      const name = archiveFileName(image, config.archiveFormat, taken);
      const relPath = `archives/${name}`;
      const target = join(staged.outTmp, 'archives', name);
      await mkdir(join(staged.outTmp, 'archives'), { recursive: true });
      const normalized = config.archiveFormat === 'docker-archive' ? target : join(staged.work, `normalized-${i}.tar`);
      await normalizeTar(raw, normalized, config.sourceDateEpoch);
      await rm(raw, { force: true });
      const [saved] = await readDockerArchive(normalized, await indexTarFile(normalized));
      if (!saved || saved.configName.replace(/\.json$/, '') !== image.config.digest.slice(7)) {
        throw new EngineError('E_ENGINE_COMMAND', `${engine.name} save of ${image.reference} did not write the image ${image.config.digest}`);
      }
      const diffIds = saved.config.rootfs?.diff_ids ?? [];
      if (config.archiveFormat === 'oci-archive') {
        await writeOciArchive(target, normalized, saved, imageTag(image), staged.work, config.sourceDateEpoch);
        await rm(normalized, { force: true });
      }
      const { size } = await stat(target);
      const sha256 = await sha256File(target);
      outputs.push({ path: relPath, sha256, size });
      images.push(manifestImageOf(image, diffIds, relPath));
      reporter.event({ event: 'image.saved', message: `saved ${image.reference} -> ${relPath} (${size} bytes, sha256 ${sha256.slice(0, 12)})`, reference: image.reference, path: relPath, sha256, size });
    }

    const version = engine.version;
    const storageDriver = engine.storageDriver;
    await engine.stop();
    reporter.event({ event: 'engine.stopped', message: `${config.engine} stopped and removed` });

    const manifest = buildManifest({
      mode: 'archive',
      engine: { name: config.engine, version },
      storageDriver,
      archiveFormat: config.archiveFormat,
      platform: lock.platform,
      sourceDateEpoch: config.sourceDateEpoch,
      images,
      outputs,
    });
    return manifest;
  } finally {
    await engine?.stop();
  }
}

/** `bake --mode archive` on its own: stages, bakes, writes manifest.json and commits OUT. */
export async function bakeArchive(config: Readonly<ResolvedBakeConfig>): Promise<BakeResult> {
  const staged = await stageOutput(config.outDir, { label: 'bake staging', ...(config.signal ? { signal: config.signal } : {}) });
  try {
    const manifest = await bakeArchiveInto(config, await readBakeInputs(config), staged);
    await writeManifest(join(staged.outTmp, MANIFEST_FILE), manifest);
    await staged.commit();
    const manifestPath = join(config.outDir, MANIFEST_FILE);
    config.reporter.event({ event: 'bake.done', message: `wrote ${manifest.outputs.length} archive(s) and ${manifestPath}`, outDir: config.outDir });
    return { outDir: config.outDir, manifestPath, manifest };
  } finally {
    await staged.discard();
  }
}
