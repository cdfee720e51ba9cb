/**
 * The builder against its oracle, dockerd 20.10, same blobs: the fidelity and sample images
 * (whiteouts, an opaque dir, hard links, xattrs incl. security.capability, setuid, devices)
 * baked by the engine path and by `--builder native`. Every layer tree and metadata file is
 * equal (mask: tar-split compared gunzipped, builder-store.helpers.ts); a private dockerd
 * started on the builder's store lists the images, runs them and `docker save` re-reads every
 * layer to its diff id; each kind of breakage is caught.
 */
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bake } from '../../src/bake/bake.js';
import { bakeStore } from '../../src/bake/store.js';
import { verifyStore } from '../../src/bake/verify-store.js';
import { assertFidelityOutput, SAMPLE_OUTPUT } from '../fixtures/images.js';
import { readStoreTree, rewriteStoreTar, storeDifferences, type Rewrite, type StoreTree } from './builder-store.helpers.js';
import { setupStoreFixture, type StoreFixture } from './store-setup.js';

let f: StoreFixture;
let lockPath: string;
let engineOut: string;
let nativeOut: string;
let engineTree: StoreTree;
let nativeTree: StoreTree;

async function bakeNative(outDir: string): Promise<string> {
  // engineBinary points nowhere: the native path must never look for, let alone start, an engine.
  const result = await bake({ lockPath, cacheDir: f.cacheDir, mode: 'store', builder: 'native', engineBinary: '/nonexistent/dockerd', outDir });
  return result.outDir;
}

beforeAll(async () => {
  f = await setupStoreFixture();
  lockPath = join(f.work, 'ctrbake.lock.json');
  await writeFile(lockPath, JSON.stringify(f.lock, null, 2));
  engineOut = (await bakeStore({ lock: f.lock, cacheDir: f.cacheDir, engine: 'docker', storageDriver: 'overlay2', outDir: join(f.work, 'engine') })).outDir;
  nativeOut = await bakeNative(join(f.work, 'native'));
  engineTree = await readStoreTree(join(engineOut, 'store.tar'));
  nativeTree = await readStoreTree(join(nativeOut, 'store.tar'));
}, 600_000);

afterAll(async () => {
  await f?.dispose();
});

/** A copy of the builder's OUT with store.tar rewritten. */
async function brokenOut(name: string, rewrite: Rewrite): Promise<string> {
  const out = join(f.work, `broken-${name}`);
  await mkdir(out);
  await copyFile(join(nativeOut, 'manifest.json'), join(out, 'manifest.json'));
  await rewriteStoreTar(join(nativeOut, 'store.tar'), join(out, 'store.tar'), rewrite);
  return out;
}

const isWhiteout = (name: string, type: string, major: number, minor: number): boolean =>
  /^overlay2\/[0-9a-f]{64}\/diff\//.test(name) && type === 'chardev' && major === 0 && minor === 0;

describe('builder vs engine path (dockerd 20.10, fidelity + sample)', () => {
  it('gives every layer tree and metadata file the engine path gives (content, mode, owners, xattrs, rdev, links, hard-link groups)', () => {
    expect(storeDifferences(engineTree, nativeTree)).toEqual([]);
    // The images exercise what the comparison is about: otherwise equality proves little.
    const nodes = [...nativeTree.nodes];
    expect(nodes.filter(([name, n]) => isWhiteout(name, n.type, Number(n.rdev.split(':')[0]), Number(n.rdev.split(':')[1]))).length).toBeGreaterThan(0);
    expect(nodes.some(([, n]) => n.xattrs.includes('trusted.overlay.opaque=79'))).toBe(true);
    expect(nodes.some(([, n]) => n.xattrs.includes('security.capability='))).toBe(true);
    expect(nodes.some(([, n]) => /^[4-7]/.test(n.mode.padStart(4, '0')))).toBe(true);
    expect(nativeTree.hardLinkGroups.length).toBeGreaterThan(0);
    expect(nodes.filter(([name]) => /^image\/overlay2\/layerdb\/sha256\/[0-9a-f]{64}\/tar-split\.json\.gz$/.test(name)).length).toBe(4);
  });

  it('is served by a private dockerd: images listed, containers run, docker save re-reads every layer to its diff id, digests resolve', async () => {
    const v = await verifyStore({ outDir: nativeOut });
    expect(v.engineVersion).toMatch(/^20\.10\./);
    const byReference = new Map(v.images.map((i) => [i.reference, i]));
    assertFidelityOutput(byReference.get(f.images.fidelity)?.output ?? '');
    expect(byReference.get(f.images.sample)?.output?.trim()).toBe(SAMPLE_OUTPUT);
    for (const [reference, built] of [[f.images.fidelity, f.images.fidelityImage], [f.images.sample, f.images.sampleImage]] as const) {
      expect(byReference.get(reference)?.savedLayers, reference).toBe(built.layers.length);
    }
    expect(byReference.get(f.images.fidelity)?.digestReferences).toEqual([`${f.images.registry}/ctrbake/fidelity@${f.images.fidelityImage.manifest.digest}`]);
  }, 300_000);

  it('is byte-reproducible: a second bake in another directory gives the same store.tar', async () => {
    const again = await bakeNative(join(f.work, 'native-again'));
    const a = JSON.parse(await readFile(join(nativeOut, 'manifest.json'), 'utf8')) as { outputs: unknown };
    const b = JSON.parse(await readFile(join(again, 'manifest.json'), 'utf8')) as { outputs: unknown };
    expect(b.outputs).toEqual(a.outputs);
  });
});

// A plain user's bake (same bytes as root's, no engine, no PATH): bake-unprivileged.test.ts.

describe('the checks catch a broken builder store', () => {
  let firstTarSplit = '';
  const breakages: Array<[string, Rewrite, string]> = [
    [
      'tar-split dropped',
      (entry) => {
        if (!entry.name.endsWith('/tar-split.json.gz') || firstTarSplit !== '') return 'keep';
        firstTarSplit = entry.name;
        return 'drop';
      },
      '/tar-split.json.gz',
    ],
    [
      'lower swapped',
      (entry, content) => {
        if (!/^overlay2\/[0-9a-f]{64}\/lower$/.test(entry.name) || !content.includes(':')) return 'keep';
        return [{ entry, content: Buffer.from(content.toString().split(':').reverse().join(':')) }];
      },
      '/lower',
    ],
    [
      'whiteout written as a plain .wh. file',
      (entry) => {
        if (!isWhiteout(entry.name, entry.type, entry.devmajor, entry.devminor)) return 'keep';
        const slash = entry.name.lastIndexOf('/');
        const name = `${entry.name.slice(0, slash + 1)}.wh.${entry.name.slice(slash + 1)}`;
        return [{ entry: { ...entry, name, type: 'file', mode: 0o644, devmajor: 0, devminor: 0 }, content: Buffer.alloc(0) }];
      },
      '.wh.',
    ],
    [
      'config re-serialised',
      (entry, content) => {
        if (entry.type !== 'file' || !/^image\/overlay2\/imagedb\/content\/sha256\//.test(entry.name)) return 'keep';
        const again = Buffer.from(JSON.stringify(JSON.parse(content.toString()), null, 1));
        expect(again.equals(content)).toBe(false);
        return [{ entry, content: again }];
      },
      'imagedb/content/sha256/',
    ],
  ];

  it.each(breakages)('%s: the comparison with the engine path names it', async (name, rewrite, where) => {
    const out = await brokenOut(name.replace(/\W+/g, '-'), rewrite);
    const differences = storeDifferences(engineTree, await readStoreTree(join(out, 'store.tar')));
    expect(differences.length).toBeGreaterThan(0);
    expect(differences.join('\n')).toContain(where);
  });

  it.each([
    ['tar-split dropped', 0, /docker save|tar-split|layer/i],
    ['config re-serialised', 3, /not listed|not in the store/i],
  ] as const)('%s: the real dockerd fails the store', async (name, index, message) => {
    firstTarSplit = '';
    const out = await brokenOut(`${name.replace(/\W+/g, '-')}-engine`, breakages[index]![1]);
    await expect(verifyStore({ outDir: out })).rejects.toThrow(message);
  }, 300_000);
});
