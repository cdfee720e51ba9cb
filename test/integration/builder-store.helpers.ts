/**
 * For the builder's oracle tests: a store.tar read as a tree (every property overlay and
 * the engine use), compared path by path; and a store.tar rewritten with one item broken.
 * Read with the project's tar decoder (it keeps xattrs and device numbers, which Node's
 * fs cannot see).
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { TarInput, encodeHeader, endOfArchive, padding, type TarEntry } from '../../src/formats/tar/index.js';

export interface StoreNode {
  type: string;
  mode: string;
  owner: string;
  mtime: number;
  rdev: string;
  link: string;
  xattrs: string;
  size: number;
  sha256: string;
}

export interface StoreTree {
  nodes: Map<string, StoreNode>;
  /** Names sharing an inode, each group sorted, groups sorted. */
  hardLinkGroups: string[][];
}

/**
 * The documented mask (docs/builder.md): tar-split (docker's tar-split.json.gz, podman's
 * <layer id>.tar-split.gz) is compared gunzipped (gzip bytes
 * depend on the compressor's level and version, the engine reads the JSON), adjacent raw
 * segments of docker's merged (mergedSegments); and
 * image/<driver>/distribution/ is left out of the engine-path comparison (the engine path
 * loads archives, which record no registry metadata; the builder writes what a pull writes,
 * compared with a real pull in builder-engine-checks.test.ts). Nothing else is masked: the
 * builder and the engine path's normalizer derive the same ids from the chain ids.
 */
export const DISTRIBUTION = /^image\/[^/]+\/distribution\/./;

export function maskedContent(name: string, content: Buffer): Buffer {
  if (name.endsWith('.tar-split.gz')) return gunzipSync(content);
  return name.endsWith('/tar-split.json.gz') ? mergedSegments(gunzipSync(content)) : content;
}

/**
 * tar-split with adjacent raw segments merged (positions renumbered): how the bytes after the
 * end-of-archive blocks are cut into segments depends on how the engine's gzip reader returned
 * them (20.10 adds an empty segment when EOF came on a read of its own: found on the bench
 * set's record-padded layers); `docker save` reassembles the same stream either way. Every
 * file entry and every raw byte is still compared, in order.
 */
function mergedSegments(jsonLines: Buffer): Buffer {
  const out: Array<Record<string, unknown>> = [];
  for (const line of jsonLines.toString('utf8').split('\n')) {
    if (line === '') continue;
    const entry = JSON.parse(line) as { type: number; payload?: string | null; position?: number };
    const last = out.at(-1);
    if (entry.type === 2 && last?.type === 2) {
      last.payload = Buffer.concat([Buffer.from(String(last.payload ?? ''), 'base64'), Buffer.from(entry.payload ?? '', 'base64')]).toString('base64');
      continue;
    }
    out.push({ ...entry, position: out.length });
  }
  return Buffer.from(out.map((e) => JSON.stringify(e)).join('\n'));
}

export async function readStoreTree(tarFile: string): Promise<StoreTree> {
  const tar = new TarInput(createReadStream(tarFile));
  const nodes = new Map<string, StoreNode>();
  const links = new Map<string, string>();
  for (;;) {
    const entry = await tar.next();
    if (entry === null) break;
    const name = entry.name.replace(/^\.\//, '').replace(/\/$/, '');
    const parts: Buffer[] = [];
    for await (const piece of tar.data()) parts.push(Buffer.from(piece));
    if (entry.type === 'hardlink') {
      links.set(name, entry.linkname.replace(/^\.\//, ''));
      continue;
    }
    const content = maskedContent(name, Buffer.concat(parts));
    nodes.set(name, {
      type: entry.type,
      mode: entry.mode.toString(8),
      owner: `${entry.uid}:${entry.gid}`,
      mtime: entry.mtime,
      rdev: `${entry.devmajor}:${entry.devminor}`,
      link: entry.type === 'symlink' ? entry.linkname : '',
      xattrs: [...entry.xattrs].map(([k, v]) => `${k}=${v.toString('hex')}`).sort().join(','),
      size: content.length,
      sha256: createHash('sha256').update(content).digest('hex'),
    });
  }
  const groups = new Map<string, string[]>();
  for (const [name, target] of links) {
    const node = nodes.get(target);
    if (!node) throw new Error(`${tarFile}: hard link ${name} -> ${target}, which the tar does not hold before it`);
    nodes.set(name, node);
    groups.set(target, [...(groups.get(target) ?? [target]), name]);
  }
  return { nodes, hardLinkGroups: [...groups.values()].map((g) => g.sort()).sort() };
}

/** Paths whose properties differ between two stores (or that only one holds), with both sides. */
export function storeDifferences(a: StoreTree, b: StoreTree): string[] {
  const out: string[] = [];
  for (const name of [...new Set([...a.nodes.keys(), ...b.nodes.keys()])].sort()) {
    if (DISTRIBUTION.test(name)) continue;
    const x = JSON.stringify(a.nodes.get(name) ?? null);
    const y = JSON.stringify(b.nodes.get(name) ?? null);
    if (x !== y) out.push(`${name}\n  engine:  ${x}\n  builder: ${y}`);
  }
  if (JSON.stringify(a.hardLinkGroups) !== JSON.stringify(b.hardLinkGroups)) {
    out.push(`hard-link groups\n  engine:  ${JSON.stringify(a.hardLinkGroups)}\n  builder: ${JSON.stringify(b.hardLinkGroups)}`);
  }
  return out;
}

/** What a rewrite does to one entry: keep it, drop it, or put these entries (with content) instead. */
export type Rewrite = (entry: TarEntry, content: Buffer) => 'keep' | 'drop' | Array<{ entry: TarEntry; content: Buffer }>;

/** Copies a store.tar with some entries replaced (a broken store for negative tests). */
export async function rewriteStoreTar(from: string, to: string, rewrite: Rewrite): Promise<void> {
  async function* entries(): AsyncGenerator<Buffer> {
    const tar = new TarInput(createReadStream(from));
    for (;;) {
      const entry = await tar.next();
      if (entry === null) break;
      const parts: Buffer[] = [];
      for await (const piece of tar.data()) parts.push(Buffer.from(piece));
      const content = Buffer.concat(parts);
      const decision = rewrite(entry, content);
      const out = decision === 'keep' ? [{ entry, content }] : decision === 'drop' ? [] : decision;
      for (const item of out) {
        yield encodeHeader({ ...item.entry, path: item.entry.name.replace(/\/$/, ''), size: item.entry.type === 'file' ? item.content.length : 0 });
        if (item.entry.type === 'file') {
          yield item.content;
          yield padding(item.content.length);
        }
      }
    }
    yield endOfArchive();
  }
  await pipeline(Readable.from(entries()), createWriteStream(to));
}
