/**
 * The archive layout on a simulated device (devkit/device.ts): real ext4 data
 * partition on a loop device, private mount namespace, the generated boot steps run in their
 * order, a private dockerd on the device's data-root with the device's daemon.json.
 * For every init style: first/second boot; one device's life (too small then grown, health
 * check repair, factory reset, OTA); random power cuts / kill -9 during the first boot's load
 * (devkit/power-cut.ts: seeded, CTRBAKE_POWERCUT_COUNT per init style, default 1: power cuts and
 * kill -9 alternate across init styles), each checked to land inside the step it aims at.
 */
import { readdir, readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { checkSavedArchive } from '../../src/bake/verify-saved-archive.js';
import { BACKGROUND_ENGINE_DELAY_MS, SimDevice, type Boot, type InitStyle } from '../../devkit/device.js';
import { assertFidelityOutput, SAMPLE_OUTPUT, MULTI_AMD64_OUTPUT } from '../fixtures/images.js';
import { INITS, loadStep, prepareStep, type LoaderFixture } from '../../devkit/device-setup.js';
import { expectBooted, useLoaderFixture } from './loader-harness.js';
import { after, Cut, cutMode, landCut, powerCutPlan, powerCutTimeoutMs } from '../../devkit/power-cut.js';

let f: LoaderFixture;
const overlays: Partial<Record<string, string>> = {};
const MARGIN_KIB = 1024;

const device = useLoaderFixture(async (fixture) => {
  f = fixture;
  const a = await f.bake('A', 'archive');
  const b = await f.bake('B', 'archive');
  for (const init of INITS) {
    overlays[`A-${init}`] = await f.loader(a, { layout: 'archive', init, spaceMarginKiB: MARGIN_KIB });
    overlays[`B-${init}`] = await f.loader(b, { layout: 'archive', init, spaceMarginKiB: MARGIN_KIB });
  }
  overlays['A-verify'] = await f.loader(a, { layout: 'archive', init: 'systemd', spaceMarginKiB: MARGIN_KIB, verifyOnBoot: true });
  overlays['A-delete'] = await f.loader(a, { layout: 'archive', init: 'busybox', spaceMarginKiB: MARGIN_KIB, keepArchives: false });
}, 300_000);

function loadLog(boot: Boot): string {
  return boot.steps.filter((s) => /load/.test(s.name)).map((s) => s.stderr ?? '').join('\n');
}

async function run(d: SimDevice, ref: string): Promise<string> {
  const r = await d.docker(['run', '--rm', '--network', 'none', ref]);
  expect(r.exitCode, `docker run ${ref}: ${r.all}`).toBe(0);
  return String(r.stdout);
}

/** docker save of the image re-reads every layer; each must hash to its diff_id. */
async function expectSaves(boot: Boot, ref: string): Promise<void> {
  const stream = (await boot.engine!.docker.getImage(ref).get()) as unknown as Readable;
  const saved = await checkSavedArchive(stream, `docker save ${ref}`);
  expect(saved.length).toBe(1);
}

async function expectImagesA(d: SimDevice, boot: Boot): Promise<void> {
  expect((await run(d, f.images.sample)).trim()).toBe(SAMPLE_OUTPUT);
  assertFidelityOutput(await run(d, f.images.fidelity));
  for (const ref of [f.images.sample, f.images.fidelity]) await expectSaves(boot, ref);
}

/**
 * After a first boot that loaded every image (still running): shut down, boot again, expect no
 * load and < 1 MiB written to the data partition (and < 1/5 of the first boot), images intact.
 */
async function expectSecondBootLoadsNothing(d: SimDevice, init: InitStyle, dockerd: 'host' | 'newer' = 'host'): Promise<void> {
  const firstKiB = await d.writtenKiB();
  await d.shutdown();
  const second = await d.boot({ init, dockerd });
  expectBooted(second);
  expect(loadLog(second)).not.toMatch(/loading/);
  const secondKiB = await d.writtenKiB();
  console.log(`archive/${init}${dockerd === 'newer' ? ' (dockerd 26)' : ''}: first boot wrote ${firstKiB} KiB (with two container runs), second boot ${secondKiB} KiB`);
  expect(secondKiB).toBeLessThan(1024);
  expect(secondKiB * 5).toBeLessThan(firstKiB);
  await expectImagesA(d, second);
}

describe('archive layout on a simulated device', () => {
  it.each(['sysvinit', 'busybox'] as const)('%s: first boot loads and runs every image, the load step after the engine; second boot loads nothing', async (init: InitStyle) => {
    const d = await device(overlays[`A-${init}`]!);
    const first = await d.boot({ init });
    expectBooted(first);
    const order = first.steps.map((s) => s.name);
    expect(order.findIndex((n) => /load/.test(n))).toBeGreaterThan(order.indexOf('engine'));
    const prepare = order.findIndex((n) => /ctrbake$/.test(n));
    expect(prepare).toBeGreaterThanOrEqual(0);
    expect(prepare).toBeLessThan(order.indexOf('engine'));
    expect(loadLog(first)).toMatch(/loading .*fidelity/);
    await expectImagesA(d, first);
    await expectSecondBootLoadsNothing(d, init);
  });

  it.each(['systemd'] as const)('%s: first boot loads and runs every image; second boot loads nothing', async (init: InitStyle) => {
    const d = await device(overlays[`A-${init}`]!);
    const first = await d.boot({ init });
    expectBooted(first);
    const order = first.steps.map((s) => s.name);
    expect(order.indexOf('engine')).toBeGreaterThan(0);
    expect(order.findIndex((n) => /load/.test(n))).toBeGreaterThan(order.indexOf('engine'));
    expect(loadLog(first)).toMatch(/loading .*fidelity/);
    await expectImagesA(d, first);
    // The chain ids the device computes with (images.list) are the engine's own layerdb names.
    const layerdb = await d.listDeviceDir('/var/lib/docker/image/overlay2/layerdb/sha256');
    const list = await readFile(d.path('/usr/share/ctrbake/images.list'), 'utf8');
    const chains = list.trim().split('\n').flatMap((line) => line.split(' ')[4]!.split(','));
    expect(chains.length).toBeGreaterThan(2);
    for (const chain of chains) expect(layerdb).toContain(chain);
    await expectSecondBootLoadsNothing(d, init);
  });

  it.each(['systemd'] as const)("%s with Debian 13's dockerd (26.x, newer-dockerd tree): first boot loads and runs every image; second boot loads nothing", async (init: InitStyle) => {
    const d = await device(overlays[`A-${init}`]!);
    const first = await d.boot({ init, dockerd: 'newer' });
    expectBooted(first);
    expect(first.engine!.version).toMatch(/^26\./);
    expect(String((await d.docker(['info', '--format', '{{.Driver}}'])).stdout).trim()).toBe('overlay2');
    expect(loadLog(first)).toMatch(/loading .*fidelity/);
    await expectImagesA(d, first);
    await expectSecondBootLoadsNothing(d, init, 'newer');
  });

  it('--verify-on-boot: layer content that no longer matches is found (docker save) and the images are loaded again', async () => {
    const d = await device(overlays['A-verify']!);
    expectBooted(await d.boot({ init: 'systemd' }));
    await d.shutdown();
    await d.boot({ init: 'systemd', stopBefore: 'service:ctrbake-prepare.service' });
    // Empty the busybox binary in the shared base layer: metadata intact, content wrong.
    const damage = await d.ns(['sh', '-c', `for f in ${d.path('/var/lib/docker/overlay2')}/*/diff/bin/busybox; do : > "$f"; done`]);
    expect(damage.exitCode).toBe(0);
    await d.shutdown();
    const boot = await d.boot({ init: 'systemd' });
    expectBooted(boot);
    expect(loadLog(boot)).toMatch(/sample:1\.0 \(sha256:[0-9a-f]{64}\): its layer content no longer matches: loading it again/);
    expect(loadLog(boot)).toMatch(/loading .*sample/);
    await expectImagesA(d, boot);
  });

  it('--no-keep-archives: each archive is deleted once its image is loaded and synced; reset then refuses', async () => {
    const d = await device(overlays['A-delete']!);
    expect((await readdir(d.path('/usr/share/ctrbake/archives'))).length).toBe(2);
    const boot = await d.boot({ init: 'busybox' });
    expectBooted(boot);
    expect(await d.listDeviceDir('/usr/share/ctrbake/archives')).toEqual([]);
    await expectImagesA(d, boot);
    await d.shutdown();
    const second = await d.boot({ init: 'busybox', stopBefore: 'engine' });
    expectBooted(second);
    const reset = await d.ctrbakeDevice(['reset']);
    expect(reset.exitCode).toBe(1);
    expect(String(reset.stderr)).toMatch(/reset needs the archives/);
  });

  it.each(INITS)('%s: power cuts and kill -9 at random points of the first boot: the next boot converges, every image intact', async (init: InitStyle) => {
    const plan = powerCutPlan(`archive/${init}`, INITS.indexOf(init));
    for (let i = plan.first; i < plan.first + plan.count; i++) {
      const mode = cutMode(i);
      // Even cuts aim inside the load step (under sysvinit/busybox it ends 0.4-0.7 s in: cuts at
      // 393 ms landed inside it, one at 683 ms after it, so their cuts aim at its first 450 ms);
      // odd ones anywhere from prepare's start through the engine's first start and the load.
      // Under sysvinit/busybox the engine answers in the background, after the load step began
      // waiting for it (polling once a second): those cuts count from the engine's answer.
      const fromPrepare = i % 2 === 1;
      const afterEngine = !fromPrepare && init !== 'systemd';
      const windowMs = fromPrepare ? 2500 + (init === 'systemd' ? 0 : BACKGROUND_ENGINE_DELAY_MS) : init === 'systemd' ? 1200 : 1450;
      const timerStep = fromPrepare ? prepareStep(init) : loadStep(init);
      const target = fromPrepare ? [prepareStep(init), 'engine', loadStep(init)] : [loadStep(init)];
      const r = plan.random();
      const { cut: landed, value: { d, cut } } = await landCut(`archive/${init}`, async (scale) => {
        const d = await device(overlays[`A-${init}`]!);
        const c = new Cut(d, mode, target);
        const delay = after(Math.floor(r * windowMs * scale));
        const cut = await d.boot({
          init,
          onStep: (step) => {
            if (step.name === timerStep && !afterEngine) c.arm(delay);
          },
          ...(afterEngine ? { onEngineAnswering: () => c.arm(delay) } : {}),
        });
        const landed = await c.result();
        // A missed cut leaves a booted device: free it before the next try.
        if (!landed.landed) await d.dispose();
        return { cut: landed, value: { d, cut } };
      });
      expect(target, `the ${mode} landed inside ${target.join(' or ')}`).toContain(landed.during);
      await d.shutdown();
      // What survived, seen after the data partition is mounted again (journal replayed).
      await d.boot({ init, stopBefore: prepareStep(init) });
      const loading = await d.readDeviceFile('/var/lib/ctrbake/loading');
      const loaded = (await d.listDeviceDir('/var/lib/ctrbake/loaded')).filter((n) => !n.endsWith('.tmp'));
      console.log(
        `archive/${init}: ${mode} ${landed.ms} ms into ${fromPrepare ? 'prepare' : afterEngine ? 'the load step, after the engine answered' : 'the load step'}, inside ${landed.during} (${cut.failure ? `${cut.failure.name} interrupted` : 'load had finished'}; ${loaded.length} image(s) recorded, ${loading ? 'one load in flight' : 'none in flight'})`,
      );
      // Success reported before the cut must have been durable.
      if (!cut.failure) expect(loaded.length).toBe(2);
      await d.shutdown();
      const boot = await d.boot({ init });
      expectBooted(boot);
      await expectImagesA(d, boot);
      await d.dispose();
    }
  }, powerCutTimeoutMs());
});

describe.each(INITS)('archive layout under %s: the life of a device', (init: InitStyle) => {
  it('too small (clear error, nothing loaded) then grown; health check repair from the archives; factory reset; OTA adds one image and removes one', async () => {
    // Too small: the load step fails before loading anything.
    const d = await device(overlays[`A-${init}`]!, 12);
    const failed = await d.boot({ init, keepGoing: true });
    expect(failed.failure?.name).toBe(loadStep(init));
    expect(failed.failure?.stderr).toMatch(/not enough space on the data partition for 2 image\(s\): need \d+ KiB free under \/var\/lib\/docker, have \d+ KiB/);
    expect(String((await d.docker(['images', '-q'])).stdout).trim()).toBe('');
    expect(await d.listDeviceDir('/var/lib/ctrbake/loaded')).toEqual([]);
    expect(await d.readDeviceFile('/var/lib/ctrbake/loading')).toBeUndefined();
    await d.shutdown();
    await d.grow(96);
    const grown = await d.boot({ init });
    expectBooted(grown);
    expect(loadLog(grown)).toMatch(/loading .*fidelity/);
    await expectImagesA(d, grown);
    await d.shutdown();

    // Health check: an empty link file and a missing layer dir (engine stopped); the next boot reloads.
    await d.boot({ init, stopBefore: prepareStep(init) });
    const healthy = await d.ctrbakeDevice(['check']);
    expect(healthy.exitCode, String(healthy.all)).toBe(0);
    const layers = (await d.listDeviceDir('/var/lib/docker/overlay2')).filter((n) => n !== 'l');
    expect(layers.length).toBeGreaterThan(1);
    expect((await d.ns(['truncate', '-s', '0', d.path(`/var/lib/docker/overlay2/${layers[0]}/link`)])).exitCode).toBe(0);
    expect((await d.ns(['rm', '-rf', d.path(`/var/lib/docker/overlay2/${layers[1]}`)])).exitCode).toBe(0);
    const check = await d.ctrbakeDevice(['check']);
    expect(check.exitCode).toBe(1);
    expect(String(check.stderr)).toMatch(/is damaged/);
    await d.shutdown();
    const repaired = await d.boot({ init });
    expectBooted(repaired);
    expect(loadLog(repaired)).toMatch(/loading/);
    await expectImagesA(d, repaired);
    expect((await d.docker(['create', '--name', 'left-over', '--network', 'none', f.images.sample])).exitCode).toBe(0);
    await d.shutdown();

    // Factory reset (engine stopped, no network): the next boot loads the baked images again.
    await d.boot({ init, stopBefore: 'engine' });
    const reset = await d.ctrbakeDevice(['reset']);
    expect(reset.exitCode, String(reset.all)).toBe(0);
    expect(await d.listDeviceDir('/var/lib/docker')).toEqual([]);
    await d.shutdown();
    const afterReset = await d.boot({ init });
    expectBooted(afterReset);
    expect(loadLog(afterReset)).toMatch(/loading .*sample/);
    expect(String((await d.docker(['ps', '-aq'])).stdout).trim()).toBe('');
    expect((await run(d, f.images.sample)).trim()).toBe(SAMPLE_OUTPUT);
    assertFidelityOutput(await run(d, f.images.fidelity));
    await d.shutdown();

    // OTA: the new manifest adds multi and drops sample.
    await d.update(overlays[`B-${init}`]!);
    const ota = await d.boot({ init });
    expectBooted(ota);
    const log = loadLog(ota);
    expect(log).toMatch(/removing .*sample/);
    expect(log).toMatch(/loading .*multi/);
    expect(log).not.toMatch(/loading .*fidelity/);
    expect((await d.docker(['image', 'inspect', f.images.sample])).exitCode).not.toBe(0);
    expect((await run(d, f.images.multi)).trim()).toBe(MULTI_AMD64_OUTPUT);
    assertFidelityOutput(await run(d, f.images.fidelity));
    await expectSaves(ota, f.images.multi);
  }, 600_000);
});
