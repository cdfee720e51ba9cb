/**
 * The validating pass in front of the host tools: reads any tar (ustar, GNU, PAX), refuses
 * what would escape the image or be ambiguous with the same error codes as the builtin
 * writer, and writes one canonical tar stream that tar2sqfs and sqfstar both read right:
 * normalised names (no "./", no "//"), no owner names, xattrs as SCHILY.xattr.* records
 * (LIBARCHIVE.xattr.* decoded), no data on non-regular entries, mtimes clamped to 32 bits.
 */
import { InputError } from '../../errors.js';
import { badLinkError, duplicateError, notUnderDirectoryError, unsafePathError } from '../errors.js';
import { displayName, E_TAR_UNSUPPORTED, encodeHeader, endOfArchive, padding, TarInput, type TarEntry, type TarHeader } from '../../formats/tar/index.js';

/** The only xattr namespaces SquashFS stores (and the Linux kernel reads back). */
export const SQUASHFS_XATTR_PREFIXES = ['user.', 'trusted.', 'security.'] as const;

export interface NormalizeOptions {
  /** Name of the backend, for messages. */
  backend: string;
  /**
   * Write an explicit directory entry (0755, root:root, mtime `defaultMtime`) before the
   * first entry inside a directory the tar never declared (sqfstar makes its own
   * non-reproducible ones); a declaration that comes later is then refused.
   */
  explicitParents: boolean;
  /** The root entry is not written; the caller reads it from `root` (sqfstar takes it as options). */
  omitRoot: boolean;
  /** Refuse GNU/PAX sparse entries (the canonical stream does not carry sparse maps). */
  refuseSparse: boolean;
  defaultMtime: number;
  /** Write link targets over 100 bytes as GNU long links (see formats/tar/encode.ts). */
  gnuLongLinks?: boolean;
  /** A backend's own refusals, run on every entry (root included). */
  checkEntry?: (entry: TarEntry, path: string) => void;
  /** Called with the count of input bytes consumed, now and then. */
  onBytes?: (bytes: number) => void;
}

export interface RootAttributes {
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  xattrs: Map<string, Buffer>;
}

export interface NormalizeSummary {
  entries: number;
  inputBytes: number;
}

/** Normalises a tar entry name; null when it escapes the root. "" is the root itself. */
export function normalizeTarPath(name: string): string | null {
  if (name.startsWith('/')) return null;
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') return null;
    parts.push(part);
  }
  return parts.join('/');
}

function unsupported(message: string, entry: string): InputError {
  return new InputError(E_TAR_UNSUPPORTED, message, { details: { entry: displayName(entry) } });
}

type Known = { kind: 'dir' | 'other'; implicit: boolean };

const MAX_DEV = 0o7777777;
/** SquashFS directory entries hold names of 1..256 bytes. */
const MAX_NAME = 256;
const MAX_MTIME = 0xffffffff;

export class TarNormalizer {
  private readonly reader: TarInput;
  private readonly options: NormalizeOptions;
  private readonly known = new Map<string, Known>([['', { kind: 'dir', implicit: true }]]);
  private first: TarEntry | null | undefined;
  private entries = 0;
  /** Attributes of the root entry when the tar's first entry is the root. */
  root: RootAttributes | null = null;

  constructor(source: AsyncIterable<Uint8Array>, options: NormalizeOptions) {
    this.reader = new TarInput(source);
    this.options = options;
  }

  /** Reads the first entry (so `root` is known before the consumer starts). */
  async start(): Promise<void> {
    if (this.first !== undefined) return;
    this.first = await this.reader.next();
    if (this.first && normalizeTarPath(this.first.name) === '') {
      const e = this.first;
      if (e.type !== 'dir') throw unsupported(`the root entry ${JSON.stringify(displayName(e.name))} is not a directory`, e.name);
      this.checkXattrs(e);
      this.root = { mode: e.mode, uid: e.uid, gid: e.gid, mtime: clampMtime(e.mtime), xattrs: e.xattrs };
    }
  }

  private checkXattrs(entry: TarEntry): void {
    this.options.checkEntry?.(entry, normalizeTarPath(entry.name) ?? '');
    for (const key of entry.xattrs.keys()) {
      if (!SQUASHFS_XATTR_PREFIXES.some((p) => key.startsWith(p))) {
        throw unsupported(
          `tar entry ${JSON.stringify(displayName(entry.name))} has xattr ${JSON.stringify(displayName(key))}; SquashFS stores only user.*, trusted.* and security.* xattrs, so drop it from the tar`,
          entry.name,
        );
      }
    }
  }

  private canonical(entry: TarEntry, path: string): TarHeader {
    const regular = entry.type === 'file';
    return {
      // Directories keep the trailing slash GNU tar writes; "" stays the root ("./").
      path: entry.type === 'dir' && path !== '' ? `${path}/` : path,
      type: entry.type,
      mode: entry.mode,
      uid: entry.uid,
      gid: entry.gid,
      mtime: clampMtime(entry.mtime),
      size: regular ? entry.size : 0,
      linkname: entry.type === 'hardlink' ? (normalizeTarPath(entry.linkname) ?? '') : entry.type === 'symlink' ? entry.linkname : '',
      devmajor: entry.devmajor,
      devminor: entry.devminor,
      xattrs: entry.type === 'hardlink' ? new Map() : entry.xattrs,
    };
  }

  /** Validates one entry against what came before; yields the parent dirs to write first. */
  private *admit(entry: TarEntry, path: string): Generator<Buffer> {
    const shown = displayName(entry.name);
    if (entry.sparse && this.options.refuseSparse) {
      throw unsupported(
        `tar entry ${JSON.stringify(shown)} is a sparse file; the ${this.options.backend} backend does not take sparse tar entries: use the builtin backend or re-create the tar without --sparse`,
        entry.name,
      );
    }
    this.checkXattrs(entry);
    if (entry.devmajor > MAX_DEV || entry.devminor > MAX_DEV) {
      throw unsupported(`device ${JSON.stringify(shown)} has a device number too large for a tar header`, entry.name);
    }
    if (path === '') {
      if (entry.type !== 'dir') throw unsupported(`the root entry ${JSON.stringify(shown)} is not a directory`, entry.name);
      const root = this.known.get('')!;
      if (!root.implicit) throw duplicateError(shown);
      if (this.entries > 0 && this.options.omitRoot) {
        throw unsupported(
          `the root entry ${JSON.stringify(shown)} is not the first entry of the tar; the ${this.options.backend} backend takes root attributes only from the first entry: put "./" first or use another backend`,
          entry.name,
        );
      }
      root.implicit = false;
      return;
    }
    const parts = path.split('/');
    const tooLong = parts.find((part) => part.length > MAX_NAME);
    if (tooLong !== undefined) {
      throw unsupported(`tar entry ${JSON.stringify(shown)} has a name component of ${tooLong.length} bytes; SquashFS names hold at most ${MAX_NAME} bytes`, entry.name);
    }
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      const known = this.known.get(parent);
      if (known) {
        if (known.kind !== 'dir') {
          throw notUnderDirectoryError(shown, displayName(parent));
        }
        continue;
      }
      this.known.set(parent, { kind: 'dir', implicit: true });
      if (this.options.explicitParents) {
        yield encodeHeader({
          path: `${parent}/`,
          type: 'dir',
          mode: 0o755,
          uid: 0,
          gid: 0,
          mtime: this.options.defaultMtime,
          size: 0,
          linkname: '',
          devmajor: 0,
          devminor: 0,
          xattrs: new Map(),
        });
      }
    }
    const existing = this.known.get(path);
    if (existing) {
      if (!(existing.implicit && existing.kind === 'dir' && entry.type === 'dir')) throw duplicateError(shown);
      if (this.options.explicitParents) {
        throw unsupported(
          `directory ${JSON.stringify(shown)} is declared after entries inside it; the ${this.options.backend} backend needs each directory before its content: re-create the tar in directory order or use another backend`,
          entry.name,
        );
      }
      existing.implicit = false;
      return;
    }
    if (entry.type === 'hardlink') {
      const target = normalizeTarPath(entry.linkname);
      if (target === null || target === '') throw badLinkError(shown, displayName(entry.linkname), 'the target escapes the image root');
      const known = this.known.get(target);
      if (!known) throw badLinkError(shown, displayName(entry.linkname), 'the target does not appear earlier in the tar');
      if (known.kind === 'dir') throw badLinkError(shown, displayName(entry.linkname), 'the target is a directory');
    }
    this.known.set(path, { kind: entry.type === 'dir' ? 'dir' : 'other', implicit: false });
  }

  /** The canonical stream. */
  async *output(): AsyncGenerator<Buffer> {
    await this.start();
    let lastReport = 0;
    try {
      for (let entry = this.first!; entry; entry = (await this.reader.next())!) {
        const path = normalizeTarPath(entry.name);
        if (path === null) throw unsafePathError(displayName(entry.name));
        yield* this.admit(entry, path);
        this.entries++;
        const skipRoot = path === '' && this.options.omitRoot;
        if (!skipRoot) yield encodeHeader(this.canonical(entry, path), { gnuLongLinks: this.options.gnuLongLinks });
        if (entry.type === 'file' && !skipRoot) {
          yield* this.reader.data();
          yield padding(entry.size);
        } else {
          await this.reader.skipData();
        }
        if (this.options.onBytes && this.reader.position - lastReport >= 4 * 1024 * 1024) {
          lastReport = this.reader.position;
          this.options.onBytes(lastReport);
        }
      }
      this.options.onBytes?.(this.reader.position);
      yield endOfArchive();
    } finally {
      await this.reader.close();
    }
  }

  summary(): NormalizeSummary {
    return { entries: this.entries, inputBytes: this.reader.position };
  }
}

function clampMtime(mtime: number): number {
  return Math.min(Math.max(mtime, 0), MAX_MTIME);
}
