/**
 * A seeded random layer stack for the builder's oracle tests: uncompressed layer tars written
 * with ctrbake's own tar encoder (binary names, any xattr bytes), so every run with the same
 * seed gives the same bytes. What the layers hold, chosen at random per layer:
 *   base: dirs with odd modes and owners, files (empty and not), setuid/setgid, xattrs
 *         (user.*, trusted.*, security.capability), symlinks, hard links, char/block devices,
 *         fifos, a name over 100 bytes, a non-UTF-8 name, sometimes the root entry "./"
 *   then: whiteouts of files and whole dirs of earlier layers, opaque dirs, files replaced,
 *         dirs re-stated with other modes, hard links to a file re-added from an earlier layer
 *         (a hard-link group spanning layers), entries whose parents the layer omits, deletes
 *         of what the previous layer added, and empty layers.
 * A layer never holds what the engine refuses (duplicate names, a whiteout of a name the same
 * layer made, a hard link to a name the layer lacks): the oracle compares stores, not errors.
 */
import { encodeHeader, endOfArchive, padding, type TarHeader } from '../src/formats/tar/index.js';
import { prng } from './seeded-random.js';


const CAP_NET_RAW_EP = Buffer.from('0100000200200000000000000000000000000000', 'hex');

type Kind = 'file' | 'dir' | 'other';

class LayerWriter {
  readonly parts: Buffer[] = [];
  readonly emitted = new Set<string>();
  /** Paths this layer created (never whited out by it). */
  readonly created = new Set<string>();

  constructor(
    private readonly model: Map<string, Kind>,
    private readonly rnd: () => number,
    private readonly omitParents: boolean,
  ) {}

  private int(n: number): number {
    return Math.floor(this.rnd() * n);
  }

  private header(path: string, fields: Partial<TarHeader> & Pick<TarHeader, 'type'>): TarHeader {
    return { path, mode: 0o644, uid: 0, gid: 0, size: 0, linkname: '', devmajor: 0, devminor: 0, xattrs: new Map(), mtime: 1_500_000_000 + this.int(100_000_000), ...fields };
  }

  private push(path: string, fields: Partial<TarHeader> & Pick<TarHeader, 'type'>, content?: Buffer): void {
    this.emitted.add(path);
    const h = this.header(fields.type === 'dir' && path !== '' ? `${path}/` : path, { ...fields, size: content?.length ?? 0 });
    this.parts.push(encodeHeader(h));
    if (content) this.parts.push(content, padding(content.length));
  }

  /** The parent dirs of `path`, as entries of this layer (unless the layer omits them: the engine implies them). */
  ensureParents(path: string): void {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (this.emitted.has(dir)) continue;
      if (this.model.get(dir) === 'dir' && this.omitParents) continue;
      if (this.model.get(dir) !== 'dir') this.removeModel(dir);
      this.push(dir, { type: 'dir', mode: 0o755 });
      this.model.set(dir, 'dir');
      this.created.add(dir);
    }
  }

  private removeModel(path: string): void {
    for (const key of [...this.model.keys()]) if (key === path || key.startsWith(`${path}/`)) this.model.delete(key);
  }

  /** A new entry (replacing what the path held). */
  add(path: string, fields: Partial<TarHeader> & Pick<TarHeader, 'type'>, content?: Buffer): boolean {
    if (this.emitted.has(path)) return false;
    this.ensureParents(path);
    if (this.model.get(path) !== 'dir' || fields.type !== 'dir') this.removeModel(path);
    this.push(path, fields, content);
    this.model.set(path, fields.type === 'dir' ? 'dir' : fields.type === 'file' ? 'file' : 'other');
    this.created.add(path);
    return true;
  }

  whiteout(path: string): boolean {
    const slash = path.lastIndexOf('/');
    const marker = `${path.slice(0, slash + 1)}.wh.${path.slice(slash + 1)}`;
    if (this.created.has(path) || this.emitted.has(marker) || this.emitted.has(path) || this.emittedBelow(path)) return false;
    this.ensureParents(path);
    this.push(marker, { type: 'file', mode: 0o644 });
    this.removeModel(path);
    return true;
  }

  private emittedBelow(path: string): boolean {
    for (const p of this.emitted) if (p.startsWith(`${path}/`)) return true;
    return false;
  }

  opaque(dir: string): boolean {
    if (this.emitted.has(`${dir}/.wh..wh..opq`) || this.created.has(dir) || this.emittedBelow(dir)) return false;
    if (!this.emitted.has(dir)) this.add(dir, { type: 'dir', mode: 0o755 });
    this.push(`${dir}/.wh..wh..opq`, { type: 'file', mode: 0o644 });
    for (const key of [...this.model.keys()]) if (key.startsWith(`${dir}/`)) this.model.delete(key);
    return true;
  }
}

export interface RandomStackOptions {
  /** Layers above the base; default 3..5 at random. */
  layers?: number;
}

/** The uncompressed layer tars of one random image, base first. */
export function randomLayerStack(seed: number, options: RandomStackOptions = {}): Buffer[] {
  const rnd = prng(seed);
  const int = (n: number): number => Math.floor(rnd() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(256)));
  const name = (): string => pick(['a', 'b', 'c', 'etc', 'lib', 'x y', 'k-1', 'z.conf', 'data', 'm']) + String(int(50));
  const model = new Map<string, Kind>();
  const layers: Buffer[] = [];
  const count = 1 + (options.layers ?? 3 + int(3));
  let previous = new Set<string>();

  const fileFields = (): Partial<TarHeader> & Pick<TarHeader, 'type'> => {
    const xattrs = new Map<string, Buffer>();
    if (rnd() < 0.2) xattrs.set('user.ctrbake', bytes(1 + int(20)));
    if (rnd() < 0.15) xattrs.set('trusted.ctrbake', bytes(1 + int(8)));
    if (rnd() < 0.1) xattrs.set('security.capability', CAP_NET_RAW_EP);
    return { type: 'file', mode: pick([0o644, 0o600, 0o755, 0o4755, 0o2755, 0o444]), uid: pick([0, 0, 1000, 65534]), gid: pick([0, 0, 100, 5678]), xattrs };
  };

  for (let l = 0; l < count; l++) {
    const w = new LayerWriter(model, rnd, l > 0 && rnd() < 0.4);
    if (l > 0 && rnd() < 0.15) {
      layers.push(endOfArchive());
      previous = new Set();
      continue;
    }
    if (l === 0) {
      if (rnd() < 0.5) w.add('', { type: 'dir', mode: 0o755 });
      for (const [dir, mode, uid] of [['d0', 0o755, 0], ['d1', 0o700, 1000], ['d2', 0o1777, 0], ['d3/sub', 0o750, 1234]] as const) {
        w.add(dir, { type: 'dir', mode, uid, gid: uid });
        for (let i = 0; i < 2 + int(4); i++) w.add(`${dir}/${name()}`, fileFields(), bytes(int(3000)));
      }
      w.add('d0/hard-target', fileFields(), bytes(100 + int(100)));
      w.add('d0/hard-link', { type: 'hardlink', linkname: 'd0/hard-target' });
      w.add('d1/symlink', { type: 'symlink', linkname: '../d0/hard-target', mode: 0o777 });
      w.add('d1/dangling', { type: 'symlink', linkname: '/nowhere/at/all', mode: 0o777 });
      w.add('dev/null', { type: 'chardev', mode: 0o666, devmajor: 1, devminor: 3 });
      w.add('dev/loop0', { type: 'blockdev', mode: 0o660, devmajor: 7, devminor: 0, gid: 6 });
      w.add('dev/fifo', { type: 'fifo', mode: 0o600 });
      w.add(`d2/${'long-name-'.repeat(12)}/${'f'.repeat(100 + int(50))}`, fileFields(), bytes(int(500)));
      w.add('d2/bin\xff\xfename', fileFields(), bytes(int(200)));
      w.add('empty-dir', { type: 'dir', mode: 0o711 });
    } else {
      const ops = 3 + int(6);
      for (let i = 0; i < ops; i++) {
        const existing = [...model.keys()].filter((p) => p !== '' && !p.includes('.wh.'));
        const files = existing.filter((p) => model.get(p) === 'file');
        const dirs = existing.filter((p) => model.get(p) === 'dir');
        switch (int(8)) {
          case 0:
            if (files.length) w.whiteout(pick(files));
            break;
          case 1:
            if (dirs.length) w.whiteout(pick(dirs));
            break;
          case 2:
            if (dirs.length) {
              const dir = pick(dirs);
              if (w.opaque(dir)) w.add(`${dir}/after-opaque-${l}`, fileFields(), bytes(int(300)));
            }
            break;
          case 3:
            if (files.length) w.add(pick(files), fileFields(), bytes(int(2000)));
            break;
          case 4:
            if (dirs.length) w.add(pick(dirs), { type: 'dir', mode: pick([0o700, 0o755, 0o775]), uid: pick([0, 1000]) });
            break;
          case 5: {
            // A file of an earlier layer re-added with a new hard link: one group across layers.
            const target = files.length ? pick(files) : undefined;
            if (target && !w.created.has(target) && w.add(target, fileFields(), bytes(int(400)))) {
              w.add(`${target}-link${l}`, { type: 'hardlink', linkname: target });
            }
            break;
          }
          case 6: {
            const gone = [...previous].filter((p) => model.has(p) && p !== '');
            if (gone.length) w.whiteout(pick(gone));
            break;
          }
          default: {
            const dir = dirs.length && rnd() < 0.7 ? pick(dirs) : `new${l}`;
            w.add(`${dir}/${name()}`, fileFields(), bytes(int(1500)));
          }
        }
      }
    }
    w.parts.push(endOfArchive());
    layers.push(Buffer.concat(w.parts));
    previous = w.created;
  }
  return layers;
}
