import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { pack, type Header } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { useTempDir } from '../../fixtures/temp-dir.js';
import { compareTarPaths, indexTarFile, normalizeTar } from '../../../src/formats/tar/index.js';
import { readTarHeaders } from '../../integration/bake-archive.helpers.js';

type Entry = { header: Partial<Header> & { name: string }; content?: Buffer };

async function writeTar(path: string, entries: Entry[]): Promise<void> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise((resolve) => p.on('end', () => resolve(undefined)));
  for (const e of entries) await new Promise<void>((resolve, reject) => p.entry(e.header as Header, e.content ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve())));
  p.finalize();
  await done;
  await writeFile(path, Buffer.concat(chunks));
}

const LONG = `${'d'.repeat(80)}/${'f'.repeat(90)}.tar`;
const volatile = (n: number) => ({ mtime: new Date(1_234_567_000 + n * 1000), uid: 1000 + n, gid: 2000 + n, uname: 'builder', gname: 'staff' });

function entries(): Entry[] {
  return [
    { header: { name: 'manifest.json', size: 2, ...volatile(1), pax: { atime: '1234.5', ctime: '4321.5' } }, content: Buffer.from('[]') },
    { header: { name: 'abc/layer.tar', size: 5, mode: 0o644, ...volatile(2) }, content: Buffer.from('layer') },
    { header: { name: 'abc/', type: 'directory', mode: 0o755, ...volatile(3) } },
    { header: { name: LONG, size: 4, ...volatile(4) }, content: Buffer.from('long') },
    { header: { name: 'abc/VERSION', size: 0, ...volatile(5) } },
    { header: { name: 'def/layer.tar', type: 'symlink', linkname: '../abc/layer.tar', mode: 0, ...volatile(6) } },
    { header: { name: 'def', type: 'directory', ...volatile(7) } },
  ];
}

describe('indexTarFile and normalizeTar', () => {
  const temp = useTempDir('ctrbake-tar-');

  it('indexes names (ustar prefix and PAX paths), types, sizes and data offsets', async () => {
    await writeTar(join(temp.path(), 'a.tar'), entries());
    const index = await indexTarFile(join(temp.path(), 'a.tar'));
    expect(index.map((e) => [e.name, e.type, e.size])).toEqual([
      ['manifest.json', 'file', 2],
      ['abc/layer.tar', 'file', 5],
      ['abc', 'dir', 0],
      [LONG, 'file', 4],
      ['abc/VERSION', 'file', 0],
      ['def/layer.tar', 'symlink', 0],
      ['def', 'dir', 0],
    ]);
    const bytes = await readFile(join(temp.path(), 'a.tar'));
    const long = index.find((e) => e.name === LONG)!;
    expect(bytes.subarray(long.offset, long.offset + 4).toString()).toBe('long');
  });

  it('reads GNU long names written by GNU tar', async () => {
    const src = join(temp.path(), 'src');
    await mkdir(join(src, 'd'.repeat(120)), { recursive: true });
    await writeFile(join(src, 'd'.repeat(120), 'x'.repeat(110)), 'gnu');
    await execa('tar', ['--format=gnu', '-cf', join(temp.path(), 'gnu.tar'), '-C', src, '.']);
    const names = (await indexTarFile(join(temp.path(), 'gnu.tar'))).map((e) => e.name);
    expect(names).toContain(`${'d'.repeat(120)}/${'x'.repeat(110)}`);
  });

  it('normalizes: sorted parents first, mtime fixed, owner 0/0 without names, no PAX times, content and modes kept', async () => {
    await writeTar(join(temp.path(), 'a.tar'), entries());
    await normalizeTar(join(temp.path(), 'a.tar'), join(temp.path(), 'n.tar'), 1_600_000_000);
    const headers = await readTarHeaders(join(temp.path(), 'n.tar'));
    const names = headers.map((h) => h.name.replace(/\/$/, ''));
    expect(names).toEqual(['abc', 'abc/VERSION', 'abc/layer.tar', LONG.split('/')[0]!, LONG, 'def', 'def/layer.tar', 'manifest.json'].filter((n) => n !== LONG.split('/')[0]));
    expect([...names].sort(compareTarPaths)).toEqual(names);
    for (const h of headers) {
      expect(h).toMatchObject({ mtime: 1_600_000_000, uid: 0, gid: 0, uname: '', gname: '' });
      expect(Object.keys(h.pax ?? {}).filter((k) => k.includes('time'))).toEqual([]);
    }
    const index = await indexTarFile(join(temp.path(), 'n.tar'));
    const bytes = await readFile(join(temp.path(), 'n.tar'));
    const content = (name: string) => {
      const e = index.find((x) => x.name === name)!;
      return bytes.subarray(e.offset, e.offset + e.size).toString();
    };
    expect(content('abc/layer.tar')).toBe('layer');
    expect(content(LONG)).toBe('long');
    expect(index.find((e) => e.name === 'def/layer.tar')).toMatchObject({ type: 'symlink', linkname: '../abc/layer.tar', mode: 0o777 });
  });

  it('gives the same bytes for the same content in any order with any volatile metadata', async () => {
    const a = entries();
    const b = entries()
      .reverse()
      .map((e, i) => ({ ...e, header: { ...e.header, ...volatile(i + 40) } }));
    await writeTar(join(temp.path(), 'a.tar'), a);
    await writeTar(join(temp.path(), 'b.tar'), b);
    await normalizeTar(join(temp.path(), 'a.tar'), join(temp.path(), 'na.tar'), 7);
    await normalizeTar(join(temp.path(), 'b.tar'), join(temp.path(), 'nb.tar'), 7);
    const hash = async (p: string) => createHash('sha256').update(await readFile(p)).digest('hex');
    expect(await hash(join(temp.path(), 'a.tar'))).not.toBe(await hash(join(temp.path(), 'b.tar')));
    expect(await hash(join(temp.path(), 'na.tar'))).toBe(await hash(join(temp.path(), 'nb.tar')));
  });

  it.each([
    ['a device node', [{ header: { name: 'dev', type: 'character-device', devmajor: 1, devminor: 3 } }], /unsupported entry type/],
    ['a duplicate entry', [{ header: { name: 'x', size: 1 }, content: Buffer.from('1') }, { header: { name: 'x', size: 1 }, content: Buffer.from('2') }], /appears twice/],
    ['a hard link sorted before its target', [{ header: { name: 'b', size: 1 }, content: Buffer.from('1') }, { header: { name: 'a', type: 'link', linkname: 'b' } }], /hard link a would come before/],
    ['an unsafe path', [{ header: { name: '../escape', size: 0 } }], /unsafe entry name/],
  ] as [string, Entry[], RegExp][])('rejects %s with E_ARCHIVE_INVALID', async (_what, list, message) => {
    await writeTar(join(temp.path(), 'bad.tar'), list);
    await expect(normalizeTar(join(temp.path(), 'bad.tar'), join(temp.path(), 'out.tar'), 0)).rejects.toMatchObject({ code: 'E_ARCHIVE_INVALID', message: expect.stringMatching(message) });
  });

  it('rejects a truncated or corrupt file', async () => {
    await writeTar(join(temp.path(), 'a.tar'), entries());
    const bytes = await readFile(join(temp.path(), 'a.tar'));
    await writeFile(join(temp.path(), 'cut.tar'), bytes.subarray(0, 700));
    await expect(indexTarFile(join(temp.path(), 'cut.tar'))).rejects.toMatchObject({ code: 'E_ARCHIVE_INVALID' });
    const corrupt = Buffer.from(bytes);
    corrupt[10] = corrupt[10]! ^ 0xff;
    await writeFile(join(temp.path(), 'corrupt.tar'), corrupt);
    await expect(indexTarFile(join(temp.path(), 'corrupt.tar'))).rejects.toMatchObject({ code: 'E_ARCHIVE_INVALID', message: expect.stringContaining('checksum') });
  });
});
