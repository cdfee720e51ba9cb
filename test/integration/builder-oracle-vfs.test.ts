/**
 * The builder's `vfs` store against its oracle, dockerd 20.10 `--storage-driver vfs`, same
 * blobs: the fidelity and sample images baked by the engine path and by `--builder native`.
 * Each `vfs/dir/<id>` is the full tree of its layer stack (the parent's copied, the layer
 * applied as the vfs driver's UnpackLayer does: whiteouts remove, opaque dirs clear); every
 * tree and metadata file is equal under the overlay2 oracle's mask (builder-store.helpers.ts),
 * and a private dockerd on the builder's vfs store lists, runs and `docker save`s the images.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bake } from '../../src/bake/bake.js';
import { bakeStore } from '../../src/bake/store.js';
import { verifyStore } from '../../src/bake/verify-store.js';
import { assertFidelityOutput, SAMPLE_OUTPUT } from '../fixtures/images.js';
import { readStoreTree, storeDifferences, type StoreTree } from './builder-store.helpers.js';
import { setupStoreFixture, type StoreFixture } from './store-setup.js';

let f: StoreFixture;
let nativeOut: string;
let engineTree: StoreTree;
let nativeTree: StoreTree;

beforeAll(async () => {
  f = await setupStoreFixture();
  const lockPath = join(f.work, 'ctrbake.lock.json');
  await writeFile(lockPath, JSON.stringify(f.lock, null, 2));
  const engineOut = (await bakeStore({ lock: f.lock, cacheDir: f.cacheDir, engine: 'docker', storageDriver: 'vfs', outDir: join(f.work, 'engine') })).outDir;
  // engineBinary points nowhere: the native path must never look for, let alone start, an engine.
  nativeOut = (await bake({ lockPath, cacheDir: f.cacheDir, mode: 'store', builder: 'native', storageDriver: 'vfs', engineBinary: '/nonexistent/dockerd', outDir: join(f.work, 'native') })).outDir;
  engineTree = await readStoreTree(join(engineOut, 'store.tar'));
  nativeTree = await readStoreTree(join(nativeOut, 'store.tar'));
}, 600_000);

afterAll(async () => {
  await f?.dispose();
});

describe('builder vs engine path, vfs (dockerd 20.10, fidelity + sample)', () => {
  it('gives every layer tree and metadata file the engine path gives', () => {
    expect(storeDifferences(engineTree, nativeTree)).toEqual([]);
    const names = [...nativeTree.nodes.keys()];
    const layerDirs = names.filter((n) => /^vfs\/dir\/[0-9a-f]{64}$/.test(n));
    expect(layerDirs.length).toBe(4);
    // Full trees: the top fidelity layer holds the base layer's files too, and no whiteout or marker.
    const top = layerDirs.find((d) => nativeTree.nodes.has(`${d}/data/cap`))!;
    expect(nativeTree.nodes.has(`${top}/etc/passwd`)).toBe(true);
    expect(nativeTree.nodes.has(`${top}/data/deleted.txt`)).toBe(false);
    expect(nativeTree.nodes.has(`${top}/data/replaced/old.txt`)).toBe(false);
    expect(names.some((n) => n.startsWith('vfs/') && n.includes('.wh.'))).toBe(false);
    expect(nativeTree.nodes.get(`${top}/data/cap`)?.xattrs).toContain('security.capability=');
  });

  it('is served by a private dockerd on vfs: images listed, containers run, docker save re-reads every layer to its diff id', async () => {
    const v = await verifyStore({ outDir: nativeOut });
    expect(v.engineVersion).toMatch(/^20\.10\./);
    const byReference = new Map(v.images.map((i) => [i.reference, i]));
    assertFidelityOutput(byReference.get(f.images.fidelity)?.output ?? '');
    expect(byReference.get(f.images.sample)?.output?.trim()).toBe(SAMPLE_OUTPUT);
    for (const [reference, built] of [[f.images.fidelity, f.images.fidelityImage], [f.images.sample, f.images.sampleImage]] as const) {
      expect(byReference.get(reference)?.savedLayers, reference).toBe(built.layers.length);
    }
  }, 300_000);
});
