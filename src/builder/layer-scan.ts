/**
 * Pass 1 over one uncompressed layer: its diff id, its tar-split (from the raw bytes, as
 * the engine's disassembler records them) and its unpacked tree (diff-tree.ts), in one read
 * of the stream. File content is checksummed and dropped, never kept.
 *
 * How tar-split cuts the stream (vbatts/tar-split's forked archive/tar with RawAccounting):
 * before each entry, one segment with everything since the previous file's content ended
 * (its padding, PAX/GNU meta entries, the header block); then the file entry; at the end a
 * segment with the padding and the two zero blocks, and the trailer (tar-split.ts).
 */
import { createHash } from 'node:crypto';
import { InputError } from '../errors.js';
import { Crc64 } from './crc64.js';
import { DiffTree } from './diff-tree.js';
import { BLOCK, TarInput, displayName, type TarEntry } from '../formats/tar/index.js';
import { TarSplitPacker, type TarSplitFlavour } from './tar-split.js';

/** Keeps the raw bytes the decoder pulled, from a mark on, so segments can be cut out. */
class RawRecorder implements AsyncIterable<Uint8Array> {
  private chunks: Buffer[] = [];
  /** Absolute offset of chunks[0]. */
  private base = 0;
  total = 0;
  private readonly hash = createHash('sha256');

  constructor(private readonly input: AsyncIterable<Uint8Array>) {}

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    for await (const value of this.input) {
      const chunk = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      this.hash.update(chunk);
      this.chunks.push(chunk);
      this.total += chunk.length;
      yield chunk;
    }
  }

  slice(from: number, to: number): Buffer {
    if (from < this.base) throw new Error(`raw bytes from ${from} were released (kept from ${this.base})`);
    const parts: Buffer[] = [];
    let at = this.base;
    for (const chunk of this.chunks) {
      const end = at + chunk.length;
      if (end > from && at < to) parts.push(chunk.subarray(Math.max(0, from - at), Math.min(chunk.length, to - at)));
      at = end;
      if (at >= to) break;
    }
    return Buffer.concat(parts);
  }

  /** Forgets whole chunks before `offset`. */
  release(offset: number): void {
    while (this.chunks.length > 0 && this.base + this.chunks[0]!.length <= offset) this.base += this.chunks.shift()!.length;
  }

  digest(): string {
    return `sha256:${this.hash.digest('hex')}`;
  }
}

/** What a storage driver makes of a layer's entries (overlay2: DiffTree; vfs: VfsTree). */
export interface LayerApplier {
  apply(entry: TarEntry, index: number): void;
  /** The engine's layer size (layerdb `size`) once every entry is applied. */
  size(): number;
}

export interface LayerScan<T extends LayerApplier = DiffTree> {
  /** sha256 of the uncompressed stream. */
  diffId: string;
  /** tar-split JSON lines, uncompressed. */
  tarSplit: Buffer;
  tree: T;
  /** The engine's layer size (layerdb `size`). */
  size: number;
  /** Bytes of the uncompressed stream (containers-storage `diff-size`). */
  length: number;
  /** Owners named by the layer's headers, whiteouts excepted, ascending (containers-storage `uidset`/`gidset`). */
  uids: number[];
  gids: number[];
}

export interface ScanOptions {
  flavour: TarSplitFlavour;
  sourceDateEpoch: number;
}

export async function scanLayer(input: AsyncIterable<Uint8Array>, options: ScanOptions): Promise<LayerScan>;
export async function scanLayer<T extends LayerApplier>(input: AsyncIterable<Uint8Array>, options: ScanOptions, tree: T): Promise<LayerScan<T>>;
export async function scanLayer(input: AsyncIterable<Uint8Array>, options: ScanOptions, applier?: LayerApplier): Promise<LayerScan<LayerApplier>> {
  const recorder = new RawRecorder(input);
  const tar = new TarInput(recorder);
  const packer = new TarSplitPacker(options.flavour);
  const tree = applier ?? new DiffTree(options.sourceDateEpoch);
  let segmentStart = 0;
  const uids = new Set<number>();
  const gids = new Set<number>();
  for (let index = 0; ; index++) {
    const headerStart = tar.position;
    const entry = await tar.next();
    if (entry === null) {
      const end = recorder.total;
      const eofEnd = Math.min(headerStart + 2 * BLOCK, end);
      const second = recorder.slice(headerStart + BLOCK, eofEnd);
      if (second.some((b) => b !== 0)) {
        throw new InputError('E_LAYER_INVALID', 'the layer has a zero block followed by a header: the engine refuses such a tar (invalid tar header)');
      }
      packer.segment(recorder.slice(segmentStart, eofEnd));
      packer.trailer(recorder.slice(eofEnd, end));
      break;
    }
    if (entry.sparse) {
      throw new InputError('E_LAYER_UNSUPPORTED', `layer entry ${JSON.stringify(displayName(entry.name))} is a sparse file; the builder does not write sparse layers yet: use --builder engine`);
    }
    const headerEnd = tar.position;
    packer.segment(recorder.slice(segmentStart, headerEnd));
    let crc: Buffer | undefined;
    if (entry.type === 'file' && entry.size > 0) {
      const sum = new Crc64();
      for await (const piece of tar.data()) sum.update(piece);
      crc = sum.digest();
    } else {
      await tar.skipData();
      // Go's archive/tar (the engine's and tar-split's reader) reads no data after a header-only
      // entry whatever its size field says; tar-split keeps the size and `docker save` then
      // writes the target's content into the stream. Neither reading can be reproduced faithfully.
      if (tar.position !== headerEnd) {
        throw new InputError('E_LAYER_UNSUPPORTED', `layer entry ${JSON.stringify(displayName(entry.name))} is a ${entry.type} with a non-zero size; the engine reads it differently from its writer and cannot \`docker save\` it: use --builder engine, or rebuild the image`);
      }
    }
    packer.file(entry.name, entry.type === 'file' ? entry.size : 0, crc);
    segmentStart = headerEnd + (entry.type === 'file' ? entry.size : 0);
    recorder.release(segmentStart);
    tree.apply(entry, index);
    if (!entry.name.replace(/\/+$/, '').split('/').at(-1)!.startsWith('.wh.')) {
      uids.add(entry.uid);
      gids.add(entry.gid);
    }
  }
  const ascending = (ids: Set<number>): number[] => [...ids].sort((a, b) => a - b);
  return { diffId: recorder.digest(), tarSplit: packer.toBuffer(), tree, size: tree.size(), length: recorder.total, uids: ascending(uids), gids: ascending(gids) };
}
