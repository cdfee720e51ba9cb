import { createReadStream } from 'node:fs';
import { copyFile, mkdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { EngineName, LockedImage } from '../formats/index.js';
import { EnginePullError, startEngine, type Engine } from '../engine/index.js';
import { registerCleanup } from '../util/cleanup.js';
import { sha256File } from '../util/fs.js';
import { credentialsFor } from './auth.js';
import { commitBlob, makeCacheWorkDir } from './cache.js';
import { classifyRegistryFailure } from './classify.js';
import { DigestMismatchError } from './errors.js';
import { withRetry } from './retry.js';
import { commitSavedImage, unpackSavedImage } from './saved-archive.js';
import type { ImageFetcher, ImageFetchOutcome, ResolvedFetchConfig, StoredBlob } from './types.js';
import { checkManifestMatchesLock, imageLabel } from './verify.js';

/**
 * Fetchers "docker" and "podman": pull by digest in a private engine (never the host's), save
 * the image, and store what can be verified: the config under its digest and each layer
 * uncompressed under its diff_id (engines keep layers unpacked, not as the registry served
 * them), and the manifest where the engine kept its bytes. Before anything enters the cache,
 * what the engine pulled is checked against the lock with what its store recorded. The
 * engine runs on the host network only for the pull and is torn down at close().
 * vfs storage: works on any filesystem, also inside an overlayfs build container.
 */

const pullRef = (image: LockedImage) => `${image.registry}/${image.repository}@${image.manifest.digest}`;

/** Runs one image through an engine-specific pull and save, in a work dir under CACHE/tmp/. */
async function withWorkDir<T>(config: ResolvedFetchConfig, kind: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await makeCacheWorkDir(config.cacheDir, kind);
  const release = () => rm(dir, { recursive: true, force: true });
  const unregister = registerCleanup(`${kind} download ${dir}`, release);
  try {
    return await fn(dir);
  } finally {
    unregister();
    await release();
  }
}

function retryHooks(config: ResolvedFetchConfig, image: LockedImage) {
  return {
    signal: config.signal,
    onRetry: ({ attempt, delayMs, reason }: { attempt: number; delayMs: number; reason: string }) =>
      config.reporter.event({ event: 'fetch.retry', message: `${imageLabel(image)}: attempt ${attempt} failed (${reason}); retrying in ${delayMs} ms`, attempt, delayMs }),
  };
}

/**
 * The engine's image store (docker data-root, podman root) lives in a work dir under
 * CACHE/tmp/, on the cache's filesystem: unpacked images can be large, and /tmp may be a
 * small tmpfs. The engine's own private dir (sockets, configs) stays under /tmp.
 */
function engineStore(config: ResolvedFetchConfig, kind: string): { dir(): Promise<string>; remove(): Promise<void> } {
  let made: Promise<string> | undefined;
  let unregister: (() => void) | undefined;
  return {
    dir: () =>
      (made ??= makeCacheWorkDir(config.cacheDir, kind).then((dir) => {
        unregister = registerCleanup(`${kind} store ${dir}`, () => rm(dir, { recursive: true, force: true }));
        return dir;
      })),
    async remove() {
      const dir = await made?.catch(() => undefined);
      if (dir) await rm(dir, { recursive: true, force: true });
      unregister?.();
    },
  };
}

export function createEngineFetcher(name: EngineName, config: ResolvedFetchConfig): ImageFetcher {
  let engine: Promise<Engine> | undefined;
  const store = engineStore(config, name);
  const start = () =>
    (engine ??= store.dir().then((dir) =>
      startEngine({
        engine: name,
        storageDriver: 'vfs',
        network: 'host',
        dataRoot: join(dir, 'root'),
        insecureRegistries: [...config.insecureRegistries],
        ...(config.signal ? { signal: config.signal } : {}),
      }),
    ));
  return {
    name,
    async fetchImage(image: LockedImage): Promise<ImageFetchOutcome> {
      const running = await start();
      const ref = pullRef(image);
      const creds = credentialsFor(config.auth, image.registry, image.repository);
      await withRetry(
        image.registry,
        config.retry,
        async () => {
          try {
            await running.pull(ref, {
              ...(config.auth ? { authfile: config.auth.path } : {}),
              ...(creds ? { credentials: { username: creds.username, password: creds.password.reveal() } } : {}),
              insecure: config.insecureRegistries.has(image.registry),
              onProgress: ({ status, current, total }) => config.reporter.progress({ event: 'fetch.download', message: `${imageLabel(image)}: ${status}`, current, total }),
              ...(config.signal ? { signal: config.signal } : {}),
            });
          } catch (error) {
            if (error instanceof EnginePullError) throw classifyRegistryFailure(error.detail, image, running.program, config.secrets);
            throw error;
          }
        },
        retryHooks(config, image),
      );
      return withWorkDir(config, name, async (dir) => {
        const manifestCopy = await checkPulled(running, image, config, dir);
        const archive = join(dir, 'saved.tar');
        await running.save(ref, archive);
        const unpackDir = join(dir, 'unpacked');
        await mkdir(unpackDir);
        const blobs = await commitSavedImage(config.cacheDir, await unpackSavedImage(createReadStream(archive), unpackDir), image, `${name} save`);
        await rm(archive, { force: true });
        let manifest: StoredBlob | undefined;
        if (manifestCopy) {
          const outcome = await commitBlob(config.cacheDir, manifestCopy, { digest: image.manifest.digest, size: image.manifest.size, what: `platform manifest of ${imageLabel(image)}` });
          manifest = { kind: 'manifest', digest: image.manifest.digest, size: image.manifest.size, outcome };
          blobs.push(manifest);
        }
        return { blobs, manifestCached: manifest !== undefined };
      });
    },
    async close() {
      if (engine) await (await engine.catch(() => undefined))?.stop();
      await store.remove();
    },
  };
}

/**
 * Checks what the engine pulled against the lock, before anything enters blobs/: the image id
 * is the config digest and there are as many layers; where the engine recorded the compressed
 * digest it pulled for each layer (dockerd), each is the lock's and maps to the config's
 * diff_id, so the pulled manifest listed exactly the lock's layers, in order. Where the engine
 * kept the manifest (podman), any store file whose sha256 is the lock's manifest digest is it,
 * whatever the store layout: returns a copy in `dir`.
 */
async function checkPulled(engine: Engine, image: LockedImage, config: ResolvedFetchConfig, dir: string): Promise<string | undefined> {
  const label = imageLabel(image);
  const pulled = await engine.inspect(pullRef(image)).catch((error: unknown) => {
    throw new DigestMismatchError(`image ${label} in the private ${engine.program}`, 'the pulled image', `nothing (${(error as Error).message})`);
  });
  if (!pulled) throw new DigestMismatchError(`image ${label} in the private ${engine.program}`, 'the pulled image', 'nothing');
  if (pulled.id !== image.config.digest) throw new DigestMismatchError(`config of ${label} as ${engine.program} pulled it`, image.config.digest, pulled.id);
  const diffIds = pulled.diffIds;
  if (diffIds.length !== image.layers.length) throw new DigestMismatchError(`layer count of ${label}`, String(image.layers.length), String(diffIds.length));
  const records = await engine.pullRecords(image.config.digest, image.layers.map((l) => l.digest));
  if (records.layerDiffIds === 'unrecorded') {
    // An engine that keeps no such records (another version or storage backend): say so, do not guess.
    config.reporter.event({
      event: 'fetch.layer-digests-unverified',
      message: `${label}: ${engine.program} ${engine.version} keeps no record of the compressed layer digests; only the config and diff_ids were verified`,
      reference: image.reference,
    });
  } else if (records.layerDiffIds) {
    for (const [i, layer] of image.layers.entries()) {
      const recorded = records.layerDiffIds.get(layer.digest);
      if (recorded !== diffIds[i]) {
        throw new DigestMismatchError(`layer ${i} of ${label}`, `${layer.digest} (uncompressed ${diffIds[i]})`, recorded ? `a layer with diff_id ${recorded}` : 'a manifest that does not list it');
      }
    }
  }
  for (const file of records.manifestCandidates) {
    if ((await stat(file)).size !== image.manifest.size) continue;
    if (`sha256:${await sha256File(file)}` !== image.manifest.digest) continue;
    checkManifestMatchesLock(await readFile(file, 'utf8'), image);
    const copy = join(dir, 'manifest');
    await copyFile(file, copy);
    return copy;
  }
  return undefined;
}
