/**
 * Is a cached blob what its name says? Size (cheap, catches truncation without reading the
 * file) and then sha256 of its bytes (catches bit rot, a bad copy, a file replaced in place).
 * blobs/ only ever receives verified files, but a cache is a plain directory: copied,
 * mirrored, shared, or written by hand. Every reader that trusts a blob's bytes asks here.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';

export type BlobProblem =
  | { problem: 'missing' }
  | { problem: 'size'; expectedSize: number; actualSize: number }
  | { problem: 'digest'; actualDigest: string };

/**
 * Files found right in this process, keyed by path, with the stat fields that change when the
 * file is replaced or written (a new inode, size, mtime or ctime): bake, report and fetch
 * --offline in one process (e.g. `build`, or the budget check then the bake) hash each blob once.
 * Never persisted: bit rot changes none of these fields, so only a re-hash finds it later.
 */
const verifiedInProcess = new Map<string, string>();

function statKey(st: { dev: number; ino: number; size: number; mtimeMs: number; ctimeMs: number }, digest: string): string {
  return `${digest} ${st.dev}:${st.ino} ${st.size} ${st.mtimeMs} ${st.ctimeMs}`;
}

/** undefined when the file at `path` has `size` bytes (when given) that hash to `digest`. */
export async function inspectBlobFile(path: string, digest: string, size?: number): Promise<BlobProblem | undefined> {
  let st;
  try {
    st = await stat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { problem: 'missing' };
    throw error;
  }
  if (size !== undefined && st.size !== size) return { problem: 'size', expectedSize: size, actualSize: st.size };
  const key = statKey(st, digest);
  if (verifiedInProcess.get(path) === key) return undefined;
  const actualDigest = await sha256Of(path);
  if (actualDigest !== digest) return { problem: 'digest', actualDigest };
  verifiedInProcess.set(path, key);
  return undefined;
}

/** 1 MiB reads: with the default 64 KiB, the CPU time of a check was 2.7 times higher (bench/cache-verify.ts). */
async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path, { highWaterMark: 1024 * 1024 }), hash);
  return `sha256:${hash.digest('hex')}`;
}

/** Records a file this process just verified (e.g. a blob fetch committed), so it is not hashed again. */
export async function rememberVerified(path: string, digest: string): Promise<void> {
  verifiedInProcess.set(path, statKey(await stat(path), digest));
}

/** What is wrong, in words, for messages: "1234 bytes, the lock says 5678 (truncated or overwritten)". */
export function describeProblem(p: BlobProblem): string {
  switch (p.problem) {
    case 'missing':
      return 'missing';
    case 'size':
      return `${p.actualSize} bytes, the lock says ${p.expectedSize} (${p.actualSize < p.expectedSize ? 'truncated' : 'overwritten or appended to'})`;
    case 'digest':
      return `its bytes hash to ${p.actualDigest}, not to its name (corrupted or replaced)`;
  }
}

/** Forgets what this process verified (bench/cache-verify.ts measures the hashing itself). */
export function forgetVerified(): void {
  verifiedInProcess.clear();
}
