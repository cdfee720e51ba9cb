/**
 * `ctrbake build` end to end, the way a Buildroot build uses it, without Buildroot:
 *   - `--fetch-only` with network into a BR2_DL_DIR-like cache (Buildroot's `make source`),
 *   - the registry stopped, then `--offline` builds from the same .config and image list,
 *   - the overlay applied to a minimal BusyBox rootfs, the payload as a SquashFS partition
 *     image (a read-only loop device, as the partition), booted by the device simulation
 *     (devkit/device.ts) with the BusyBox init scripts run by `busybox sh`,
 *   - the baked containers running there, the fidelity image showing every property.
 */
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { silentReporter, type Reporter } from '../../src/util/reporter.js';
import { buildStandalone, type StandaloneBuildResult } from '../../src/standalone/index.js';
import { SimDevice, type Boot } from '../../devkit/device.js';
import { assertFidelityOutput, pushFixtureImages, SAMPLE_OUTPUT, type FixtureImages } from '../fixtures/images.js';
import { startRegistry, type TestRegistry } from '../../devkit/registry.js';
import { writeBusyboxRootfs } from './buildroot-rootfs.js';

const cli = resolve(import.meta.dirname, '../../bin/ctrbake.js');
const PARTITION_DEVICE = '/dev/disk/by-partlabel/ctrbake';

let work: string;
let registry: TestRegistry | undefined;
let images: FixtureImages;
let imagesFile: string;
let br2Config: string;
let dlDir: string;
const devices: SimDevice[] = [];
const loops: string[] = [];
/** sha256 of the archive-layout partition image of the CLI build (SOURCE_DATE_EPOCH 1700000000). */
let archivePartitionSha256: string | undefined;
const SDE = 1700000000;

beforeAll(async () => {
  work = await mkdtemp('/tmp/ctrbake-br-');
  registry = await startRegistry();
  images = await pushFixtureImages(registry);
  imagesFile = join(work, 'images.txt');
  await writeFile(imagesFile, `# images baked into the target\n${images.sample}\n${images.fidelity}  # prints its properties\n`);
  // What Buildroot writes for an x86_64 target (the simulated device runs on this host).
  br2Config = join(work, '.config');
  await writeFile(br2Config, '#\n# Automatically generated file; DO NOT EDIT.\n# Buildroot 2024.02 Configuration\n#\nBR2_HAVE_DOT_CONFIG=y\nBR2_x86_64=y\nBR2_ARCH="x86_64"\nBR2_DL_DIR="$(TOPDIR)/dl"\nBR2_INIT_BUSYBOX=y\n');
  dlDir = join(work, 'dl');
}, 120_000);

afterEach(async () => {
  for (const d of devices.splice(0)) await d.dispose();
  for (const loop of loops.splice(0)) await execa('losetup', ['-d', loop], { reject: false });
});

afterAll(async () => {
  await registry?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

async function runCli(args: string[]): Promise<{ exitCode: number; result?: StandaloneBuildResult & { type: string }; error?: { code: string; message: string }; events: string[]; stderr: string }> {
  const r = await execa('node', [cli, 'build', '--json', ...args], { reject: false, env: { SOURCE_DATE_EPOCH: String(SDE) } });
  const lines = String(r.stdout).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  const result = lines.find((l) => l.type === 'result') as (StandaloneBuildResult & { type: string }) | undefined;
  const error = lines.find((l) => l.type === 'error') as { code: string; message: string } | undefined;
  return { exitCode: r.exitCode ?? -1, ...(result ? { result } : {}), ...(error ? { error } : {}), events: lines.filter((l) => l.type === 'event').map((l) => String(l.event)), stderr: String(r.stderr) };
}

/** BR2_ROOTFS_OVERLAY: the overlay copied over a BusyBox rootfs; returns the rootfs dir. */
async function applyToBusyboxRootfs(overlayDir: string, name: string): Promise<string> {
  const rootfs = join(work, `rootfs-${name}`);
  await mkdir(rootfs);
  await writeBusyboxRootfs(rootfs);
  await cp(overlayDir, rootfs, { recursive: true, verbatimSymlinks: true, force: true });
  return rootfs;
}

/** The partition: the image on a read-only loop device, its node where the device expects it. */
async function attachPartition(device: SimDevice, image: string): Promise<string> {
  const loop = String((await execa('losetup', ['-f', '--show', '-r', image])).stdout).trim();
  loops.push(loop);
  await mkdir(join(device.root, '/dev/disk/by-partlabel'), { recursive: true });
  await symlink(loop, join(device.root, PARTITION_DEVICE));
  return loop;
}

function expectBooted(boot: Boot): void {
  expect(boot.failure, `boot failed at ${boot.failure?.name}: ${boot.failure?.stderr}`).toBeUndefined();
}

async function mountsOf(device: SimDevice): Promise<Array<{ where: string; type: string; source: string }>> {
  const r = await device.ns(['cat', '/proc/self/mountinfo']);
  return String(r.stdout)
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const fields = line.split(' ');
      const dash = fields.indexOf('-');
      return { where: fields[4]!, type: fields[dash + 1]!, source: fields[dash + 2]! };
    });
}

async function expectContainersRun(device: SimDevice): Promise<void> {
  const sample = await device.docker(['run', '--rm', '--network', 'none', images.sample]);
  expect(sample.exitCode, String(sample.all)).toBe(0);
  expect(String(sample.stdout).trim()).toBe(SAMPLE_OUTPUT);
  const fidelity = await device.docker(['run', '--rm', '--network', 'none', images.fidelity]);
  expect(fidelity.exitCode, String(fidelity.all)).toBe(0);
  assertFidelityOutput(String(fidelity.stdout));
}

async function squashfsListing(image: string): Promise<string[]> {
  const r = await execa('unsquashfs', ['-d', '', '-lls', image]);
  return String(r.stdout)
    .split('\n')
    .filter((l) => /^[-dl]/.test(l))
    .map((l) => l.replace(/^\S+ \S+ +\d+ \S+ \S+ /, ''));
}

describe('ctrbake build for Buildroot', () => {
  it('--fetch-only: locks and fills the cache from the .config and the image list, writes nothing else', async () => {
    const r = await runCli(['--br2-config', br2Config, '--images', imagesFile, '--cache', join(dlDir, 'ctrbake'), '--fetch-only', '--insecure-registry', registry!.host]);
    expect(r.error).toBeUndefined();
    expect(r.exitCode).toBe(0);
    const result = r.result!;
    expect(result).toMatchObject({ platform: 'linux/amd64', fetchOnly: true, lockResolved: true, cacheDir: join(dlDir, 'ctrbake') });
    expect(result.target).toBe(`${br2Config} (BR2_ARCH=x86_64)`);
    expect(result.images.map((i) => i.reference).sort()).toEqual([images.fidelity, images.sample].sort());
    expect(result.fetch.blobsFetched).toBeGreaterThan(0);
    expect(result.lockPath.startsWith(join(dlDir, 'ctrbake', 'locks'))).toBe(true);
    expect(JSON.parse(await readFile(result.lockPath, 'utf8'))).toMatchObject({ lockVersion: 1, platform: { os: 'linux', architecture: 'amd64' } });
    expect(r.events).toEqual(expect.arrayContaining(['build.start', 'lock.start', 'build.done']));
    expect((await readdir(dlDir)).sort()).toEqual(['ctrbake']);
    // The network step is done: from now on no registry.
    await registry!.close();
    registry = undefined;
  });

  it.each([
    [['--images', 'IMAGES', '--cache', 'CACHE', '-o', 'OUT'], 2, 'E_STANDALONE_TARGET', /no target: give --br2-config PATH/],
    [['--images', 'IMAGES', '--cache', 'CACHE', '-o', 'OUT', '--br2-arch', 'armeb'], 2, 'E_STANDALONE_TARGET', /BR2_ARCH "armeb" has no OCI platform/],
    [['--images', 'IMAGES', '--cache', 'CACHE', '--br2-arch', 'aarch64'], 2, 'E_STANDALONE_CONFIG', /-o DIR .* is required, unless --fetch-only/],
    [['--images', 'IMAGES', '--cache', 'CACHE', '-o', 'OUT', '--br2-arch', 'aarch64', '--partition-image', 'OUT.sqfs'], 2, 'E_STANDALONE_CONFIG', /go together/],
    [['--images', 'IMAGES', '--cache', 'CACHE', '-o', 'OUT', '--br2-arch', 'aarch64', '--partition-image', 'NODIR/p.sqfs', '--partition-device', '/dev/sda3'], 1, 'E_STANDALONE_OUTPUT', /does not exist; create it first/],
  ] as const)('CLI %j: exit %d, %s, nothing written', async (args, exit, code, message) => {
    const dir = await mkdtemp(join(work, 'usage-'));
    const r = await runCli(args.map((a) => a.replace('IMAGES', imagesFile).replace('CACHE', join(dir, 'cache')).replace('NODIR', join(dir, 'nodir')).replace('OUT', join(dir, 'out'))));
    expect(r.exitCode).toBe(exit);
    expect(r.error?.code).toBe(code);
    expect(r.error?.message).toMatch(message);
    expect(await readdir(dir)).toEqual([]);
  });

  it('a compose file naming the same images finds the same lock; with the cache complete, --fetch-only needs no registry', async () => {
    const compose = join(work, 'compose.yaml');
    await writeFile(compose, `services:\n  web:\n    image: ${images.sample}\n  probe:\n    image: ${images.fidelity}\n`);
    const result = await buildStandalone({ composeFile: compose, br2Config, cacheDir: join(dlDir, 'ctrbake'), fetchOnly: true, reporter: silentReporter });
    expect(result).toMatchObject({ lockResolved: false, fetchOnly: true, fetch: { fetcher: null, blobsFetched: 0 } });
    expect(await readdir(join(dlDir, 'ctrbake', 'locks'))).toHaveLength(1);
  });

  it('--offline without the fetch step fails with what to run, and writes nothing', async () => {
    const out = join(work, 'never');
    const error = await buildStandalone({
      imagesFile,
      br2Config,
      cacheDir: join(work, 'empty-dl', 'ctrbake'),
      offline: true,
      overlayDir: join(out, 'overlay'),
      reporter: silentReporter,
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'E_STANDALONE_LOCK', exitCode: 1 });
    expect((error as Error).message).toMatch(/run the fetch step first with network \(ctrbake build --fetch-only/);
    expect(existsSync(out)).toBe(false);
  });

  it('offline, registry gone: archive layout, payload partition, BusyBox init; the containers run on the booted device', async () => {
    const overlay = join(work, 'archive', 'overlay');
    const partition = join(work, 'archive', 'ctrbake.sqfs');
    await mkdir(join(work, 'archive'));
    const r = await runCli([
      '--br2-config', br2Config, '--images', imagesFile, '--cache', join(dlDir, 'ctrbake'), '--offline',
      '-o', overlay, '--partition-image', partition, '--partition-device', PARTITION_DEVICE,
    ]);
    expect(r.error).toBeUndefined();
    const result = r.result!;
    expect(result).toMatchObject({ layout: 'archive', init: 'busybox', engine: 'docker', lockResolved: false, fetchOnly: false });
    expect(result.fetch).toEqual({ fetcher: null, blobsFetched: 0, bytesFetched: 0, blobsAlreadyCached: expect.any(Number) });
    expect(result.partition).toMatchObject({ path: partition, device: PARTITION_DEVICE });
    archivePartitionSha256 = result.partition!.sha256;
    expect(r.events).toEqual(expect.arrayContaining(['build.start', 'build.lock.reused', 'build.fetch.offline', 'bake.start', 'bake.done', 'loader.done', 'build.partition', 'build.done']));
    // The overlay: init scripts, device script, engine config, an empty mount point for the payload.
    expect(result.files).toEqual(expect.arrayContaining(['etc/init.d/S58ctrbake-payload', 'etc/init.d/S59ctrbake', 'etc/init.d/S61ctrbake-load', 'usr/sbin/ctrbake-device', 'etc/docker/daemon.json']));
    expect(result.files!.some((f) => f.startsWith('usr/share/ctrbake/'))).toBe(false);
    expect(await readdir(join(overlay, 'usr/share/ctrbake'))).toEqual([]);
    // The partition holds the payload, owned by root, with the mtime of SOURCE_DATE_EPOCH.
    const listing = await squashfsListing(partition);
    expect(listing).toEqual(expect.arrayContaining(['/manifest.json', '/images.list', '/ctrbake.conf']));
    expect(listing.filter((l) => l.startsWith('/') && l.endsWith('.tar'))).toHaveLength(2);
    const long = String((await execa('unsquashfs', ['-d', '', '-lln', partition])).stdout);
    expect(long).toMatch(/-rw-r--r-- 0\/0 +\d+ 2023-11-14 \d\d:\d\d \/manifest\.json/);
    expect((await readdir(work)).filter((n) => n.includes('.ctrbake-'))).toEqual([]);
    expect((await readdir(join(work, 'archive'))).sort()).toEqual(['ctrbake.sqfs', 'overlay']);

    const rootfs = await applyToBusyboxRootfs(overlay, 'archive');
    const device = await SimDevice.create({ overlayDir: rootfs, dataSizeMiB: 160 });
    devices.push(device);
    await attachPartition(device, partition);
    const boot = await device.boot({ init: 'busybox' });
    expectBooted(boot);
    expect(boot.steps.map((s) => s.name)).toEqual(['init:S58ctrbake-payload', 'init:S59ctrbake', 'engine', 'init:S61ctrbake-load']);
    const payloadMount = (await mountsOf(device)).find((m) => m.where === device.path('/usr/share/ctrbake'));
    expect(payloadMount?.type).toBe('squashfs');
    await expectContainersRun(device);
  });

  it('split layout: the store image inside the payload partition; a second boot seeds nothing again', async () => {
    const overlay = join(work, 'split', 'overlay');
    const partition = join(work, 'split', 'ctrbake.sqfs');
    await mkdir(join(work, 'split'));
    const result = await buildStandalone({
      imagesFile,
      br2Arch: 'x86_64',
      cacheDir: join(dlDir, 'ctrbake'),
      offline: true,
      layout: 'split',
      overlayDir: overlay,
      partitionImage: partition,
      partitionDevice: PARTITION_DEVICE,
      reporter: silentReporter,
    });
    expect(result).toMatchObject({ layout: 'split', engine: 'docker', lockResolved: false });
    expect(await squashfsListing(partition)).toEqual(expect.arrayContaining(['/store.sqfs', '/store', '/manifest.json']));

    const rootfs = await applyToBusyboxRootfs(overlay, 'split');
    const device = await SimDevice.create({ overlayDir: rootfs, dataSizeMiB: 96 });
    devices.push(device);
    await attachPartition(device, partition);
    const first = await device.boot({ init: 'busybox' });
    expectBooted(first);
    expect(first.steps.map((s) => s.name)).toEqual(['init:S58ctrbake-payload', 'init:S59ctrbake', 'engine']);
    expect(first.steps.map((s) => s.stderr ?? '').join('')).toMatch(/seeding/);
    const mounts = await mountsOf(device);
    expect(mounts.find((m) => m.where === device.path('/usr/share/ctrbake'))?.type).toBe('squashfs');
    expect(mounts.find((m) => m.where === device.path('/usr/share/ctrbake/store'))?.type).toBe('squashfs');
    await expectContainersRun(device);
    await device.shutdown();

    const second = await device.boot({ init: 'busybox' });
    expectBooted(second);
    expect(second.steps.map((s) => s.stderr ?? '').join('')).not.toMatch(/seeding/);
    await expectContainersRun(device);
  });

  it('podman-ro: the podman store inside the payload partition, a read-only additional image store', async () => {
    const overlay = join(work, 'podman-ro', 'overlay');
    const partition = join(work, 'podman-ro', 'ctrbake.sqfs');
    await mkdir(join(work, 'podman-ro'));
    const result = await buildStandalone({
      imagesFile,
      br2Arch: 'x86_64',
      cacheDir: join(dlDir, 'ctrbake'),
      offline: true,
      layout: 'podman-ro',
      overlayDir: overlay,
      partitionImage: partition,
      partitionDevice: PARTITION_DEVICE,
      reporter: silentReporter,
    });
    expect(result).toMatchObject({ layout: 'podman-ro', engine: 'podman' });
    expect(result.files).toContain('etc/containers/storage.conf');
    const rootfs = await applyToBusyboxRootfs(overlay, 'podman-ro');
    const device = await SimDevice.create({ overlayDir: rootfs, dataSizeMiB: 96 });
    devices.push(device);
    await attachPartition(device, partition);
    const boot = await device.boot({ init: 'busybox' });
    expectBooted(boot);
    const sample = await device.runImage([images.sample]);
    expect(sample.exitCode, String(sample.all)).toBe(0);
    expect(String(sample.stdout).trim()).toBe(SAMPLE_OUTPUT);
    const fidelity = await device.runImage([images.fidelity]);
    expect(fidelity.exitCode, String(fidelity.all)).toBe(0);
    assertFidelityOutput(String(fidelity.stdout));
  });

  it.each(['systemd', 'sysvinit'] as const)('%s: the payload partition is mounted before the prepare step', async (init) => {
    const overlay = join(work, init, 'overlay');
    const partition = join(work, init, 'ctrbake.sqfs');
    await mkdir(join(work, init));
    const result = await buildStandalone({
      imagesFile,
      br2Config,
      cacheDir: join(dlDir, 'ctrbake'),
      offline: true,
      init,
      overlayDir: overlay,
      partitionImage: partition,
      partitionDevice: PARTITION_DEVICE,
      sourceDateEpoch: SDE,
      reporter: silentReporter,
    });
    // The payload does not depend on the init style: a rebuild gives the same partition bytes.
    expect(archivePartitionSha256).toBeDefined();
    expect(result.partition!.sha256).toBe(archivePartitionSha256);
    if (init === 'systemd') {
      expect(result.files).toEqual(expect.arrayContaining(['etc/systemd/system/usr-share-ctrbake.mount', 'etc/systemd/system/local-fs.target.wants/usr-share-ctrbake.mount']));
    } else {
      expect(result.files).toEqual(expect.arrayContaining(['etc/init.d/ctrbake-payload', 'etc/rc3.d/S18ctrbake-payload']));
    }
    const rootfs = await applyToBusyboxRootfs(overlay, init);
    const device = await SimDevice.create({ overlayDir: rootfs, dataSizeMiB: 160 });
    devices.push(device);
    await attachPartition(device, partition);
    const boot = await device.boot({ init });
    expectBooted(boot);
    const names = boot.steps.map((s) => s.name);
    const payloadStep = init === 'systemd' ? 'mount:/usr/share/ctrbake' : 'init:S18ctrbake-payload';
    expect(names.indexOf(payloadStep)).toBeGreaterThanOrEqual(0);
    expect(names.indexOf(payloadStep)).toBeLessThan(names.indexOf(init === 'systemd' ? 'service:ctrbake-prepare.service' : 'init:S19ctrbake'));
    await expectContainersRun(device);
  });

  it('interrupted after the bake: neither the overlay nor the partition image is written, no staging dir is left', async () => {
    const dir = join(work, 'interrupted');
    await mkdir(dir);
    const controller = new AbortController();
    const events: string[] = [];
    const reporter: Reporter = {
      ...silentReporter,
      event(e) {
        events.push(e.event);
        if (e.event === 'build.partition') controller.abort(new Error('stopped by the test'));
      },
    };
    const error = await buildStandalone({
      imagesFile,
      br2Config,
      cacheDir: join(dlDir, 'ctrbake'),
      offline: true,
      overlayDir: join(dir, 'overlay'),
      partitionImage: join(dir, 'ctrbake.sqfs'),
      partitionDevice: PARTITION_DEVICE,
      reporter,
      signal: controller.signal,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(events).toEqual(expect.arrayContaining(['bake.done', 'loader.done', 'build.partition']));
    expect(await readdir(dir)).toEqual([]);
  });

  it('SIGTERM once the bake engine runs (CLI): exit 143, no process of it left, nothing written', async () => {
    const dir = await mkdtemp(join(work, 'sigterm-'));
    const child = execa('node', [cli, 'build', '--json', '--br2-config', br2Config, '--images', imagesFile, '--cache', join(dlDir, 'ctrbake'), '--offline', '-o', join(dir, 'overlay')], {
      reject: false,
      env: { SOURCE_DATE_EPOCH: String(SDE) },
    });
    let sent = false;
    child.stdout!.on('data', (chunk: Buffer) => {
      if (!sent && chunk.toString().includes('"event":"engine.started"')) {
        sent = true;
        child.kill('SIGTERM');
      }
    });
    const r = await child;
    expect(sent).toBe(true);
    expect(r.exitCode).toBe(143);
    expect(await readdir(dir)).toEqual([]);
    // No process of that bake is left (the private dockerd's data-root was under dir).
    const left: string[] = [];
    for (const pid of (await readdir('/proc')).filter((n) => /^\d+$/.test(n))) {
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      if (cmdline.includes(dir)) left.push(`${pid}: ${cmdline.replace(/\0/g, ' ')}`);
    }
    expect(left).toEqual([]);
  });
});
