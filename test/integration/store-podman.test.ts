/**
 * Store mode with podman 4.3 (containers-storage), overlay and vfs: reproducible store.tar;
 * the extracted store serves every image to a fresh podman as its graphroot and, mounted
 * read-only, as an additional image store of another podman; store.tar keeps every file
 * property and holds nothing but image records and layers.
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bakeStore, type BakeStoreResult } from '../../src/bake/store.js';
import { verifyStore, type VerifiedImage, type VerifyStoreResult } from '../../src/bake/verify-store.js';
import { FIXTURE_MTIME } from '../../devkit/layers.js';
import { assertFidelityOutput, CAP_NET_RAW_EP, SAMPLE_OUTPUT } from '../fixtures/images.js';
import { grepFile, hostStrings, readTarEntries, setupStoreFixture, tarMember, type StoreFixture, type StoreTarEntry } from './store-setup.js';

const DRIVERS = ['overlay', 'vfs'] as const;
type Driver = (typeof DRIVERS)[number];

interface DriverRun {
  a: BakeStoreResult;
  b: BakeStoreResult;
  dirs: string[];
  entries: StoreTarEntry[];
  verified: VerifyStoreResult;
}

let f: StoreFixture;
const runs = {} as Record<Driver, DriverRun>;

beforeAll(async () => {
  f = await setupStoreFixture();
  for (const driver of DRIVERS) {
    const dirA = await mkdtemp(join(f.work, `${driver}-a-`));
    const a = await bakeStore({ lock: f.lock, cacheDir: f.cacheDir, engine: 'podman', storageDriver: driver, outDir: join(dirA, 'out') });
    await sleep(2_000);
    const dirB = await mkdtemp(join(f.work, `${driver}-second-`));
    const b = await bakeStore({ lock: f.lock, cacheDir: f.cacheDir, engine: 'podman', storageDriver: driver, outDir: join(dirB, 'store-out') });
    const entries = await readTarEntries(a.storeTar.path);
    const verified = await verifyStore({ outDir: a.outDir });
    runs[driver] = { a, b, dirs: [dirA, dirB], entries, verified };
  }
}, 600_000);

afterAll(async () => {
  await f?.dispose();
});

function checkImages(images: readonly VerifiedImage[] | undefined): void {
  const fidelity = images?.find((i) => i.reference === f.images.fidelity);
  const sample = images?.find((i) => i.reference === f.images.sample);
  assertFidelityOutput(fidelity?.output ?? '');
  expect(sample?.output?.trim()).toBe(SAMPLE_OUTPUT);
  expect(fidelity?.savedLayers).toBe(f.images.fidelityImage.layers.length);
  expect(sample?.savedLayers).toBe(f.images.sampleImage.layers.length);
}

describe.each(DRIVERS)('podman %s store', (driver) => {
  it('two bakes in different directories, seconds apart, give the same store.tar bytes', () => {
    const { a, b } = runs[driver];
    expect(a.outDir).not.toBe(b.outDir);
    expect(b.storeTar.sha256).toBe(a.storeTar.sha256);
  });

  it('as a graphroot: every image listed, runs with --network none, podman save re-reads every layer', () => {
    const v = runs[driver].verified;
    expect(v.engine).toBe('podman');
    expect(v.engineVersion).toMatch(/^4\./);
    expect(v.storageDriver).toBe(driver);
    checkImages(v.images);
  });

  it('as a read-only additional image store of an empty podman: the same', () => {
    checkImages(runs[driver].verified.additionalStore);
  });

  it('holds only image records and layers: no libpod state, containers, locks with content, or build-host path', async () => {
    const { entries, dirs, a } = runs[driver];
    const top = new Set(entries.map((e) => e.name.split('/')[0]));
    expect([...top].sort()).toEqual([driver, `${driver}-images`, `${driver}-layers`]);
    const names = entries.map((e) => e.name.replace(/\/$/, ''));
    expect(names.filter((n) => /^(libpod|mounts|tmp|storage\.lock|userns\.lock|defaultNetworkBackend)/.test(n) || n.includes('-containers'))).toEqual([]);
    for (const lock of [`${driver}-images/images.lock`, `${driver}-layers/layers.lock`]) {
      expect(entries.find((e) => e.name === lock)?.type, lock).toBe('file');
      expect(await tarMember(a.storeTar.path, lock)).toBe('');
    }
    const layers = JSON.parse(await tarMember(a.storeTar.path, `${driver}-layers/layers.json`)) as Array<{ created?: string }>;
    const images = JSON.parse(await tarMember(a.storeTar.path, `${driver}-images/images.json`)) as Array<{ id: string; created?: string; names?: string[] }>;
    expect(new Set(layers.map((r) => r.created))).toEqual(new Set(['1970-01-01T00:00:00Z']));
    // An image's `created` is its config's, as podman takes it (issue #15), not SOURCE_DATE_EPOCH.
    for (const image of images) {
      const config = JSON.parse(await readFile(join(f.cacheDir, 'blobs', 'sha256', image.id), 'utf8')) as { created: string };
      expect(image.created, image.id).toBe(config.created);
    }
    expect(images.flatMap((i) => i.names ?? []).sort()).toEqual([f.images.fidelity, f.images.sample].sort());
    // The build host's name counts only when it is long enough not to occur by chance (hostStrings).
    for (const needle of hostStrings([basename(f.work), ...dirs.map((d) => basename(d)), '.out.ctrbake-', 'ctrbake-p-'])) {
      expect(await grepFile(a.storeTar.path, needle), `store.tar mentions ${needle}`).toBe(false);
    }
  });

  it('store.tar: numeric owners, setuid, hard links, xattrs, whiteouts; no atime/ctime; mtimes are SOURCE_DATE_EPOCH or the image\'s', async () => {
    const { entries, a } = runs[driver];
    expect(entries.some((e) => e.uid === 1234 && e.gid === 5678)).toBe(true);
    expect(entries.some((e) => e.type === 'file' && (e.mode & 0o4000) !== 0)).toBe(true);
    expect(entries.some((e) => e.type === 'link')).toBe(true);
    const caps = entries.filter((e) => e.pax['SCHILY.xattr.security.capability'] !== undefined);
    expect(caps.length).toBeGreaterThan(0);
    expect(Buffer.from(caps[0]!.pax['SCHILY.xattr.security.capability']!, 'latin1').toString('hex')).toBe(CAP_NET_RAW_EP.toString('hex'));
    expect(entries.filter((e) => e.pax.atime !== undefined || e.pax.ctime !== undefined)).toEqual([]);
    expect(new Set(entries.map((e) => e.mtime))).toEqual(new Set([0, FIXTURE_MTIME]));
    if (driver === 'overlay') {
      expect(entries.some((e) => e.type === 'character-device' && e.devmajor === 0 && e.devminor === 0 && e.name.includes('/diff/'))).toBe(true);
      expect(entries.some((e) => e.type === 'directory' && e.pax['SCHILY.xattr.trusted.overlay.opaque'] === 'y')).toBe(true);
      const links = entries.filter((e) => /^overlay\/l\/[A-Z2-7]{26}$/.test(e.name));
      expect(links.length).toBe(entries.filter((e) => /^overlay\/[0-9a-f]{64}\/?$/.test(e.name)).length);
      for (const link of links) {
        const id = /^\.\.\/([0-9a-f]{64})\/diff$/.exec(link.linkname ?? '')?.[1];
        expect(id, `${link.name} -> ${link.linkname}`).toBeDefined();
        expect(await tarMember(a.storeTar.path, `overlay/${id}/link`)).toBe(basename(link.name));
      }
    }
  });

  it('manifest.json records podman, its version, the driver and every image with id and layers', () => {
    const m = runs[driver].a.manifest;
    expect(m.mode).toBe('store');
    expect(m.engine).toEqual({ name: 'podman', version: runs[driver].verified.engineVersion });
    expect(m.storageDriver).toBe(driver);
    expect(m.images.map((i) => [i.reference, i.imageId])).toEqual(f.lock.images.map((i) => [i.reference, i.config.digest]));
  });
});
