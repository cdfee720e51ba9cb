/**
 * The BR2_EXTERNAL example (recipes-examples/buildroot) checked without Buildroot:
 *   - Config.in: a structural Kconfig check; every option external.mk and the scripts use exists,
 *   - external.mk: `make -n` and a real `make source` through a stub top Makefile that sets
 *     what Buildroot's does (the .config symbols, BR2_CONFIG, BR2_DL_DIR, qstrip),
 *   - post-build.sh / post-image.sh: shellcheck, `busybox sh -n`, and run for real by
 *     `busybox sh` with Buildroot's environment, offline after `make source`,
 *   - genimage.cfg: run by the real genimage; the disk image's second partition is the
 *     payload, and a BusyBox target booted from it (device simulation) runs the containers.
 */
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SimDevice } from '../../devkit/device.js';
import { assertFidelityOutput, pushFixtureImages, SAMPLE_OUTPUT, type FixtureImages } from '../fixtures/images.js';
import { startRegistry, type TestRegistry } from '../../devkit/registry.js';
import { checkKconfig } from './buildroot-kconfig.js';
import { writeBusyboxRootfs } from './buildroot-rootfs.js';

const EXAMPLE = resolve(import.meta.dirname, '../../recipes-examples/buildroot');
const CLI = resolve(import.meta.dirname, '../../bin/ctrbake.js');
const SCRIPTS = ['board/ctrbake/post-build.sh', 'board/ctrbake/post-image.sh'];
/** Buildroot symbols the example's Config.in may refer to. */
const BUILDROOT_SYMBOLS = ['BR2_INIT_SYSTEMD', 'BR2_INIT_SYSV', 'BR2_INIT_BUSYBOX'];

const read = (rel: string) => readFile(join(EXAMPLE, rel), 'utf8');

async function tool(name: string): Promise<void> {
  const r = await execa('sh', ['-c', `command -v ${name}`], { reject: false });
  if (r.exitCode !== 0) throw new Error(`this test needs ${name} (install it: scripts/install-deps.sh)`);
}

describe('the BR2_EXTERNAL example, statically', () => {
  it('external.desc names the tree CTRBAKE, which Config.in uses as BR2_EXTERNAL_CTRBAKE_PATH', async () => {
    const desc = await read('external.desc');
    expect(desc).toMatch(/^name: CTRBAKE$/m);
    expect(desc).toMatch(/^desc: \S.+$/m);
    for (const line of desc.trim().split('\n')) expect(line).toMatch(/^(name|desc): /);
    const paths = new Set([...(await read('Config.in')).matchAll(/\$\((BR2_EXTERNAL_[A-Z0-9_]+_PATH)\)/g)].map((m) => m[1]));
    expect([...paths]).toEqual(['BR2_EXTERNAL_CTRBAKE_PATH']);
  });

  it('Config.in is well-formed Kconfig and every symbol it refers to exists', async () => {
    const check = checkKconfig(await read('Config.in'));
    expect(check.problems).toEqual([]);
    for (const s of check.referenced) expect([...check.symbols.keys(), ...BUILDROOT_SYMBOLS], `${s} is referenced`).toContain(s);
    for (const name of check.symbols.keys()) expect(name).toMatch(/^BR2_CTRBAKE(_|$)/);
    expect(check.symbols.get('BR2_CTRBAKE_IMAGES_FILE')).toMatchObject({ type: 'string', defaults: ['"$(BR2_EXTERNAL_CTRBAKE_PATH)/board/ctrbake/images.txt"'] });
    // The hidden strings give the CLI's own spellings.
    expect(check.symbols.get('BR2_CTRBAKE_LAYOUT')!.defaults).toEqual(['"archive"', '"split"', '"overlay-vfs"', '"copy"', '"podman-ro"']);
    expect(check.symbols.get('BR2_CTRBAKE_INIT')!.defaults).toEqual(['"busybox"', '"sysvinit"', '"systemd"']);
    expect(check.symbols.get('BR2_CTRBAKE_ENGINE')!.defaults).toEqual(['"docker"', '"podman"']);
  });

  it.each([
    ['an unknown attribute', 'config BR2_X\n\tbool "x"\n\tdefualt y\n', /unknown attribute "defualt"/],
    ['no type', 'config BR2_X\n\thelp\n\t  text\n', /BR2_X has no type/],
    ['an unclosed if', 'if BR2_X\nconfig BR2_X\n\tbool "x"\n', /if is never closed/],
    ['a wrong end', 'menu "m"\nendif\n', /endif does not close menu/],
    ['an unquoted string default', 'config BR2_X\n\tstring "x"\n\tdefault foo\n', /string default foo is not quoted/],
    ['an empty help', 'config BR2_X\n\tbool "x"\n\thelp\nconfig BR2_Y\n\tbool "y"\n', /help without indented text/],
    ['a non-bool choice member', 'choice\n\tprompt "p"\nconfig BR2_X\n\tstring "x"\nendchoice\n', /choice member and not bool/],
    ['space indentation', 'config BR2_X\n    bool "x"\n', /indented with a tab/],
  ])('the Kconfig check finds %s', (_what, text, problem) => {
    expect(checkKconfig(text).problems.join('\n')).toMatch(problem);
  });

  it('every BR2_CTRBAKE option that external.mk and the scripts use is in Config.in', async () => {
    const defined = checkKconfig(await read('Config.in')).symbols;
    const mk = await read('external.mk');
    const used = new Set([...mk.matchAll(/\bBR2_CTRBAKE[A-Z0-9_]*/g)].map((m) => m[0]));
    expect(used.size).toBeGreaterThan(5);
    for (const s of used) expect([...defined.keys()], `external.mk uses ${s}`).toContain(s);
    for (const script of SCRIPTS) {
      for (const m of (await read(script)).matchAll(/\bBR2_CTRBAKE[A-Z0-9_]*/g)) expect([...defined.keys()], `${script} uses ${m[0]}`).toContain(m[0]);
    }
    // And every CTRBAKE_* variable a script reads is exported by external.mk (or set by the user).
    const exported = new Set([...mk.matchAll(/^export (CTRBAKE[A-Z0-9_]*)/gm)].map((m) => m[1]));
    for (const script of SCRIPTS) {
      for (const m of (await read(script)).matchAll(/\$\{?(CTRBAKE_[A-Z0-9_]+)/g)) {
        if (m[1] === 'CTRBAKE_GENIMAGE_CFG') continue;
        expect([...exported], `${script} reads ${m[1]}`).toContain(m[1]);
      }
    }
  });

  it.each(SCRIPTS)('%s: shellcheck clean, parsed by busybox sh, executable', async (script) => {
    await tool('shellcheck');
    await tool('busybox');
    const sc = await execa('shellcheck', ['-s', 'sh', join(EXAMPLE, script)], { reject: false });
    expect(sc.exitCode, String(sc.stdout)).toBe(0);
    const bb = await execa('busybox', ['sh', '-n', join(EXAMPLE, script)], { reject: false });
    expect(bb.exitCode, String(bb.stderr)).toBe(0);
    const head = (await read(script)).split('\n');
    expect(head[0]).toBe('#!/bin/sh');
    expect(head).toContain('set -eu');
    const r = await execa('test', ['-x', join(EXAMPLE, script)], { reject: false });
    expect(r.exitCode).toBe(0);
  });

  it('post-build.sh refuses to run outside Buildroot, naming what is missing', async () => {
    const r = await execa('busybox', ['sh', join(EXAMPLE, 'board/ctrbake/post-build.sh'), '/tmp/target'], { reject: false, env: {}, extendEnv: false });
    expect(r.exitCode).not.toBe(0);
    expect(String(r.stderr)).toMatch(/BR2_CONFIG.*not set: this script is run by Buildroot/);
  });
});

describe('the BR2_EXTERNAL example, for real', () => {
  let work: string;
  let registry: TestRegistry | undefined;
  let images: FixtureImages;
  let top: string;
  let wrapper: string;
  const loops: string[] = [];
  const devices: SimDevice[] = [];
  let baseSymbols: Record<string, string>;

  /** A stub of Buildroot's top Makefile: the .config symbols, the variables and qstrip external.mk relies on. */
  async function writeTopMakefile(symbols: Record<string, string>): Promise<void> {
    const config = Object.entries(symbols).map(([k, v]) => `${k}=${v}`).join('\n');
    await writeFile(join(top, '.config'), `BR2_HAVE_DOT_CONFIG=y\nBR2_x86_64=y\nBR2_ARCH="x86_64"\nBR2_DL_DIR="$(TOPDIR)/dl"\n${config}\n`);
    await writeFile(
      join(top, 'Makefile'),
      [
        'BR2_EXTERNAL_CTRBAKE_PATH := ' + EXAMPLE,
        `BR2_CONFIG := ${join(top, '.config')}`,
        'qstrip = $(strip $(subst ",,$(1)))',
        '-include $(BR2_CONFIG)',
        `TOPDIR := ${top}`,
        // As package/pkg-download.mk: BR2_DL_DIR stays the quoted .config value, DL_DIR is the path.
        'DL_DIR := $(call qstrip,$(BR2_DL_DIR))',
        `BUILD_DIR := ${join(top, 'output/build')}`,
        `TARGET_DIR := ${join(top, 'output/target')}`,
        `BINARIES_DIR := ${join(top, 'output/images')}`,
        'export BR2_CONFIG BUILD_DIR TARGET_DIR BINARIES_DIR',
        '.PHONY: source post-build post-image show-env',
        'source:',
        '\t@echo "(packages fetched)"',
        'post-build:',
        '\tbusybox sh $(BR2_EXTERNAL_CTRBAKE_PATH)/board/ctrbake/post-build.sh $(TARGET_DIR)',
        'post-image:',
        '\tbusybox sh $(BR2_EXTERNAL_CTRBAKE_PATH)/board/ctrbake/post-image.sh $(BINARIES_DIR)',
        'show-env:',
        '\t@env | grep ^CTRBAKE_ | sort',
        'include $(BR2_EXTERNAL_CTRBAKE_PATH)/external.mk',
        '',
      ].join('\n'),
    );
  }

  beforeAll(async () => {
    for (const t of ['make', 'genimage', 'busybox', 'unsquashfs', 'sfdisk']) await tool(t);
    work = await mkdtemp('/tmp/ctrbake-brx-');
    top = join(work, 'buildroot');
    await mkdir(join(top, 'support/scripts'), { recursive: true });
    // What Buildroot's support/scripts/genimage.sh does, reduced to the call of genimage.
    await writeFile(
      join(top, 'support/scripts/genimage.sh'),
      '#!/bin/sh\nset -eu\n[ "$1" = -c ] || exit 2\nrm -rf "$BUILD_DIR/genimage.tmp"\nexec genimage --rootpath "$TARGET_DIR" --tmppath "$BUILD_DIR/genimage.tmp" --inputpath "$BINARIES_DIR" --outputpath "$BINARIES_DIR" --config "$2"\n',
      { mode: 0o755 },
    );
    wrapper = join(work, 'ctrbake');
    await writeFile(wrapper, `#!/bin/sh\nexec node ${CLI} "$@"\n`);
    await chmod(wrapper, 0o755);
    registry = await startRegistry();
    images = await pushFixtureImages(registry);
    await writeFile(join(work, 'images.txt'), `${images.sample}\n${images.fidelity}\n`);
    await mkdir(join(top, 'output/build'), { recursive: true });
    await mkdir(join(top, 'output/images'), { recursive: true });
    await mkdir(join(top, 'output/target'), { recursive: true });
    await writeBusyboxRootfs(join(top, 'output/target'));
    baseSymbols = {
      BR2_CTRBAKE: 'y',
      BR2_CTRBAKE_IMAGES_FILE: `"${join(work, 'images.txt')}"`,
      BR2_CTRBAKE_ENGINE_DOCKER: 'y',
      BR2_CTRBAKE_ENGINE: '"docker"',
      BR2_CTRBAKE_LAYOUT_ARCHIVE: 'y',
      BR2_CTRBAKE_LAYOUT: '"archive"',
      BR2_CTRBAKE_INIT_BUSYBOX: 'y',
      BR2_CTRBAKE_INIT: '"busybox"',
      BR2_CTRBAKE_PARTITION: 'y',
      BR2_CTRBAKE_PARTITION_DEVICE: '"/dev/mmcblk0p2"',
      BR2_CTRBAKE_OFFLINE: 'y',
      BR2_CTRBAKE_EXTRA_ARGS: `"--insecure-registry ${registry.host}"`,
    };
    await writeTopMakefile(baseSymbols);
  }, 120_000);

  afterEach(async () => {
    for (const d of devices.splice(0)) await d.dispose();
    for (const loop of loops.splice(0)) await execa('losetup', ['-d', loop], { reject: false });
  });

  afterAll(async () => {
    await registry?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const make = (args: string[]) => execa('make', ['-C', top, `CTRBAKE=${wrapper}`, ...args], { reject: false, all: true, env: { SOURCE_DATE_EPOCH: '1700000000' } });

  it('make -n source: the fetch step runs ctrbake build --fetch-only with the options', async () => {
    const r = await make(['-n', 'source']);
    expect(r.exitCode, String(r.all)).toBe(0);
    const line = String(r.stdout).split('\n').find((l) => l.includes(' build --fetch-only'));
    expect(line).toBe(`${wrapper} build --fetch-only --br2-config ${join(top, '.config')} --cache ${join(top, 'dl/ctrbake')} --images ${join(work, 'images.txt')} --insecure-registry ${registry!.host}`);
    const env = await make(['-s', 'show-env']);
    expect(String(env.stdout).split('\n')).toEqual(
      expect.arrayContaining([`CTRBAKE_CACHE_DIR=${join(top, 'dl/ctrbake')}`, 'CTRBAKE_LAYOUT=archive', 'CTRBAKE_INIT=busybox', 'CTRBAKE_ENGINE=docker', 'CTRBAKE_PARTITION_DEVICE=/dev/mmcblk0p2', 'CTRBAKE_OFFLINE=y']),
    );
    // The Config.in default of the image list names the tree through BR2_EXTERNAL_CTRBAKE_PATH.
    await writeTopMakefile({ ...baseSymbols, BR2_CTRBAKE_IMAGES_FILE: '"$(BR2_EXTERNAL_CTRBAKE_PATH)/board/ctrbake/images.txt"' });
    const defaults = await make(['-s', 'show-env']);
    expect(String(defaults.stdout).split('\n')).toContain(`CTRBAKE_IMAGES_FILE=${EXAMPLE}/board/ctrbake/images.txt`);
    await writeTopMakefile(baseSymbols);
  });

  it('make source fetches into BR2_DL_DIR/ctrbake; then, registry gone, post-build bakes offline into TARGET_DIR and BINARIES_DIR', async () => {
    const source = await make(['source']);
    expect(source.exitCode, String(source.all)).toBe(0);
    expect(String(source.all)).toContain('(packages fetched)');
    expect(await readdir(join(top, 'dl/ctrbake/locks'))).toHaveLength(1);
    await registry!.close();
    registry = undefined;

    const post = await make(['post-build']);
    expect(post.exitCode, String(post.all)).toBe(0);
    const target = join(top, 'output/target');
    for (const f of ['etc/init.d/S58ctrbake-payload', 'etc/init.d/S59ctrbake', 'etc/init.d/S61ctrbake-load', 'usr/sbin/ctrbake-device', 'etc/docker/daemon.json']) {
      await expect(readFile(join(target, f))).resolves.toBeDefined();
    }
    expect(await readdir(join(target, 'usr/share/ctrbake'))).toEqual([]);
    // The BusyBox rootfs is still there under the overlay.
    expect(await readFile(join(target, 'etc/inittab'), 'utf8')).toContain('/etc/init.d/rcS');
    await expect(readFile(join(top, 'output/images/ctrbake.sqfs'))).resolves.toBeDefined();

    // post-image: genimage lays out the disk; partition 2 is the payload, byte for byte.
    await execa('mkfs.ext4', ['-q', '-F', '-d', target, join(top, 'output/images/rootfs.ext4'), '64M']);
    const image = await make(['post-image']);
    expect(image.exitCode, String(image.all)).toBe(0);
    const disk = join(top, 'output/images/sdcard.img');
    const table = JSON.parse(String((await execa('sfdisk', ['-J', disk])).stdout)) as { partitiontable: { label: string; partitions: Array<{ start: number; size: number }> } };
    expect(table.partitiontable.label).toBe('dos');
    expect(table.partitiontable.partitions).toHaveLength(3);
    const payload = await readFile(join(top, 'output/images/ctrbake.sqfs'));
    const p2 = table.partitiontable.partitions[1]!;
    const fromDisk = (await readFile(disk)).subarray(p2.start * 512, p2.start * 512 + payload.length);
    expect(createHash('sha256').update(fromDisk).digest('hex')).toBe(createHash('sha256').update(payload).digest('hex'));

    // Boot: the target dir as rootfs, the disk's partition 2 (a loop device over exactly its
    // sectors: no udev here to make loopNp2) as /dev/mmcblk0p2.
    const device = await SimDevice.create({ overlayDir: target, dataSizeMiB: 160 });
    devices.push(device);
    const loop = String((await execa('losetup', ['-f', '--show', '-r', '-o', String(p2.start * 512), '--sizelimit', String(p2.size * 512), disk])).stdout).trim();
    loops.push(loop);
    await symlink(loop, join(device.root, 'dev/mmcblk0p2'));
    const boot = await device.boot({ init: 'busybox' });
    expect(boot.failure, `boot failed at ${boot.failure?.name}: ${boot.failure?.stderr}`).toBeUndefined();
    expect(boot.steps.map((s) => s.name)).toEqual(['init:S58ctrbake-payload', 'init:S59ctrbake', 'engine', 'init:S61ctrbake-load']);
    const sample = await device.docker(['run', '--rm', '--network', 'none', images.sample]);
    expect(String(sample.stdout).trim()).toBe(SAMPLE_OUTPUT);
    const fidelity = await device.docker(['run', '--rm', '--network', 'none', images.fidelity]);
    expect(fidelity.exitCode, String(fidelity.all)).toBe(0);
    assertFidelityOutput(String(fidelity.stdout));
  });

  it('a rebuild removes what the previous run installed and this one does not: the mount script, then the archives', async () => {
    const target = join(top, 'output/target');
    const { BR2_CTRBAKE_PARTITION: _p, BR2_CTRBAKE_PARTITION_DEVICE: _d, ...noPartition } = baseSymbols;
    void _p;
    void _d;
    await writeTopMakefile(noPartition);
    const second = await make(['post-build']);
    expect(second.exitCode, String(second.all)).toBe(0);
    const initd = await readdir(join(target, 'etc/init.d'));
    expect(initd).not.toContain('S58ctrbake-payload');
    expect(initd).toEqual(expect.arrayContaining(['S59ctrbake', 'S61ctrbake-load', 'rcS']));
    expect((await readdir(join(target, 'usr/share/ctrbake/archives'))).filter((n) => n.endsWith('.tar'))).toHaveLength(2);
    expect(await readdir(join(top, 'output/images'))).not.toContain('ctrbake.sqfs');
    // genimage.cfg still names the partition: post-image says what to enable.
    const image = await make(['post-image']);
    expect(image.exitCode).not.toBe(0);
    expect(String(image.all)).toMatch(/needs .*ctrbake\.sqfs: enable BR2_CTRBAKE_PARTITION/);

    const { BR2_CTRBAKE_LAYOUT_ARCHIVE: _a, ...rest } = noPartition;
    void _a;
    await writeTopMakefile({ ...rest, BR2_CTRBAKE_LAYOUT_SPLIT: 'y', BR2_CTRBAKE_LAYOUT: '"split"' });
    const third = await make(['post-build']);
    expect(third.exitCode, String(third.all)).toBe(0);
    const payload = await readdir(join(target, 'usr/share/ctrbake'));
    expect(payload).toEqual(expect.arrayContaining(['store.sqfs', 'manifest.json']));
    expect(payload).not.toContain('archives');
    expect(await readdir(join(target, 'etc/init.d'))).not.toContain('S61ctrbake-load');
  });
});
