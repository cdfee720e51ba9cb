/**
 * Oracles for SquashFS tests that ctrbake did not write: the kernel (loop mount, overlayfs),
 * getfattr, unsquashfs, rdsquashfs and sqfsdiff. `Mounts` owns every loop device and mount
 * it makes and releases exactly those.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import type { NodeType, ObservedNode, ObservedTree } from '../fixtures/tars.js';

export type ObservedTreeLike = ObservedTree;

const run = promisify(execFile);

export async function sh(cmd: string, args: string[], opts: { allowFail?: boolean } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(cmd, args, { maxBuffer: 512 * 1024 * 1024, encoding: 'utf8' });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number | string; stdout?: string; stderr?: string; message: string };
    if (e.code === 'ENOENT') throw new Error(`${cmd} is missing on this machine: run scripts/install-deps.sh (Debian packages squashfs-tools, squashfs-tools-ng, attr, util-linux)`);
    if (opts.allowFail) return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.stderr || e.message}`);
  }
}

/** Loop devices and mounts made by one test file; `releaseAll` undoes exactly those. */
export class Mounts {
  private mounts: string[] = [];
  private loops: string[] = [];
  private dirs: string[] = [];

  async tempDir(prefix = 'ctrbake-sqfs-'): Promise<string> {
    const dir = await mkdtemp(join(process.env.CTRBAKE_TMPDIR ?? tmpdir(), prefix));
    this.dirs.push(dir);
    return dir;
  }

  /** Attaches `image` to a loop device (read-only) and mounts it read-only as squashfs. */
  async mountSquashfs(image: string): Promise<string> {
    const dir = await this.tempDir('ctrbake-mnt-');
    const { stdout } = await sh('losetup', ['--find', '--show', '--read-only', image]);
    const loop = stdout.trim();
    this.loops.push(loop);
    await sh('mount', ['-t', 'squashfs', '-o', 'ro', loop, dir]);
    this.mounts.push(dir);
    return dir;
  }

  /** overlayfs with `lower` as the only lower layer and a fresh upper. */
  async mountOverlay(lower: string): Promise<{ merged: string; upper: string }> {
    const base = await this.tempDir('ctrbake-ovl-');
    const upper = join(base, 'upper');
    const work = join(base, 'work');
    const merged = join(base, 'merged');
    await Promise.all([mkdir(upper), mkdir(work), mkdir(merged)]);
    await sh('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work}`, merged]);
    this.mounts.push(merged);
    return { merged, upper };
  }

  async releaseAll(): Promise<void> {
    const errors: string[] = [];
    for (const dir of this.mounts.reverse()) {
      const r = await sh('umount', [dir], { allowFail: true });
      if (r.code !== 0) errors.push(`umount ${dir}: ${r.stderr}`);
    }
    this.mounts = [];
    for (const loop of this.loops.reverse()) {
      // The loop may already be gone (autoclear on umount); only ours are touched.
      const r = await sh('losetup', ['-d', loop], { allowFail: true });
      if (r.code !== 0 && !/No such device|not a block device|No such device or address/i.test(r.stderr)) {
        const still = await sh('losetup', [loop], { allowFail: true });
        if (still.code === 0 && still.stdout.trim()) errors.push(`losetup -d ${loop}: ${r.stderr}`);
      }
    }
    this.loops = [];
    for (const dir of this.dirs.reverse()) await rm(dir, { recursive: true, force: true });
    this.dirs = [];
    if (errors.length) throw new Error(errors.join('\n'));
  }
}

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/** xattrs of the given paths (getfattr, hex values), keyed by "/"-rooted path. */
async function xattrsOf(root: string, rels: string[]): Promise<Map<string, Record<string, string>>> {
  const out = new Map<string, Record<string, string>>();
  for (let i = 0; i < rels.length; i += 200) {
    const batch = rels.slice(i, i + 200);
    const { stdout, stderr, code } = await sh('getfattr', ['--absolute-names', '-h', '-d', '-m', '-', '-e', 'hex', ...batch.map((r) => (r === '/' ? root : root + r))], { allowFail: true });
    // An image without any xattr has no xattr table: the kernel answers EOPNOTSUPP.
    const problems = stderr.split('\n').filter((l) => l.trim() && !l.endsWith('Operation not supported'));
    if (code !== 0 && problems.length) throw new Error(`getfattr failed under ${root}: ${problems.join('\n').slice(0, 1000)}`);
    let current: Record<string, string> | null = null;
    for (const line of stdout.split('\n')) {
      if (line.startsWith('# file: ')) {
        const raw = unescapeGetfattr(line.slice('# file: '.length));
        current = {};
        out.set(raw === root ? '/' : raw.slice(root.length), current);
      } else if (current && line.includes('=')) {
        const eq = line.indexOf('=');
        const value = line.slice(eq + 1);
        current[unescapeGetfattr(line.slice(0, eq))] = value.startsWith('0x') ? value.slice(2) : value.replace(/^"|"$/g, '');
      }
    }
  }
  return out;
}

/** getfattr escapes unusual bytes in names as \ooo octal. */
function unescapeGetfattr(s: string): string {
  if (!s.includes('\\')) return s;
  const bytes: number[] = [];
  const raw = Buffer.from(s, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0x5c && i + 3 < raw.length + 0 && /^[0-7]{3}$/.test(raw.subarray(i + 1, i + 4).toString('latin1'))) {
      bytes.push(parseInt(raw.subarray(i + 1, i + 4).toString('latin1'), 8));
      i += 3;
    } else bytes.push(raw[i]);
  }
  return Buffer.from(bytes).toString('utf8');
}

function typeOf(st: Awaited<ReturnType<typeof lstat>>): NodeType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'chardev';
  if (st.isBlockDevice()) return 'blockdev';
  if (st.isFIFO()) return 'fifo';
  throw new Error('socket or unknown file type');
}

function devNumbers(rdev: number): [number, number] {
  const hi = Math.floor(rdev / 2 ** 32);
  const lo = rdev >>> 0;
  const major = ((lo >>> 8) & 0xfff) | ((hi & 0xfffff000) >>> 0);
  const minor = (lo & 0xff) | ((lo >>> 12) & 0xfff00);
  return [major, minor];
}

/** The tree under `root` as the kernel shows it: names, types, content hashes, owners, modes, mtimes, xattrs, device numbers, hard links. */
export async function treeFromDir(root: string): Promise<ObservedTree> {
  const tree: ObservedTree = {};
  const byInode = new Map<number, string[]>();
  const walk = async (abs: string, rel: string): Promise<void> => {
    const st = await lstat(abs);
    const type = typeOf(st);
    const node: ObservedNode = { type, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000), xattrs: {} };
    if (type !== 'symlink') node.mode = st.mode & 0o7777;
    if (type === 'file') {
      node.size = st.size;
      node.sha256 = await sha256Of(abs);
      if (st.nlink > 1) byInode.set(st.ino, [...(byInode.get(st.ino) ?? []), rel]);
    } else if (type !== 'dir' && st.nlink > 1) byInode.set(st.ino, [...(byInode.get(st.ino) ?? []), rel]);
    if (type === 'symlink') node.target = await readlink(abs);
    if (type === 'chardev' || type === 'blockdev') node.rdev = devNumbers(st.rdev);
    tree[rel] = node;
    if (type === 'dir') {
      for (const name of (await readdir(abs)).sort()) await walk(join(abs, name), rel === '/' ? `/${name}` : `${rel}/${name}`);
    }
  };
  await walk(root, '/');
  const xattrs = await xattrsOf(root, Object.keys(tree));
  for (const [rel, values] of xattrs) if (tree[rel]) tree[rel].xattrs = values;
  for (const paths of byInode.values()) {
    if (paths.length < 2) continue;
    const first = [...paths].sort()[0];
    for (const p of paths) tree[p].linkGroup = first;
  }
  return tree;
}

/** Paths whose nodes differ, for readable failure messages. */
export function diffTrees(actual: ObservedTree, expected: ObservedTree): string[] {
  const out: string[] = [];
  for (const path of new Set([...Object.keys(actual), ...Object.keys(expected)])) {
    const a = actual[path];
    const e = expected[path];
    if (!a) out.push(`missing ${path}`);
    else if (!e) out.push(`unexpected ${path}`);
    else {
      for (const key of new Set([...Object.keys(a), ...Object.keys(e)]) as Set<keyof ObservedNode>) {
        const av = JSON.stringify(a[key]);
        const ev = JSON.stringify(e[key]);
        if (av !== ev) out.push(`${path}: ${key} is ${av}, expected ${ev}`);
      }
    }
  }
  return out.sort();
}

/** `unsquashfs -lln` and `rdsquashfs -l /` both list the image without error. */
export async function listWithTools(image: string): Promise<{ unsquashfs: string; rdsquashfs: string }> {
  const u = await sh('unsquashfs', ['-lln', '-d', '', image]);
  const r = await sh('rdsquashfs', ['-l', '/', image]);
  return { unsquashfs: u.stdout, rdsquashfs: r.stdout };
}

/** sqfsdiff with contents, owners, permissions and timestamps compared (xattrs it does not compare). */
export async function sqfsdiff(a: string, b: string): Promise<{ code: number; report: string }> {
  const r = await sh('sqfsdiff', ['--timestamps', '--old', a, '--new', b], { allowFail: true });
  return { code: r.code, report: `${r.stdout}${r.stderr}` };
}

/**
 * sqfstar 4.5.x sets the image root's mtime to the build time whatever it is told (fixed in
 * 4.6); the backend warns about it. Tests compare everything else exactly.
 */
export async function sqfstarRootMtimeIsNow(): Promise<boolean> {
  const { stdout, stderr } = await sh('sqfstar', ['-version'], { allowFail: true });
  const m = /sqfstar version (\d+)\.(\d+)/.exec(stdout + stderr);
  if (!m) throw new Error('sqfstar -version printed no version: is squashfs-tools installed?');
  return Number(m[1]) === 4 && Number(m[2]) < 6;
}

/** The tree without the root's mtime (for sqfstar 4.5.x). */
export function withoutRootMtime(tree: ObservedTree): ObservedTree {
  const { mtime: _mtime, ...root } = tree['/'];
  return { ...tree, '/': root as ObservedNode };
}
