/**
 * podman on a simulated device (test/fixtures/device.ts): the archive layout (podman load at
 * boot, also cut by power cuts) and podman-ro (the store SquashFS as a read-only additional
 * image store). CTRBAKE_TEST_POWERCUTS: number of cuts (default 2).
 */
import { createReadStream } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { checkSavedArchive } from '../../src/bake/verify-saved-archive.js';
import { SimDevice, type Boot, type InitStyle } from '../fixtures/device.js';
import { assertFidelityOutput, SAMPLE_OUTPUT } from '../fixtures/images.js';
import { setupLoaderFixture, type LoaderFixture } from './loader-setup.js';

let f: LoaderFixture;
const overlays: Partial<Record<string, string>> = {};
const devices: SimDevice[] = [];

beforeAll(async () => {
  f = await setupLoaderFixture();
  const archive = await f.bake('A', 'archive', { engine: 'podman' });
  const store = await f.bake('A', 'store', { engine: 'podman', storageDriver: 'overlay' });
  for (const init of ['systemd', 'sysvinit', 'busybox'] as const) {
    overlays[`archive-${init}`] = await f.loader(archive, { layout: 'archive', init, spaceMarginKiB: 1024 });
    overlays[`podman-ro-${init}`] = await f.loader(store, { layout: 'podman-ro', init });
  }
  overlays['copy-systemd'] = await f.loader(store, { layout: 'copy', init: 'systemd', spaceMarginKiB: 1024 });
}, 300_000);

afterEach(async () => {
  for (const d of devices.splice(0)) await d.dispose();
});

afterAll(async () => {
  await f?.dispose();
});

function expectBooted(boot: Boot): void {
  expect(boot.failure, `boot failed at ${boot.failure?.name}: ${boot.failure?.stderr}`).toBeUndefined();
}

async function run(d: SimDevice, ref: string): Promise<string> {
  const r = await d.runImage([ref]);
  expect(r.exitCode, `podman run ${ref}: ${String(r.all)}`).toBe(0);
  return String(r.stdout);
}

async function expectImagesA(d: SimDevice): Promise<void> {
  expect((await run(d, f.images.sample)).trim()).toBe(SAMPLE_OUTPUT);
  assertFidelityOutput(await run(d, f.images.fidelity));
  for (const ref of [f.images.sample, f.images.fidelity]) {
    const target = `/tmp/ctrbake-save-${process.pid}-${Math.random().toString(36).slice(2)}.tar`;
    const saved = await d.podman(['save', '--format', 'docker-archive', '-o', target, ref]);
    expect(saved.exitCode, String(saved.all)).toBe(0);
    expect((await checkSavedArchive(createReadStream(target), `podman save ${ref}`)).length).toBe(1);
    await d.ns(['rm', '-f', target]);
  }
}

describe('podman on a simulated device', () => {
  it.each([
    ['archive', 'systemd'],
    ['podman-ro', 'systemd'],
  ] as const)('%s/%s: first boot runs every image; second boot loads nothing', async (layout: string, init: InitStyle) => {
    const d = await SimDevice.create({ overlayDir: overlays[`${layout}-${init}`]!, dataSizeMiB: 96 });
    devices.push(d);
    const first = await d.boot({ init });
    expectBooted(first);
    const firstKiB = await d.writtenKiB();
    await expectImagesA(d);
    if (layout === 'podman-ro') {
      const listed = await d.podman(['images', '--format', '{{.Repository}} {{.ReadOnly}}']);
      expect(String(listed.stdout)).toMatch(/ctrbake\/fidelity true/);
    }
    await d.shutdown();
    const second = await d.boot({ init });
    expectBooted(second);
    expect(second.steps.map((s) => s.stderr ?? '').join('\n')).not.toMatch(/loading/);
    const secondKiB = await d.writtenKiB();
    console.log(`podman ${layout}/${init}: first boot wrote ${firstKiB} KiB before any container ran, second boot ${secondKiB} KiB`);
    expect(secondKiB).toBeLessThan(1024);
    await expectImagesA(d);
  });

  it.each([
    ['archive', 'sysvinit'],
    ['archive', 'busybox'],
    ['podman-ro', 'sysvinit'],
    ['podman-ro', 'busybox'],
    ['copy', 'systemd'],
  ] as const)('%s/%s: first boot runs every image', async (layout: string, init: InitStyle) => {
    const d = await SimDevice.create({ overlayDir: overlays[`${layout}-${init}`]!, dataSizeMiB: 96 });
    devices.push(d);
    expectBooted(await d.boot({ init }));
    await expectImagesA(d);
  });

  it('archive: power cuts during podman load: the next boot drops the unsynced image store and converges', async () => {
    const cuts = Number(process.env.CTRBAKE_TEST_POWERCUTS ?? 2);
    for (let i = 0; i < cuts; i++) {
      const d = await SimDevice.create({ overlayDir: overlays['archive-systemd']!, dataSizeMiB: 96 });
      devices.push(d);
      const delayMs = Math.floor(Math.random() * 1200);
      let fired: Promise<void> | undefined;
      const cut = await d.boot({
        init: 'systemd',
        onStep: (step) => {
          if (step.name !== 'service:ctrbake-load.service') return;
          fired = (async () => {
            await new Promise((r) => setTimeout(r, delayMs));
            await d.powerCut();
          })();
        },
      });
      await fired;
      console.log(`podman archive: power cut ${delayMs} ms into the load step (${cut.failure ? 'load interrupted' : 'load had finished'})`);
      await d.shutdown();
      const boot = await d.boot({ init: 'systemd' });
      expectBooted(boot);
      if (cut.failure) expect(boot.steps.map((s) => s.stderr ?? '').join('\n')).toMatch(/was interrupted: removing what it left/);
      await expectImagesA(d);
      await d.dispose();
    }
  }, 600_000);
});
