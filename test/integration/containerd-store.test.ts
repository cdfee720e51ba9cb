/**
 * containerd's content store baked by ctrbake (src/builder/containerd-store.ts), served by the
 * host's real containerd (1.6 on Debian 12), private root and socket (devkit/containerd.ts):
 * images listed with the lock's manifest digests, every blob listed, the same after a
 * synchronous garbage collection, containers run with the fidelity image's properties; the
 * bytes are reproducible; and the same store without the GC references loses its configs and
 * layers at the first collection (so the GC check can fail).
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTAINERD_NAMESPACES, containerdStoreTar, planContainerdStore, type ContainerdStorePlan } from '../../src/builder/containerd-store.js';
import { readBolt, type BoltBucket } from '../../src/formats/bbolt.js';
import { startContainerd, type TestContainerd } from '../../devkit/containerd.js';
import { assertFidelityOutput, SAMPLE_OUTPUT } from '../fixtures/images.js';
import { prepareBakeInputs, type BakeInputs } from './bake-archive.helpers.js';

let inputs: BakeInputs;
let work: string;
const SDE = 1_700_000_000;

beforeAll(async () => {
  inputs = await prepareBakeInputs();
  work = await mkdtemp(join(inputs.work, 'cd-store-'));
}, 180_000);
afterAll(async () => {
  await inputs?.close();
});

async function writeStore(plan: ContainerdStorePlan, namespace: string, name: string): Promise<{ tar: string; sha256: string }> {
  const tar = join(work, `${name}.tar`);
  const options = { lock: inputs.lockAmd64Content, cacheDir: inputs.cacheDir, namespace, sourceDateEpoch: SDE };
  await pipeline(Readable.from(containerdStoreTar(plan, options)), createWriteStream(tar));
  return { tar, sha256: createHash('sha256').update(await readFile(tar)).digest('hex') };
}

/** A containerd whose root is the extracted store tar. */
async function serve(tar: string, name: string): Promise<TestContainerd> {
  const root = join(work, `${name}-root`);
  await mkdir(root, { mode: 0o711 });
  await execa('tar', ['-xpf', tar, '-C', root]);
  return startContainerd({ root });
}

function lines(out: unknown): string[][] {
  return String(out)
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/));
}

/** Names -> target digest, as `ctr images ls` prints them. */
async function imageTargets(c: TestContainerd, ns: string): Promise<Record<string, string>> {
  return Object.fromEntries(lines((await c.ctr(ns, ['images', 'ls'])).stdout).map((f) => [f[0]!, f[2]!]));
}

async function contentDigests(c: TestContainerd, ns: string): Promise<string[]> {
  return lines((await c.ctr(ns, ['content', 'ls'])).stdout)
    .map((f) => f[0]!)
    .sort();
}

/** One synchronous GC run: a lease created and deleted with --sync. */
async function collectGarbage(c: TestContainerd, ns: string): Promise<void> {
  const id = `ctrbake-gc-${Date.now()}`;
  await c.ctr(ns, ['leases', 'create', '--id', id]);
  await c.ctr(ns, ['leases', 'delete', '--sync', id]);
}

describe('containerd content store baked by ctrbake', () => {
  it('containerd 1.6 lists the images with the lock\'s manifest digests and every blob, before and after its GC; containers run with the fidelity properties', async () => {
    const ns = CONTAINERD_NAMESPACES.containerd;
    const lock = inputs.lockAmd64Content;
    const plan = planContainerdStore({ lock, namespace: ns });
    const a = await writeStore(plan, ns, 'a');
    const b = await writeStore(planContainerdStore({ lock, namespace: ns }), ns, 'b');
    expect(b.sha256, 'the same lock and cache give the same store bytes').toBe(a.sha256);
    const c = await serve(a.tar, 'a');
    try {
      console.log(`containerd ${c.version}: baked store of ${plan.blobs.length} blobs, ${lock.images.length} images`);
      const expectedImages = Object.fromEntries(lock.images.map((i) => [i.reference, i.manifest.digest]));
      const expectedBlobs = plan.blobs.map((p) => p.descriptor.digest).sort();
      expect(await imageTargets(c, ns)).toEqual(expectedImages);
      expect(await contentDigests(c, ns)).toEqual(expectedBlobs);
      await collectGarbage(c, ns);
      expect(await imageTargets(c, ns)).toEqual(expectedImages);
      expect(await contentDigests(c, ns)).toEqual(expectedBlobs);
      for (const digest of expectedBlobs) await expect(readFile(join(c.root, 'io.containerd.content.v1.content/blobs/sha256', digest.slice(7)))).resolves.toBeTruthy();
      const run = async (ref: string, id: string) => String((await c.ctr(ns, ['run', '--rm', '--cpu-shares', '0', ref, id])).stdout);
      expect((await run(inputs.images.sample, 'sample')).trim()).toBe(SAMPLE_OUTPUT);
      assertFidelityOutput(await run(inputs.images.fidelity, 'fidelity'));
      // Unpacking added the snapshot references; a second GC keeps everything.
      await collectGarbage(c, ns);
      expect(await contentDigests(c, ns)).toEqual(expectedBlobs);
      expect(String((await c.ctr(ns, ['snapshots', 'ls'])).stdout)).toMatch(/Committed/);
      await c.stop();
      // containerd's own rewrite of meta.db keeps what ctrbake wrote (read back with the project's reader).
      const db = readBolt(await readFile(join(c.root, 'io.containerd.metadata.v1.bolt/meta.db')));
      const blobs = ((db.v1 as BoltBucket)[ns] as BoltBucket).content as BoltBucket;
      expect(Object.keys(blobs.blob as BoltBucket).sort()).toEqual(expectedBlobs);
    } finally {
      await c.close();
    }
  }, 120_000);

  it('without the GC references, containerd\'s first collection drops the configs and layers (the check above can fail)', async () => {
    const ns = CONTAINERD_NAMESPACES.containerd;
    const plan = planContainerdStore({ lock: inputs.lockAmd64Content, namespace: ns });
    const stripped: ContainerdStorePlan = {
      ...plan,
      blobs: plan.blobs.map((b) => ({ ...b, labels: Object.fromEntries(Object.entries(b.labels).filter(([k]) => !k.startsWith('containerd.io/gc.ref.'))) })),
    };
    const { tar } = await writeStore(stripped, ns, 'stripped');
    const c = await serve(tar, 'stripped');
    try {
      const manifests = inputs.lockAmd64Content.images.map((i) => i.manifest.digest).sort();
      await collectGarbage(c, ns);
      expect(await contentDigests(c, ns)).toEqual(manifests);
    } finally {
      await c.close();
    }
  }, 60_000);

  it('k8s.io (k3s, CRI): each image also under repo@digest and its config digest, labelled managed', async () => {
    const ns = CONTAINERD_NAMESPACES.k3s;
    const plan = planContainerdStore({ lock: inputs.lockAmd64Content, namespace: ns });
    const { tar } = await writeStore(plan, ns, 'k8s');
    const c = await serve(tar, 'k8s');
    try {
      await collectGarbage(c, ns);
      const targets = await imageTargets(c, ns);
      for (const image of inputs.lockAmd64Content.images) {
        for (const name of [image.reference, `${image.registry}/${image.repository}@${image.manifest.digest}`, image.config.digest]) expect(targets[name]).toBe(image.manifest.digest);
      }
      expect(String((await c.ctr(ns, ['images', 'ls'])).stdout)).toMatch(/io\.cri-containerd\.image=managed/);
      expect(await imageTargets(c, CONTAINERD_NAMESPACES.containerd)).toEqual({});
    } finally {
      await c.close();
    }
  }, 60_000);
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});
