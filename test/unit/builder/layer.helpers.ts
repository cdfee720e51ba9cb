/** Shared by the builder's unit tests: scan a hand-made layer, read back the diff entries. */
import { createHash } from 'node:crypto';
import { scanLayer, type LayerScan } from '../../../src/builder/layer-scan.js';
import { writeDiffEntries } from '../../../src/builder/diff-writer.js';
import { TarInput, type TarEntry } from '../../../src/formats/tar/index.js';
import type { TarSplitFlavour } from '../../../src/builder/tar-split.js';

export const SDE = 1_600_000_000;

export async function* chunksOf(buffer: Buffer, size = 700): AsyncGenerator<Buffer> {
  for (let at = 0; at < buffer.length; at += size) yield buffer.subarray(at, at + size);
}

export function sha256(buffer: Buffer): string {
  return `sha256:${createHash('sha256').update(buffer).digest('hex')}`;
}

export function scan(layer: Buffer, flavour: TarSplitFlavour = 'tar-split-0.11.1'): Promise<LayerScan> {
  return scanLayer(chunksOf(layer), { flavour, sourceDateEpoch: SDE });
}

export interface ReadEntry {
  entry: TarEntry;
  content: Buffer;
}

/** Every entry of a tar stream, with its content. */
export async function readEntries(stream: AsyncIterable<Uint8Array>): Promise<ReadEntry[]> {
  const tar = new TarInput(stream);
  const out: ReadEntry[] = [];
  for (;;) {
    const entry = await tar.next();
    if (entry === null) return out;
    const parts: Buffer[] = [];
    for await (const piece of tar.data()) parts.push(Buffer.from(piece));
    out.push({ entry, content: Buffer.concat(parts) });
  }
}

/** The diff of a scanned layer as the builder writes it (pass 2), read back. */
export async function diffEntries(layer: Buffer, scanned: LayerScan, prefix = 'diff/'): Promise<ReadEntry[]> {
  async function* withEnd(): AsyncGenerator<Buffer> {
    yield* writeDiffEntries(scanned.tree, chunksOf(layer), prefix);
    yield Buffer.alloc(1024);
  }
  return readEntries(withEnd());
}
