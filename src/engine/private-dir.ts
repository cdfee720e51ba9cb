import { chmod, mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { EngineError } from '../errors.js';

/** Linux sun_path holds 108 bytes with the NUL; we keep a margin for `.ttrpc` suffixes. */
export const MAX_SOCKET_PATH_BYTES = 100;

/** The base for engine private dirs: short (unix socket paths live inside), never TMPDIR (BitBake's is long). */
export const DEFAULT_ENGINE_TMP_BASE = '/tmp';

/** Creates a private 0700 directory for one engine run under `base`. */
export async function makeEnginePrivateDir(prefix: string, base: string): Promise<string> {
  const dir = await mkdtemp(join(base, prefix));
  await chmod(dir, 0o700);
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
