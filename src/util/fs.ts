import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';

/** sha256 hex of a file's bytes, streamed. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/** A unique sibling name for writing `path` before renaming it into place. */
export function tempSiblingPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** fsync a directory so a rename inside it is durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Writes a file so that readers see either the old or the new content, never a partial one:
 * write a temp sibling, fsync it, rename, fsync the directory.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const tmp = tempSiblingPath(path);
  try {
    await writeFile(tmp, data, { mode });
    const fh = await open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    await fsyncDir(dirname(path));
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}

/** Canonical JSON for files ctrbake writes: sorted as given, 2-space indent, trailing newline. */
export function toJsonFile(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** A private (0700) temp dir; short base path so unix socket paths inside stay < 100 bytes. */
export async function makePrivateTempDir(prefix = 'ctrbake-', base = process.env.CTRBAKE_TMPDIR ?? tmpdir()): Promise<string> {
  return mkdtemp(join(base, prefix));
}
