/**
 * Store layouts (split, overlay-vfs, copy) on a simulated device (devkit/device.ts):
 * the store SquashFS mounted where the units say (or by the script under sysvinit/busybox),
 * the writable side on an ext4 data partition, a private dockerd 20.10 on the result.
 * For every layout x init style: one device's life (too small, grown, first boot, second boot,
 * health check repair, factory reset, OTA), and random power cuts / kill -9 of first boots
 * (devkit/power-cut.ts: seeded, CTRBAKE_POWERCUT_COUNT per case, default 1: power cuts and kill -9 alternate across cases),
 * each checked to land inside prepare or the engine's start.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { checkSavedArchive } from '../../src/bake/verify-saved-archive.js';
import { SimDevice, type Boot, type InitStyle } from '../../devkit/device.js';
import { assertFidelityOutput, MULTI_AMD64_OUTPUT, SAMPLE_OUTPUT } from '../fixtures/images.js';
import { bootLog, INITS, layoutsUnder, prepareStep, type LoaderFixture } from '../../devkit/device-setup.js';
import { deviceSh, expectBooted, factoryReset, useLoaderFixture } from './loader-harness.js';
import { after, Cut, cutMode, landCut, powerCutPlan, powerCutTimeoutMs } from '../../devkit/power-cut.js';

let f: LoaderFixture;
const overlays: Partial<Record<string, string>> = {};
const LAYOUTS = ['split', 'overlay-vfs', 'copy'] as const;
type StoreLayout = (typeof LAYOUTS)[number];
/** Below what each layout needs with the default --space-margin (16 MiB); grown to 96 MiB. */
const SMALL_MIB = 12;

const device = useLoaderFixture(async (fixture) => {
  f = fixture;
  const bakes = {
    A: { overlay2: await f.bake('A', 'store', { storageDriver: 'overlay2' }), vfs: await f.bake('A', 'store', { storageDriver: 'vfs' }) },
    B: { overlay2: await f.bake('B', 'store', { storageDriver: 'overlay2' }), vfs: await f.bake('B', 'store', { storageDriver: 'vfs' }) },
  };
  for (const init of INITS) {
    for (const lock of ['A', 'B'] as const) {
      const suffix = lock === 'A' ? '' : '-B';
      overlays[`split-${init}${suffix}`] = await f.loader(bakes[lock].overlay2, { layout: 'split', init });
      overlays[`overlay-vfs-${init}${suffix}`] = await f.loader(bakes[lock].vfs, { layout: 'overlay-vfs', init });
      overlays[`copy-${init}${suffix}`] = await f.loader(bakes[lock].overlay2, { layout: 'copy', init });
    }
  }
}, 300_000);

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

async function sha256(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

/**
 * Damages the writable side like a bad power cut would (engine stopped, store mounted);
 * returns what `check` must report and what the repairing prepare must log.
 */
async function damage(d: SimDevice, layout: StoreLayout): Promise<{ check: RegExp[]; repair: RegExp }> {
  if (layout === 'overlay-vfs') {
    // A directory in the upper layer at a baked layer's place, holding an empty bin/busybox:
    // a copy-up whose data never reached the disk. Every image runs busybox.
    const lower = await d.listDeviceDir('/usr/share/ctrbake/store/vfs/dir');
    let hidden = 0;
    for (const layer of lower) {
      if ((await d.ns(['test', '-f', d.path(`/usr/share/ctrbake/store/vfs/dir/${layer}/bin/busybox`)])).exitCode !== 0) continue;
      const dir = d.path(`/var/lib/ctrbake/overlay/upper/vfs/dir/${layer}/bin`);
      expect((await d.ns(['sh', '-c', `mkdir -p "${dir}" && : > "${dir}/busybox"`])).exitCode).toBe(0);
      hidden++;
    }
    expect(hidden).toBeGreaterThan(0);
    return { check: [/the writable layer hides baked content/], repair: /restored from the store/ };
  }
  const root = '/var/lib/docker/overlay2';
  const layers = (await d.listDeviceDir(root)).filter((n) => n !== 'l');
  const withLower: string[] = [];
  for (const l of layers) if ((await d.readDeviceFile(`${root}/${l}/lower`)) !== undefined) withLower.push(l);
  const base = layers.filter((l) => !withLower.includes(l));
  expect(withLower.length).toBeGreaterThan(1);
  expect(base.length).toBeGreaterThan(0);
  for (const cmd of [
    ['truncate', '-s', '0', d.path(`${root}/${withLower[0]}/lower`)],
    ['truncate', '-s', '0', d.path(`${root}/${base[0]}/link`)],
    ['rm', '-rf', d.path(`${root}/${withLower[1]}`)],
  ]) {
    expect((await d.ns(cmd)).exitCode).toBe(0);
  }
  if (layout === 'split') return { check: [/empty lower file/, /empty link file/, /missing/], repair: /re-seeded from the store/ };
  return { check: [/overlay2\/\w+ is damaged/], repair: /overlay2\/\w+ copied again from the store/ };
}

describe.each(INITS)('store layouts under %s on a simulated device (dockerd 20.10)', (init: InitStyle) => {
  it.each(layoutsUnder(init, LAYOUTS))(
    '%s: too small (clear error, nothing written) then grown; first boot runs every image; second boot copies nothing; health check repair; factory reset; OTA (keeps named volumes)',
    async (layout) => {
      const d = await device(overlays[`${layout}-${init}`]!, SMALL_MIB);
      const storeImage = d.path('/usr/share/ctrbake/store.sqfs');
      const storeSum = await sha256(storeImage);

      // Too small: prepare fails before writing anything. Under sysvinit/busybox rc goes on and
      // starts the engine on the unprepared data-root; the next boot must still converge.
      const failed = await d.boot({ init, keepGoing: true });
      expect(failed.failure?.name).toBe(prepareStep(init));
      expect(failed.failure?.stderr).toMatch(/not enough space on the data partition (to seed \/var\/lib\/docker|for the writable layer of \/var\/lib\/docker \(--space-margin\)): need \d+ KiB free, have \d+ KiB/);
      expect(await d.listDeviceDir('/var/lib/ctrbake')).toEqual([]);
      expect(await d.listDeviceDir('/var/lib')).not.toContain('docker.ctrbake-new');
      await d.shutdown();
      await d.grow(96);

      // First boot.
      const first = await d.boot({ init });
      expectBooted(first);
      const order = first.steps.map((s) => s.name);
      expect(order.indexOf(prepareStep(init))).toBeGreaterThanOrEqual(0);
      expect(order.indexOf(prepareStep(init))).toBeLessThan(order.indexOf('engine'));
      expect(bootLog(first)).toMatch(/seeding|new writable layer/);
      const firstKiB = await d.writtenKiB();
      await expectImagesA(d, first);
      expect((await run(d, ['--entrypoint', '/bin/sh', f.images.sample, '-c', 'echo written > /new-file && cat /new-file'])).trim()).toBe('written');
      await d.shutdown();

      // Second boot: nothing copied, < 1 MiB written.
      const second = await d.boot({ init });
      expectBooted(second);
      expect(bootLog(second)).not.toMatch(/seeding|new writable layer|damaged|hides/);
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
      }
      await d.shutdown();

      // Health check: damage with the engine stopped; check reports it; the next boot repairs it.
      await d.boot({ init, stopBefore: prepareStep(init) });
      const healthy = await deviceSh(d, 'check'); // also mounts the store under sysvinit/busybox
      expect(healthy.exitCode, healthy.all).toBe(0);
      const expected = await damage(d, layout);
      const check = await deviceSh(d, 'check');
      expect(check.exitCode).toBe(1);
      for (const re of expected.check) expect(check.stderr).toMatch(re);
      await d.shutdown();
      const repaired = await d.boot({ init });
      expectBooted(repaired);
      expect(bootLog(repaired)).toMatch(expected.repair);
      await expectImagesA(d, repaired);
      // Before the reset: a container left over and an image removed (rmi works on every layout).
      expect((await d.docker(['create', '--name', 'left-over', '--network', 'none', f.images.sample])).exitCode).toBe(0);
      const rmi = await d.docker(['rmi', f.images.fidelity]);
      expect(rmi.exitCode, String(rmi.all)).toBe(0);
      await expectSaves(repaired, f.images.sample);
      await d.shutdown();

      // Factory reset (engine stopped, no network): the baked store again.
      const afterReset = await factoryReset(d, init);
      expect(String((await d.docker(['ps', '-aq'])).stdout).trim()).toBe('');
      expect((await run(d, [f.images.sample])).trim()).toBe(SAMPLE_OUTPUT);
      assertFidelityOutput(await run(d, [f.images.fidelity]));
      // A named volume the user writes: it must outlive the OTA's new store.
      expect((await d.docker(['volume', 'create', 'userdata'])).exitCode).toBe(0);
      await run(d, ['-v', 'userdata:/data', '--entrypoint', '/bin/sh', f.images.sample, '-c', 'echo kept > /data/f']);
      await d.shutdown();
      expect(await sha256(storeImage)).toBe(storeSum);

      // OTA: a rootfs whose store adds multi and drops sample.
      await d.update(overlays[`${layout}-${init}-B`]!);
      const ota = await d.boot({ init });
      expectBooted(ota);
      expect(bootLog(ota)).toMatch(/seeding|new writable layer/);
      expect(bootLog(ota)).toMatch(/kept the named volumes of \/var\/lib\/docker/);
      expect((await run(d, ['-v', 'userdata:/data', '--entrypoint', '/bin/busybox', f.images.multi, 'cat', '/data/f'])).trim()).toBe('kept');
      expect((await run(d, [f.images.multi])).trim()).toBe(MULTI_AMD64_OUTPUT);
      assertFidelityOutput(await run(d, [f.images.fidelity]));
      expect((await d.docker(['image', 'inspect', f.images.sample])).exitCode).not.toBe(0);
      await expectSaves(ota, f.images.multi);
    },
    600_000,
  );

  it.each(layoutsUnder(init, LAYOUTS, 1))('%s: interrupted first boots (power cut, kill -9 at random points of prepare and of the engine\'s first start) converge from the pristine store', async (layout) => {
    const plan = powerCutPlan(`store ${layout}/${init}`, INITS.indexOf(init) + LAYOUTS.indexOf(layout));
    for (let i = plan.first; i < plan.first + plan.count; i++) {
      const mode = cutMode(i);
      // Prepare takes ~150 ms (split), ~350 ms (copy), ~40 ms (overlay-vfs) here, the engine's
      // first start ~1-2 s: cuts 0, 3, 4, 7... aim at prepare, 1, 2, 5, 6... at the engine's start:
      // a layout's three cases (cuts 0-2, 1-3, 2-4) cover both modes and both aims.
      const target = (i + (i >> 1)) % 2 === 0 ? prepareStep(init) : 'engine';
      const windowMs = target === 'engine' ? 1500 : { split: 100, copy: 250, 'overlay-vfs': 40 }[layout];
      const r = plan.random();
      const { cut: landed, value: { d, cut } } = await landCut(`${layout}/${init}`, async (scale) => {
        const d = await device(overlays[`${layout}-${init}`]!);
        const c = new Cut(d, mode, target);
        const delay = after(Math.floor(r * windowMs * scale));
        const cut = await d.boot({
          init,
          onStep: (step) => {
            if (step.name === target) c.arm(delay);
          },
          // Under sysvinit/busybox the engine starts in the background, BACKGROUND_ENGINE_DELAY_MS after its step.
          onEngineStarting: () => {
            if (target === 'engine') c.arm(delay);
          },
        });
        const landed = await c.result();
        // A missed cut leaves a booted device: free it before the next try.
        if (!landed.landed) await d.dispose();
        return { cut: landed, value: { d, cut } };
      });
      expect(landed.during, `the ${mode} landed inside ${target}`).toBe(target);
      await d.shutdown();
      // What survived, seen after the data partition is mounted again (journal replayed).
      await d.boot({ init, stopBefore: prepareStep(init) });
      const recorded = (await d.readDeviceFile('/var/lib/ctrbake/seeded')) !== undefined;
      const where = cut.failure ? `${cut.failure.name === 'engine' ? "the engine's start" : 'prepare'} interrupted` : 'the boot had finished';
      console.log(`${layout}/${init}: ${mode} ${landed.ms} ms into ${target} (${where}, seeding ${recorded ? 'recorded' : 'not recorded'})`);
      // Success reported before the cut must have been durable.
      if (!cut.failure || cut.failure.name === 'engine') expect(recorded).toBe(true);
      await d.shutdown();
      const boot = await d.boot({ init });
      expectBooted(boot);
      await expectImagesA(d, boot);
      await d.dispose();
    }
  }, powerCutTimeoutMs());
});

describe("store layouts with Debian 13's dockerd (26.x) on a simulated device", () => {
  it.each(['split', 'overlay-vfs', 'copy'] as const)('%s with Debian 13\'s dockerd (26.x, newer-dockerd tree): images run, save and delete; second boot copies nothing; the store stays untouched', async (layout) => {
    const d = await device(overlays[`${layout}-systemd`]!);
    const storeImage = d.path('/usr/share/ctrbake/store.sqfs');
    const before = await sha256(storeImage);
    const first = await d.boot({ init: 'systemd', dockerd: 'newer' });
    expectBooted(first);
    expect(first.engine!.version).toMatch(/^26\./);
    const info = await d.docker(['info', '--format', '{{.Driver}}']);
    expect(String(info.stdout).trim()).toBe(layout === 'overlay-vfs' ? 'vfs' : 'overlay2');
    expect(bootLog(first)).toMatch(/seeding|new writable layer/);
    const firstKiB = await d.writtenKiB();
    await expectImagesA(d, first);
    expect((await run(d, ['--entrypoint', '/bin/sh', f.images.sample, '-c', 'echo written > /new-file && cat /new-file'])).trim()).toBe('written');
    expect((await d.docker(['rmi', f.images.sample])).exitCode).toBe(0);
    await d.shutdown();
    const second = await d.boot({ init: 'systemd', dockerd: 'newer' });
    expectBooted(second);
    expect(bootLog(second)).not.toMatch(/seeding|new writable layer/);
    const secondKiB = await d.writtenKiB();
    console.log(`${layout}/systemd (dockerd 26): first boot wrote ${firstKiB} KiB before any container ran, second boot ${secondKiB} KiB`);
    expect(secondKiB).toBeLessThan(1024);
    assertFidelityOutput(await run(d, [f.images.fidelity]));
    await expectSaves(second, f.images.fidelity);
    await d.shutdown();
    expect(await sha256(storeImage)).toBe(before);
  });

});
