/**
 * podman on a simulated device (devkit/device.ts): the archive layout (podman load at
 * boot), podman-ro (the store SquashFS as a read-only additional image store) and copy (the
 * store copied to the graphroot once). For every layout x init style: one device's life (too
 * small then grown, first boot, second boot, health check repair, factory reset, OTA) and
 * random power cuts / kill -9 of first boots (devkit/power-cut.ts: seeded, CTRBAKE_POWERCUT_COUNT
 * per case, default 1: power cuts and kill -9 alternate across cases), each checked to land inside the load step or prepare.
 */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkSavedArchive } from '../../src/bake/verify-saved-archive.js';
import { SimDevice, type Boot, type InitStyle } from '../../devkit/device.js';
import { assertFidelityOutput, MULTI_AMD64_OUTPUT, SAMPLE_OUTPUT } from '../fixtures/images.js';
import { bootLog, INITS, layoutsUnder, loadStep, prepareStep, type LoaderFixture } from '../../devkit/device-setup.js';
import { deviceSh, expectBooted, factoryReset, useLoaderFixture } from './loader-harness.js';
import { after, Cut, cutMode, landCut, powerCutPlan, powerCutTimeoutMs } from '../../devkit/power-cut.js';

let f: LoaderFixture;
const overlays: Partial<Record<string, string>> = {};
const LAYOUTS = ['archive', 'podman-ro', 'copy'] as const;
type PodmanLayout = (typeof LAYOUTS)[number];
const GRAPHROOT = '/var/lib/containers/storage';

const device = useLoaderFixture(async (fixture) => {
  f = fixture;
  const bakes = {
    A: { archive: await f.bake('A', 'archive', { engine: 'podman' }), store: await f.bake('A', 'store', { engine: 'podman', storageDriver: 'overlay' }) },
    B: { archive: await f.bake('B', 'archive', { engine: 'podman' }), store: await f.bake('B', 'store', { engine: 'podman', storageDriver: 'overlay' }) },
  };
  for (const init of INITS) {
    for (const lock of ['A', 'B'] as const) {
      const suffix = lock === 'A' ? '' : '-B';
      overlays[`archive-${init}${suffix}`] = await f.loader(bakes[lock].archive, { layout: 'archive', init });
      overlays[`podman-ro-${init}${suffix}`] = await f.loader(bakes[lock].store, { layout: 'podman-ro', init });
      overlays[`copy-${init}${suffix}`] = await f.loader(bakes[lock].store, { layout: 'copy', init });
    }
  }
}, 300_000);

async function run(d: SimDevice, ref: string): Promise<string> {
  const r = await d.runImage([ref]);
  expect(r.exitCode, `podman run ${ref}: ${String(r.all)}`).toBe(0);
  return String(r.stdout);
}

/** podman save re-reads every layer; each must hash to its diff id. */
async function expectSaves(d: SimDevice, ref: string): Promise<void> {
  const target = `/tmp/ctrbake-save-${process.pid}-${Math.random().toString(36).slice(2)}.tar`;
  try {
    const saved = await d.podman(['save', '--format', 'docker-archive', '-o', target, ref]);
    expect(saved.exitCode, String(saved.all)).toBe(0);
    expect((await checkSavedArchive(createReadStream(target), `podman save ${ref}`)).length).toBe(1);
  } finally {
    await d.ns(['rm', '-f', target]);
  }
}

async function expectRuns(d: SimDevice): Promise<void> {
  expect((await run(d, f.images.sample)).trim()).toBe(SAMPLE_OUTPUT);
  assertFidelityOutput(await run(d, f.images.fidelity));
}

async function expectImagesA(d: SimDevice): Promise<void> {
  await expectRuns(d);
  for (const ref of [f.images.sample, f.images.fidelity]) await expectSaves(d, ref);
}

/** The step that does the first boot's work: archive loads after the engine, the others prepare before it. */
function workStep(layout: PodmanLayout, init: InitStyle): string {
  return layout === 'archive' ? loadStep(init) : prepareStep(init);
}

describe.each(INITS)('podman 4.3 under %s on a simulated device', (init: InitStyle) => {
  it.each(layoutsUnder(init, LAYOUTS))(
    '%s: too small (clear error, nothing written) then grown; first boot runs every image; second boot loads nothing; health check repair; factory reset; OTA',
    async (layout) => {
      // Too small for the default --space-margin (16 MiB): the work step fails first thing.
      const d = await device(overlays[`${layout}-${init}`]!, 12);
      const failed = await d.boot({ init, keepGoing: true });
      expect(failed.failure?.name).toBe(workStep(layout, init));
      expect(failed.failure?.stderr).toMatch(/not enough space on the data partition .*need \d+ KiB free.* have \d+ KiB/);
      expect(await d.listDeviceDir(GRAPHROOT)).toEqual([]);
      expect(await d.listDeviceDir('/var/lib/containers')).not.toContain('storage.ctrbake-new');
      expect((await d.listDeviceDir('/var/lib/ctrbake')).filter((n) => n !== 'loaded')).toEqual([]);
      expect(await d.listDeviceDir('/var/lib/ctrbake/loaded')).toEqual([]);
      await d.shutdown();
      await d.grow(96);

      // First boot.
      const first = await d.boot({ init });
      expectBooted(first);
      if (layout !== 'podman-ro') expect(bootLog(first)).toMatch(layout === 'archive' ? /loading .*fidelity/ : /seeding/);
      const firstKiB = await d.writtenKiB();
      await expectImagesA(d);
      if (layout === 'podman-ro') {
        const listed = await d.podman(['images', '--format', '{{.Repository}} {{.ReadOnly}}']);
        expect(String(listed.stdout)).toMatch(/ctrbake\/fidelity true/);
      }
      await d.shutdown();

      // Second boot: nothing loaded or copied, < 1 MiB written.
      const second = await d.boot({ init });
      expectBooted(second);
      expect(bootLog(second)).not.toMatch(/loading|seeding|damaged/);
      const secondKiB = await d.writtenKiB();
      console.log(`podman ${layout}/${init}: first boot wrote ${firstKiB} KiB before any container ran, second boot ${secondKiB} KiB`);
      expect(secondKiB).toBeLessThan(1024);
      await expectRuns(d);
      await d.shutdown();

      // Health check (archive, copy; podman-ro's images are on the read-only SquashFS).
      await d.boot({ init, stopBefore: prepareStep(init) });
      const healthy = await deviceSh(d, 'check');
      expect(healthy.exitCode, healthy.all).toBe(0);
      if (layout !== 'podman-ro') {
        const layers: string[] = [];
        for (const n of await d.listDeviceDir(`${GRAPHROOT}/overlay`)) if ((await d.readDeviceFile(`${GRAPHROOT}/overlay/${n}/link`)) !== undefined) layers.push(n);
        expect(layers.length, (await d.listDeviceDir(`${GRAPHROOT}/overlay`)).join(' ')).toBeGreaterThan(1);
        for (const cmd of [
          ['truncate', '-s', '0', d.path(`${GRAPHROOT}/overlay/${layers[0]}/link`)],
          ['rm', '-rf', d.path(`${GRAPHROOT}/overlay/${layers[1]}`)],
        ]) {
          const r = await d.ns(cmd);
          expect(r.exitCode, `${cmd.join(' ')}: ${String(r.all)}`).toBe(0);
        }
        const check = await deviceSh(d, 'check');
        expect(check.exitCode).toBe(1);
        expect(check.stderr).toMatch(layout === 'archive' ? /podman layer [0-9a-f]+: (empty link file|missing)/ : /overlay\/\w+ is damaged/);
        await d.shutdown();
        const repaired = await d.boot({ init });
        expectBooted(repaired);
        expect(bootLog(repaired)).toMatch(layout === 'archive' ? /dropped the image store(.|\n)*loading/ : /overlay\/\w+ copied again from the store/);
        await expectImagesA(d);
      } else {
        await d.shutdown();
        expectBooted(await d.boot({ init }));
      }
      // A container left over for the reset to drop.
      const created = await d.podman(['create', '--name', 'left-over', '--network', 'none', f.images.sample]);
      expect(created.exitCode, String(created.all)).toBe(0);
      await d.shutdown();

      // Factory reset (no network): the baked store again, no containers.
      const afterReset = await factoryReset(d, init);
      expect(String((await d.podman(['ps', '-aq'])).stdout).trim()).toBe('');
      await expectRuns(d);
      await d.shutdown();

      // OTA: a rootfs whose manifest adds multi and drops sample.
      await d.update(overlays[`${layout}-${init}-B`]!);
      const ota = await d.boot({ init });
      expectBooted(ota);
      if (layout === 'archive') {
        expect(bootLog(ota)).toMatch(/removing .*sample/);
        expect(bootLog(ota)).toMatch(/loading .*multi/);
        expect(bootLog(ota)).not.toMatch(/loading .*fidelity/);
      }
      expect((await run(d, f.images.multi)).trim()).toBe(MULTI_AMD64_OUTPUT);
      assertFidelityOutput(await run(d, f.images.fidelity));
      expect((await d.podman(['image', 'exists', f.images.sample])).exitCode).toBe(1);
      await expectSaves(d, f.images.multi);
    },
    300_000,
  );

  it.each(layoutsUnder(init, LAYOUTS, 1))('%s: power cuts and kill -9 at random points of the first boot: the next boot converges, every image intact', async (layout) => {
    const plan = powerCutPlan(`podman ${layout}/${init}`, INITS.indexOf(init) + LAYOUTS.indexOf(layout));
    const target = workStep(layout, init);
    for (let i = plan.first; i < plan.first + plan.count; i++) {
      const mode = cutMode(i);
      // archive's cuts 0, 4, 8...: once the second image's load has begun (the first, largest, is
      // recorded); the next boot must load only the second again.
      const afterFirstImage = layout === 'archive' && i % 4 === 0;
      // podman load of both images takes ~1.5 s here, copy's seeding ~300 ms, podman-ro's prepare ~30 ms.
      const windowMs = { archive: 1200, copy: 250, 'podman-ro': 30 }[layout];
      const r = plan.random();
      const { cut: landed, value: { d, cut } } = await landCut(`podman ${layout}/${init}`, async (scale) => {
        const d = await device(overlays[`${layout}-${init}`]!);
        const secondId = (await readFile(d.path('/usr/share/ctrbake/images.list'), 'utf8')).trim().split('\n')[1]!.split(' ')[0]!;
        const c = new Cut(d, mode, target);
        const cut = await d.boot({
          init,
          onStep: (step, running) => {
            if (step.name !== target) return;
            if (!afterFirstImage) return c.arm(after(Math.floor(r * windowMs * scale)));
            let finished = false;
            void running.done.finally(() => (finished = true));
            c.arm(async () => {
              while (!finished && (await d.readDeviceFile('/var/lib/ctrbake/loading'))?.trim() !== secondId) await new Promise((r) => setTimeout(r, 5));
            });
          },
        });
        const landed = await c.result();
        // A missed cut leaves a booted device: free it before the next try.
        if (!landed.landed) await d.dispose();
        return { cut: landed, value: { d, cut } };
      });
      expect(landed.during, `the ${mode} landed inside ${target}`).toBe(target);
      await d.shutdown();
      await d.boot({ init, stopBefore: prepareStep(init) });
      const loading = await d.readDeviceFile('/var/lib/ctrbake/loading');
      const loadedNames = (await d.listDeviceDir('/var/lib/ctrbake/loaded')).filter((n) => !n.endsWith('.tmp'));
      const recorded = layout === 'archive' ? loadedNames.length : (await d.readDeviceFile('/var/lib/ctrbake/seeded')) !== undefined ? 1 : 0;
      console.log(
        `podman ${layout}/${init}: ${mode} ${afterFirstImage ? 'once the first image was recorded' : `${landed.ms} ms`} into ${target} (${cut.failure ? 'interrupted' : 'had finished'}; ${recorded} recorded${loading ? ', one load in flight' : ''})`,
      );
      // Success reported before the cut must have been durable.
      if (!cut.failure) expect(recorded).toBe(layout === 'archive' ? 2 : 1);
      await d.shutdown();
      const boot = await d.boot({ init });
      expectBooted(boot);
      if (loading && !loadedNames.includes(loading.trim())) {
        expect(bootLog(boot)).toMatch(/was interrupted: removing what it left(.|\n)*removed sha256:/);
      }
      if (layout === 'archive' && recorded === 1) {
        // Only the unrecorded image is loaded again: the recorded one stays.
        expect(bootLog(boot)).not.toMatch(/loading .*fidelity/);
        expect(bootLog(boot)).toMatch(/loading .*sample/);
        expect(bootLog(boot)).not.toMatch(/dropping the image store/);
      }
      await expectImagesA(d);
      await d.dispose();
    }
  }, powerCutTimeoutMs());
});

describe('podman 4.3 archive: an interrupted load when the store holds an image ctrbake did not load', () => {
  it('the selective repair cannot account for its layers: with a container, prepare stops and names reset; without, the whole image store is dropped and reloaded', async () => {
    const init = 'systemd';
    const d = await device(overlays[`archive-${init}`]!);
    expectBooted(await d.boot({ init }));
    // An image from elsewhere (multi, from the B bake's archives) and a container.
    const multiArchive = (await readFile(join(overlays[`archive-${init}-B`]!, 'usr/share/ctrbake/images.list'), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => line.split(' '))
      .find((fields) => fields[3] === f.images.multi)![2]!;
    const loaded = await d.podman(['load', '-i', join(overlays[`archive-${init}-B`]!, 'usr/share/ctrbake', multiArchive)]);
    expect(loaded.exitCode, String(loaded.all)).toBe(0);
    expect((await d.podman(['create', '--name', 'left-over', '--network', 'none', f.images.sample])).exitCode).toBe(0);
    await d.shutdown();

    // As after a cut during sample's load: "loading" names it, no record.
    const sampleId = (await readFile(d.path('/usr/share/ctrbake/images.list'), 'utf8')).trim().split('\n')[1]!.split(' ')[0]!;
    await d.boot({ init, stopBefore: prepareStep(init) });
    expect((await d.ns(['sh', '-c', `printf '%s\\n' ${sampleId} > ${d.path('/var/lib/ctrbake/loading')} && rm ${d.path(`/var/lib/ctrbake/loaded/${sampleId}`)}`])).exitCode).toBe(0);
    await d.shutdown();
    const refused = await d.boot({ init });
    expect(refused.failure?.name).toBe(prepareStep(init));
    expect(refused.failure?.stderr).toMatch(/cannot account for/);
    expect(refused.failure?.stderr).toMatch(/containers exist: run ctrbake-device reset/);
    // The container removed, the next boot drops the image store and loads every image.
    const rm = await d.podman(['rm', 'left-over']);
    expect(rm.exitCode, String(rm.all)).toBe(0);
    await d.shutdown();
    const boot = await d.boot({ init });
    expectBooted(boot);
    expect(bootLog(boot)).toMatch(/dropping the image store/);
    expect(bootLog(boot)).toMatch(/loading .*fidelity/);
    expect(bootLog(boot)).toMatch(/loading .*sample/);
    expect((await d.podman(['image', 'exists', f.images.multi])).exitCode).toBe(1);
    await expectImagesA(d);
  });
});
