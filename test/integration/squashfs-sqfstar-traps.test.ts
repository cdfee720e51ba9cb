/**
 * sqfstar's traps (DESIGN.md), each shown twice: what plain `sqfstar` makes of the tar on
 * this host (when it is a 4.5.x that has the trap), and what the sqfstar backend makes of
 * it (the kernel mount shows the tar).
 */
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSquashfs } from '../../src/squashfs/index.js';
import { expectedTree, writeTarFile, type TarOptions, type TreeEntry } from '../fixtures/tars.js';
import { diffTrees, Mounts, sh, sqfstarRootMtimeIsNow, treeFromDir, withoutRootMtime } from './squashfs-oracle.js';

const SDE = 1_650_000_000;
const mounts = new Mounts();
let hostHasTraps = false;

beforeAll(async () => {
  hostHasTraps = await sqfstarRootMtimeIsNow();
});
afterEach(async () => {
  await mounts.releaseAll();
});

/** Plain sqfstar, as a build script would call it. */
async function plainSqfstar(tar: string, out: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn('sqfstar', ['-quiet', '-no-progress', out], { stdio: ['pipe', 'ignore', 'ignore'] });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`sqfstar exited ${code}`))));
    createReadStream(tar).pipe(child.stdin);
  });
}

async function both(entries: TreeEntry[], options: TarOptions) {
  const dir = await mounts.tempDir();
  const tar = join(dir, 'in.tar');
  await writeTarFile(tar, entries, options);
  await plainSqfstar(tar, join(dir, 'plain.sqfs'));
  await createSquashfs({ input: tar, outPath: join(dir, 'ours.sqfs'), backend: 'sqfstar', sourceDateEpoch: SDE, workers: 2 });
  const plain = await treeFromDir(await mounts.mountSquashfs(join(dir, 'plain.sqfs')));
  const ours = await treeFromDir(await mounts.mountSquashfs(join(dir, 'ours.sqfs')));
  const expected = expectedTree(entries, { sourceDateEpoch: SDE, root: options.root });
  return { plain, ours, expected };
}

function oursMatches(ours: ReturnType<typeof withoutRootMtime>, expected: ReturnType<typeof withoutRootMtime>): void {
  expect(diffTrees(hostHasTraps ? withoutRootMtime(ours) : ours, hostHasTraps ? withoutRootMtime(expected) : expected)).toEqual([]);
}

describe('sqfstar backend vs plain sqfstar', () => {
  it('keeps numeric owners when the tar names a user that exists on the host with another id', async () => {
    const { stdout } = await sh('getent', ['passwd', 'daemon']);
    const hostUid = Number(stdout.split(':')[2]);
    expect(hostUid).not.toBe(4242);
    const entries: TreeEntry[] = [{ type: 'file', path: 'owned', content: Buffer.from('x'), uid: 4242, gid: 4243, uname: 'daemon', gname: 'daemon' }];
    const { plain, ours, expected } = await both(entries, {});
    if (hostHasTraps) expect(plain['/owned'].uid).toBe(hostUid);
    expect(ours['/owned'].uid).toBe(4242);
    expect(ours['/owned'].gid).toBe(4243);
    oursMatches(ours, expected);
  });

  it('resolves "./"-prefixed hard links whose target is a GNU long name', async () => {
    const long = `${'d'.repeat(90)}/${'f'.repeat(60)}`;
    const entries: TreeEntry[] = [
      { type: 'dir', path: 'd'.repeat(90) },
      { type: 'file', path: long, content: Buffer.from('target') },
      { type: 'hardlink', path: 'link', target: long },
    ];
    const { plain, ours, expected } = await both(entries, { prefix: './', longNames: 'gnu' });
    if (hostHasTraps) expect(plain['/link']).toBeUndefined();
    expect(ours['/link'].linkGroup).toBe(`/${long}`);
    oursMatches(ours, expected);
  });

  it('keeps LIBARCHIVE xattrs whose base64 ends in "="', async () => {
    const entries: TreeEntry[] = [{ type: 'file', path: 'f', content: Buffer.from('p'), xattrs: { 'user.one': 'ab', 'user.two': 'a', 'user.none': 'abc' } }];
    const { plain, ours, expected } = await both(entries, { xattrEncoding: 'libarchive' });
    if (hostHasTraps) expect(Object.keys(plain['/f'].xattrs)).toEqual(['user.none']);
    expect(ours['/f'].xattrs).toEqual({ 'user.none': '616263', 'user.one': '6162', 'user.two': '61' });
    oursMatches(ours, expected);
  });

  it('gives undeclared directories 0755 root:root and the SOURCE_DATE_EPOCH mtime, and the root 0755', async () => {
    const entries: TreeEntry[] = [{ type: 'file', path: 'a/b/c', content: Buffer.from('deep'), uid: 7 }];
    const { plain, ours, expected } = await both(entries, {});
    if (hostHasTraps) {
      expect(plain['/'].mode).toBe(0o777);
      expect(plain['/a'].mtime).not.toBe(SDE);
    }
    expect(ours['/a']).toMatchObject({ mode: 0o755, uid: 0, gid: 0, mtime: SDE });
    expect(ours['/'].mode).toBe(0o755);
    oursMatches(ours, expected);
  });

  it('keeps long symlink targets that start with "../" or "/"', async () => {
    const up = `${'../'.repeat(40)}target`;
    const abs = `/${'x/'.repeat(60)}end`;
    const entries: TreeEntry[] = [
      { type: 'symlink', path: 'up', target: up },
      { type: 'symlink', path: 'abs', target: abs },
    ];
    const { plain, ours, expected } = await both(entries, {});
    if (hostHasTraps) expect(plain['/up'].target).toBe('target');
    expect(ours['/up'].target).toBe(up);
    expect(ours['/abs'].target).toBe(abs);
    oursMatches(ours, expected);
  });

  it('refuses a directory declared after its content, a root owned by someone else on 4.5.x, and root xattrs, leaving no file', async () => {
    const dir = await mounts.tempDir();
    const cases: { entries: TreeEntry[]; options: TarOptions; code: string }[] = [
      { entries: [{ type: 'file', path: 'late/f' }, { type: 'dir', path: 'late' }], options: {}, code: 'E_TAR_UNSUPPORTED' },
      { entries: [{ type: 'file', path: 'f' }], options: { root: { xattrs: { 'user.x': '1' } } }, code: 'E_TAR_UNSUPPORTED' },
    ];
    if (hostHasTraps) cases.push({ entries: [{ type: 'file', path: 'f' }], options: { root: { uid: 1000, gid: 1000 } }, code: 'E_SQFSTAR_ROOT_OWNER' });
    for (const [i, c] of cases.entries()) {
      const tar = join(dir, `bad-${i}.tar`);
      await writeTarFile(tar, c.entries, c.options);
      await expect(createSquashfs({ input: tar, outPath: join(dir, `out-${i}.sqfs`), backend: 'sqfstar', sourceDateEpoch: SDE })).rejects.toMatchObject({ code: c.code });
    }
    expect((await readdir(dir)).filter((n) => !n.endsWith('.tar'))).toEqual([]);
    await expect(lstat(join(dir, 'out-0.sqfs'))).rejects.toThrow();
  });
});
