import { createHash } from 'node:crypto';
import { readFile, readdir, readlink, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../../src/cli/main.js';
import { resetShutdown } from '../../../src/cli/run.js';
import { CtrbakeError } from '../../../src/errors.js';
import { chainIds, generateLoader, podmanLayerIds, LOADER_INITS, type LoaderInit, type LoaderLayout } from '../../../src/loader/index.js';
import { sha256File } from '../../../src/util/fs.js';
import { fakeArchiveBake, fakeStoreBake, type FakeBake } from './fake-bake.js';

const cleanup: string[] = [];
afterEach(async () => {
  for (const dir of cleanup.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function bakeFor(layout: LoaderLayout): Promise<FakeBake> {
  const bake =
    layout === 'archive'
      ? await fakeArchiveBake()
      : layout === 'podman-ro'
        ? await fakeStoreBake('podman', 'overlay')
        : await fakeStoreBake('docker', layout === 'overlay-vfs' ? 'vfs' : 'overlay2');
  cleanup.push(bake.dir);
  return bake;
}

async function generate(layout: LoaderLayout, init: LoaderInit, extra: Record<string, unknown> = {}) {
  const bake = await bakeFor(layout);
  const outDir = join(bake.dir, 'overlay');
  const result = await generateLoader({ manifestPath: bake.manifestPath, layout, init, outDir, ...extra });
  return { bake, outDir, result };
}

const LAYOUTS: LoaderLayout[] = ['archive', 'overlay-vfs', 'split', 'copy', 'podman-ro'];
const CASES = LAYOUTS.flatMap((layout) => LOADER_INITS.map((init) => [layout, init] as const));

describe('ctrbake loader output', () => {
  it(`every shell file of every layout x init (${CASES.length} overlays) passes shellcheck -s sh and busybox sh -n`, async () => {
    // Identical files (the device script differs only by its settings path) are checked once.
    const scripts = new Map<string, string>();
    for (const [layout, init] of CASES) {
      const { outDir, result } = await generate(layout, init);
      const mine = result.files.filter((f) => f === 'usr/sbin/ctrbake-device' || f.startsWith('etc/init.d/'));
      expect(mine.length, `${layout}/${init}`).toBe(init === 'systemd' ? 1 : layout === 'archive' ? 3 : 2);
      for (const script of mine) {
        const path = join(outDir, script);
        expect((await stat(path)).mode & 0o777).toBe(0o755);
        const syntax = await execa('busybox', ['sh', '-n', path], { reject: false });
        expect(syntax.exitCode, `busybox sh -n ${layout}/${init} ${script}: ${syntax.stderr}`).toBe(0);
        scripts.set(createHash('sha256').update(await readFile(path)).digest('hex'), path);
      }
    }
    expect(scripts.size).toBeGreaterThan(3);
    const sc = await execa('shellcheck', ['-s', 'sh', ...scripts.values()], { reject: false });
    expect(sc.exitCode, `shellcheck:\n${sc.stdout}`).toBe(0);
  });

  it.each(LAYOUTS)('%s/systemd: systemd-analyze verify accepts the units (engine unit stubbed)', async (layout) => {
    const { bake, outDir, result } = await generate(layout, 'systemd');
    const unitDir = join(outDir, 'etc/systemd/system');
    const stubDir = join(bake.dir, 'stub');
    const engine = layout === 'podman-ro' ? 'podman.service' : 'docker.service';
    await execa('mkdir', ['-p', stubDir]);
    await execa('sh', ['-c', `printf '[Unit]\\nDescription=stub\\n[Service]\\nExecStart=/bin/true\\n' > ${stubDir}/${engine}`]);
    const units = (await readdir(unitDir)).filter((n) => /\.(service|mount)$/.test(n));
    const r = await execa('systemd-analyze', ['verify', ...units, engine], {
      reject: false,
      env: { SYSTEMD_UNIT_PATH: `${unitDir}:${stubDir}:/lib/systemd/system` },
    });
    // The script lives in the overlay, not on this host: the only complaint allowed.
    const complaints = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => l.trim() && !/Command \/usr\/sbin\/ctrbake-device is not executable/.test(l));
    expect(complaints).toEqual([]);
    if (layout !== 'archive') expect(result.mountUnit).toBe('usr-share-ctrbake-store.mount');
  });

  it('archive/systemd: prepare before the engine, load after it, the engine requires prepare', async () => {
    const { outDir, result } = await generate('archive', 'systemd');
    const unit = (name: string) => readFile(join(outDir, 'etc/systemd/system', name), 'utf8');
    const prepare = await unit('ctrbake-prepare.service');
    expect(prepare).toMatch(/^Before=docker\.service$/m);
    expect(prepare).toMatch(/^RequiresMountsFor=\/var\/lib\/ctrbake \/var\/lib\/docker \/usr\/share\/ctrbake$/m);
    expect(prepare).toMatch(/^ExecStart=\/usr\/sbin\/ctrbake-device prepare$/m);
    const load = await unit('ctrbake-load.service');
    expect(load).toMatch(/^After=ctrbake-prepare\.service docker\.service$/m);
    expect(load).toMatch(/^Requires=ctrbake-prepare\.service docker\.service$/m);
    const dropin = await unit('docker.service.d/ctrbake.conf');
    expect(dropin).toMatch(/^Requires=ctrbake-prepare\.service$/m);
    expect(dropin).toMatch(/^After=ctrbake-prepare\.service$/m);
    expect(await readlink(join(outDir, 'etc/systemd/system/multi-user.target.wants/ctrbake-load.service'))).toBe('../ctrbake-load.service');
    expect(result.files).toContain('usr/share/ctrbake/archives/big.tar');
  });

  it('archive: daemon.json pins the driver and turns the containerd snapshotter off; images.list is largest first with chain ids', async () => {
    const { bake, outDir } = await generate('archive', 'busybox', { dataRoot: '/data/docker', dataDir: '/data/ctrbake', payloadDir: '/opt/ctrbake', keepArchives: false });
    expect(JSON.parse(await readFile(join(outDir, 'etc/docker/daemon.json'), 'utf8'))).toEqual({
      'data-root': '/data/docker',
      'storage-driver': 'overlay2',
      features: { 'containerd-snapshotter': false },
    });
    const lines = (await readFile(join(outDir, 'opt/ctrbake/images.list'), 'utf8')).trim().split('\n');
    const big = bake.manifest.images[1]!;
    expect(lines[0]).toBe(
      `${big.imageId.slice(7)} 30 archives/big.tar ${big.reference} ${chainIds(big.layers.map((l) => l.diffId)).map((c) => c.slice(7)).join(',')} ${podmanLayerIds(big.layers.map((l) => l.diffId)).join(',')}`,
    );
    expect(lines[1]).toMatch(/ 10 archives\/small\.tar /);
    const conf = await readFile(join(outDir, 'opt/ctrbake/ctrbake.conf'), 'utf8');
    expect(conf).toMatch(/^CTRBAKE_DATA_ROOT='\/data\/docker'$/m);
    expect(conf).toMatch(/^CTRBAKE_KEEP_ARCHIVES='no'$/m);
    expect(await readFile(join(outDir, 'opt/ctrbake/manifest.json'))).toEqual(await readFile(bake.manifestPath));
    expect(await readFile(join(outDir, 'usr/sbin/ctrbake-device'), 'utf8')).toContain('CONF="${CTRBAKE_CONF:-/opt/ctrbake/ctrbake.conf}"');
  });

  it('chain ids follow docker: sha256 of "<parent chain> <diff id>"', () => {
    const d = (c: string) => `sha256:${c.repeat(64)}`;
    const chains = chainIds([d('a'), d('b')]);
    expect(chains[0]).toBe(d('a'));
    expect(chains[1]).toBe(`sha256:${createHash('sha256').update(`${d('a')} ${d('b')}`).digest('hex')}`);
  });

  it('podman layer ids follow containers/storage: sha256 of "<parent id>+<diff hex>" (values from a podman 4.3 load)', () => {
    const diffs = [
      '6ddcc647f1649ca7002071062cf0319c25c1322b46c60a7c793b313b22f5f56a',
      '7cfb717c96e40539a092f539cc7256471b9384d367312cafcaeb0bb030f2d423',
      '6cc7c1e186dce62ad7e1c18f5be5d7e060ecf277b0fc448d440e22ce38f2a0c7',
      'ffe658785cccd402be94ff44bed0c3013135231bbb686f28e7c71ccd5fa644fd',
    ].map((h) => `sha256:${h}`);
    expect(podmanLayerIds(diffs)).toEqual([
      '6ddcc647f1649ca7002071062cf0319c25c1322b46c60a7c793b313b22f5f56a',
      '4be158c7977ef27c796d80e97bf62be5dc4372d96ec316c9a62ef25a5b301dd3',
      '2e7841f5b3da8988b2ecc2fb3848a0bc0e4fa71cb127ace476d5546445c2a729',
      '6177fd2543522a863024a4e8266c69cdac097b84f75f901254ecf530ad521d32',
    ]);
  });

  it('sysvinit: init.d scripts and rc2..5 links before (S19) and after (S21) the engine; busybox: S59/S61', async () => {
    const sysv = await generate('archive', 'sysvinit');
    for (const level of [2, 3, 4, 5]) {
      expect(await readlink(join(sysv.outDir, `etc/rc${level}.d/S19ctrbake`))).toBe('../init.d/ctrbake');
      expect(await readlink(join(sysv.outDir, `etc/rc${level}.d/S21ctrbake-load`))).toBe('../init.d/ctrbake-load');
    }
    expect(await readFile(join(sysv.outDir, 'etc/init.d/ctrbake'), 'utf8')).toMatch(/# X-Start-Before:\s+docker/);
    expect(await readFile(join(sysv.outDir, 'etc/init.d/ctrbake-load'), 'utf8')).toMatch(/# Required-Start:\s+\$local_fs docker ctrbake/);
    const bb = await generate('split', 'busybox', { startOrder: { prepare: 40 } });
    expect(bb.result.files.filter((f) => f.startsWith('etc/init.d/'))).toEqual(['etc/init.d/S40ctrbake']);
  });

  it('store layouts: the store SquashFS, its mount point and its sha256 as the store id', async () => {
    const { outDir, result } = await generate('split', 'systemd');
    const sqfs = join(outDir, 'usr/share/ctrbake/store.sqfs');
    const id = await sha256File(sqfs);
    expect(result.storeId).toBe(id);
    expect((await stat(join(outDir, 'usr/share/ctrbake/store'))).isDirectory()).toBe(true);
    expect(await readFile(join(outDir, 'usr/share/ctrbake/ctrbake.conf'), 'utf8')).toContain(`CTRBAKE_STORE_ID='${id}'`);
    const mount = await readFile(join(outDir, 'etc/systemd/system/usr-share-ctrbake-store.mount'), 'utf8');
    expect(mount).toMatch(/^What=\/usr\/share\/ctrbake\/store\.sqfs$/m);
    expect(mount).toMatch(/^Where=\/usr\/share\/ctrbake\/store$/m);
    expect(await readFile(join(outDir, 'etc/systemd/system/ctrbake-prepare.service'), 'utf8')).toMatch(/^Requires=usr-share-ctrbake-store\.mount$/m);
  });

  it('podman-ro: storage.conf lists the SquashFS mount as an additional image store', async () => {
    const { outDir } = await generate('podman-ro', 'systemd');
    const conf = await readFile(join(outDir, 'etc/containers/storage.conf'), 'utf8');
    expect(conf).toMatch(/^driver = "overlay"$/m);
    expect(conf).toMatch(/^graphroot = "\/var\/lib\/containers\/storage"$/m);
    expect(conf).toMatch(/^additionalimagestores = \["\/usr\/share\/ctrbake\/store"\]$/m);
  });
});

describe('ctrbake loader errors', () => {
  it.each([
    ['split', 'archive bake', 'E_LOADER_LAYOUT', {}],
    ['archive', 'relative data root', 'E_LOADER_CONFIG', { dataRoot: 'var/lib/docker' }],
    ['archive', 'data root inside the data dir', 'E_LOADER_CONFIG', { dataDir: '/var/lib', dataRoot: '/var/lib/docker' }],
    ['archive', 'a space in a path', 'E_LOADER_CONFIG', { payloadDir: '/usr/share/my payload' }],
    ['archive', 'bad start order', 'E_LOADER_CONFIG', { init: 'sysvinit', startOrder: { prepare: 100 } }],
  ] as const)('%s with %s: %s, exit 2, nothing written', async (layout, _what, code, extra) => {
    const bake = await fakeArchiveBake();
    cleanup.push(bake.dir);
    const outDir = join(bake.dir, 'overlay');
    const error = await generateLoader({ manifestPath: bake.manifestPath, layout, init: 'systemd', outDir, ...extra }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CtrbakeError);
    expect((error as CtrbakeError).code).toBe(code);
    expect((error as CtrbakeError).exitCode).toBe(2);
    await expect(stat(outDir)).rejects.toThrow();
  });

  it('an archive that does not match the manifest: E_LOADER_INPUT and no overlay dir', async () => {
    const bake = await fakeArchiveBake();
    cleanup.push(bake.dir);
    await execa('sh', ['-c', `printf x >> ${join(bake.dir, 'archives/big.tar')}`]);
    const outDir = join(bake.dir, 'overlay');
    const error = await generateLoader({ manifestPath: bake.manifestPath, layout: 'archive', init: 'systemd', outDir }).catch((e: unknown) => e);
    expect((error as CtrbakeError).code).toBe('E_LOADER_INPUT');
    expect((error as CtrbakeError).message).toMatch(/big\.tar does not match the manifest/);
    await expect(stat(outDir)).rejects.toThrow();
    expect((await readdir(bake.dir)).filter((n) => n.startsWith('.overlay'))).toEqual([]);
  });

  it('a missing manifest: E_LOADER_INPUT naming it', async () => {
    const error = await generateLoader({ manifestPath: '/nonexistent/manifest.json', layout: 'archive', init: 'systemd', outDir: '/tmp/never' }).catch((e: unknown) => e);
    expect((error as CtrbakeError).code).toBe('E_LOADER_INPUT');
    expect((error as CtrbakeError).message).toContain('/nonexistent/manifest.json');
  });
});

describe('ctrbake loader CLI', () => {
  it('--json prints one result object with the files written', async () => {
    const bake = await fakeArchiveBake();
    cleanup.push(bake.dir);
    const out: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    });
    try {
      resetShutdown();
      const code = await main(['loader', '--json', '--manifest', bake.manifestPath, '--layout', 'archive', '--init', 'busybox', '-o', join(bake.dir, 'ov'), '--no-keep-archives']);
      expect(code).toBe(0);
    } finally {
      spy.mockRestore();
      process.exitCode = undefined;
    }
    const result = out.map((l) => JSON.parse(l) as Record<string, unknown>).find((o) => o.type === 'result')!;
    expect(result.layout).toBe('archive');
    expect(result.files).toContain('etc/init.d/S59ctrbake');
    expect(await readFile(join(bake.dir, 'ov/usr/share/ctrbake/ctrbake.conf'), 'utf8')).toMatch(/^CTRBAKE_KEEP_ARCHIVES='no'$/m);
  });
});
