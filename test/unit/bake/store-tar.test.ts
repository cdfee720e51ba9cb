/**
 * writeStoreTar / extractStoreTar keep everything an engine store relies on, and the stream
 * does not depend on when or where it was written. Runs as root (mknod, trusted.* xattrs):
 * the same privilege bake itself needs.
 */
import { chmod, chown, link, lstat, mkdir, mkdtemp, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { extractStoreTar, writeStoreTar } from '../../../src/bake/store-tar.js';
import { sha256File } from '../../../src/util/fs.js';
import { readTarEntries } from '../../integration/store-setup.js';

const CAP = '0x0100000200200000000000000000000000000000';
const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('these tests need root (mknod, trusted.* xattrs), like bake --mode store itself');
});

/** A tree with every property an overlay store holds, all mtimes 1_600_000_000. */
async function makeTree(): Promise<string> {
  const base = await mkdtemp(join(tmpdir(), 'ctrbake-stree-'));
  dirs.push(base);
  const root = join(base, 'root');
  const diff = join(root, 'overlay2', 'abc', 'diff');
  await mkdir(join(diff, 'opaque'), { recursive: true });
  await mkdir(join(diff, 'empty'));
  await writeFile(join(diff, 'suid'), 'suid');
  await chmod(join(diff, 'suid'), 0o4755);
  await writeFile(join(diff, 'sgid'), 'x');
  await chmod(join(diff, 'sgid'), 0o2755);
  await mkdir(join(diff, 'sticky'));
  await chmod(join(diff, 'sticky'), 0o1777);
  await writeFile(join(diff, 'owned'), 'owned');
  await chown(join(diff, 'owned'), 1234, 5678);
  await writeFile(join(diff, 'hl-a'), 'hard');
  await link(join(diff, 'hl-a'), join(diff, 'hl-b'));
  await symlink('hl-a', join(diff, 'sym'));
  await writeFile(join(diff, 'cap'), 'cap');
  await execa('setfattr', ['-n', 'security.capability', '-v', CAP, join(diff, 'cap')]);
  await execa('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', join(diff, 'opaque')]);
  await execa('mknod', [join(diff, 'whiteout'), 'c', '0', '0']);
  await mkdir(join(root, 'image'), { mode: 0o700 });
  await chmod(join(root, 'image'), 0o700);
  await writeFile(join(root, 'image', 'repositories.json'), '{}');
  await execa('find', [root, '-exec', 'touch', '-h', '-d', '@1600000000', '{}', '+']);
  return base;
}

describe('store.tar', () => {
  it('is byte-identical for identical trees in different places, whatever their atime/ctime', async () => {
    const [a, b] = [await makeTree(), await makeTree()];
    await execa('cat', [join(b, 'root', 'overlay2', 'abc', 'diff', 'hl-a')]); // atime
    await chmod(join(b, 'root', 'image', 'repositories.json'), 0o644); // ctime
    await writeStoreTar(join(a, 'root'), ['image', 'overlay2'], join(a, 'store.tar'));
    await writeStoreTar(join(b, 'root'), ['image', 'overlay2'], join(b, 'store.tar'));
    expect(await sha256File(join(b, 'store.tar'))).toBe(await sha256File(join(a, 'store.tar')));
    const entries = await readTarEntries(join(a, 'store.tar'));
    expect(entries.map((e) => e.name)).toEqual([...entries.map((e) => e.name)].sort());
    expect(entries.filter((e) => e.pax.atime !== undefined || e.pax.ctime !== undefined)).toEqual([]);
    expect(entries.filter((e) => e.name.startsWith('./') || e.name.includes('PaxHeaders'))).toEqual([]);
  });

  it('keeps owners, setuid and sticky modes, hard links, symlinks, whiteouts and xattrs through extraction', async () => {
    const base = await makeTree();
    await writeStoreTar(join(base, 'root'), ['image', 'overlay2'], join(base, 'store.tar'));
    const out = join(base, 'extracted');
    await mkdir(out);
    await extractStoreTar(join(base, 'store.tar'), out);
    const diff = join(out, 'overlay2', 'abc', 'diff');
    expect((await stat(join(diff, 'suid'))).mode & 0o7777).toBe(0o4755);
    expect((await stat(join(diff, 'sgid'))).mode & 0o7777).toBe(0o2755);
    expect((await stat(join(diff, 'sticky'))).mode & 0o7777).toBe(0o1777);
    expect((await stat(join(out, 'image'))).mode & 0o7777).toBe(0o700);
    const owned = await stat(join(diff, 'owned'));
    expect([owned.uid, owned.gid]).toEqual([1234, 5678]);
    const [ha, hb] = [await stat(join(diff, 'hl-a')), await stat(join(diff, 'hl-b'))];
    expect(hb.ino).toBe(ha.ino);
    expect(ha.nlink).toBe(2);
    expect(await readlink(join(diff, 'sym'))).toBe('hl-a');
    const wh = await lstat(join(diff, 'whiteout'));
    expect(wh.isCharacterDevice()).toBe(true);
    expect(wh.rdev).toBe(0);
    const xattr = async (name: string, path: string) => (await execa('getfattr', ['--only-values', '-e', 'hex', '-n', name, path])).stdout.trim();
    expect((await execa('getfattr', ['-e', 'hex', '-n', 'security.capability', join(diff, 'cap')])).stdout).toContain(`security.capability=${CAP}`);
    expect(await xattr('trusted.overlay.opaque', join(diff, 'opaque'))).toBe('y');
    expect((await stat(join(diff, 'owned'))).mtimeMs).toBe(1_600_000_000_000);
  });
});
