/**
 * One layer's `vfs/dir/<id>` as dockerd 20.10's vfs driver leaves it, computed without writing
 * anything: the parent's full tree copied, then the layer applied. Rules, each as the engine
 * does it (moby v20.10: vfs Create = graphdriver/copy DirCopy; the
 * NaiveDiffDriver's ApplyDiff = pkg/archive UnpackLayer, AUFS whiteouts, no converter):
 *   copy    every inode with its mode, owner and times; of the xattrs only security.capability
 *           and trusted.overlay.opaque (DirCopy copyXattrs: true); regular files keep their
 *           hard-link groups, other hard-linked inodes become separate copies
 *   parents a missing parent is created with MkdirAll(0600): mode 0600, root:root
 *   .wh.X   X and its subtree removed (nothing happens when X is absent); no file written
 *   opaque  `.wh..wh..opq` removes everything under its dir that this layer has not unpacked
 *           so far (walking into the unpacked dirs too)
 *   replace an existing path is removed and replaced, except a dir over a dir (merged)
 *   .wh..wh.* other AUFS metadata at the top: skipped (its parent still created)
 *   mtimes  a dir whose entries this layer adds or removes gets the bake's time (the engine's
 *           "now", SOURCE_DATE_EPOCH after the engine path's clamp); the layer's own dir
 *           entries get their header times at the end, as UnpackLayer's last loop does;
 *           the layer dir itself always has the bake's time
 *   links   a hard link's Lchown drops security.capability from the inode (the kernel does on
 *           any chown), then the link header's owner, xattrs, mode and mtime apply
 *   size    layerdb `size` is UnpackLayer's count: the sum of every header's size
 * Content is not held: a file records which layer's entry holds its bytes.
 */
import { InputError } from '../errors.js';
import { displayName, type TarEntry } from '../formats/tar/index.js';
import type { Inode } from './diff-tree.js';
import { applyLinkHeader, parentOf } from './diff-tree.js';
import { goClean } from './tar-split.js';

/** An inode of a vfs tree; a file's content is entry `source` of layer `layer`'s blob. */
export interface VfsInode extends Inode {
  layer?: number;
}

const WHITEOUT_PREFIX = '.wh.';
const WHITEOUT_META_PREFIX = '.wh..wh.';
const OPAQUE = '.wh..wh..opq';
const AUFS_LINK_DIR = '.wh..wh.plnk';
/** What graphdriver/copy's doCopyXattrs copies. */
const COPIED_XATTRS = new Set(['security.capability', 'trusted.overlay.opaque']);

function layerError(code: string, name: string, what: string): InputError {
  return new InputError(code, `layer entry ${JSON.stringify(displayName(name))}: ${what}`, { details: { entry: displayName(name) } });
}

const dirNode = (mode: number, mtime: number): VfsInode => ({ type: 'dir', mode, uid: 0, gid: 0, mtime, xattrs: new Map(), linkname: '', devmajor: 0, devminor: 0, size: 0 });

export class VfsTree {
  /** Path -> inode; the root is "" (its metadata is the layer dir's). Hard links share an inode. */
  readonly nodes = new Map<string, VfsInode>();
  private readonly unpacked = new Set<string>();
  private readonly dirTimes: Array<[string, number, string]> = [];
  private headerBytes = 0;

  private constructor(
    private readonly layer: number,
    private readonly sourceDateEpoch: number,
  ) {}

  /** The first layer's tree: an empty 0755 root dir. */
  static base(sourceDateEpoch: number): VfsTree {
    const tree = new VfsTree(0, sourceDateEpoch);
    tree.nodes.set('', dirNode(0o755, sourceDateEpoch));
    return tree;
  }

  /** The tree the next layer starts from: DirCopy of this one (only regular files stay hard-linked). */
  child(): VfsTree {
    const tree = new VfsTree(this.layer + 1, this.sourceDateEpoch);
    const copies = new Map<VfsInode, VfsInode>();
    for (const [path, node] of this.nodes) {
      let copy = node.type === 'file' ? copies.get(node) : undefined;
      if (copy === undefined) {
        copy = { ...node, xattrs: new Map([...node.xattrs].filter(([k]) => COPIED_XATTRS.has(k))) };
        if (node.type === 'file') copies.set(node, copy);
      }
      tree.nodes.set(path, copy);
    }
    return tree;
  }

  /** layerdb `size` of this layer: UnpackLayer's sum of header sizes. */
  size(): number {
    return this.headerBytes;
  }

  private touch(dir: string): void {
    const node = this.nodes.get(dir);
    if (node?.type === 'dir') node.mtime = this.sourceDateEpoch;
  }

  /** RemoveAll: the path and its subtree; its parent's mtime changes when something was there. */
  private removeAll(path: string): void {
    if (!this.nodes.has(path)) return;
    const prefix = `${path}/`;
    for (const key of [...this.nodes.keys()]) if (key === path || key.startsWith(prefix)) this.nodes.delete(key);
    this.touch(parentOf(path));
  }

  private ensureParent(name: string, path: string): void {
    const parent = parentOf(path);
    if (parent === '' || this.nodes.get(parent)?.type === 'dir') return;
    let at = '';
    for (const part of parent.split('/')) {
      const next = at === '' ? part : `${at}/${part}`;
      const node = this.nodes.get(next);
      if (node === undefined) {
        this.touch(at);
        this.nodes.set(next, dirNode(0o600, this.sourceDateEpoch));
      } else if (node.type !== 'dir') {
        throw this.parentError(name, next, node);
      }
      at = next;
    }
  }

  private parentError(name: string, at: string, node: VfsInode): InputError {
    return node.type === 'symlink'
      ? layerError('E_LAYER_UNSUPPORTED', name, `its parent ${JSON.stringify(displayName(at))} is a symlink; the builder does not follow links while unpacking: use --builder engine`)
      : layerError('E_LAYER_INVALID', name, `its parent ${JSON.stringify(displayName(at))} is not a directory; the engine fails on this layer too (not a directory)`);
  }

  apply(entry: TarEntry, index: number): void {
    this.headerBytes += entry.size;
    const cleaned = goClean(entry.name);
    if (cleaned === '/' || cleaned === '..' || cleaned.startsWith('../')) {
      throw layerError('E_LAYER_INVALID', entry.name, 'the name leaves the layer root; the engine refuses it too (breakout)');
    }
    const path = cleaned === '.' ? '' : cleaned.replace(/^\/+/, '');
    if (path === '') {
      if (entry.type !== 'dir') throw layerError('E_LAYER_INVALID', entry.name, 'the layer root is not a directory');
      this.mergeDir('', entry);
      return;
    }
    this.ensureParent(entry.name, path);
    const aufsLink = (p: string): boolean => p === AUFS_LINK_DIR || p.startsWith(`${AUFS_LINK_DIR}/`);
    if ((aufsLink(path) && entry.type === 'file') || (entry.type === 'hardlink' && aufsLink(goClean(entry.linkname).replace(/^\/+/, '')))) {
      throw layerError('E_LAYER_UNSUPPORTED', entry.name, 'an AUFS hard-link entry (.wh..wh.plnk); the builder does not write AUFS-era layers: use --builder engine');
    }
    // Other AUFS metadata at the top is skipped (after its parent was made, as the engine does).
    if (path.startsWith(WHITEOUT_META_PREFIX) && path !== OPAQUE) return;
    const base = path.slice(path.lastIndexOf('/') + 1);
    if (base.startsWith(WHITEOUT_PREFIX)) {
      const dir = parentOf(path);
      if (base === OPAQUE) this.opaque(dir);
      else if (base === WHITEOUT_PREFIX) throw layerError('E_LAYER_INVALID', entry.name, 'a whiteout without a name');
      else this.removeAll(`${dir === '' ? '' : `${dir}/`}${base.slice(WHITEOUT_PREFIX.length)}`);
      return;
    }
    if (entry.type === 'hardlink') {
      const target = goClean(entry.linkname).replace(/^\/+/, '');
      if (target === '..' || target.startsWith('../')) throw layerError('E_LAYER_INVALID', entry.name, 'a hard link whose target leaves the layer root; the engine refuses it too');
    }
    const existing = this.nodes.get(path);
    if (existing && existing.type === 'dir' && entry.type === 'dir') {
      this.mergeDir(path, entry);
      this.unpacked.add(path);
      return;
    }
    if (existing) this.removeAll(path);
    if (entry.type === 'hardlink') this.link(entry, path);
    else this.create(entry, path, index);
    this.touch(parentOf(path));
    if (entry.type === 'dir') this.dirTimes.push([path, entry.mtime, entry.name]);
    this.unpacked.add(path);
  }

  private mergeDir(path: string, entry: TarEntry): void {
    const node = this.nodes.get(path)!;
    node.mode = entry.mode & 0o7777;
    node.uid = entry.uid;
    node.gid = entry.gid;
    for (const [k, v] of entry.xattrs) node.xattrs.set(k, v);
    this.dirTimes.push([path, entry.mtime, entry.name]);
  }

  private create(entry: TarEntry, path: string, index: number): void {
    if (entry.type === 'hardlink') return;
    this.nodes.set(path, {
      type: entry.type,
      mode: entry.type === 'symlink' ? 0o777 : entry.mode & 0o7777,
      uid: entry.uid,
      gid: entry.gid,
      mtime: entry.type === 'dir' ? this.sourceDateEpoch : entry.mtime,
      xattrs: new Map(entry.xattrs),
      linkname: entry.type === 'symlink' ? entry.linkname : '',
      devmajor: entry.devmajor,
      devminor: entry.devminor,
      size: entry.type === 'file' ? entry.size : 0,
      ...(entry.type === 'file' ? { source: index, layer: this.layer } : {}),
    });
  }

  /** os.Link then Lchown, Lsetxattr, Chmod and Chtimes on the link (not for a symlink target), as createTarFile does. */
  private link(entry: TarEntry, path: string): void {
    const target = goClean(entry.linkname).replace(/^\/+/, '');
    const inode = this.nodes.get(target);
    if (inode === undefined) {
      throw layerError('E_LAYER_INVALID', entry.name, `a hard link to ${JSON.stringify(displayName(entry.linkname))}, which the layer stack does not hold; the engine fails on it too (link: no such file)`);
    }
    if (inode.type === 'dir') throw layerError('E_LAYER_INVALID', entry.name, 'a hard link to a directory; the engine fails on it too');
    this.nodes.set(path, inode);
    applyLinkHeader(inode, entry);
  }

  /** Walk(dir): everything below it not unpacked by this layer goes, unpacked dirs are walked into. */
  private opaque(dir: string): void {
    const prefix = dir === '' ? '' : `${dir}/`;
    const below = [...this.nodes.keys()].filter((p) => p !== '' && p.startsWith(prefix) && p !== dir).sort();
    for (const path of below) {
      if (!this.nodes.has(path) || this.unpacked.has(path)) continue;
      this.removeAll(path);
    }
  }

  /**
   * UnpackLayer's last loop: the layer's dir entries get their own mtimes. The layer dir itself
   * then gets the bake's time whatever its entry says: the engine's applyLayer makes and removes
   * its temp dir ("temp-docker-extract") in the root it unpacked into.
   */
  finish(): void {
    for (const [path, mtime, name] of this.dirTimes) {
      const node = this.nodes.get(path);
      if (node === undefined) throw layerError('E_LAYER_INVALID', name, 'a directory the same layer removes again; the engine fails on it (chtimes: no such file)');
      node.mtime = mtime;
    }
    this.nodes.get('')!.mtime = this.sourceDateEpoch;
  }
}

/** Component-wise byte order (GNU tar --sort=name): a dir's entries right after it. */
export function compareTreePaths(a: string, b: string): number {
  const pa = a.split('/');
  const pb = b.split('/');
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    if (pa[i] !== pb[i]) return pa[i]! < pb[i]! ? -1 : 1;
  }
  return pa.length - pb.length;
}

