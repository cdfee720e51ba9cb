/**
 * The file tree built from tar entries: paths normalised and checked, implicit parent
 * directories created, hard links resolved to shared inodes. Only metadata lives here;
 * file content is already in the image (FileData says where).
 */
import { InputError } from '../../errors.js';
import { badLinkError, duplicateError, notUnderDirectoryError, unsafePathError } from '../errors.js';
import type { FileData } from './data.js';
import { E_TAR_UNSUPPORTED } from '../../formats/tar/index.js';

export type NodeKind = 'file' | 'dir' | 'symlink' | 'chardev' | 'blockdev' | 'fifo' | 'socket';

export interface Node {
  kind: NodeKind;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  xattrs: Map<string, Buffer> | null;
  /** Directory entries naming this inode (hard links); directories compute theirs. */
  links: number;
  data?: FileData;
  /** Symlink target (binary string). */
  target?: string;
  rdev?: number;
  /** Directories: name (binary string) -> node. */
  children?: Map<string, Node>;
  /** Directories: named by an entry of the tar (not only implied by a child's path). */
  explicit?: boolean;
  /** Assigned when the image's tables are written. */
  number: number;
  ref: number;
}

export interface NodeMeta {
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  xattrs: Map<string, Buffer> | null;
}

const MAX_NAME = 256;

/** A binary-string name as text for messages (UTF-8 decoded). */
export function shown(name: string): string {
  return Buffer.from(name, 'latin1').toString('utf8');
}

/** Splits a tar name into path components; [] is the root. */
export function normalizePath(raw: string): string[] {
  if (raw.startsWith('/')) throw unsafePathError(shown(raw));
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  for (const part of parts) {
    if (part === '..') throw unsafePathError(shown(raw));
    if (part.length > MAX_NAME) {
      throw new InputError(E_TAR_UNSUPPORTED, `tar entry ${JSON.stringify(shown(raw))} has a name component longer than ${MAX_NAME} bytes; SquashFS cannot store it`, {
        details: { entry: shown(raw) },
      });
    }
  }
  return parts;
}

export function newNode(kind: NodeKind, meta: NodeMeta): Node {
  return { kind, ...meta, links: 1, number: 0, ref: -1 };
}

export class Tree {
  readonly root: Node;
  private readonly sdeMtime: number;

  constructor(sourceDateEpoch: number) {
    this.sdeMtime = sourceDateEpoch;
    this.root = this.implicitDir();
  }

  private implicitDir(): Node {
    const dir = newNode('dir', { mode: 0o755, uid: 0, gid: 0, mtime: this.sdeMtime, xattrs: null });
    dir.children = new Map();
    dir.explicit = false;
    return dir;
  }

  /** The parent directory of `parts`, creating missing ones (0755, root, SOURCE_DATE_EPOCH). */
  private parentOf(parts: string[], raw: string): Node {
    let dir = this.root;
    for (let i = 0; i < parts.length - 1; i++) {
      let next = dir.children!.get(parts[i]!);
      if (next === undefined) {
        next = this.implicitDir();
        dir.children!.set(parts[i]!, next);
      } else if (next.kind !== 'dir') {
        throw notUnderDirectoryError(shown(raw), shown(parts.slice(0, i + 1).join('/')));
      }
      dir = next;
    }
    return dir;
  }

  /**
   * Checks that an entry can be added at `raw` (not a duplicate): call before reading its
   * content. Returns a function that adds the node.
   */
  prepare(raw: string, kind: NodeKind): (node: Node) => void {
    const parts = normalizePath(raw);
    if (parts.length === 0) {
      if (kind !== 'dir') throw new InputError(E_TAR_UNSUPPORTED, `the root entry ${JSON.stringify(shown(raw))} is not a directory`, { details: { entry: shown(raw) } });
      if (this.root.explicit) throw duplicateError(shown(raw));
      return (node) => {
        Object.assign(this.root, { mode: node.mode, uid: node.uid, gid: node.gid, mtime: node.mtime, xattrs: node.xattrs, explicit: true });
      };
    }
    const parent = this.parentOf(parts, raw);
    const name = parts[parts.length - 1]!;
    const existing = parent.children!.get(name);
    if (existing !== undefined) {
      if (!(existing.kind === 'dir' && !existing.explicit && kind === 'dir')) throw duplicateError(shown(raw));
      return (node) => {
        Object.assign(existing, { mode: node.mode, uid: node.uid, gid: node.gid, mtime: node.mtime, xattrs: node.xattrs, explicit: true });
      };
    }
    return (node) => {
      if (kind === 'dir') {
        node.children = new Map();
        node.explicit = true;
      }
      parent.children!.set(name, node);
    };
  }

  /** Adds a hard link at `raw` to the earlier entry `target`. */
  link(raw: string, target: string): void {
    let targetParts: string[];
    try {
      targetParts = normalizePath(target);
    } catch (error) {
      throw badLinkError(shown(raw), shown(target), 'the target is outside the image', { cause: error });
    }
    let node: Node | undefined = this.root;
    for (const part of targetParts) node = node?.children?.get(part);
    if (node === undefined) throw badLinkError(shown(raw), shown(target), 'the target does not appear before the link');
    if (node.kind === 'dir') throw badLinkError(shown(raw), shown(target), 'the target is a directory');
    const add = this.prepare(raw, node.kind);
    node.links++;
    add(node);
  }
}
