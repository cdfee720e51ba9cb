/**
 * Nothing the user made through the engine is lost on the device, in every layout (issue #12,
 * rule 9), on a simulated device (devkit/device.ts) with dockerd 20.10 / podman 4.3:
 * a named volume with data and a container using it, a baked image removed (`rmi`), another
 * image loaded, then several reboots: all of it is still there, the removed image stays
 * removed until the user loads it again, and loading it again works.
 * Also: the engine started in the background by its init script (Buildroot's S60dockerd),
 * and `reset` / `prepare` refusing while the engine runs.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PODMAN_RUN_ARGS } from '../../src/engine/podman.js';
import type { BakeManifest } from '../../src/formats/index.js';
import { SimDevice, type Boot, type InitStyle } from '../../devkit/device.js';
import { assertFidelityOutput, MULTI_AMD64_OUTPUT, SAMPLE_OUTPUT } from '../fixtures/images.js';
import { loadStep, type LoaderFixture } from '../../devkit/device-setup.js';
import { expectBooted, useLoaderFixture } from './loader-harness.js';

let f: LoaderFixture;
const overlays: Partial<Record<string, string>> = {};
/** Host paths of archives the user loads: multi (not baked in lock A), per engine. */
const userArchive: Partial<Record<'docker' | 'podman', string>> = {};
/** Archives of the baked fidelity image (from an archive bake), per engine: what a user loads to get it back. */
const fidelityArchive: Partial<Record<'docker' | 'podman', string>> = {};
const REBOOTS = 3;
/**
 * The dockerd of the docker cases: the host's (20.10) by default; CTRBAKE_USER_DATA_DOCKERD=newer
 * runs them with Debian 13's (devkit/newer-dockerd.ts), e.g.
 * `CTRBAKE_USER_DATA_DOCKERD=newer npx vitest run test/integration/loader-user-data.test.ts -t "'docker' '(copy|overlay-vfs)' under 'systemd'"`.
 */
const DOCKERD = process.env.CTRBAKE_USER_DATA_DOCKERD === 'newer' ? 'newer' : 'host';

async function archiveOf(manifestPath: string, ref: string): Promise<string> {
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as BakeManifest;
  const image = manifest.images.find((i) => i.reference === ref);
  if (!image?.archive) throw new Error(`${manifestPath} has no archive of ${ref}`);
  return join(dirname(manifestPath), image.archive);
}

const deviceOfSize = useLoaderFixture(async (fixture) => {
  f = fixture;
  const dockerA = await f.bake('A', 'archive');
  fidelityArchive.docker = await archiveOf(dockerA, f.images.fidelity);
  userArchive.docker = await archiveOf(await f.bake('B', 'archive'), f.images.multi);
  const overlay2 = await f.bake('A', 'store', { storageDriver: 'overlay2' });
  const vfs = await f.bake('A', 'store', { storageDriver: 'vfs' });
  const podmanA = await f.bake('A', 'archive', { engine: 'podman' });
  fidelityArchive.podman = await archiveOf(podmanA, f.images.fidelity);
  userArchive.podman = await archiveOf(await f.bake('B', 'archive', { engine: 'podman' }), f.images.multi);
  const podmanStore = await f.bake('A', 'store', { engine: 'podman', storageDriver: 'overlay' });
  for (const init of ['systemd', 'sysvinit', 'busybox'] as const) {
    overlays[`docker-archive-${init}`] = await f.loader(dockerA, { layout: 'archive', init, spaceMarginKiB: 1024 });
    overlays[`docker-split-${init}`] = await f.loader(overlay2, { layout: 'split', init });
    overlays[`docker-copy-${init}`] = await f.loader(overlay2, { layout: 'copy', init });
    overlays[`docker-overlay-vfs-${init}`] = await f.loader(vfs, { layout: 'overlay-vfs', init });
  }
  overlays['podman-archive-systemd'] = await f.loader(podmanA, { layout: 'archive', init: 'systemd' });
  overlays['podman-copy-sysvinit'] = await f.loader(podmanStore, { layout: 'copy', init: 'sysvinit' });
  overlays['podman-podman-ro-busybox'] = await f.loader(podmanStore, { layout: 'podman-ro', init: 'busybox' });
}, 600_000);

const device = (overlay: string) => deviceOfSize(overlay, 128);

function bootLog(boot: Boot): string {
  return boot.steps.map((s) => `${s.name}: ${s.stderr ?? ''}`).join('\n');
}

/** The engine CLI of the device, whichever it is; fails the test on a non-zero exit. */
async function cli(d: SimDevice, engine: 'docker' | 'podman', args: readonly string[]): Promise<string> {
  const r = engine === 'docker' ? await d.docker(args) : await d.podman(args);
  expect(r.exitCode, `${engine} ${args.join(' ')}: ${String(r.all)}`).toBe(0);
  return String(r.stdout);
}

async function hasImage(d: SimDevice, engine: 'docker' | 'podman', ref: string): Promise<boolean> {
  const r = engine === 'docker' ? await d.docker(['image', 'inspect', ref]) : await d.podman(['image', 'inspect', ref]);
  return r.exitCode === 0;
}

const NET = { docker: ['--network', 'none'], podman: PODMAN_RUN_ARGS } as const;

/** What the user made: a named volume written by a container that stays. */
async function makeUserData(d: SimDevice, engine: 'docker' | 'podman'): Promise<void> {
  await cli(d, engine, ['volume', 'create', 'userdata']);
  await cli(d, engine, ['run', '--name', 'writer', ...NET[engine], '-v', 'userdata:/data', '--entrypoint', '/bin/sh', f.images.sample, '-c', 'echo kept > /data/f']);
}

async function expectUserData(d: SimDevice, engine: 'docker' | 'podman', context: string): Promise<void> {
  const out = await cli(d, engine, ['run', '--rm', ...NET[engine], '-v', 'userdata:/data', '--entrypoint', '/bin/cat', f.images.sample, '/data/f']);
  expect(out.trim(), `${context}: the volume's data`).toBe('kept');
  const ps = await cli(d, engine, ['ps', '-a', '--filter', 'name=writer', '--format', '{{.Names}}']);
  expect(ps.trim(), `${context}: the container`).toBe('writer');
  // The container still starts (its image layers and its own layer are intact).
  await cli(d, engine, ['start', '-a', 'writer']);
  const multi = await cli(d, engine, ['run', '--rm', ...NET[engine], f.images.multi]);
  expect(multi.trim(), `${context}: the image the user loaded`).toBe(MULTI_AMD64_OUTPUT);
}

interface Case {
  engine: 'docker' | 'podman';
  layout: string;
  init: InitStyle;
  /** podman-ro's images are on the read-only SquashFS: podman cannot remove them. */
  rmi: boolean;
}

/** One init style per layout (each init style covered; the layouts' other tests run all three). */
const CASES: Case[] = [
  { engine: 'docker', layout: 'archive', init: 'busybox', rmi: true },
  { engine: 'docker', layout: 'split', init: 'sysvinit', rmi: true },
  { engine: 'docker', layout: 'copy', init: 'systemd', rmi: true },
  { engine: 'docker', layout: 'overlay-vfs', init: 'busybox', rmi: true },
  { engine: 'podman', layout: 'archive', init: 'systemd', rmi: true },
  { engine: 'podman', layout: 'copy', init: 'sysvinit', rmi: true },
  { engine: 'podman', layout: 'podman-ro', init: 'busybox', rmi: false },
];

describe('what the user makes through the engine survives every boot', () => {
  it.each(CASES)(
    '$engine $layout under $init: volume, container, a baked image removed and another loaded; kept across reboots; the removed image loads again',
    async ({ engine, layout, init, rmi }) => {
      const d = await device(overlays[`${engine}-${layout}-${init}`]!);
      const dockerd = engine === 'docker' ? DOCKERD : 'host';
      const first = await d.boot({ init, dockerd });
      expectBooted(first);
      if (dockerd === 'newer') console.log(`${layout}/${init}: dockerd ${first.engine!.version}`);
      await makeUserData(d, engine);
      // The removed image, as the user could load it again: the shipped archive, or an archive of it.
      let again = '';
      if (rmi) {
        if (layout === 'archive') {
          const list = await readFile(d.path('/usr/share/ctrbake/images.list'), 'utf8');
          const line = list.split('\n').find((l) => l.split(' ')[3] === f.images.fidelity)!;
          again = d.path(`/usr/share/ctrbake/${line.split(' ')[2]}`);
        } else {
          // An archive of the same image from elsewhere (here: an archive bake of the same lock).
          again = fidelityArchive[engine]!;
        }
        await cli(d, engine, ['rmi', f.images.fidelity]);
        expect(await hasImage(d, engine, f.images.fidelity)).toBe(false);
      }
      await cli(d, engine, ['load', '-i', userArchive[engine]!]);
      await expectUserData(d, engine, 'first boot');
      await d.shutdown();

      for (let i = 1; i <= REBOOTS; i++) {
        const boot = await d.boot({ init, dockerd });
        expectBooted(boot);
        const log = bootLog(boot);
        expect(log, `reboot ${i}`).not.toMatch(/damaged|seeding|new writable layer|interrupted|dropped the image store|ctrbake: loading /);
        await expectUserData(d, engine, `reboot ${i}`);
        if (rmi) {
          expect(await hasImage(d, engine, f.images.fidelity), `reboot ${i}: the image the user removed`).toBe(false);
          if (layout === 'archive') expect(log).toMatch(/fidelity:1\.0 \(sha256:[0-9a-f]{64}\) was removed through (docker|podman): not loading it again \(to get it back: (docker|podman) load -i \/usr\/share\/ctrbake\/archives\//);
        }
        expect((await cli(d, engine, ['run', '--rm', ...NET[engine], f.images.sample])).trim()).toBe(SAMPLE_OUTPUT);
        await d.shutdown();
      }

      if (rmi) {
        // The user loads the removed image again: it runs, and stays across the next boot.
        await d.boot({ init, dockerd }).then(expectBooted);
        await cli(d, engine, ['load', '-i', again]);
        assertFidelityOutput(await cli(d, engine, ['run', '--rm', ...NET[engine], f.images.fidelity]));
        await d.shutdown();
        const after = await d.boot({ init, dockerd });
        expectBooted(after);
        expect(bootLog(after)).not.toMatch(/damaged|seeding|interrupted|ctrbake: loading /);
        assertFidelityOutput(await cli(d, engine, ['run', '--rm', ...NET[engine], f.images.fidelity]));
        await expectUserData(d, engine, 'after loading the removed image again');
      }
      console.log(`${engine} ${layout}/${init}: user data kept across ${REBOOTS} reboots${rmi ? ', the removed image loaded again' : ''}`);
    },
    600_000,
  );
});

describe('an engine that answers late (started in the background by its init script)', () => {
  it('busybox, archive: the load step waits for dockerd (S60dockerd returns at once): every image loads on the first boot, the next boot finds no interrupted load', async () => {
    const d = await device(overlays['docker-archive-busybox']!);
    const first = await d.boot({ init: 'busybox', engineStart: 'background', engineDelayMs: 4000 });
    expectBooted(first);
    const order = first.steps.map((s) => s.name);
    expect(order.indexOf(loadStep('busybox'))).toBeGreaterThan(order.indexOf('engine'));
    const log = bootLog(first);
    expect(log).toMatch(/waiting for docker to answer \(up to 120 s\)/);
    expect(log).toMatch(/loading .*fidelity/);
    expect(log).toMatch(/loading .*sample/);
    expect((await cli(d, 'docker', ['run', '--rm', '--network', 'none', f.images.sample])).trim()).toBe(SAMPLE_OUTPUT);
    await d.shutdown();
    const second = await d.boot({ init: 'busybox' });
    expectBooted(second);
    expect(bootLog(second)).not.toMatch(/interrupted|ctrbake: loading /);
    expect(bootLog(second)).toMatch(/all images are loaded/);
  });

  it('sysvinit, archive: an engine that never answers within the deadline: the load step fails naming the wait and the fix, loads nothing, records nothing; the next boot loads everything', async () => {
    const d = await device(overlays['docker-archive-sysvinit']!);
    const late = await d.boot({ init: 'sysvinit', engineStart: 'background', engineDelayMs: 6000, stepEnv: { CTRBAKE_ENGINE_WAIT_S: '2' }, keepGoing: true });
    expect(late.failure?.name).toBe(loadStep('sysvinit'));
    expect(late.failure?.stderr).toMatch(/docker did not answer within 2 s \(unix:\/\/.*\); nothing was loaded\. Check that it started \(\/etc\/init\.d\/docker start\), then run ctrbake-device load again/);
    expect(await d.readDeviceFile('/var/lib/ctrbake/loading')).toBeUndefined();
    expect(await d.listDeviceDir('/var/lib/ctrbake/loaded')).toEqual([]);
    await d.shutdown();
    const next = await d.boot({ init: 'sysvinit' });
    expectBooted(next);
    expect(bootLog(next)).not.toMatch(/interrupted/);
    expect(bootLog(next)).toMatch(/loading .*fidelity/);
    assertFidelityOutput(await cli(d, 'docker', ['run', '--rm', '--network', 'none', f.images.fidelity]));
  });
});

describe('reset and prepare refuse while the engine runs', () => {
  it.each([
    { init: 'busybox' as const, layout: 'archive', pidfile: '/var/run/dockerd.pid', evidence: /it runs: pid \d+ \(pid file \/var\/run\/dockerd\.pid\)/, stop: '/etc/init.d/S60dockerd stop' },
    { init: 'sysvinit' as const, layout: 'copy', pidfile: '/run/dockerd.pid', evidence: /it runs: pid \d+ \(pid file \/run\/dockerd\.pid\)/, stop: '/etc/init.d/docker stop' },
    // No pid file at all: the dockerd process on the data-root is found.
    { init: 'systemd' as const, layout: 'split', pidfile: '/nonexistent/none.pid', evidence: /it runs: pid \d+ \(.*dockerd, data-root \/var\/lib\/docker\)/, stop: 'systemctl stop docker.socket docker.service' },
  ])('$layout under $init, engine pid file $pidfile: reset exits 1 naming the stop command, wipes nothing; after the stop, reset works', async ({ init, layout, pidfile, evidence, stop }) => {
    const d = await device(overlays[`docker-${layout}-${init}`]!);
    const boot = await d.boot({ init, enginePidfile: pidfile });
    expectBooted(boot);
    await makeUserData(d, 'docker');
    for (const command of ['reset', 'prepare']) {
      const r = await d.ctrbakeDevice([command]);
      expect(r.exitCode, `${command}: ${String(r.all)}`).toBe(1);
      expect(String(r.stderr)).toMatch(evidence);
      expect(String(r.stderr)).toContain(`ctrbake: error: docker is running on /var/lib/docker (`);
      expect(String(r.stderr)).toContain(`${command} rewrites its store and needs it stopped. Stop it first (${stop}), then run ctrbake-device ${command} again; nothing was changed`);
      expect(String(r.stderr)).not.toMatch(/reset done/);
    }
    const out = await cli(d, 'docker', ['run', '--rm', '--network', 'none', '-v', 'userdata:/data', '--entrypoint', '/bin/cat', f.images.sample, '/data/f']);
    expect(out.trim()).toBe('kept');
    await d.shutdown();
    // Engine stopped: reset wipes what the user made, and says so.
    await d.boot({ init, stopBefore: 'engine' });
    const reset = await d.ctrbakeDevice(['reset']);
    expect(reset.exitCode, String(reset.all)).toBe(0);
    expect(String(reset.stderr)).toMatch(/reset done/);
    await d.shutdown();
    const after = await d.boot({ init });
    expectBooted(after);
    expect(String((await d.docker(['ps', '-aq'])).stdout).trim()).toBe('');
    expect(String((await d.docker(['volume', 'ls', '-q'])).stdout).trim()).toBe('');
  });

  it('reset asks the engine: a dockerd answering on the device socket, with no pid file and not on the data-root the conf names, is still refused', async () => {
    const d = await device(overlays['docker-archive-systemd']!);
    expectBooted(await d.boot({ init: 'systemd', enginePidfile: '/nonexistent/none.pid' }));
    // A conf naming another data-root: the pid files and the process scan find nothing.
    const text = await readFile(d.path('/usr/share/ctrbake/ctrbake.conf'), 'utf8');
    await writeFile(d.path('/usr/share/ctrbake/elsewhere.conf'), text.replace(/^CTRBAKE_DATA_ROOT=.*$/m, "CTRBAKE_DATA_ROOT='/var/lib/docker-elsewhere'"));
    const r = await d.ctrbakeDevice(['reset'], { CTRBAKE_CONF: '/usr/share/ctrbake/elsewhere.conf' });
    expect(r.exitCode, String(r.all)).toBe(1);
    expect(String(r.stderr)).toMatch(/docker is running on \/var\/lib\/docker-elsewhere \(it answers on its socket\): reset rewrites its store/);
  });
});
