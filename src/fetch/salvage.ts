import { readdir, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { unmountUnder } from '../engine/mounts.js';
import { sweepOrphanedEngineDirs } from '../engine/orphans.js';
import { DEFAULT_ENGINE_TMP_BASE } from '../engine/private-dir.js';
import { processesMentioning, terminateProcess } from '../engine/processes.js';
import type { LockedImage } from '../formats/index.js';
import { cacheTmpDir, commitBlob, hasBlob, listCacheTmp, parseDigest, tmpEntryOwnerPid, type ExpectedBlob } from './cache.js';
import { imageLabel } from './verify.js';

/** Where skopeo's work dir holds finished blobs (its --dest-shared-blob-dir, then sha256/). */
export const SKOPEO_BLOB_SUBDIR = join('shared', 'sha256');

/** The blobs of an image that a download directory may hold, by hex name. */
export function wantedBlobs(image: LockedImage): Map<string, ExpectedBlob> {
  const label = imageLabel(image);
  const wanted = new Map<string, ExpectedBlob>();
  wanted.set(parseDigest(image.config.digest), { ...image.config, what: `config of ${label}` });
  image.layers.forEach((layer, i) => wanted.set(parseDigest(layer.digest), { ...layer, what: `layer ${i} of ${label}` }));
  return wanted;
}

/**
 * Moves the complete blobs a (failed or interrupted) download left in `dir` into the cache,
 * so the next run does not download them again. Every file is verified like any other blob:
 * partial or damaged files are dropped. Returns the digests stored.
 */
export async function salvageBlobs(cacheDir: string, dir: string, wanted: ReadonlyMap<string, ExpectedBlob>): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const stored: string[] = [];
  for (const name of names) {
    const expected = wanted.get(name);
    // Not wanted, or already cached (e.g. a hard link the fetcher seeded from the cache).
    if (!expected || (await hasBlob(cacheDir, expected.digest))) continue;
    try {
      if ((await commitBlob(cacheDir, join(dir, name), expected)) === 'stored') stored.push(expected.digest);
    } catch {
      // Incomplete or damaged: commitBlob removed it; it is downloaded again.
    }
  }
  return stored;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A fetch killed with SIGKILL cannot tear down its private engine: its dockerd (detached) or a
 * running `podman pull` outlive it, with their image store in the dead run's dir. They name
 * that dir on their command line; their own private dir (/tmp/ctrbake-d-..., ctrbake-p-...)
 * is the parent of their --exec-root / --runroot. Stop them, unmount, remove the private dir.
 */
async function stopOrphanedEngine(dir: string): Promise<void> {
  const procs = await processesMentioning(dir);
  const privateDirs = new Set<string>();
  for (const p of procs) {
    for (const flag of ['--exec-root', '--runroot']) {
      const value = p.argv[p.argv.indexOf(flag) + 1];
      if (p.argv.includes(flag) && value && /^ctrbake-[dp]-/.test(basename(dirname(value)))) privateDirs.add(dirname(value));
    }
  }
  for (const p of procs) if (p.pid !== process.pid) await terminateProcess(p.pid, 10_000);
  for (const priv of privateDirs) {
    for (const p of await processesMentioning(priv)) if (p.pid !== process.pid) await terminateProcess(p.pid, 10_000);
  }
  await unmountUnder([dir, ...privateDirs]);
  for (const priv of privateDirs) await rm(priv, { recursive: true, force: true });
}

/**
 * Download directories in CACHE/tmp/ whose owner process (on this host) is gone: keep their
 * complete blobs, stop what still runs there, remove the rest. A live neighbour's directories
 * are left alone.
 */
export async function recoverStaleDownloads(cacheDir: string, images: readonly LockedImage[]): Promise<string[]> {
  const wanted = new Map<string, ExpectedBlob>();
  for (const image of images) for (const [k, v] of wantedBlobs(image)) wanted.set(k, v);
  // The engine of a run killed while it tore down may no longer name CACHE/tmp: its private dir's
  // owner file tells (engine/orphans.ts).
  await sweepOrphanedEngineDirs([DEFAULT_ENGINE_TMP_BASE]);
  const stored: string[] = [];
  for (const name of await listCacheTmp(cacheDir)) {
    const pid = tmpEntryOwnerPid(name);
    if (pid === undefined || isAlive(pid)) continue;
    const dir = join(cacheTmpDir(cacheDir), name);
    stored.push(...(await salvageBlobs(cacheDir, join(dir, SKOPEO_BLOB_SUBDIR), wanted)));
    await stopOrphanedEngine(dir);
    await rm(dir, { recursive: true, force: true });
  }
  return stored;
}
