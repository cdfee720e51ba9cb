import { createHash } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { CommandError } from '../errors.js';
import type { LockedImage } from '../formats.js';
import { registerCleanup } from '../util/cleanup.js';
import { commitBlob, makeCacheWorkDir, parseDigest } from './cache.js';
import { classifyRegistryFailure } from './classify.js';
import { DigestMismatchError, E_FETCHER_MISSING } from './errors.js';
import { dieWithParentPrefix, findExecutable, toolErrorText } from './exec.js';
import { withRetry } from './retry.js';
import { salvageBlobs, wantedBlobs } from './salvage.js';
import type { ImageFetcher, ImageFetchOutcome, ResolvedFetchConfig, StoredBlob } from './types.js';
import { checkManifestMatchesLock, imageLabel } from './verify.js';

/**
 * Fetcher "skopeo": `skopeo copy docker://HOST/REPO@<platform manifest digest> dir:CACHE/tmp/...`,
 * then every file is checked against the lock and moved into blobs/. skopeo already checks
 * digests while it downloads; ctrbake checks again, since the cache must not trust any tool.
 */
export async function createSkopeoFetcher(config: ResolvedFetchConfig): Promise<ImageFetcher> {
  const skopeo = await findExecutable('skopeo');
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

async function fetchWithSkopeo(config: ResolvedFetchConfig, command: string[], image: LockedImage): Promise<ImageFetchOutcome> {
  const { cacheDir, reporter, signal } = config;
  const workDir = await makeCacheWorkDir(cacheDir, 'skopeo');
  const dest = join(workDir, 'image');
  const wanted = wantedBlobs(image);
  let child: ResultPromise | undefined;
  // After a digest mismatch the registry and the lock disagree: keep nothing of this download.
  let salvage = true;
  const release = async () => {
    child?.kill('SIGKILL');
    if (salvage) await salvageBlobs(cacheDir, dest, wanted).catch(() => []);
    await rm(workDir, { recursive: true, force: true });
  };
  const unregister = registerCleanup(`skopeo download ${workDir}`, release);
  try {
    // The lock pins digests and every byte is verified; signature policy does not apply here.
    const policy = join(workDir, 'policy.json');
    await writeFile(policy, '{"default":[{"type":"insecureAcceptAnything"}]}\n');
    const args = [...command.slice(1), '--policy', policy, 'copy', '--preserve-digests', '--retry-times', '0'];
    if (config.insecureRegistries.has(image.registry)) args.push('--src-tls-verify=false');
    // Without --authfile, no implicit host credentials: what works here works in a clean build container.
    args.push(...(config.auth ? ['--src-authfile', config.auth.path] : ['--src-no-creds']));
    args.push(`docker://${image.registry}/${image.repository}@${image.manifest.digest}`, `dir:${dest}`);

    await withRetry(
      image.registry,
      config.retry,
      async () => {
        signal?.throwIfAborted();
        // Keep what a failed attempt completed; skopeo empties dest before it starts again.
        await salvageBlobs(cacheDir, dest, wanted);
        child = execa(command[0]!, args, {
          reject: false,
          stdin: 'ignore',
          cancelSignal: signal,
          forceKillAfterDelay: 2000,
          env: { LC_ALL: 'C' },
        });
        child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
          for (const m of chunk.matchAll(/Copying (blob|config) (sha256:[0-9a-f]{64})/g)) {
            reporter.progress({ event: 'fetch.download', message: `${imageLabel(image)}: downloading ${m[1]} ${m[2]}`, digest: m[2] });
          }
        });
        const result = await child;
        signal?.throwIfAborted();
        if (result.exitCode === 0) return;
        if (result.exitCode === undefined && /ENOENT/.test(String(result.message))) {
          throw new CommandError(E_FETCHER_MISSING, `cannot run ${command.join(' ')}: not found`);
        }
        throw classifyRegistryFailure(toolErrorText(String(result.stderr)), image, 'skopeo', config.secrets);
      },
      {
        signal,
        onRetry: ({ attempt, delayMs, reason }) =>
          reporter.event({ event: 'fetch.retry', message: `${imageLabel(image)}: attempt ${attempt} failed (${reason}); retrying in ${delayMs} ms`, attempt, delayMs }),
      },
    );
    return await commitSkopeoDir(config, dest, image);
  } catch (error) {
    signal?.throwIfAborted();
    if (error instanceof DigestMismatchError) salvage = false;
    throw error;
  } finally {
    unregister();
    await release();
  }
}

/** Verifies skopeo's dir: output against the lock and moves each blob into the cache. */
async function commitSkopeoDir(config: ResolvedFetchConfig, dest: string, image: LockedImage): Promise<ImageFetchOutcome> {
  const { cacheDir } = config;
  const manifestFile = join(dest, 'manifest.json');
  const label = imageLabel(image);
  // The manifest's bytes and content are checked before anything enters blobs/.
  const manifestBytes = await readFile(manifestFile);
  const manifestDigest = `sha256:${createHash('sha256').update(manifestBytes).digest('hex')}`;
  if (manifestDigest !== image.manifest.digest) {
    throw new DigestMismatchError(`platform manifest of ${label}`, image.manifest.digest, manifestDigest);
  }
  checkManifestMatchesLock(manifestBytes.toString('utf8'), image);
  const blobs: StoredBlob[] = [];
  const configOutcome = await commitBlob(cacheDir, join(dest, parseDigest(image.config.digest)), {
    digest: image.config.digest,
    size: image.config.size,
    what: `config of ${label}`,
  });
  blobs.push({ kind: 'config', digest: image.config.digest, size: image.config.size, outcome: configOutcome });
  const seen = new Set<string>();
  for (const [i, layer] of image.layers.entries()) {
    // The same layer twice in one manifest is one file in skopeo's dir.
    if (seen.has(layer.digest)) continue;
    seen.add(layer.digest);
    const outcome = await commitBlob(cacheDir, join(dest, parseDigest(layer.digest)), {
      digest: layer.digest,
      size: layer.size,
      what: `layer ${i} of ${label}`,
    });
    blobs.push({ kind: 'layer', digest: layer.digest, size: layer.size, outcome });
  }
  const manifestOutcome = await commitBlob(cacheDir, manifestFile, {
    digest: image.manifest.digest,
    size: image.manifest.size,
    what: `platform manifest of ${label}`,
  });
  blobs.push({ kind: 'manifest', digest: image.manifest.digest, size: image.manifest.size, outcome: manifestOutcome });
  return { blobs, manifestCached: true };
}
