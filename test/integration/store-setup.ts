/**
 * Shared setup for the store tests: the fixture images pushed to a local registry, locked
 * (amd64: fidelity + sample; arm64: the multi image) and fetched into a cache, then the
 * registry stopped: every bake below is offline.
 */
import { execa } from 'execa';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import * as tarStream from 'tar-stream';
import { hostname } from 'node:os';
import type { LockFile } from '../../src/formats/index.js';
import { prepareOfflineCache } from '../../devkit/device-setup.js';
import { pushFixtureImages, type FixtureImages } from '../../devkit/fixture-images.js';

export interface StoreFixture {
  images: FixtureImages;
  /** linux/amd64: fidelity and sample (they share the busybox layer). */
  lock: LockFile;
  /** linux/arm64: the multi image's arm64 variant. */
  arm64Lock: LockFile;
  cacheDir: string;
  /** Scratch dir for OUT dirs; removed by dispose(). */
  work: string;
  dispose(): Promise<void>;
}

export async function setupStoreFixture(): Promise<StoreFixture> {
  const c = await prepareOfflineCache({
    prefix: 'ctrbake-store-test',
    push: pushFixtureImages,
    locks: (images) => ({
      amd64: { references: [images.fidelity, images.sample], platform: 'linux/amd64' },
      arm64: { references: [images.multi], platform: 'linux/arm64' },
    }),
  });
  return { images: c.pushed, lock: c.locks.amd64, arm64Lock: c.locks.arm64, cacheDir: c.cacheDir, work: c.work, dispose: c.dispose };
}

/** Every entry name of a tar, in order (GNU tar, so PAX headers are read, not listed). */
export async function tarNames(tarFile: string): Promise<string[]> {
  const r = await execa('tar', ['--list', '--file', tarFile]);
  return r.stdout.split('\n').filter((l) => l !== '');
}

/** Strings a build host could leak into a store: its name and temp dir names. */
export function hostStrings(extra: readonly string[]): string[] {
  return [hostname(), ...extra].filter((s) => s.length >= 4);
}

/** Byte offsets where `needle` occurs in the file (binary-safe grep). */
export async function grepFile(file: string, needle: string): Promise<boolean> {
  const r = await execa('grep', ['-c', '-a', '-F', '--', needle, file], { reject: false });
  return r.exitCode === 0;
}

export interface StoreTarEntry {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  linkname: string | null;
  devmajor: number;
  devminor: number;
  /** PAX records of the entry (SCHILY.xattr.*, mtime...). */
  pax: Record<string, string>;
}

/** Every entry of a tar with its metadata, read by tar-stream (independent of GNU tar). */
export async function readTarEntries(tarFile: string): Promise<StoreTarEntry[]> {
  const entries: StoreTarEntry[] = [];
  const extract = tarStream.extract();
  extract.on('entry', (h, stream, next) => {
    entries.push({
      name: h.name,
      type: h.type ?? 'file',
      mode: h.mode ?? 0,
      uid: h.uid ?? 0,
      gid: h.gid ?? 0,
      mtime: Math.floor((h.mtime?.getTime() ?? 0) / 1000),
      linkname: h.linkname ?? null,
      devmajor: h.devmajor ?? 0,
      devminor: h.devminor ?? 0,
      pax: (h.pax ?? {}) as Record<string, string>,
    });
    stream.on('end', next);
    stream.resume();
  });
  await pipeline(createReadStream(tarFile), extract);
  return entries;
}

/** The content of one member of a tar, via GNU tar. */
export async function tarMember(tarFile: string, name: string): Promise<string> {
  return (await execa('tar', ['--extract', '--to-stdout', '--file', tarFile, name])).stdout;
}
