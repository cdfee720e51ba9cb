/**
 * The containerd layout on a simulated device (devkit/device.ts: ext4 data partition on a
 * loop device, private mount namespace, the generated systemd units run in their order): a
 * containerd content store baked by ctrbake (`bake --engine containerd --squashfs`), the
 * loader's overlay, the prepare step seeds containerd's root (meta.db + blob links into the
 * SquashFS), then the host's containerd 1.6 runs in the device namespace on that root.
 * First boot: images with the lock's manifest digests, every blob, the same after a GC, the
 * fidelity image runs; first-boot bytes written measured; second boot seeds nothing.
 */
import { readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bake } from '../../src/bake/bake.js';
import { generateLoader } from '../../src/loader/generate.js';
import { SimDevice } from '../../devkit/device.js';
import { startContainerd, type TestContainerd } from '../../devkit/containerd.js';
import { assertFidelityOutput, SAMPLE_OUTPUT } from '../fixtures/images.js';
import { prepareBakeInputs, type BakeInputs } from './bake-archive.helpers.js';
import { expectBooted } from './loader-harness.js';

let inputs: BakeInputs;
let overlay: string;
const NS = 'default';
const ROOT = '/var/lib/containerd';

beforeAll(async () => {
  inputs = await prepareBakeInputs();
  const out = join(inputs.work, 'bake-containerd');
  const baked = await bake({ lockPath: inputs.lockAmd64, cacheDir: inputs.cacheDir, mode: 'store', engine: 'containerd', outDir: out, sourceDateEpoch: 1_700_000_000, squashfs: {} });
  expect(baked.manifest.engine.name).toBe('containerd');
  expect(baked.manifest.namespace).toBe(NS);
  overlay = join(inputs.work, 'overlay-containerd');
  await generateLoader({ manifestPath: baked.manifestPath, layout: 'containerd', init: 'systemd', outDir: overlay });
}, 240_000);
afterAll(async () => {
  await inputs?.close();
});

function rows(out: unknown): string[][] {
  return String(out)
    .trim()
    .split('\n')
    .slice(1)
    .filter((l) => l.trim() !== '')
    .map((l) => l.trim().split(/\s+/));
}

async function onDevice(d: SimDevice): Promise<TestContainerd> {
  return startContainerd({ root: d.path(ROOT), prefix: d.nsPrefix() });
}

async function expectImages(c: TestContainerd): Promise<void> {
  const lock = inputs.lockAmd64Content;
  const images = Object.fromEntries(rows((await c.ctr(NS, ['images', 'ls'])).stdout).map((f) => [f[0]!, f[2]!]));
  expect(images).toEqual(Object.fromEntries(lock.images.map((i) => [i.reference, i.manifest.digest])));
  const blobs = new Set(lock.images.flatMap((i) => [i.manifest.digest, i.config.digest, ...i.layers.map((l) => l.digest)]));
  expect(rows((await c.ctr(NS, ['content', 'ls'])).stdout).map((f) => f[0]).sort()).toEqual([...blobs].sort());
}

describe('containerd layout on a simulated device (host containerd 1.6)', () => {
  it('systemd: prepare seeds containerd\'s root with links into the store; images, content and GC hold; containers run; second boot seeds nothing', async () => {
    const d = await SimDevice.create({ overlayDir: overlay, dataSizeMiB: 256 });
    let c: TestContainerd | undefined;
    // Another containerd on another root (as dockerd's own containerd, or a second test's)
    // runs through the first boot: prepare must not take it for the device's.
    let foreign: TestContainerd | undefined = await startContainerd();
    try {
      expect(await readFile(d.path('/etc/containerd/config.toml'), 'utf8')).toContain(`root = "${ROOT}"`);
      const first = await d.boot({ init: 'systemd', stopBefore: 'engine' });
      expectBooted(first);
      await foreign.close();
      foreign = undefined;
      const seededKiB = await d.writtenKiB();
      const blobDir = `${ROOT}/io.containerd.content.v1.content/blobs/sha256`;
      const links = await d.listDeviceDir(blobDir);
      expect(links.length).toBeGreaterThan(3);
      expect(await readlink(`/proc/${d.nsPrefix()[2]}/root${d.path(`${blobDir}/${links[0]}`)}`)).toBe(d.path(`/usr/share/ctrbake/store/io.containerd.content.v1.content/blobs/sha256/${links[0]}`));
      c = await onDevice(d);
      await expectImages(c);
      // The device's own containerd runs on the root prepare seeds: prepare refuses, changing nothing.
      const again = await d.ctrbakeDevice(['prepare']);
      expect(again.exitCode, String(again.all)).toBe(1);
      expect(String(again.stderr)).toMatch(new RegExp(`containerd is running on ${ROOT} \\(it runs: pid \\d+ \\(`));
      const gc = `gc-${Date.now()}`;
      await c.ctr(NS, ['leases', 'create', '--id', gc]);
      await c.ctr(NS, ['leases', 'delete', '--sync', gc]);
      await expectImages(c);
      const run = async (ref: string, id: string) => String((await c!.ctr(NS, ['run', '--rm', '--cpu-shares', '0', ref, id])).stdout);
      expect((await run(inputs.images.sample, 'sample')).trim()).toBe(SAMPLE_OUTPUT);
      assertFidelityOutput(await run(inputs.images.fidelity, 'fidelity'));
      const firstKiB = await d.writtenKiB();
      console.log(`containerd layout (systemd): prepare wrote ${seededKiB} KiB (meta.db + links), the first boot with two container runs (unpacking both images) ${firstKiB} KiB`);
      await c.close();
      c = undefined;
      await d.shutdown();
      const second = await d.boot({ init: 'systemd', stopBefore: 'engine' });
      expectBooted(second);
      expect(second.steps.map((s) => s.stderr ?? '').join('\n')).not.toMatch(/seeding/);
      const secondKiB = await d.writtenKiB();
      c = await onDevice(d);
      await expectImages(c);
      assertFidelityOutput(await run(inputs.images.fidelity, 'fidelity2'));
      console.log(`containerd layout (systemd): second boot's prepare wrote ${secondKiB} KiB`);
      expect(secondKiB).toBeLessThan(1024);
    } finally {
      await foreign?.close();
      await c?.close();
      await d.dispose();
    }
  }, 180_000);
});
