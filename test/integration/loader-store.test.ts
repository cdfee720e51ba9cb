/**
 * Store layouts (split, overlay-vfs, copy) on a simulated device (test/fixtures/device.ts):
 * the store SquashFS mounted where the units say (or by the script under sysvinit/busybox),
 * the writable side on an ext4 data partition, a private dockerd 20.10 on the result.
 * CTRBAKE_TEST_POWERCUTS sets how many random interruptions each layout's first boot gets
 * (default: 2 for split, 1 for copy and overlay-vfs).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { checkSavedArchive } from '../../src/bake/verify-saved-archive.js';
import { SimDevice, type Boot, type InitStyle } from '../fixtures/device.js';
import { assertFidelityOutput, MULTI_AMD64_OUTPUT, SAMPLE_OUTPUT } from '../fixtures/images.js';
import { setupLoaderFixture, type LoaderFixture } from './loader-setup.js';

let f: LoaderFixture;
const overlays: Partial<Record<string, string>> = {};
const devices: SimDevice[] = [];
const MARGIN_KIB = 1024;

beforeAll(async () => {
  f = await setupLoaderFixture();
  const overlay2 = await f.bake('A', 'store', { storageDriver: 'overlay2' });
  const vfs = await f.bake('A', 'store', { storageDriver: 'vfs' });
  const overlay2B = await f.bake('B', 'store', { storageDriver: 'overlay2' });
  for (const init of ['systemd', 'sysvinit', 'busybox'] as const) {
    overlays[`split-${init}`] = await f.loader(overlay2, { layout: 'split', init, spaceMarginKiB: MARGIN_KIB });
    overlays[`overlay-vfs-${init}`] = await f.loader(vfs, { layout: 'overlay-vfs', init, spaceMarginKiB: MARGIN_KIB });
    overlays[`copy-${init}`] = await f.loader(overlay2, { layout: 'copy', init, spaceMarginKiB: MARGIN_KIB });
  }
  overlays['split-B'] = await f.loader(overlay2B, { layout: 'split', init: 'systemd', spaceMarginKiB: MARGIN_KIB });
}, 300_000);

afterEach(async () => {
  for (const d of devices.splice(0)) await d.dispose();
});

afterAll(async () => {
  await f?.dispose();
});

async function device(overlay: string, dataSizeMiB = 96): Promise<SimDevice> {
  const d = await SimDevice.create({ overlayDir: overlay, dataSizeMiB });
  devices.push(d);
  return d;
}

function expectBooted(boot: Boot): void {
  expect(boot.failure, `boot failed at ${boot.failure?.name}: ${boot.failure?.stderr}`).toBeUndefined();
}

function prepareLog(boot: Boot): string {
  return boot.steps.map((s) => s.stderr ?? '').join('\n');
}

async function run(d: SimDevice, args: readonly string[]): Promise<string> {
  const r = await d.docker(['run', '--rm', '--network', 'none', ...args]);
  expect(r.exitCode, `docker run ${args.join(' ')}: ${r.all}`).toBe(0);
  return String(r.stdout);
}

async function expectSaves(boot: Boot, ref: string): Promise<void> {
  const stream = (await boot.engine!.docker.getImage(ref).get()) as unknown as Readable;
  expect((await checkSavedArchive(stream, `docker save ${ref}`)).length).toBe(1);
}

async function expectImagesA(d: SimDevice, boot: Boot): Promise<void> {
  expect((await run(d, [f.images.sample])).trim()).toBe(SAMPLE_OUTPUT);
  assertFidelityOutput(await run(d, [f.images.fidelity]));
  for (const ref of [f.images.sample, f.images.fidelity]) await expectSaves(boot, ref);
}

/** The device's prepare step (before the engine) under each init style. */
function prepareStep(init: InitStyle): string {
  return { systemd: 'service:ctrbake-prepare.service', sysvinit: 'init:S19ctrbake', busybox: 'init:S59ctrbake' }[init];
}

async function sha256(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

async function deviceSh(d: SimDevice, command: string): Promise<{ exitCode: number; all: string; stderr: string }> {
  const r = await d.ns(['busybox', 'sh', d.path('/usr/sbin/ctrbake-device'), command], { CTRBAKE_ROOT: d.root });
  return { exitCode: r.exitCode ?? -1, all: String(r.all), stderr: String(r.stderr) };
}

describe('store layouts on a simulated device (dockerd 20.10 unless said)', () => {
  it.each([
    ['split', 'systemd'],
    ['overlay-vfs', 'systemd'],
    ['copy', 'systemd'],
  ] as const)('%s/%s: first boot runs every image; second boot copies nothing', async (layout: string, init: InitStyle) => {
    const d = await device(overlays[`${layout}-${init}`]!);
    const storeImage = d.path('/usr/share/ctrbake/store.sqfs');
    const before = await sha256(storeImage);
    const first = await d.boot({ init });
    expectBooted(first);
    expect(first.steps.findIndex((s) => /prepare|ctrbake$/.test(s.name))).toBeLessThan(first.steps.findIndex((s) => s.name === 'engine'));
    const firstKiB = await d.writtenKiB();
    await expectImagesA(d, first);
    // Writes inside a container work; the image stays as it was.
    expect((await run(d, ['--entrypoint', '/bin/sh', f.images.sample, '-c', 'echo written > /new-file && cat /new-file'])).trim()).toBe('written');
    await d.shutdown();

    const second = await d.boot({ init });
    expectBooted(second);
    expect(prepareLog(second)).not.toMatch(/seeding|new writable layer/);
    const secondKiB = await d.writtenKiB();
    console.log(`${layout}/${init}: first boot wrote ${firstKiB} KiB before any container ran, second boot ${secondKiB} KiB`);
    expect(secondKiB).toBeLessThan(1024);
    await expectImagesA(d, second);
    if (layout === 'split') {
      const layers = (await d.listDeviceDir('/var/lib/docker/overlay2')).filter((n) => n !== 'l');
      const linked = [];
      for (const layer of layers) {
        const r = await d.ns(['readlink', d.path(`/var/lib/docker/overlay2/${layer}/diff`)]);
        if (r.exitCode === 0) linked.push(String(r.stdout).trim());
      }
      // Every image layer's content is a link into the read-only store; only containers' layers are not.
      expect(linked.length).toBeGreaterThanOrEqual(2);
      for (const target of linked) expect(target.startsWith(d.path('/usr/share/ctrbake/store/overlay2/'))).toBe(true);
      const rmi = await d.docker(['rmi', f.images.sample]);
      expect(rmi.exitCode, String(rmi.all)).toBe(0);
      await expectSaves(second, f.images.fidelity);
    }
    await d.shutdown();
    expect(await sha256(storeImage)).toBe(before);
  });

  it.each([
    ['split', 'sysvinit'],
    ['split', 'busybox'],
    ['overlay-vfs', 'sysvinit'],
    ['overlay-vfs', 'busybox'],
    ['copy', 'sysvinit'],
    ['copy', 'busybox'],
  ] as const)('%s/%s: first boot runs every image, prepared before the engine starts; second boot copies nothing', async (layout: string, init: InitStyle) => {
    const d = await device(overlays[`${layout}-${init}`]!);
    const storeImage = d.path('/usr/share/ctrbake/store.sqfs');
    const before = await sha256(storeImage);
    const boot = await d.boot({ init });
    expectBooted(boot);
    const order = boot.steps.map((s) => s.name);
    const prepare = order.findIndex((n) => /ctrbake$/.test(n));
    expect(prepare).toBeGreaterThanOrEqual(0);
    expect(prepare).toBeLessThan(order.indexOf('engine'));
    expect(prepareLog(boot)).toMatch(/seeding|new writable layer/);
    const firstKiB = await d.writtenKiB();
    await expectImagesA(d, boot);
    await d.shutdown();

    const second = await d.boot({ init });
    expectBooted(second);
    expect(prepareLog(second)).not.toMatch(/seeding|new writable layer/);
    const secondKiB = await d.writtenKiB();
    console.log(`${layout}/${init}: first boot wrote ${firstKiB} KiB before any container ran, second boot ${secondKiB} KiB`);
    expect(secondKiB).toBeLessThan(1024);
    await expectImagesA(d, second);
    await d.shutdown();
    expect(await sha256(storeImage)).toBe(before);
  });

  it.each(['split', 'overlay-vfs', 'copy'] as const)('%s with Debian 13\'s dockerd (26.x, newer-dockerd tree): images run, save and delete; second boot copies nothing; the store stays untouched', async (layout) => {
    const d = await device(overlays[`${layout}-systemd`]!);
    const storeImage = d.path('/usr/share/ctrbake/store.sqfs');
    const before = await sha256(storeImage);
    const first = await d.boot({ init: 'systemd', dockerd: 'newer' });
    expectBooted(first);
    expect(first.engine!.version).toMatch(/^26\./);
    const info = await d.docker(['info', '--format', '{{.Driver}}']);
    expect(String(info.stdout).trim()).toBe(layout === 'overlay-vfs' ? 'vfs' : 'overlay2');
    expect(prepareLog(first)).toMatch(/seeding|new writable layer/);
    const firstKiB = await d.writtenKiB();
    await expectImagesA(d, first);
    expect((await run(d, ['--entrypoint', '/bin/sh', f.images.sample, '-c', 'echo written > /new-file && cat /new-file'])).trim()).toBe('written');
    expect((await d.docker(['rmi', f.images.sample])).exitCode).toBe(0);
    await d.shutdown();
    const second = await d.boot({ init: 'systemd', dockerd: 'newer' });
    expectBooted(second);
    expect(prepareLog(second)).not.toMatch(/seeding|new writable layer/);
    const secondKiB = await d.writtenKiB();
    console.log(`${layout}/systemd (dockerd 26): first boot wrote ${firstKiB} KiB before any container ran, second boot ${secondKiB} KiB`);
    expect(secondKiB).toBeLessThan(1024);
    assertFidelityOutput(await run(d, [f.images.fidelity]));
    await expectSaves(second, f.images.fidelity);
    await d.shutdown();
    expect(await sha256(storeImage)).toBe(before);
  });

  it.each([
    ['split', 'systemd'],
    ['copy', 'systemd'],
    ['overlay-vfs', 'systemd'],
    ['split', 'sysvinit'],
    ['split', 'busybox'],
  ] as const)('%s/%s: interrupted first boots (power cut, kill -9) are redone from the pristine store', async (layout, init: InitStyle) => {
    // split/systemd gets a power cut and a kill -9 by default, the others one power cut.
    const cuts = Number(process.env.CTRBAKE_TEST_POWERCUTS ?? (layout === 'split' && init === 'systemd' ? 2 : 1));
    for (let i = 0; i < cuts; i++) {
      const d = await device(overlays[`${layout}-${init}`]!);
      const mode = i % 2 === 0 ? 'power cut' : 'kill -9';
      const delayMs = Math.floor(Math.random() * { split: 100, copy: 250, 'overlay-vfs': 40 }[layout]);
      let fired: Promise<void> | undefined;
      const cut = await d.boot({
        init,
        onStep: (step) => {
          if (step.name !== prepareStep(init)) return;
          fired = (async () => {
            await new Promise((r) => setTimeout(r, delayMs));
            if (mode === 'power cut') await d.powerCut();
            else d.killAll();
          })();
        },
        stopBefore: 'engine',
      });
      await fired;
      await d.shutdown();
      // What survived, seen after the data partition is mounted again (journal replayed).
      await d.boot({ init, stopBefore: prepareStep(init) });
      const recorded = (await d.readDeviceFile('/var/lib/ctrbake/seeded')) !== undefined;
      console.log(`${layout}/${init}: ${mode} ${delayMs} ms into prepare (${cut.failure ? 'prepare interrupted' : 'prepare had finished'}, seeding ${recorded ? 'recorded' : 'not recorded'})`);
      // Success reported before the cut must have been durable.
      if (!cut.failure) expect(recorded).toBe(true);
      await d.shutdown();
      const boot = await d.boot({ init });
      expectBooted(boot);
      await expectImagesA(d, boot);
      await d.dispose();
    }
  }, 600_000);

  it('split: the health check finds empty link/lower files and a missing layer dir; prepare re-seeds them', async () => {
    const d = await device(overlays['split-systemd']!);
    expectBooted(await d.boot({ init: 'systemd' }));
    await d.shutdown();
    await d.boot({ init: 'systemd', stopBefore: 'service:ctrbake-prepare.service' });
    const root = '/var/lib/docker/overlay2';
    const layers = (await d.listDeviceDir(root)).filter((n) => n !== 'l');
    const withLower: string[] = [];
    for (const l of layers) if ((await d.readDeviceFile(`${root}/${l}/lower`)) !== undefined) withLower.push(l);
    const base = layers.filter((l) => !withLower.includes(l));
    expect(withLower.length).toBeGreaterThan(1);
    expect(base.length).toBeGreaterThan(0);
    await d.ns(['truncate', '-s', '0', d.path(`${root}/${withLower[0]}/lower`)]);
    await d.ns(['truncate', '-s', '0', d.path(`${root}/${base[0]}/link`)]);
    await d.ns(['rm', '-rf', d.path(`${root}/${withLower[1]}`)]);
    const check = await deviceSh(d, 'check');
    expect(check.exitCode).toBe(1);
    expect(check.stderr).toMatch(/empty lower file/);
    expect(check.stderr).toMatch(/empty link file/);
    expect(check.stderr).toMatch(/missing/);
    await d.shutdown();
    const boot = await d.boot({ init: 'systemd' });
    expectBooted(boot);
    expect(prepareLog(boot)).toMatch(/re-seeded from the store/);
    await expectImagesA(d, boot);
  });

  it.each(['split', 'overlay-vfs'] as const)('%s: factory reset drops containers and returns to the baked store', async (layout) => {
    const d = await device(overlays[`${layout}-systemd`]!);
    expectBooted(await d.boot({ init: 'systemd' }));
    expect((await d.docker(['create', '--name', 'left-over', '--network', 'none', f.images.sample])).exitCode).toBe(0);
    expect((await d.docker(['rmi', '-f', f.images.fidelity])).exitCode).toBe(0);
    await d.shutdown();
    await d.boot({ init: 'systemd', stopBefore: 'engine' });
    const reset = await deviceSh(d, 'reset');
    expect(reset.exitCode, reset.all).toBe(0);
    await d.shutdown();
    const boot = await d.boot({ init: 'systemd' });
    expectBooted(boot);
    expect(String((await d.docker(['ps', '-aq'])).stdout).trim()).toBe('');
    await expectImagesA(d, boot);
  });

  it('split: a new store after an OTA update is seeded on the next boot', async () => {
    const d = await device(overlays['split-systemd']!);
    expectBooted(await d.boot({ init: 'systemd' }));
    await d.shutdown();
    await d.update(overlays['split-B']!);
    const boot = await d.boot({ init: 'systemd' });
    expectBooted(boot);
    expect(prepareLog(boot)).toMatch(/seeding/);
    expect((await run(d, [f.images.multi])).trim()).toBe(MULTI_AMD64_OUTPUT);
    assertFidelityOutput(await run(d, [f.images.fidelity]));
    expect((await d.docker(['image', 'inspect', f.images.sample])).exitCode).not.toBe(0);
  });

  it('copy: a data partition too small fails before writing anything, then seeds once grown', async () => {
    const d = await device(overlays['copy-systemd']!, 4);
    const failed = await d.boot({ init: 'systemd' });
    expect(failed.failure?.name).toBe('service:ctrbake-prepare.service');
    expect(failed.failure?.stderr).toMatch(/not enough space on the data partition to seed \/var\/lib\/docker: need \d+ KiB free, have \d+ KiB/);
    expect(await d.listDeviceDir('/var/lib')).not.toContain('docker.ctrbake-new');
    await d.shutdown();
    await d.grow(96);
    const boot = await d.boot({ init: 'systemd' });
    expectBooted(boot);
    await expectImagesA(d, boot);
  });
});
