import { createReadStream } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { CtrbakeError } from '../errors.js';
import type { LockedImage } from '../formats/index.js';
import { startDockerd, startPodman, type RunningDockerd, type RunningPodman } from '../engine/index.js';
import { registerCleanup } from '../util/cleanup.js';
import { sha256File } from '../util/fs.js';
import { credentialsFor } from './auth.js';
import { commitBlob, makeCacheWorkDir, parseDigest } from './cache.js';
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
 * them). The engine runs on the host network only for the pull and is torn down at close().
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

async function commitFromArchive(config: ResolvedFetchConfig, image: LockedImage, tar: Readable, dir: string, tool: string): Promise<StoredBlob[]> {
  const saved = await unpackSavedImage(tar, dir);
  return commitSavedImage(config.cacheDir, saved, image, tool);
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

// ---- docker ----------------------------------------------------------------------------

interface PullEvent {
  status?: string;
  id?: string;
  error?: string;
  errorDetail?: { message?: string };
  progressDetail?: { current?: number; total?: number };
}

export function createDockerFetcher(config: ResolvedFetchConfig): ImageFetcher {
  let engine: Promise<RunningDockerd> | undefined;
  const store = engineStore(config, 'dockerd');
  const start = () =>
    (engine ??= store.dir().then((dir) =>
      startDockerd({
        storageDriver: 'vfs',
        network: 'host',
        dataRoot: join(dir, 'data'),
        insecureRegistries: [...config.insecureRegistries],
        ...(config.signal ? { signal: config.signal } : {}),
      }),
    ));
  return {
    name: 'docker',
    async fetchImage(image: LockedImage): Promise<ImageFetchOutcome> {
      const dockerd = await start();
      const ref = pullRef(image);
      const creds = credentialsFor(config.auth, image.registry, image.repository);
      const authconfig = creds
        ? { username: creds.username, password: creds.password.reveal(), serveraddress: image.registry === 'docker.io' ? 'https://index.docker.io/v1/' : image.registry }
        : undefined;
      await withRetry(
        image.registry,
        config.retry,
        async () => {
          config.signal?.throwIfAborted();
          let events: PullEvent[];
          try {
            const stream = await dockerd.docker.pull(ref, authconfig ? { authconfig } : {});
            events = await new Promise<PullEvent[]>((resolve, reject) => {
              dockerd.docker.modem.followProgress(
                stream,
                (err: Error | null, out: PullEvent[]) => (err ? reject(err) : resolve(out)),
                (e: PullEvent) => {
                  if (e.progressDetail?.total) {
                    config.reporter.progress({ event: 'fetch.download', message: `${imageLabel(image)}: ${e.status ?? ''} ${e.id ?? ''}`, current: e.progressDetail.current, total: e.progressDetail.total });
                  }
                },
              );
            });
          } catch (error) {
            // dockerode prefixes the daemon's message with its own HTTP status (500 for most pull errors).
            const message = String((error as Error).message ?? error).replace(/^\(HTTP code \d+\)[^-]*- /, '');
            throw classifyRegistryFailure(message, image, 'dockerd', config.secrets);
          }
          // dockerd reports pull failures inside the stream, not as an HTTP error.
          const failed = events.find((e) => e.error || e.errorDetail?.message);
          if (failed) throw classifyRegistryFailure(failed.errorDetail?.message ?? failed.error ?? 'pull failed', image, 'dockerd', config.secrets);
        },
        retryHooks(config, image),
      );
      await checkDockerPulledLayers(dockerd, image, config);
      const blobs = await withWorkDir(config, 'docker', async (dir) => {
        const tar = (await dockerd.docker.getImage(ref).get()) as unknown as Readable;
        return commitFromArchive(config, image, tar, dir, 'docker save');
      });
      // dockerd keeps no copy of the manifest's original bytes.
      return { blobs, manifestCached: false };
    },
    async close() {
      if (engine) await (await engine.catch(() => undefined))?.stop();
      await store.remove();
    },
  };
}

/**
 * dockerd keeps no manifest, but it records which compressed digest it pulled for each layer
 * (image/<driver>/distribution/diffid-by-digest/). That record must exist for every layer the
 * lock names and point at the config's diff_id: so the pulled manifest listed exactly the
 * lock's layers, in order (the config digest itself is checked on the saved image).
 */
async function checkDockerPulledLayers(dockerd: RunningDockerd, image: LockedImage, config: ResolvedFetchConfig): Promise<void> {
  const dir = join(dockerd.dataRoot, 'image', dockerd.storageDriver, 'distribution', 'diffid-by-digest', 'sha256');
  const label = imageLabel(image);
  let diffIds: string[] | undefined;
  try {
    const inspect = (await dockerd.docker.getImage(pullRef(image)).inspect()) as { Id?: string; RootFS?: { Layers?: string[] } };
    if (inspect.Id !== image.config.digest) throw new DigestMismatchError(`config of ${label} as dockerd pulled it`, image.config.digest, String(inspect.Id));
    diffIds = inspect.RootFS?.Layers;
  } catch (error) {
    if (error instanceof CtrbakeError) throw error;
    throw new DigestMismatchError(`image ${label} in the private dockerd`, 'the pulled image', `nothing (${(error as Error).message})`);
  }
  if (!diffIds || diffIds.length !== image.layers.length) {
    throw new DigestMismatchError(`layer count of ${label}`, String(image.layers.length), String(diffIds?.length));
  }
  // An engine that keeps no such records (another version or storage backend): say so, do not guess.
  if (!(await stat(dir).then((st) => st.isDirectory(), () => false))) {
    config.reporter.event({
      event: 'fetch.layer-digests-unverified',
      message: `${label}: dockerd ${dockerd.version} keeps no record of the compressed layer digests; only the config and diff_ids were verified`,
      reference: image.reference,
    });
    return;
  }
  for (const [i, layer] of image.layers.entries()) {
    let recorded: string | undefined;
    try {
      recorded = (await readFile(join(dir, parseDigest(layer.digest)), 'utf8')).trim();
    } catch {
      recorded = undefined;
    }
    if (recorded !== diffIds[i]) {
      throw new DigestMismatchError(`layer ${i} of ${label}`, `${layer.digest} (uncompressed ${diffIds[i]})`, recorded ? `a layer with diff_id ${recorded}` : 'a manifest that does not list it');
    }
  }
}

// ---- podman ----------------------------------------------------------------------------

export function createPodmanFetcher(config: ResolvedFetchConfig): ImageFetcher {
  let engine: Promise<RunningPodman> | undefined;
  const store = engineStore(config, 'podman');
  const start = () =>
    (engine ??= store.dir().then((dir) =>
      startPodman({
        storageDriver: 'vfs',
        network: 'host',
        root: join(dir, 'root'),
        insecureRegistries: [...config.insecureRegistries],
        ...(config.signal ? { signal: config.signal } : {}),
      }),
    ));
  return {
    name: 'podman',
    async fetchImage(image: LockedImage): Promise<ImageFetchOutcome> {
      const podman = await start();
      const ref = pullRef(image);
      return withWorkDir(config, 'podman', async (dir) => {
        // No --authfile: an empty one, so no credentials of the host's user are picked up.
        const authfile = config.auth?.path ?? join(dir, 'no-auth.json');
        if (!config.auth) await writeFile(authfile, '{"auths":{}}\n');
        const tls = config.insecureRegistries.has(image.registry) ? ['--tls-verify=false'] : [];
        await withRetry(
          image.registry,
          config.retry,
          async () => {
            config.signal?.throwIfAborted();
            const r = await podman.exec(['pull', '--quiet', '--authfile', authfile, ...tls, ref], { reject: false, ...(config.signal ? { signal: config.signal } : {}) });
            if (r.exitCode !== 0) throw classifyRegistryFailure(r.stderr, image, 'podman', config.secrets);
          },
          retryHooks(config, image),
        );
        const archive = join(dir, 'saved.tar');
        await podman.exec(['save', '--format', 'docker-archive', '-o', archive, ref], config.signal ? { signal: config.signal } : {});
        // The manifest is checked against the lock before anything enters blobs/.
        const manifestCopy = await findManifestInPodmanStorage(podman, image, dir);
        const unpackDir = join(dir, 'unpacked');
        await mkdir(unpackDir);
        const blobs = await commitFromArchive(config, image, createReadStream(archive), unpackDir, 'podman save');
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
 * podman keeps the manifest it pulled byte for byte in its image store. Any file there whose
 * sha256 is the lock's manifest digest is that manifest: the check makes the storage layout
 * (which may change between versions) irrelevant to correctness. Returns a copy in `dir`.
 */
async function findManifestInPodmanStorage(podman: RunningPodman, image: LockedImage, dir: string): Promise<string | undefined> {
  const imageDir = join(podman.root, `${podman.storageDriver}-images`, parseDigest(image.config.digest));
  let names: string[];
  try {
    names = await readdir(imageDir);
  } catch {
    return undefined;
  }
  for (const name of names) {
    const file = join(imageDir, name);
    const st = await stat(file);
    if (!st.isFile() || st.size !== image.manifest.size) continue;
    if (`sha256:${await sha256File(file)}` !== image.manifest.digest) continue;
    checkManifestMatchesLock(await readFile(file, 'utf8'), image);
    const copy = join(dir, 'manifest');
    await copyFile(file, copy);
    return copy;
  }
  return undefined;
}
