import { chmod, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { silentReporter } from '../../../src/util/reporter.js';
import { emptyDirectory, mountOrderBefore, writeMountFiles, writePartitionImage } from '../../../src/standalone/partition.js';

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

async function payload(root: string): Promise<string> {
  const p = join(root, 'payload');
  await mkdir(join(p, 'archives'), { recursive: true });
  await mkdir(join(p, 'store'));
  await writeFile(join(p, 'manifest.json'), '{"manifestVersion":1}\n');
  await writeFile(join(p, 'archives', 'b.tar'), Buffer.alloc(300_000, 7));
  await writeFile(join(p, 'run.sh'), '#!/bin/sh\n');
  await chmod(join(p, 'run.sh'), 0o755);
  await symlink('archives/b.tar', join(p, 'latest.tar'));
  return p;
}

describe('the payload partition image', () => {
  it('holds the payload dir as root-owned files with the SOURCE_DATE_EPOCH mtime, the same bytes each time', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ctrbake-part-'));
    const p = await payload(dir);
    const options = { payloadDir: p, compression: 'gzip' as const, backend: 'builtin' as const, sourceDateEpoch: 1700000000, reporter: silentReporter };
    const a = await writePartitionImage({ ...options, outPath: join(dir, 'a.sqfs') });
    const b = await writePartitionImage({ ...options, outPath: join(dir, 'b.sqfs') });
    expect(a.sha256).toBeDefined();
    expect(b.sha256).toBe(a.sha256);
    const listing = String((await execa('unsquashfs', ['-d', '', '-lln', join(dir, 'a.sqfs')])).stdout);
    expect(listing).toMatch(/-rw-r--r-- 0\/0 +22 2023-11-14 \d\d:\d\d \/manifest\.json/);
    expect(listing).toMatch(/-rwxr-xr-x 0\/0 +\d+ 2023-11-14 \d\d:\d\d \/run\.sh/);
    expect(listing).toMatch(/lrwxrwxrwx 0\/0 +\d+ 2023-11-14 \d\d:\d\d \/latest\.tar -> archives\/b\.tar/);
    expect(listing).toMatch(/d\S+ 0\/0 +\d+ 2023-11-14 \d\d:\d\d \/store$/m);
    const out = join(dir, 'x');
    await execa('unsquashfs', ['-d', out, join(dir, 'a.sqfs')]);
    expect(await readFile(join(out, 'archives', 'b.tar'))).toEqual(Buffer.alloc(300_000, 7));
  });

  it('leaves no output when the SquashFS step fails', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ctrbake-part-'));
    const p = await payload(dir);
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await expect(
      writePartitionImage({ payloadDir: p, outPath: join(dir, 'a.sqfs'), compression: 'gzip', backend: 'builtin', sourceDateEpoch: 0, reporter: silentReporter, signal: controller.signal }),
    ).rejects.toThrow();
    expect((await readdir(dir)).sort()).toEqual(['payload']);
  });

  it('emptyDirectory keeps the mount point', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ctrbake-part-'));
    const p = await payload(dir);
    await emptyDirectory(p);
    expect(await readdir(p)).toEqual([]);
    expect((await stat(p)).isDirectory()).toBe(true);
  });
});

describe('what mounts the partition', () => {
  it.each([
    ['busybox', ['etc/init.d/S58ctrbake-payload']],
    ['sysvinit', ['etc/init.d/ctrbake-payload', 'etc/rc2.d/S18ctrbake-payload', 'etc/rc3.d/S18ctrbake-payload', 'etc/rc4.d/S18ctrbake-payload', 'etc/rc5.d/S18ctrbake-payload']],
    ['systemd', ['etc/systemd/system/usr-share-ctrbake.mount', 'etc/systemd/system/local-fs.target.wants/usr-share-ctrbake.mount']],
  ] as const)('%s', async (init, files) => {
    dir = await mkdtemp(join(tmpdir(), 'ctrbake-mount-'));
    const written = await writeMountFiles({ overlayDir: dir, init, device: '/dev/mmcblk0p2', payloadDir: '/usr/share/ctrbake', storeMountUnit: 'usr-share-ctrbake-store.mount' });
    expect(written.sort()).toEqual([...files].sort());
    if (init === 'systemd') {
      const unit = await readFile(join(dir, files[0]), 'utf8');
      expect(unit).toMatch(/^What=\/dev\/mmcblk0p2$/m);
      expect(unit).toMatch(/^Where=\/usr\/share\/ctrbake$/m);
      expect(unit).toMatch(/^Type=squashfs$/m);
      expect(unit).toMatch(/^Options=ro$/m);
      expect(unit).toMatch(/^Before=ctrbake-prepare\.service usr-share-ctrbake-store\.mount$/m);
      expect(await readlink(join(dir, files[1]))).toBe('../usr-share-ctrbake.mount');
      return;
    }
    const script = join(dir, files[0]);
    expect((await stat(script)).mode & 0o777).toBe(0o755);
    const text = await readFile(script, 'utf8');
    expect(text).toContain("DEVICE='/dev/mmcblk0p2'");
    expect(text).toContain("MOUNT='/usr/share/ctrbake'");
    expect(text).not.toMatch(/@[A-Z_]+@/);
    const sc = await execa('shellcheck', ['-s', 'sh', script], { reject: false });
    expect(sc.exitCode, String(sc.stdout)).toBe(0);
    const bb = await execa('busybox', ['sh', '-n', script], { reject: false });
    expect(bb.exitCode, String(bb.stderr)).toBe(0);
    if (init === 'sysvinit') expect(await readlink(join(dir, files[1]))).toBe('../init.d/ctrbake-payload');
  });

  it('the script fails with what to check when the device node never appears, and ignores stop', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ctrbake-mount-'));
    await writeMountFiles({ overlayDir: dir, init: 'busybox', device: '/dev/ctrbake-missing', payloadDir: '/usr/share/ctrbake' });
    const script = join(dir, 'etc/init.d/S58ctrbake-payload');
    const env = { CTRBAKE_ROOT: dir, CTRBAKE_PAYLOAD_WAIT: '1', PATH: process.env.PATH ?? '/usr/bin:/bin' };
    const start = await execa('busybox', ['sh', script, 'start'], { reject: false, env, extendEnv: false });
    expect(start.exitCode).toBe(1);
    expect(String(start.stderr)).toMatch(/the payload partition \/dev\/ctrbake-missing is not there after 1s: check the partition table \(genimage\.cfg\) and --partition-device/);
    expect((await execa('busybox', ['sh', script, 'stop'], { reject: false, env, extendEnv: false })).exitCode).toBe(0);
    expect((await execa('busybox', ['sh', script, 'bogus'], { reject: false, env, extendEnv: false })).exitCode).toBe(2);
  });
});

describe('the mount script starts just before the loader prepare script', () => {
  it.each([
    ['busybox', ['etc/init.d/S59ctrbake', 'etc/init.d/S61ctrbake-load'], 58],
    ['busybox', ['etc/init.d/S30ctrbake'], 29],
    ['sysvinit', ['etc/init.d/ctrbake', 'etc/rc2.d/S19ctrbake', 'etc/rc3.d/S19ctrbake'], 18],
    ['busybox', ['usr/sbin/ctrbake-device'], undefined],
  ] as const)('%s %j -> %s', (init, files, want) => {
    expect(mountOrderBefore(init, files)).toBe(want);
  });
});
