/**
 * `bake --mode store --squashfs`: OUT/store.sqfs is the store.tar as SquashFS, listed in
 * manifest.json; the kernel mounts it and sees the store with its whiteouts and xattrs.
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BakeManifest } from '../../src/formats/index.js';
import { sha256File } from '../../src/util/fs.js';
import { prepareBakeInputs, type BakeInputs } from './bake-archive.helpers.js';

const cli = resolve(import.meta.dirname, '../../bin/ctrbake.js');
let inputs: BakeInputs;

beforeAll(async () => {
  inputs = await prepareBakeInputs();
}, 300_000);
afterAll(async () => {
  await inputs?.close();
});

function bakeCli(out: string, extra: string[]) {
  return execa('node', [cli, 'bake', '--json', '--lock', inputs.lockAmd64, '--cache', inputs.cacheDir, '-o', out, ...extra], {
    reject: false,
    env: { SOURCE_DATE_EPOCH: '1600000000' },
  });
}

describe('bake --squashfs', () => {
  it('packs store.tar into store.sqfs that the kernel mounts with the store intact', async () => {
    const out = join(inputs.work, 'sqfs-out');
    const r = await bakeCli(out, ['--mode', 'store', '--squashfs', '--compression', 'zstd']);
    expect(r.exitCode, r.stderr).toBe(0);
    const manifest = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as BakeManifest;
    const entry = manifest.outputs.find((o) => o.path === 'store.sqfs');
    expect(entry).toBeDefined();
    expect(entry!.size).toBe((await stat(join(out, 'store.sqfs'))).size);
    expect(entry!.sha256).toBe(await sha256File(join(out, 'store.sqfs')));

    const mnt = await mkdtemp(join(tmpdir(), 'ctrbake-sqfs-mnt-'));
    await execa('mount', ['-t', 'squashfs', '-o', 'loop,ro', join(out, 'store.sqfs'), mnt]);
    try {
      const fromTar = (await execa('tar', ['-tf', join(out, 'store.tar')])).stdout
        .split('\n')
        .map((p) => p.replace(/^\.\//, '').replace(/\/$/, ''))
        .filter((p) => p && p !== '.')
        .sort();
      const fromMount = (await execa('find', ['.', '-mindepth', '1'], { cwd: mnt })).stdout
        .split('\n')
        .map((p) => p.replace(/^\.\//, ''))
        .sort();
      expect(fromMount).toEqual(fromTar);
      // overlay2 whiteouts are char 0/0 devices and opaque dirs carry trusted.overlay.opaque
      const whiteouts = (await execa('find', ['.', '-type', 'c'], { cwd: mnt })).stdout.split('\n').filter(Boolean);
      expect(whiteouts.length).toBeGreaterThan(0);
      const opaque = await execa('getfattr', ['-R', '-n', 'trusted.overlay.opaque', '--absolute-names', mnt], { reject: false });
      expect(opaque.stdout).toContain('trusted.overlay.opaque="y"');
    } finally {
      await execa('umount', [mnt]);
      await rm(mnt, { recursive: true, force: true });
    }

    const again = await bakeCli(out, ['--mode', 'store', '--squashfs', '--compression', 'zstd']);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout).toContain('"bake.uptodate"');
    const other = await bakeCli(out, ['--mode', 'store', '--squashfs', '--compression', 'gzip']);
    expect(other.exitCode, other.stderr).toBe(0);
    expect(other.stdout).not.toContain('"bake.uptodate"');
  });

  it.each([
    [['--mode', 'archive', '--squashfs'], '--mode store'],
    [['--mode', 'store', '--compression', 'zstd'], 'add --squashfs'],
  ])('%j is a usage error (exit 2) and writes nothing', async (args, message) => {
    const out = join(inputs.work, 'never');
    const r = await bakeCli(out, args);
    expect(r.exitCode).toBe(2);
    expect(r.stdout + r.stderr).toContain(message);
    await expect(stat(out)).rejects.toThrow();
  });
});
