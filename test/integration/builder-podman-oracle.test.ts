/**
 * The podman builder (`--engine podman --builder native`) against its oracles, podman 4.3,
 * same blobs (the fidelity and sample images, and the multi image's amd64 variant, locked
 * through its index; the index blob is put in the cache, as a pull records it too):
 *   - a real `podman pull` from the local registry into a private graphroot, normalized as the
 *     engine path normalizes (store-podman.ts): the builder's store equals it entry for entry
 *     (mask: tar-split gunzipped), records and big-data files included;
 *   - the engine path (`podman load` of a docker-archive): every layer tree equal; its manifest
 *     is one podman generates on load, so the mask of docs/builder.md applies to the records;
 *   - podman on the builder's store: images listed with the lock's ids, tags and manifest
 *     digests, `repo@digest` resolves, the fidelity image runs, `podman save` re-reads every
 *     layer to its diff id, and the same through a read-only additionalimagestores;
 *   - each kind of breakage is caught.
 */
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bake } from '../../src/bake/bake.js';
import { bakeStore } from '../../src/bake/store.js';
import { normalizePodmanStore } from '../../src/bake/store-podman.js';
import { clampBakeTimes, writeTimeMarker } from '../../src/bake/store-normalize.js';
import { extractStoreTar, writeStoreTar } from '../../src/bake/store-tar.js';
import { verifyStore } from '../../src/bake/verify-store.js';
import { startPodman } from '../../src/engine/podman.js';
import type { LockFile } from '../../src/formats/index.js';
import { prepareOfflineCache, type OfflineCache } from '../../devkit/device-setup.js';
import { FIXTURE_REPOSITORIES, pushFixtureImages, type FixtureImages } from '../../devkit/fixture-images.js';
import { assertFidelityOutput, SAMPLE_OUTPUT } from '../fixtures/images.js';
import { readStoreTree, rewriteStoreTar, storeDifferences, type Rewrite, type StoreTree } from './builder-store.helpers.js';
import { tarMember } from './store-setup.js';

let c: OfflineCache<FixtureImages, 'amd64'>;
let lock: LockFile;
let pullTar: string;
let engineOut: string;
let nativeOut: string;
let pullTree: StoreTree;
let engineTree: StoreTree;
let nativeTree: StoreTree;

/** `podman pull` of both images into a private graphroot, as a device's engine would; normalized as the engine path's store. */
async function pullOracle(images: FixtureImages, registry: string, work: string): Promise<string> {
  const root = join(work, 'pull-root');
  const marker = join(work, 'pull-start');
  await writeTimeMarker(marker);
  const podman = await startPodman({ storageDriver: 'overlay', network: 'host', insecureRegistries: [registry], root, keepRoot: true });
  try {
    for (const reference of [images.fidelity, images.sample, images.multi]) await podman.exec(['pull', '--quiet', reference]);
  } finally {
    await podman.stop();
  }
  const store = await normalizePodmanStore(root, 'overlay', 0);
  await clampBakeTimes(root, marker, 0);
  const tar = join(work, 'pull-store.tar');
  await writeStoreTar(root, store.members, tar);
  return tar;
}

async function bakeNative(outDir: string): Promise<string> {
  // engineBinary points nowhere: the builder must never look for, let alone run, podman.
  return (await bake({ lockPath: c.lockPaths.amd64, cacheDir: c.cacheDir, mode: 'store', engine: 'podman', storageDriver: 'overlay', builder: 'native', engineBinary: '/nonexistent/podman', outDir })).outDir;
}

beforeAll(async () => {
  let pulled = '';
  let index = Buffer.alloc(0);
  c = await prepareOfflineCache({
    prefix: 'ctrbake-podman-oracle',
    push: async (registry) => {
      const images = await pushFixtureImages(registry);
      pulled = await pullOracle(images, registry.host, await mkdtemp('/tmp/ctrbake-podman-pull-'));
      const response = await fetch(`http://${registry.host}/v2/${FIXTURE_REPOSITORIES.multi}/manifests/${images.multiIndex.digest}`, { headers: { Accept: images.multiIndex.mediaType } });
      index = Buffer.from(await response.arrayBuffer());
      return images;
    },
    locks: (images) => ({ amd64: { references: [images.fidelity, images.sample, images.multi], platform: 'linux/amd64' } }),
  });
  lock = c.locks.amd64;
  pullTar = pulled;
  // What the cache does not keep yet (issue #15: "the index blob cached too"); with it the builder records the index as a pull does.
  const multi = lock.images.find((i) => i.reference === c.pushed.multi)!;
  expect(multi.indexDigest).not.toBe(multi.manifest.digest);
  expect(`sha256:${createHash('sha256').update(index).digest('hex')}`).toBe(multi.indexDigest);
  await writeFile(join(c.cacheDir, 'blobs', 'sha256', multi.indexDigest.slice(7)), index);
  engineOut = (await bakeStore({ lock, cacheDir: c.cacheDir, engine: 'podman', storageDriver: 'overlay', outDir: join(c.work, 'engine') })).outDir;
  nativeOut = await bakeNative(join(c.work, 'native'));
  [pullTree, engineTree, nativeTree] = await Promise.all([readStoreTree(pullTar), readStoreTree(join(engineOut, 'store.tar')), readStoreTree(join(nativeOut, 'store.tar'))]);
}, 600_000);

afterAll(async () => {
  await c?.dispose();
  if (pullTar) await execa('rm', ['-rf', '--one-file-system', resolve(pullTar, '..')]);
});

const isWhiteout = (name: string, type: string, rdev: string): boolean => /^overlay\/[0-9a-f]{64}\/diff\//.test(name) && type === 'chardev' && rdev === '0:0';

type Json = Record<string, unknown> & { id: string };
const records = async (tar: string, kind: 'images' | 'layers'): Promise<Json[]> => JSON.parse(await tarMember(tar, `overlay-${kind}/${kind}.json`)) as Json[];

/**
 * The engine path's mask (docs/builder.md): `podman load` of a docker-archive stores a
 * manifest podman generates, not the registry's, and layers without their registry blob.
 */
const ENGINE_PATH_MASK = {
  images: ['digest', 'metadata', 'big-data-names', 'big-data-sizes', 'big-data-digests'],
  layers: ['compressed-diff-digest', 'compressed-size', 'compression'],
} as const;

function masked(rows: Json[], fields: readonly string[]): Json[] {
  return rows.map((row) => Object.fromEntries(Object.entries(row).filter(([k]) => !fields.includes(k))) as Json);
}

/** Tree minus the engine path's manifest-derived files: the big data named after the manifest digest, the records. */
function withoutManifestData(tree: StoreTree): StoreTree {
  const keep = (name: string): boolean => {
    const m = /^overlay-images\/[0-9a-f]{64}\/(.+)$/.test(name) ? name.split('/')[2]! : undefined;
    if (name === 'overlay-images/images.json' || name === 'overlay-layers/layers.json') return false;
    if (m === undefined) return true;
    const key = m.startsWith('=') ? Buffer.from(m.slice(1), 'base64').toString() : m;
    return !(key === 'manifest' || key.startsWith('manifest-') || key.startsWith('signature-'));
  };
  return { nodes: new Map([...tree.nodes].filter(([name]) => keep(name))), hardLinkGroups: tree.hardLinkGroups };
}

describe('podman builder vs podman 4.3 (fidelity, sample, multi through its index)', () => {
  it('equals a real podman pull entry for entry: layer trees, links, records, big data, tar-split (gunzipped)', () => {
    expect(storeDifferences(pullTree, nativeTree)).toEqual([]);
    const nodes = [...nativeTree.nodes];
    expect(nodes.filter(([name, n]) => isWhiteout(name, n.type, n.rdev)).length).toBeGreaterThan(0);
    expect(nodes.some(([, n]) => n.xattrs.includes('trusted.overlay.opaque=79'))).toBe(true);
    expect(nodes.some(([, n]) => n.xattrs.includes('security.capability='))).toBe(true);
    expect(nodes.some(([, n]) => /^[4-7]/.test(n.mode.padStart(4, '0')))).toBe(true);
    expect(nativeTree.hardLinkGroups.length).toBeGreaterThan(0);
    expect(nodes.filter(([name]) => /^overlay-layers\/[0-9a-f]{64}\.tar-split\.gz$/.test(name)).length).toBe(new Set(lock.images.flatMap((i) => i.layers.map((l) => l.digest))).size);
  });

  it('records what a pull records: the registry manifest digest, blob digests and sizes, the config\'s created', async () => {
    const images = await records(join(nativeOut, 'store.tar'), 'images');
    for (const image of lock.images) {
      const record = images.find((r) => `sha256:${r.id}` === image.config.digest);
      // A pull through an index records the index digest (and keeps both manifests).
      expect(record?.digest, image.reference).toBe(image.indexDigest);
      expect(record?.names).toEqual([image.reference]);
      const config = JSON.parse(await readFile(join(c.cacheDir, 'blobs', 'sha256', image.config.digest.slice(7)), 'utf8')) as { created: string };
      expect(record?.created).toBe(config.created);
    }
    const layers = await records(join(nativeOut, 'store.tar'), 'layers');
    const blobs = new Map(lock.images.flatMap((i) => i.layers).map((l) => [l.digest, l.size]));
    for (const layer of layers) expect(blobs.get(layer['compressed-diff-digest'] as string)).toBe(layer['compressed-size']);
  });

  it('equals the engine path (podman load): every layer tree, link and tar-split; records after the documented mask', async () => {
    expect(storeDifferences(withoutManifestData(engineTree), withoutManifestData(nativeTree))).toEqual([]);
    for (const kind of ['images', 'layers'] as const) {
      const [engine, native] = [await records(join(engineOut, 'store.tar'), kind), await records(join(nativeOut, 'store.tar'), kind)];
      expect(masked(native, ENGINE_PATH_MASK[kind]), kind).toEqual(masked(engine, ENGINE_PATH_MASK[kind]));
    }
  });

  it('is served by podman 4.3 as a graphroot and as a read-only additional image store: listed, run, podman save gives every diff id', async () => {
    const v = await verifyStore({ outDir: nativeOut });
    expect(v.engineVersion).toMatch(/^4\.3\./);
    for (const images of [v.images, v.additionalStore]) {
      const by = new Map((images ?? []).map((i) => [i.reference, i]));
      assertFidelityOutput(by.get(c.pushed.fidelity)?.output ?? '');
      expect(by.get(c.pushed.sample)?.output?.trim()).toBe(SAMPLE_OUTPUT);
      expect(by.get(c.pushed.fidelity)?.savedLayers).toBe(c.pushed.fidelityImage.layers.length);
      expect(by.get(c.pushed.sample)?.savedLayers).toBe(c.pushed.sampleImage.layers.length);
    }
  }, 300_000);

  it('podman lists the lock\'s image ids and manifest digests, and repo@digest resolves to the image', async () => {
    const root = await mkdtemp(join(c.work, 'graphroot-'));
    await extractStoreTar(join(nativeOut, 'store.tar'), root);
    const podman = await startPodman({ storageDriver: 'overlay', root });
    try {
      const listed = JSON.parse((await podman.exec(['images', '--format', 'json'])).stdout) as Array<{ Id: string; Digest: string; Names?: string[] }>;
      const expected = lock.images.map((i) => ({ Id: i.config.digest.slice(7), Digest: i.indexDigest, Names: [i.reference] }));
      expect(listed.map(({ Id, Digest, Names }) => ({ Id, Digest, Names })).sort((a, b) => a.Id.localeCompare(b.Id))).toEqual(expected.sort((a, b) => a.Id.localeCompare(b.Id)));
      for (const image of lock.images) {
        for (const digest of new Set([image.indexDigest, image.manifest.digest])) {
          const byDigest = `${image.registry}/${image.repository}@${digest}`;
          const id = (await podman.exec(['image', 'inspect', '--format', '{{.Id}}', byDigest])).stdout.trim();
          expect(id, byDigest).toBe(image.config.digest.slice(7));
        }
      }
    } finally {
      await podman.stop();
    }
  }, 120_000);

  it('is byte-reproducible, and a plain user (nobody, the built CLI, no podman) bakes the same bytes', async () => {
    await execa('chmod', ['-R', 'a+rX', c.work]);
    const parent = join(c.work, 'as-nobody');
    await mkdir(parent);
    await chmod(parent, 0o777);
    const cli = resolve(import.meta.dirname, '../../bin/ctrbake.js');
    const args = ['bake', '--lock', c.lockPaths.amd64, '--cache', c.cacheDir, '--mode', 'store', '--engine', 'podman', '--builder', 'native', '-o', join(parent, 'out')];
    const run = await execa('runuser', ['-u', 'nobody', '--', process.execPath, cli, ...args], { reject: false });
    expect(run.exitCode, run.stderr).toBe(0);
    const read = async (out: string): Promise<unknown> => (JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as { outputs: unknown }).outputs;
    expect(await read(join(parent, 'out'))).toEqual(await read(nativeOut));
  }, 120_000);
});

describe('the checks catch a broken podman builder store', () => {
  const breakages: Array<[string, Rewrite, string]> = [
    ['tar-split dropped', (entry) => (/^overlay-layers\/[0-9a-f]{64}\.tar-split\.gz$/.test(entry.name) ? 'drop' : 'keep'), '.tar-split.gz'],
    [
      'lower swapped',
      (entry, content) => (/^overlay\/[0-9a-f]{64}\/lower$/.test(entry.name) && content.includes(':') ? [{ entry, content: Buffer.from(content.toString().split(':').reverse().join(':')) }] : 'keep'),
      '/lower',
    ],
    [
      'whiteout written as a plain .wh. file',
      (entry) => {
        if (!isWhiteout(entry.name, entry.type, `${entry.devmajor}:${entry.devminor}`)) return 'keep';
        const slash = entry.name.lastIndexOf('/');
        return [{ entry: { ...entry, name: `${entry.name.slice(0, slash + 1)}.wh.${entry.name.slice(slash + 1)}`, type: 'file', mode: 0o644 }, content: Buffer.alloc(0) }];
      },
      '.wh.',
    ],
    [
      'config re-serialised',
      (entry, content) => {
        const key = /^overlay-images\/[0-9a-f]{64}\/=(.+)$/.exec(entry.name)?.[1];
        if (entry.type !== 'file' || !key || !Buffer.from(key, 'base64').toString().startsWith('sha256:')) return 'keep';
        return [{ entry, content: Buffer.from(JSON.stringify(JSON.parse(content.toString()), null, 1)) }];
      },
      'overlay-images/',
    ],
    [
      'a parent id changed in layers.json',
      (entry, content) => (entry.name === 'overlay-layers/layers.json' ? [{ entry, content: Buffer.from(content.toString().replace(/"parent":"[0-9a-f]{8}/g, '"parent":"00000000')) }] : 'keep'),
      'layers.json',
    ],
  ];

  it.each(breakages)('%s: the comparison with podman pull names it', async (name, rewrite, where) => {
    const out = join(c.work, `broken-${name.replace(/\W+/g, '-')}`);
    await mkdir(out);
    await copyFile(join(nativeOut, 'manifest.json'), join(out, 'manifest.json'));
    await rewriteStoreTar(join(nativeOut, 'store.tar'), join(out, 'store.tar'), rewrite);
    const differences = storeDifferences(pullTree, await readStoreTree(join(out, 'store.tar')));
    expect(differences.length).toBeGreaterThan(0);
    expect(differences.join('\n')).toContain(where);
  });

  it('tar-split dropped: podman itself fails to save the image', async () => {
    const out = join(c.work, 'broken-tar-split-engine');
    await mkdir(out);
    await copyFile(join(nativeOut, 'manifest.json'), join(out, 'manifest.json'));
    await rewriteStoreTar(join(nativeOut, 'store.tar'), join(out, 'store.tar'), breakages[0]![1]);
    await expect(verifyStore({ outDir: out, checkAdditionalStore: false })).rejects.toThrow(/tar-split|save|E_ENGINE_COMMAND|no such file/i);
  }, 300_000);
});
