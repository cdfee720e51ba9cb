/**
 * One layer's overlay2 diff directory, computed as dockerd's untar (pkg/archive Unpack
 * with the overlay whiteout converter, moby v20.10) would leave it on disk, without
 * writing anything: a map from path to inode. Rules, each as the engine does it:
 *   - names are cleaned (filepath.Clean); the root entry "." is skipped; a name that
 *     leaves the root is refused
 *   - a missing parent is created with its missing ancestors: 0755, root:root
 *     (mtime: the bake's SOURCE_DATE_EPOCH, as the engine path clamps what it wrote)
 *   - an existing path is removed and replaced (with its subtree), except a dir over a dir,
 *     whose metadata is merged
 *   - `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its dir and is not written
 *   - `.wh.NAME` becomes NAME as a char device 0/0, mode 0000, the header's owner
 *     (mknod fails when NAME exists: so does this)
 *   - a hard link shares its target's inode (the target must exist in this layer), and its
 *     header's owner, mode (unless the target is a symlink), mtime and xattrs are applied to
 *     the inode, as Lchown/Chmod/Chtimes/Lsetxattr on the link do; the Lchown drops the
 *     inode's security.capability (the kernel does on any chown of a non-directory)
 *   - xattrs of every entry are kept (the engine runs as root: trusted.* and security.* too)
 * Duplicate names are refused earlier, by the tar-split packer, as the engine does.
 * Names are binary strings (one char per byte).
 */
import { posix } from 'node:path';
import { InputError } from '../errors.js';
import { displayName, type TarEntry } from '../formats/tar/index.js';
import { goClean } from './tar-split.js';

export type InodeType = 'file' | 'dir' | 'symlink' | 'chardev' | 'blockdev' | 'fifo';

export interface Inode {
  type: InodeType;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  xattrs: Map<string, Buffer>;
  linkname: string;
  devmajor: number;
  devminor: number;
  size: number;
  /** Index of the layer's tar entry that holds this file's content. */
  source?: number;
}

const WHITEOUT_PREFIX = '.wh.';
const WHITEOUT_META_PREFIX = '.wh..wh.';
const OPAQUE = '.wh..wh..opq';
const OPAQUE_XATTR = 'trusted.overlay.opaque';

function layerError(code: string, name: string, what: string): InputError {
  return new InputError(code, `layer entry ${JSON.stringify(displayName(name))}: ${what}`, { details: { entry: displayName(name) } });
}

/** The parent of a relative path, "" for a top-level name. */
export function parentOf(path: string): string {
  const dir = posix.dirname(path);
  return dir === '.' ? '' : dir;
}

const baseOf = (path: string): string => posix.basename(path);

export class DiffTree {
  /** Path ("a/b", binary string, no leading or trailing slash) -> inode; the root is not in it. */
  readonly nodes = new Map<string, Inode>();
  /** Path -> index of the layer entry that created it (for an implied dir: the entry that implied it). */
  readonly origins = new Map<string, number>();
  /** The diff root gets `trusted.overlay.opaque=y` (a `.wh..wh..opq` at the layer's top). */
  rootOpaque = false;

  constructor(private readonly sourceDateEpoch: number) {}

  private removeTree(path: string): void {
    this.nodes.delete(path);
    this.origins.delete(path);
    const prefix = `${path}/`;
    for (const key of [...this.nodes.keys()]) {
      if (key.startsWith(prefix)) {
        this.nodes.delete(key);
        this.origins.delete(key);
      }
    }
  }

  private set(path: string, node: Inode, index: number): void {
    this.nodes.set(path, node);
    this.origins.set(path, index);
  }

  /**
   * The path an entry creates in the diff ("" for the root entry and opaque markers, which
   * create none; a whiteout creates the name it hides). Throws on names the engine refuses.
   */
  static pathOf(entry: Pick<TarEntry, 'name'>): { path: string; kind: 'root' | 'opaque' | 'whiteout' | 'entry' } {
    const cleaned = goClean(entry.name);
    if (cleaned === '.') return { path: '', kind: 'root' };
    if (cleaned === '/' || cleaned === '..' || cleaned.startsWith('../')) {
      throw layerError('E_LAYER_INVALID', entry.name, 'the name leaves the layer root; the engine refuses it too (breakout)');
    }
    const path = cleaned.replace(/^\/+/, '');
    const base = baseOf(path);
    if (base === OPAQUE) return { path, kind: 'opaque' };
    if (base.startsWith(WHITEOUT_META_PREFIX)) {
      throw layerError('E_LAYER_UNSUPPORTED', entry.name, 'an AUFS metadata entry (.wh..wh.*) other than the opaque marker; use --builder engine for this image');
    }
    if (base.startsWith(WHITEOUT_PREFIX)) {
      const dir = parentOf(path);
      return { path: `${dir === '' ? '' : `${dir}/`}${base.slice(WHITEOUT_PREFIX.length)}`, kind: 'whiteout' };
    }
    return { path, kind: 'entry' };
  }

  /** MkdirAll(parent, 0755) owned by root, for the parts that are missing. */
  private ensureParent(name: string, path: string, index: number): void {
    const parts = parentOf(path) === '' ? [] : parentOf(path).split('/');
    let at = '';
    for (const part of parts) {
      at = at === '' ? part : `${at}/${part}`;
      const node = this.nodes.get(at);
      if (node === undefined) {
        this.set(at, { type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: this.sourceDateEpoch, xattrs: new Map(), linkname: '', devmajor: 0, devminor: 0, size: 0 }, index);
      } else if (node.type === 'symlink') {
        throw layerError('E_LAYER_UNSUPPORTED', name, `its parent ${JSON.stringify(displayName(at))} is a symlink in the same layer; the builder does not follow links while unpacking: use --builder engine`);
      } else if (node.type !== 'dir') {
        throw layerError('E_LAYER_INVALID', name, `its parent ${JSON.stringify(displayName(at))} is not a directory; the engine fails on this layer too (not a directory)`);
      }
    }
  }

  apply(entry: TarEntry, index: number): void {
    const { path: target, kind } = DiffTree.pathOf(entry);
    if (kind === 'root') return;
    const rawPath = goClean(entry.name).replace(/^\/+/, '');
    this.ensureParent(entry.name, rawPath, index);
    const dir = parentOf(rawPath);
    if (kind === 'opaque') {
      const parent = dir === '' ? undefined : this.nodes.get(dir);
      if (dir !== '' && parent?.type !== 'dir') throw layerError('E_LAYER_INVALID', entry.name, 'an opaque marker whose parent is not a directory');
      // An opaque marker at the root marks the diff root itself: the engine sets the xattr there.
      if (parent) parent.xattrs.set(OPAQUE_XATTR, Buffer.from('y'));
      else this.rootOpaque = true;
      return;
    }
    if (kind === 'whiteout') {
      if (this.nodes.has(target)) {
        throw layerError('E_LAYER_INVALID', entry.name, `it whites out ${JSON.stringify(displayName(target))}, which the same layer already created; the engine fails on it (mknod: file exists)`);
      }
      if (this.nodes.has(rawPath)) this.removeTree(rawPath);
      this.set(target, { type: 'chardev', mode: 0, uid: entry.uid, gid: entry.gid, mtime: this.sourceDateEpoch, xattrs: new Map(), linkname: '', devmajor: 0, devminor: 0, size: 0 }, index);
      return;
    }
    const path = target;
    const existing = this.nodes.get(path);
    if (existing && existing.type === 'dir' && entry.type === 'dir') {
      existing.mode = entry.mode;
      existing.uid = entry.uid;
      existing.gid = entry.gid;
      existing.mtime = entry.mtime;
      for (const [k, v] of entry.xattrs) existing.xattrs.set(k, v);
      return;
    }
    if (existing) this.removeTree(path);
    if (entry.type === 'hardlink') {
      this.applyHardLink(entry, path, index);
      return;
    }
    const node: Inode = {
      type: entry.type,
      mode: entry.type === 'symlink' ? 0o777 : entry.mode & 0o7777,
      uid: entry.uid,
      gid: entry.gid,
      mtime: entry.mtime,
      xattrs: new Map(entry.xattrs),
      linkname: entry.type === 'symlink' ? entry.linkname : '',
      devmajor: entry.devmajor,
      devminor: entry.devminor,
      size: entry.type === 'file' ? entry.size : entry.type === 'symlink' ? entry.linkname.length : 0,
      ...(entry.type === 'file' ? { source: index } : {}),
    };
    this.set(path, node, index);
  }

  private applyHardLink(entry: TarEntry, path: string, index: number): void {
    const cleanedTarget = goClean(entry.linkname);
    if (cleanedTarget === '..' || cleanedTarget.startsWith('../')) {
      throw layerError('E_LAYER_INVALID', entry.name, 'a hard link whose target leaves the layer root; the engine refuses it too');
    }
    const target = cleanedTarget.replace(/^\/+/, '');
    const inode = this.nodes.get(target);
    if (inode === undefined) {
      throw layerError('E_LAYER_INVALID', entry.name, `a hard link to ${JSON.stringify(displayName(entry.linkname))}, which this layer does not hold; the engine fails on it too (link: no such file)`);
    }
    if (inode.type === 'dir') throw layerError('E_LAYER_INVALID', entry.name, 'a hard link to a directory; the engine fails on it too');
    this.set(path, inode, index);
    applyLinkHeader(inode, entry);
  }

  /**
   * What the engine records as the layer's size (layerdb `size`): the sum of the sizes of
   * non-directories, each inode once (its directory.Size walks the diff dir).
   */
  size(): number {
    const seen = new Set<Inode>();
    let total = 0;
    for (const node of this.nodes.values()) {
      if (node.type === 'dir' || seen.has(node)) continue;
      seen.add(node);
      total += node.size;
    }
    return total;
  }
}

/**
 * What the engine's untar does to an inode when a hard link header names it: Lchown (the kernel
 * then drops security.capability on a non-directory), the header's xattrs, and (not for
 * symlinks) its mode and mtime. Shared by the overlay2 diff tree and the vfs full tree.
 */
export function applyLinkHeader(inode: Inode, entry: Pick<TarEntry, 'uid' | 'gid' | 'xattrs' | 'mode' | 'mtime'>): void {
  inode.xattrs.delete('security.capability');
  inode.uid = entry.uid;
  inode.gid = entry.gid;
  for (const [k, v] of entry.xattrs) inode.xattrs.set(k, v);
  if (inode.type !== 'symlink') {
    inode.mode = entry.mode & 0o7777;
    inode.mtime = entry.mtime;
  }
}
