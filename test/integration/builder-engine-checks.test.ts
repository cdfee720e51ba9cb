/**
 * The builder's docker store (overlay2) in the real engine, dockerd 20.10, against a real
 * `docker pull` of the same images from a local registry (the engine-made store):
 *   - image/overlay2/distribution/ holds what the pull wrote, byte for byte;
 *   - a later pull of an image sharing layers downloads none of the shared ones (counted from
 *     the pull's progress output), and without the distribution metadata it does download them;
 *   - `docker export` of a container equals the export from the pulled store;
 *   - `docker rmi` removes every image.
 */
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bake } from '../../src/bake/bake.js';
import { extractStoreTar } from '../../src/bake/store-tar.js';
import { startDockerd, type RunningDockerd } from '../../src/engine/dockerd.js';
import { blobPath } from '../../src/fetch/cache.js';
import { fetchImages } from '../../src/fetch/index.js';
import { DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST } from '../../src/formats/media-types.js';
import { RegistryClient } from '../../src/registry/client.js';
import { pushBlob, pushManifest } from '../../src/registry/push.js';
import { sha256 } from '../../devkit/layers.js';
import { resolveLock } from '../../src/lock/index.js';
import { pushFixtureImages, type FixtureImages } from '../../devkit/fixture-images.js';
import { startRegistry, type TestRegistry } from '../../devkit/registry.js';
import { readStoreTree, rewriteStoreTar, type StoreTree } from './builder-store.helpers.js';

let work: string;
let registry: TestRegistry;
let images: FixtureImages;
let storeTar: string;
/** The engine-made store: a private dockerd that pulled the lock's images, in lock order. */
let pulled: RunningDockerd;
const daemons: RunningDockerd[] = [];
/** An image of another repository whose only layer is the sample's (busybox), with its own config: every layer shared. */
let sharedCopy: string;

async function docker(d: RunningDockerd, args: string[]): Promise<string> {
  const r = await execa('docker', ['-H', `unix://${d.socketPath}`, ...args], { reject: false, stdin: 'ignore' });
  if (r.exitCode !== 0) throw new Error(`docker ${args.join(' ')} failed (exit ${r.exitCode}): ${r.stderr}\n${await d.logTail(20)}`);
  return r.stdout;
}

async function startOn(dataRoot?: string): Promise<RunningDockerd> {
  const d = await startDockerd({ storageDriver: 'overlay2', network: 'host', insecureRegistries: [registry.host], ...(dataRoot ? { dataRoot } : {}) });
  daemons.push(d);
  return d;
}

/** Starts a dockerd on an extracted store.tar. */
async function startOnStore(tarFile: string): Promise<RunningDockerd> {
  const dataRoot = await mkdtemp(join(work, 'root-'));
  await extractStoreTar(tarFile, dataRoot);
  return startOn(dataRoot);
}

/** Layers a pull downloaded and found present, from its progress output ("<id>: Pull complete" / "<id>: Already exists"). */
async function pullCounts(d: RunningDockerd, ref: string): Promise<{ downloaded: number; existing: number }> {
  const out = await docker(d, ['pull', ref]);
  return { downloaded: (out.match(/: Pull complete$/gm) ?? []).length, existing: (out.match(/: Already exists$/gm) ?? []).length };
}

/** Every file under dir as relative path -> content. */
async function readFiles(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) {
      const path = join(entry.parentPath, entry.name);
      out.set(path.slice(dir.length + 1), await readFile(path, 'utf8'));
    }
  }
  return out;
}

/** What `docker export` of a container of `ref` gives, as a tree (container-init paths masked: see docs/builder.md). */
async function exported(d: RunningDockerd, ref: string, name: string): Promise<StoreTree> {
  const id = (await docker(d, ['create', ref])).trim();
  const file = join(work, `${name}.tar`);
  await docker(d, ['export', '-o', file, id]);
  await docker(d, ['rm', id]);
  const tree = await readStoreTree(file);
  for (const path of [...tree.nodes.keys()]) {
    // Written by the engine when the container is created (its init layer), at that time.
    if (path === '' || /^(\.dockerenv|etc\/(hosts|hostname|resolv\.conf|mtab)|dev(\/.*)?|proc|sys|etc)$/.test(path)) tree.nodes.delete(path);
  }
  return tree;
}

async function pushSharingImage(layer: Buffer, diffId: string): Promise<string> {
  const client = await RegistryClient.create({ insecureRegistries: [registry.host], retry: { retries: 1, initialDelayMs: 100 } });
  const repo = { registry: registry.host, repository: 'ctrbake/shares-all' };
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/true'] }, rootfs: { type: 'layers', diff_ids: [diffId] } }));
  await pushBlob(client, repo, layer);
  await pushBlob(client, repo, config);
  const manifest = {
    schemaVersion: 2,
    mediaType: DOCKER_MANIFEST,
    config: { mediaType: DOCKER_CONFIG, digest: sha256(config), size: config.length },
    layers: [{ mediaType: DOCKER_LAYER_GZIP, digest: sha256(layer), size: layer.length }],
  };
  await pushManifest(client, repo, '1.0', Buffer.from(JSON.stringify(manifest)), DOCKER_MANIFEST);
  return `${registry.host}/${repo.repository}:1.0`;
}

beforeAll(async () => {
  work = await mkdtemp('/tmp/ctrbake-builder-checks-');
  registry = await startRegistry();
  images = await pushFixtureImages(registry);
  const lockPath = join(work, 'ctrbake.lock.json');
  const cacheDir = join(work, 'cache');
  await resolveLock({ references: [images.fidelity, images.sample], platform: 'linux/amd64', output: lockPath, insecureRegistries: [registry.host] });
  await fetchImages({ lockPath, cacheDir, fetcher: 'skopeo', insecureRegistries: [registry.host] });
  sharedCopy = await pushSharingImage(await readFile(blobPath(cacheDir, images.sampleImage.layers[0]!.digest)), images.sampleImage.diffIds[0]!);
  storeTar = join((await bake({ lockPath, cacheDir, mode: 'store', builder: 'native', engineBinary: '/nonexistent/dockerd', outDir: join(work, 'native') })).outDir, 'store.tar');
  pulled = await startOn();
  for (const ref of [images.fidelity, images.sample]) await docker(pulled, ['pull', ref]);
}, 600_000);

afterAll(async () => {
  for (const d of daemons) await d.stop();
  await registry?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the builder store and a real pull (dockerd 20.10)', () => {
  it('holds the distribution metadata the pull wrote, byte for byte', async () => {
    const dir = join(work, 'native-extracted');
    await mkdir(dir);
    await extractStoreTar(storeTar, dir);
    const mine = await readFiles(join(dir, 'image/overlay2/distribution'));
    const theirs = await readFiles(join(pulled.dataRoot, 'image/overlay2/distribution'));
    expect(mine.size).toBe(4 * 2); // 4 distinct layers (fidelity 4, sample's one shared): one file each way
    expect(mine).toEqual(theirs);
  });

  it('serves a later pull of an image sharing layers without downloading them; without the metadata it downloads them', async () => {
    const d = await startOnStore(storeTar);
    // Every layer shared: nothing downloaded. The multi image shares its base: one of two downloaded.
    expect(await pullCounts(d, sharedCopy)).toEqual({ downloaded: 0, existing: 1 });
    expect(await pullCounts(d, images.multi)).toEqual({ downloaded: 1, existing: 1 });
    // The check can fail: the same store without distribution/ downloads the shared layer again.
    const bare = join(work, 'no-distribution.tar');
    await rewriteStoreTar(storeTar, bare, (entry) => (/^image\/overlay2\/distribution\/./.test(entry.name) ? 'drop' : 'keep'));
    expect(await pullCounts(await startOnStore(bare), sharedCopy)).toEqual({ downloaded: 1, existing: 0 });
  }, 300_000);

  it('gives the same `docker export` of a container as the pulled store, and `docker rmi` removes every image', async () => {
    const d = await startOnStore(storeTar);
    const mine = await exported(d, images.fidelity, 'native-export');
    const theirs = await exported(pulled, images.fidelity, 'pulled-export');
    expect(mine.nodes.size).toBeGreaterThan(20);
    expect([...mine.nodes.keys()].sort()).toEqual([...theirs.nodes.keys()].sort());
    for (const [path, node] of theirs.nodes) expect(mine.nodes.get(path), path).toEqual(node);
    expect(mine.hardLinkGroups).toEqual(theirs.hardLinkGroups);

    await docker(d, ['rmi', images.fidelity, images.sample]);
    expect((await docker(d, ['images', '-q'])).trim()).toBe('');
  }, 300_000);
});
