/**
 * `lock -o`: the output guard (src/util/output.ts). A previous lock is recognised by its
 * content: JSON with lockVersion 1, a platform and an images list.
 */
import { readFile, stat } from 'node:fs/promises';
import { looksLikeLock } from '../formats/lock.js';
import { checkOutput, type CheckedOutput, type NamedPath } from '../util/output.js';

/** Locks are small; anything bigger is not one (and is not read whole). */
const MAX_LOCK_BYTES = 64 * 1024 * 1024;

export async function isLockFile(path: string): Promise<boolean> {
  try {
    if ((await stat(path)).size > MAX_LOCK_BYTES) return false;
    return looksLikeLock(JSON.parse(await readFile(path, 'utf8')));
  } catch {
    return false;
  }
}

export function checkLockOutput(path: string, inputs: readonly NamedPath[]): Promise<CheckedOutput> {
  return checkOutput({ path, flag: '-o', command: 'lock', kind: 'file', signature: 'a lock file written by ctrbake lock', isOurs: isLockFile }, inputs);
}
