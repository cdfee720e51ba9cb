/**
 * tar-split regenerated from the uncompressed layer: reassembled from the JSON lines and the
 * files the builder wrote (what `docker save` does), it gives back the layer byte for byte.
 */
import { describe, expect, it } from 'vitest';
import { goClean, goJsonString, parseTarSplit, reassembleTarSplit, type TarSplitFlavour } from '../../../src/builder/tar-split.js';
import { encodeHeader, endOfArchive } from '../../../src/formats/tar/index.js';
import { randomTree, tarBuffer, type TreeEntry } from '../../fixtures/tars.js';
import { diffEntries, scan, sha256 } from './layer.helpers.js';

const LAYER: TreeEntry[] = [
  { type: 'dir', path: 'etc', mode: 0o755 },
  { type: 'file', path: 'etc/hosts', content: Buffer.from('127.0.0.1 localhost\n') },
  { type: 'file', path: 'etc/empty' },
  { type: 'file', path: `etc/${'long-name-'.repeat(15)}`, content: { kind: 'random', size: 5000, seed: 3 } },
  { type: 'hardlink', path: 'etc/hosts.link', target: 'etc/hosts' },
  { type: 'symlink', path: 'etc/sym', target: 'hosts' },
  { type: 'file', path: 'etc/.wh.gone', uid: 1 },
  { type: 'file', path: 'opt/.wh..wh..opq' },
  { type: 'file', path: 'bin/caps', mode: 0o4755, content: Buffer.from('cap'), xattrs: { 'security.capability': Buffer.alloc(20, 1) } },
  { type: 'file', path: 'bin/ünïcödé', content: Buffer.from('utf-8 name') },
];

/** The layer rebuilt from tar-split and the diff the builder wrote for it. */
async function reassembled(layer: Buffer, flavour: TarSplitFlavour): Promise<{ bytes: Buffer; lines: string[] }> {
  const scanned = await scan(layer, flavour);
  const files = new Map<string, Buffer>();
  const read = await diffEntries(layer, scanned, '');
  const byName = new Map(read.map((r) => [r.entry.name.replace(/\/$/, ''), r]));
  for (const r of read) {
    const target = r.entry.type === 'hardlink' ? byName.get(r.entry.linkname)! : r;
    files.set(r.entry.name.replace(/\/$/, ''), target.content);
  }
  const parts: Buffer[] = [];
  const entries = parseTarSplit(scanned.tarSplit.toString('utf8'));
  for await (const part of reassembleTarSplit(entries, async (name) => {
    const content = files.get(goClean(name).replace(/^\/+/, ''));
    if (!content) throw new Error(`no file ${name}`);
    return content;
  })) parts.push(part);
  return { bytes: Buffer.concat(parts), lines: scanned.tarSplit.toString('utf8').trimEnd().split('\n') };
}

describe('tar-split from the uncompressed layer', () => {
  it.each<TarSplitFlavour>(['tar-split-0.11.1', 'tar-split-0.11.5'])('reassembles a layer with PAX, long names, links, whiteouts to its diff id (%s)', async (flavour) => {
    const layer = await tarBuffer(LAYER);
    const scanned = await scan(layer, flavour);
    expect(scanned.diffId).toBe(sha256(layer));
    const { bytes } = await reassembled(layer, flavour);
    expect(sha256(bytes)).toBe(scanned.diffId);
  });

  it('reassembles GNU long names, libarchive xattrs and a ./ prefix byte for byte', async () => {
    const layer = await tarBuffer(LAYER, { prefix: './', longNames: 'gnu', xattrEncoding: 'libarchive', root: { mode: 0o755 } });
    expect(sha256((await reassembled(layer, 'tar-split-0.11.1')).bytes)).toBe(sha256(layer));
  });

  it('reassembles a seeded random tree (seed printed)', async () => {
    const seed = 20261202;
    console.log(`tar-split random tree seed ${seed}`);
    const tree = randomTree({ seed, entries: 60 });
    const layer = await tarBuffer(tree.entries);
    expect(sha256((await reassembled(layer, 'tar-split-0.11.5')).bytes)).toBe(sha256(layer));
  });

  it('keeps what follows the end-of-archive blocks (a tar record padded to 10240 bytes)', async () => {
    const plain = await tarBuffer(LAYER.slice(0, 3));
    const layer = Buffer.concat([plain, Buffer.alloc(10240 - (plain.length % 10240))]);
    for (const flavour of ['tar-split-0.11.1', 'tar-split-0.11.5'] as const) {
      expect(sha256((await reassembled(layer, flavour)).bytes)).toBe(sha256(layer));
    }
  });

  it('ends with an empty segment for 20.10 (tar-split 0.11.1) and without it for 26+ (0.11.5)', async () => {
    const layer = await tarBuffer(LAYER.slice(0, 2));
    const old = (await reassembled(layer, 'tar-split-0.11.1')).lines;
    const recent = (await reassembled(layer, 'tar-split-0.11.5')).lines;
    expect(old.at(-1)).toBe(`{"type":2,"payload":"","position":${old.length - 1}}`);
    expect(old.slice(0, -1)).toEqual(recent);
  });

  it('writes the lines as the engine does: segments, then file entries with size, crc64 and position', async () => {
    const layer = await tarBuffer([{ type: 'file', path: 'a<b', content: Buffer.from('123456789') }, { type: 'dir', path: 'd' }]);
    const lines = (await reassembled(layer, 'tar-split-0.11.1')).lines;
    expect(lines[1]).toBe(`{"type":1,"name":"a\\u003cb","size":9,"payload":"${Buffer.from('b90956c775a41001', 'hex').toString('base64')}","position":1}`);
    expect(lines[3]).toBe('{"type":1,"name":"d/","payload":null,"position":3}');
    expect(JSON.parse(lines[2]!)).toMatchObject({ type: 2, position: 2 });
    // The segment before "d/" holds the padding of a<b's content and d/'s header block.
    expect(Buffer.from(JSON.parse(lines[2]!).payload as string, 'base64').length).toBe(503 + 512);
  });

  it('names a non-UTF-8 entry name_raw (base64 of its bytes) for 20.10 and 26+ alike, as dockerd 20.10 does (random oracle)', async () => {
    // The fixture writer encodes names as UTF-8: the project's encoder takes raw bytes.
    const header = encodeHeader({ path: Buffer.from([0x6e, 0xff]).toString('latin1'), type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, linkname: '', devmajor: 0, devminor: 0, xattrs: new Map(), mtime: 0 });
    const layer = Buffer.concat([header, endOfArchive()]);
    for (const flavour of ['tar-split-0.11.1', 'tar-split-0.11.5'] as const) {
      expect((await reassembled(layer, flavour)).lines[1]).toContain(`"name_raw":"${Buffer.from([0x6e, 0xff]).toString('base64')}"`);
    }
    expect(goJsonString(Buffer.from('\u2028&\x01'))).toBe('"\\u2028\\u0026\\u0001"');
  });
});
