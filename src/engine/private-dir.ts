import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { EngineError } from '../errors.js';
import { unmountUnder } from './mounts.js';
import { sweepOrphanedEngineDirs, writeOwnerFile } from './orphans.js';

/** Linux sun_path holds 108 bytes with the NUL; we keep a margin for `.ttrpc` suffixes. */
export const MAX_SOCKET_PATH_BYTES = 100;

/** The base for engine private dirs: short (unix socket paths live inside), never TMPDIR (BitBake's is long). */
export const DEFAULT_ENGINE_TMP_BASE = '/tmp';

/**
 * Creates a private 0700 directory for one engine run under `base`, with an owner file naming
 * this process. First it ends what earlier, killed ctrbake runs left under `base` (orphans.ts).
 */
export async function makeEnginePrivateDir(prefix: string, base: string): Promise<string> {
  await sweepOrphanedEngineDirs([base]);
  const dir = await mkdtemp(join(base, prefix));
  try {
    await chmod(dir, 0o700);
    await writeOwnerFile(dir);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return dir;
}

/** Fails clearly when a unix socket path would be too long for the kernel. */
export function checkSocketPath(path: string): void {
  const bytes = Buffer.byteLength(path);
  if (bytes >= MAX_SOCKET_PATH_BYTES) {
    throw new EngineError(
      'E_ENGINE_START',
      `unix socket path ${path} is ${bytes} bytes; it must stay under ${MAX_SOCKET_PATH_BYTES}: give the engine a shorter temp base directory (CTRBAKE_TMPDIR, default ${DEFAULT_ENGINE_TMP_BASE})`,
      { details: { path, bytes } },
    );
  }
}

/**
 * The end of every engine teardown: unmount what the engine left under its private dir and
 * its root (not the caller's own mounts, `keep`), then remove the private dir, and the root
 * when it is not kept.
 */
export async function removeEngineDirs(engine: string, privateDir: string, root: string, removeRoot: boolean, keep: ReadonlySet<string>): Promise<void> {
  const left = await unmountUnder([privateDir, root], keep);
  if (left.length > 0) throw new EngineError('E_ENGINE_STOP', `could not unmount ${left.join(', ')} left by the private ${engine}`);
  await rm(privateDir, { recursive: true, force: true, maxRetries: 3 });
  if (removeRoot) await rm(root, { recursive: true, force: true, maxRetries: 3 });
}
