import { createHash } from 'node:crypto';
import { link, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { CommandError } from '../errors.js';
import type { LockedImage } from '../formats/index.js';
import { registerCleanup } from '../util/cleanup.js';
import { dieWithParentPrefix, findProgram } from '../util/process.js';
import { blobPath, commitBlob, hasBlob, makeCacheWorkDir, parseDigest, type ExpectedBlob } from './cache.js';
import { classifyRegistryFailure } from './classify.js';
import { DigestMismatchError, E_FETCHER_MISSING } from './errors.js';
import { withRetry } from './retry.js';
import { salvageBlobs, SKOPEO_BLOB_SUBDIR, wantedBlobs } from './salvage.js';
import type { ImageFetcher, ImageFetchOutcome, ResolvedFetchConfig, StoredBlob } from './types.js';
import { checkManifestMatchesLock, imageLabel } from './verify.js';

/**
 * Fetcher "skopeo":
 *
 *   skopeo copy --preserve-digests docker://HOST/REPO@<platform manifest digest> \
 *     oci:CACHE/tmp/skopeo.../layout:image --dest-shared-blob-dir CACHE/tmp/skopeo.../shared
 *
 * The shared blob dir is seeded with hard links to the image's blobs the cache already has:
 * skopeo reuses them instead of downloading them (a base layer shared by several images, the
 * blobs an interrupted run completed). --preserve-digests keeps the manifest byte for byte (no
 * format conversion). Then every new file is checked against the lock and moved into blobs/.
 * skopeo checks digests while it downloads; ctrbake checks again: the cache trusts no tool.
 */
export async function createSkopeoFetcher(config: ResolvedFetchConfig): Promise<ImageFetcher> {
  const skopeo = await findProgram('skopeo');
  if (!skopeo) {
    throw new CommandError(E_FETCHER_MISSING, 'skopeo is not installed; install it (Debian: apt-get install skopeo) or choose --fetcher docker|podman');
  }
  const prefix = await dieWithParentPrefix();
  return {
    name: 'skopeo',
    fetchImage: (image) => fetchWithSkopeo(config, [...prefix, skopeo], image),
    close: async () => {},
  };
}

/** Hard links to the cached blobs of `image` in skopeo's shared blob dir; the digests linked. */
async function seedSharedBlobs(cacheDir: string, blobDir: string, image: LockedImage): Promise<Set<string>> {
  const seeded = new Set<string>();
  for (const d of [image.config, ...image.layers]) {
    if (seeded.has(d.digest) || !(await hasBlob(cacheDir, d.digest))) continue;
    try {
      await link(blobPath(cacheDir, d.digest), join(blobDir, parseDigest(d.digest)));
      seeded.add(d.digest);
    } catch {
      // No hard links on this filesystem (or a race with an eviction): skopeo downloads it.
    }
  }
  return seeded;
}

async function fetchWithSkopeo(config: ResolvedFetchConfig, command: string[], image: LockedImage): Promise<ImageFetchOutcome> {
  const { cacheDir, reporter, signal } = config;
  const workDir = await makeCacheWorkDir(cacheDir, 'skopeo');
  const blobDir = join(workDir, SKOPEO_BLOB_SUBDIR);
  const wanted = wantedBlobs(image);
  let child: ResultPromise | undefined;
  // After a digest mismatch the registry and the lock disagree: keep nothing of this download.
  let salvage = true;
  const release = async () => {
    child?.kill('SIGKILL');
    if (salvage) await salvageBlobs(cacheDir, blobDir, wanted).catch(() => []);
    await rm(workDir, { recursive: true, force: true });
  };
  const unregister = registerCleanup(`skopeo download ${workDir}`, release);
  try {
    await mkdir(blobDir, { recursive: true });
    const seeded = await seedSharedBlobs(cacheDir, blobDir, image);
    // The lock pins digests and every byte is verified; signature policy does not apply here.
    const policy = join(workDir, 'policy.json');
    await writeFile(policy, '{"default":[{"type":"insecureAcceptAnything"}]}\n');
    const args = [...command.slice(1), '--policy', policy, 'copy', '--preserve-digests', '--retry-times', '0'];
    if (config.insecureRegistries.has(image.registry)) args.push('--src-tls-verify=false');
    // Without --authfile, no implicit host credentials: what works here works in a clean build container.
    args.push(...(config.auth ? ['--src-authfile', config.auth.path] : ['--src-no-creds']));
    args.push('--dest-shared-blob-dir', join(workDir, 'shared'));
    args.push(`docker://${image.registry}/${image.repository}@${image.manifest.digest}`, `oci:${join(workDir, 'layout')}:image`);

    await withRetry(
      image.registry,
      config.retry,
      async () => {
        signal?.throwIfAborted();
        child = execa(command[0]!, args, {
          reject: false,
          stdin: 'ignore',
          cancelSignal: signal,
          forceKillAfterDelay: 2000,
          env: { LC_ALL: 'C' },
        });
        child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
          for (const m of chunk.matchAll(/Copying (blob|config) (sha256:[0-9a-f]{64})/g)) {
            const reused = seeded.has(m[2]!);
            reporter.progress({ event: 'fetch.download', message: `${imageLabel(image)}: ${reused ? 'cached' : 'downloading'} ${m[1]} ${m[2]}`, digest: m[2], reused });
          }
        });
        const result = await child;
        signal?.throwIfAborted();
        if (result.exitCode === 0) return;
        if (result.exitCode === undefined && /ENOENT/.test(String(result.message))) {
          throw new CommandError(E_FETCHER_MISSING, `cannot run ${command.join(' ')}: not found`);
        }
        // Blobs a failed attempt completed stay in the shared dir: the next attempt reuses them.
        throw classifyRegistryFailure(toolErrorText(String(result.stderr)), image, 'skopeo', config.secrets);
      },
      {
        signal,
        onRetry: ({ attempt, delayMs, reason }) =>
          reporter.event({ event: 'fetch.retry', message: `${imageLabel(image)}: attempt ${attempt} failed (${reason}); retrying in ${delayMs} ms`, attempt, delayMs }),
      },
    );
    return await commitSkopeoBlobs(config, blobDir, image);
  } catch (error) {
    signal?.throwIfAborted();
    if (error instanceof DigestMismatchError) salvage = false;
    throw error;
  } finally {
    unregister();
    await release();
  }
}

/** Verifies what skopeo wrote against the lock and moves each new blob into the cache. */
async function commitSkopeoBlobs(config: ResolvedFetchConfig, blobDir: string, image: LockedImage): Promise<ImageFetchOutcome> {
  const { cacheDir } = config;
  const label = imageLabel(image);
  const manifestFile = join(blobDir, parseDigest(image.manifest.digest));
  // The manifest's bytes and content are checked before anything enters blobs/.
  let manifestBytes: Buffer;
  try {
    manifestBytes = await readFile(manifestFile);
  } catch (error) {
    throw new DigestMismatchError(`platform manifest of ${label}`, `a manifest stored as ${image.manifest.digest}`, 'none (skopeo wrote another digest)', { cause: error });
  }
  const manifestDigest = `sha256:${createHash('sha256').update(manifestBytes).digest('hex')}`;
  if (manifestDigest !== image.manifest.digest) {
    throw new DigestMismatchError(`platform manifest of ${label}`, image.manifest.digest, manifestDigest);
  }
  checkManifestMatchesLock(manifestBytes.toString('utf8'), image);

  const blobs: StoredBlob[] = [];
  const commit = async (kind: StoredBlob['kind'], expected: ExpectedBlob & { size: number }) => {
    if (blobs.some((b) => b.digest === expected.digest)) return;
    // Already in the cache (seeded, or stored meanwhile by a parallel fetch): nothing to verify.
    const outcome = (await hasBlob(cacheDir, expected.digest)) ? 'existed' : await commitBlob(cacheDir, join(blobDir, parseDigest(expected.digest)), expected);
    blobs.push({ kind, digest: expected.digest, size: expected.size, outcome });
  };
  await commit('config', { ...image.config, what: `config of ${label}` });
  for (const [i, layer] of image.layers.entries()) await commit('layer', { ...layer, what: `layer ${i} of ${label}` });
  await commit('manifest', { ...image.manifest, what: `platform manifest of ${label}` });
  return { blobs, manifestCached: true };
}

/** The `msg="..."` of a containers tool's fatal log line, or the tail of its stderr. */
export function toolErrorText(stderr: string, max = 2000): string {
  const m = /level=fatal msg="((?:[^"\\]|\\.)*)"/.exec(stderr);
  const text = m ? m[1]!.replace(/\\(.)/g, '$1') : stderr.trim();
  return text.length > max ? `...${text.slice(-max)}` : text;
}
