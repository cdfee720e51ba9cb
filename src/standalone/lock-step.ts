/**
 * The lock of a standalone build. Tags are resolved once (with network) and the lock is
 * kept: at --lock FILE, or in the cache under a name derived from the image list and the
 * platform. A later run with the same list and target reuses it, so a build after a
 * fetch-only step (Buildroot's `make source`) needs no registry at all, and a moving tag
 * does not change what a rebuild bakes until --relock.
 */
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ConfigError, InputError } from '../errors.js';
import { formatPlatform, type LockFile, type Platform } from '../formats/index.js';
import { readLock } from '../formats/lock.js';
import { resolveLock } from '../lock/resolve.js';
import { parseSources, readComposeFile, readImagesFile, type ImageSource } from '../lock/sources.js';
import { platformMatches } from '../registry/platform.js';
import { formatReference } from '../registry/reference.js';
import type { ResolvedStandaloneConfig } from './options.js';

export const E_LOCK_STALE = 'E_STANDALONE_LOCK';

/** The image list as sorted, normalized, unique references (what a lock must hold exactly). */
export async function readImageList(config: Pick<ResolvedStandaloneConfig, 'references' | 'imagesFile' | 'composeFile'>): Promise<string[]> {
  const sources: ImageSource[] = config.references.map((text) => ({ text, origin: 'argument' }));
  if (config.imagesFile) sources.push(...(await readImagesFile(config.imagesFile)));
  if (config.composeFile) sources.push(...(await readComposeFile(config.composeFile)));
  if (sources.length === 0) throw new ConfigError('E_NO_IMAGES', 'no images: give references as arguments, --images FILE or --compose FILE');
  return [...new Set(parseSources(sources).map((s) => formatReference(s.ref)))].sort();
}

/** Where the lock lives when --lock is not given: CACHE/locks/<hash of list and platform>.lock.json. */
export function defaultLockPath(cacheDir: string, references: readonly string[], platform: Platform): string {
  const key = createHash('sha256').update(JSON.stringify({ platform: formatPlatform(platform), references })).digest('hex').slice(0, 24);
  return join(cacheDir, 'locks', `${key}.lock.json`);
}

/** Why an existing lock does not fit the request, or undefined when it does. */
export function lockMismatch(lock: LockFile, references: readonly string[], platform: Platform): string | undefined {
  if (!platformMatches(platform, lock.platform)) return `it is for ${formatPlatform(lock.platform)}, the target is ${formatPlatform(platform)}`;
  const locked = new Set(lock.images.map((i) => i.reference));
  const missing = references.filter((r) => !locked.has(r));
  const extra = [...locked].filter((r) => !references.includes(r));
  if (missing.length > 0) return `it lacks ${missing.join(', ')}`;
  if (extra.length > 0) return `it also holds ${extra.join(', ')}, which the image list no longer names`;
  return undefined;
}

async function exists(path: string): Promise<boolean> {
  try {
    await readLock(path);
    return true;
  } catch (error) {
    if ((error as { cause?: NodeJS.ErrnoException }).cause?.code === 'ENOENT') return false;
    throw error;
  }
}

export interface LockStepResult {
  lock: LockFile;
  lockPath: string;
  /** True when this run resolved the tags (registry contacted) and wrote the lock. */
  resolved: boolean;
}

export async function lockStep(config: Readonly<ResolvedStandaloneConfig>, references: readonly string[]): Promise<LockStepResult> {
  const { reporter, platform } = config;
  const lockPath = config.lockPath ?? defaultLockPath(config.cacheDir, references, platform);
  if (!config.relock && (await exists(lockPath))) {
    const lock = await readLock(lockPath);
    const why = lockMismatch(lock, references, platform);
    if (why === undefined) {
      reporter.event({ event: 'build.lock.reused', path: lockPath, images: lock.images.length, message: `using the lock ${lockPath} (${lock.images.length} image(s), ${formatPlatform(lock.platform)})` });
      return { lock, lockPath, resolved: false };
    }
    if (config.offline || config.lockPath) {
      throw new InputError(E_LOCK_STALE, `the lock ${lockPath} does not match the image list: ${why}; run once with network and --relock to lock the list again (then review the lock)`, {
        details: { lockPath },
      });
    }
  }
  if (config.offline) {
    throw new InputError(E_LOCK_STALE, `--offline, and there is no lock for this image list and ${formatPlatform(platform)} at ${lockPath}: run the fetch step first with network (ctrbake build --fetch-only with the same images, target and --cache), e.g. Buildroot's \`make source\``, {
      details: { lockPath },
    });
  }
  await mkdir(dirname(lockPath), { recursive: true });
  const { lock } = await resolveLock({
    references,
    platform,
    output: lockPath,
    ...(config.authfile ? { authfile: config.authfile } : {}),
    insecureRegistries: config.insecureRegistries,
    reporter,
    ...(config.signal ? { signal: config.signal } : {}),
  });
  return { lock, lockPath, resolved: true };
}
