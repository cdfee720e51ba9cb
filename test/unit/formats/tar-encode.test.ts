import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { execa } from 'execa';
import { pack, type Header } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { useTempDir } from '../../fixtures/temp-dir.js';
import { binaryString, encodeTar, TarInput, writeTarFile, type TarWriteEntry } from '../../../src/formats/tar/index.js';

async function collect(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of source) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

/** tar-stream as an independent oracle: what bake's archives were written with before the codec. */
async function tarStreamBytes(entries: Array<{ header: Partial<Header> & { name: string }; content?: Buffer }>): Promise<Buffer> {
  const p = pack();
  const out = collect(p as AsyncIterable<Buffer>);
  for (const e of entries) await new Promise<void>((resolve, reject) => p.entry(e.header as Header, e.content ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve())));
  p.finalize();
  return out;
}

async function decodeAll(bytes: Buffer) {
  const tar = new TarInput(Readable.from([bytes]));
  const out = [];
  for (let e = await tar.next(); e !== null; e = await tar.next()) {
    const data = e.type === 'file' ? await collect(tar.data()) : Buffer.alloc(0);
    out.push({ ...e, data: data.toString('latin1') });
  }
  return out;
}

describe('encodeTar', () => {
  const temp = useTempDir('ctrbake-tar-encode-');

  it('writes the same bytes tar-stream wrote for the entries of docker and OCI archives', async () => {
    const mtime = 1_600_000_000;
    const ours = await collect(
      encodeTar([
        { path: 'blobs', type: 'dir', mode: 0o755, mtime },
        { path: 'blobs/sha256/abc', type: 'file', mode: 0o644, mtime, size: 5, content: Buffer.from('layer') },
        { path: 'def/layer.tar', type: 'symlink', mode: 0o777, mtime, linkname: '../blobs/sha256/abc' },
        { path: 'hard', type: 'hardlink', mode: 0o644, mtime, linkname: 'blobs/sha256/abc' },
        { path: 'manifest.json', type: 'file', mode: 0o600, mtime, size: 2, content: Readable.from([Buffer.from('['), Buffer.from(']')]) },
      ]),
    );
    const date = new Date(mtime * 1000);
    const common = { uid: 0, gid: 0, uname: '', gname: '', mtime: date };
    const theirs = await tarStreamBytes([
      { header: { ...common, name: 'blobs', type: 'directory', mode: 0o755 } },
      { header: { ...common, name: 'blobs/sha256/abc', type: 'file', mode: 0o644, size: 5 }, content: Buffer.from('layer') },
      { header: { ...common, name: 'def/layer.tar', type: 'symlink', mode: 0o777, linkname: '../blobs/sha256/abc' } },
      { header: { ...common, name: 'hard', type: 'link', mode: 0o644, linkname: 'blobs/sha256/abc' } },
      { header: { ...common, name: 'manifest.json', type: 'file', mode: 0o600, size: 2 }, content: Buffer.from('[]') },
    ]);
    expect(ours.equals(theirs)).toBe(true);
  });

  it('round-trips every entry type, long names and links, large ids and xattrs through the decoder and GNU tar', async () => {
    const longName = `${'d'.repeat(90)}/${'é'.repeat(30)}`;
    const longLink = `../${'t'.repeat(150)}`;
    const entries: TarWriteEntry[] = [
      { path: '', type: 'dir', mode: 0o755 },
      { path: 'dev', type: 'dir', mode: 0o755, uid: 3_000_000, gid: 9, mtime: 42 },
      { path: 'dev/null', type: 'chardev', mode: 0o666, devmajor: 1, devminor: 3 },
      { path: 'dev/sda', type: 'blockdev', mode: 0o660, devmajor: 8, devminor: 0 },
      { path: 'dev/fifo', type: 'fifo', mode: 0o644 },
      { path: binaryString(longName), type: 'file', mode: 0o4755, size: 3, content: Buffer.from('abc'), xattrs: new Map([['user.note', Buffer.from('hi')]]) },
      { path: 'long-link', type: 'symlink', mode: 0o777, linkname: longLink },
      { path: 'hard', type: 'hardlink', mode: 0o644, linkname: binaryString(longName) },
    ];
    for (const gnuLongLinks of [false, true]) {
      const bytes = await collect(encodeTar(entries, { gnuLongLinks }));
      const decoded = await decodeAll(bytes);
      expect(decoded.map((e) => [e.name, e.type, e.mode, e.uid, e.gid, e.mtime, e.size, e.linkname, e.devmajor, e.devminor, e.data])).toEqual([
        ['./', 'dir', 0o755, 0, 0, 0, 0, '', 0, 0, ''],
        ['dev', 'dir', 0o755, 3_000_000, 9, 42, 0, '', 0, 0, ''],
        ['dev/null', 'chardev', 0o666, 0, 0, 0, 0, '', 1, 3, ''],
        ['dev/sda', 'blockdev', 0o660, 0, 0, 0, 0, '', 8, 0, ''],
        ['dev/fifo', 'fifo', 0o644, 0, 0, 0, 0, '', 0, 0, ''],
        [binaryString(longName), 'file', 0o4755, 0, 0, 0, 3, '', 0, 0, 'abc'],
        ['long-link', 'symlink', 0o777, 0, 0, 0, 0, longLink, 0, 0, ''],
        ['hard', 'hardlink', 0o644, 0, 0, 0, 0, binaryString(longName), 0, 0, ''],
      ]);
      expect(decoded[5]!.xattrs.get('user.note')?.toString()).toBe('hi');
      await writeFile(join(temp.path(), 'a.tar'), bytes);
      const { stdout } = await execa('tar', ['-tvf', join(temp.path(), 'a.tar')], { env: { LC_ALL: 'C.UTF-8' } });
      expect(stdout).toContain(`${longName}\n`);
      expect(stdout).toContain(`long-link -> ${longLink}`);
      expect(stdout).toMatch(/^c.* dev\/null$/m);
    }
  });

  it('writes a file with writeTarFile that GNU tar extracts', async () => {
    await writeTarFile(join(temp.path(), 'b.tar'), [{ path: 'x/y.txt', type: 'file', mode: 0o640, size: 4, content: Buffer.from('text') }]);
    await execa('tar', ['-xf', join(temp.path(), 'b.tar'), '-C', temp.path()]);
    expect(await readFile(join(temp.path(), 'x/y.txt'), 'utf8')).toBe('text');
  });

  it.each([
    ['more', Buffer.from('12345')],
    ['fewer', Buffer.from('123')],
    ['fewer', undefined],
  ])('refuses content with %s bytes than the header says (E_TAR_CORRUPT)', async (word, content) => {
    const run = collect(encodeTar([{ path: 'f', type: 'file', mode: 0o644, size: 4, ...(content ? { content } : {}) }]));
    await expect(run).rejects.toMatchObject({ code: 'E_TAR_CORRUPT', message: expect.stringContaining(`has ${word} bytes than the 4`) });
  });
});
