/**
 * One pass over an uncompressed layer tar: counts what it unpacks to (unpacked-model.ts) and
 * hashes every regular file's content on the way, for duplicate detection across layers.
 */
import { createHash } from 'node:crypto';
import { TarInput, type TarEntry, type TarEntryType } from '../formats/tar/index.js';
import { TarSplitSizer } from './tar-split-size.js';
import type { LayerReport } from './types.js';
import { directoryBytes, roundUp, symlinkBytes } from './unpacked-model.js';

export interface ScannedFile {
  /** Path inside the layer, no leading "./" or "/" (binary string: one char per byte). */
  path: string;
  size: number;
  /** sha256 hex of the content. */
  sha256: string;
}

/** The fields a layer's report takes from its scan are documented on LayerReport. */
export interface LayerScan
  extends Pick<LayerReport, 'tarBytes' | 'unpackedBytes' | 'fileBytes' | 'files' | 'directories' | 'symlinks' | 'tarSplitBytes' | 'tarSplitExact'> {
  hardlinks: number;
  /** Devices and fifos (overlay whiteouts are character devices 0/0). */
  specials: number;
  /** `.wh.*` entries (AUFS-style whiteouts as registries store them). */
  whiteouts: number;
  /** Regular files with content (size > 0), for duplicate detection. */
  contents: ScannedFile[];
}

interface Node {
  type: TarEntryType;
  size: number;
  linkLength: number;
  sha256?: string;
}

export function normalizeName(name: string): string {
  let p = name.replace(/\/+/g, '/');
  while (p.startsWith('./')) p = p.slice(2);
  p = p.replace(/^\/+/, '').replace(/\/+$/, '');
  if (p === '.') p = '';
  return p.replace(/\/\.$/, '');
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i === -1 ? '' : path.slice(0, i);
}

function baseOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Collects one layer's entries (from a layer tar, or a layer dir inside a store tar). */
export class LayerScanner {
  private readonly nodes = new Map<string, Node>();
  tarBytes = 0;

  /** `path` relative to the layer root, normalized; `sha256` of the content for files with data. */
  add(path: string, entry: Pick<TarEntry, 'type' | 'size' | 'linkname'>, sha256?: string): void {
    if (path === '' && entry.type === 'dir') return;
    this.nodes.set(path, {
      type: entry.type,
      size: entry.type === 'file' ? entry.size : 0,
      linkLength: Buffer.byteLength(entry.linkname, 'latin1'),
      ...(sha256 ? { sha256 } : {}),
    });
  }

  finish(blockSize: number): LayerScan {
    const nodes = this.nodes;
    // Every directory (named or implied by a path) with the names of its entries.
    const children = new Map<string, string[]>([['', []]]);
    const addDir = (dir: string): void => {
      if (children.has(dir)) return;
      children.set(dir, []);
      addDir(parentOf(dir));
      children.get(parentOf(dir))!.push(baseOf(dir));
    };
    for (const [path, node] of nodes) {
      if (path !== '' && node.type === 'dir') addDir(path);
    }
    for (const [path, node] of nodes) {
      if (path === '' || node.type === 'dir') continue;
      addDir(parentOf(path));
      children.get(parentOf(path))!.push(baseOf(path));
    }
    const scan: LayerScan = {
      tarBytes: this.tarBytes,
      unpackedBytes: 0,
      fileBytes: 0,
      files: 0,
      directories: children.size,
      symlinks: 0,
      hardlinks: 0,
      specials: 0,
      whiteouts: 0,
      contents: [],
    };
    for (const names of children.values()) scan.unpackedBytes += directoryBytes(names.map((n) => n.length), blockSize);
    for (const [path, node] of nodes) {
      if (baseOf(path).startsWith('.wh.')) scan.whiteouts++;
      switch (node.type) {
        case 'file':
          scan.files++;
          scan.fileBytes += node.size;
          scan.unpackedBytes += roundUp(node.size, blockSize);
          if (node.sha256) scan.contents.push({ path, size: node.size, sha256: node.sha256 });
          break;
        case 'symlink':
          scan.symlinks++;
          scan.unpackedBytes += symlinkBytes(node.linkLength, blockSize);
          break;
        case 'hardlink':
          scan.hardlinks++;
          break;
        case 'dir':
          break;
        default:
          scan.specials++;
      }
    }
    return scan;
  }
}

/** sha256 hex of the current entry's data (consumes it). */
export async function hashEntryData(reader: TarInput): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of reader.data()) hash.update(chunk);
  return hash.digest('hex');
}

export async function scanLayerTar(source: AsyncIterable<Uint8Array>, blockSize: number): Promise<LayerScan> {
  const scanner = new LayerScanner();
  const tarSplit = new TarSplitSizer();
  const counted = (async function* () {
    for await (const chunk of source) {
      scanner.tarBytes += chunk.byteLength;
      tarSplit.write(chunk);
      yield chunk;
    }
  })();
  const reader = new TarInput(counted);
  try {
    for (let entry = await reader.next(); entry; entry = await reader.next()) {
      const path = normalizeName(entry.name);
      if (entry.type === 'file' && entry.size > 0) {
        scanner.add(path, entry, await hashEntryData(reader));
      } else {
        await reader.skipData();
        scanner.add(path, entry);
      }
    }
  } finally {
    await reader.close();
  }
  return { ...scanner.finish(blockSize), tarSplitBytes: await tarSplit.finish() };
}
