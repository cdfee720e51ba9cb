/**
 * Bad tar input, every backend: a clear error code, and no output (nor temp file) left.
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSquashfs, type SquashfsBackendName } from '../../src/squashfs/index.js';
import { CtrbakeError } from '../../src/errors.js';
import { tarBuffer, tarStream, type TarOptions, type TreeEntry } from '../fixtures/tars.js';
import { Mounts } from './squashfs-oracle.js';

const f = (path: string, content = 'x'): TreeEntry => ({ type: 'file', path, content: Buffer.from(content) });

interface BadCase {
  name: string;
  code: string;
  tar: () => Promise<Buffer>;
}

/** Changes the typeflag of the header at `offset` and fixes its checksum. */
function setTypeflag(buf: Buffer, offset: number, flag: string): void {
  buf.write(flag, offset + 156, 'latin1');
  buf.fill(0x20, offset + 148, offset + 156);
  let sum = 0;
  for (let i = offset; i < offset + 512; i++) sum += buf[i];
  buf.write(`${sum.toString(8).padStart(6, '0')}\0 `, offset + 148, 'latin1');
}

const tar = (entries: TreeEntry[], options: TarOptions = {}) => () => tarBuffer(entries, options);

const CASES: BadCase[] = [
  { name: 'a ".." component', code: 'E_TAR_UNSAFE_PATH', tar: tar([f('ok'), f('../evil')]) },
  { name: 'a ".." in the middle that climbs out', code: 'E_TAR_UNSAFE_PATH', tar: tar([f('a/../../evil')]) },
  { name: 'an absolute path', code: 'E_TAR_UNSAFE_PATH', tar: tar([f('/etc/evil')]) },
  { name: 'an entry under a symlink', code: 'E_TAR_UNSAFE_PATH', tar: tar([{ type: 'symlink', path: 'link', target: '/etc' }, f('link/passwd')]) },
  { name: 'the same file twice', code: 'E_TAR_DUPLICATE', tar: tar([f('dup'), f('dup', 'y')]) },
  { name: 'the same path twice once with "./"', code: 'E_TAR_DUPLICATE', tar: tar([f('dup'), f('./dup')]) },
  { name: 'a file then a directory of the same name', code: 'E_TAR_DUPLICATE', tar: tar([f('x'), { type: 'dir', path: 'x' }]) },
  { name: 'a directory declared twice', code: 'E_TAR_DUPLICATE', tar: tar([{ type: 'dir', path: 'd' }, { type: 'dir', path: 'd' }]) },
  { name: 'a hard link to a path never seen', code: 'E_TAR_BAD_LINK', tar: tar([{ type: 'hardlink', path: 'l', target: 'nowhere' }]) },
  { name: 'a hard link to a later entry', code: 'E_TAR_BAD_LINK', tar: tar([{ type: 'hardlink', path: 'l', target: 'later' }, f('later')]) },
  { name: 'a hard link outside the root', code: 'E_TAR_BAD_LINK', tar: tar([f('a'), { type: 'hardlink', path: 'l', target: '../a' }]) },
  { name: 'a hard link to a directory', code: 'E_TAR_BAD_LINK', tar: tar([{ type: 'dir', path: 'd' }, { type: 'hardlink', path: 'l', target: 'd' }]) },
  {
    name: 'a stream cut inside file data',
    code: 'E_TAR_TRUNCATED',
    tar: async () => (await tarBuffer([f('a'), { type: 'file', path: 'big', content: { kind: 'random', size: 300_000, seed: 1 } }])).subarray(0, 1024 + 512 + 100_000),
  },
  { name: 'a stream cut inside a header', code: 'E_TAR_TRUNCATED', tar: async () => (await tarBuffer([f('a'), f('b')])).subarray(0, 1024 + 200) },
  { name: 'a stream without an end-of-archive marker', code: 'E_TAR_TRUNCATED', tar: tar([f('a'), f('b')], { noEnd: true }) },
  { name: 'an empty stream', code: 'E_TAR_TRUNCATED', tar: async () => Buffer.alloc(0) },
  {
    name: 'a header with a bad checksum',
    code: 'E_TAR_CORRUPT',
    tar: async () => {
      const buf = await tarBuffer([f('a'), f('b')]);
      buf[1024 + 10] ^= 0xff;
      return buf;
    },
  },
  { name: 'a name component over 256 bytes', code: 'E_TAR_UNSUPPORTED', tar: tar([f(`d/${'n'.repeat(257)}`)]) },
  { name: 'an xattr outside user/trusted/security', code: 'E_TAR_UNSUPPORTED', tar: tar([{ type: 'file', path: 'f', xattrs: { 'system.posix_acl_access': 'x' } }]) },
  {
    name: 'a multi-volume continuation entry',
    code: 'E_TAR_UNSUPPORTED',
    tar: async () => {
      const buf = await tarBuffer([f('a'), f('b')]);
      setTypeflag(buf, 1024, 'M');
      return buf;
    },
  },
  { name: 'random bytes', code: 'E_TAR_CORRUPT', tar: async () => Buffer.from('this is not a tar archive at all'.repeat(40)) },
];

const BACKENDS: SquashfsBackendName[] = ['builtin', 'tar2sqfs', 'sqfstar'];
const mounts = new Mounts();
let work: string;
beforeAll(async () => {
  work = await mounts.tempDir();
});
afterAll(async () => {
  await mounts.releaseAll();
});

describe.each(BACKENDS)('%s refuses bad input', (backend) => {
  it.each(CASES)('$name -> $code, no file left', async ({ name, code, tar: make }) => {
    const dir = join(work, `${backend}-${CASES.findIndex((c) => c.name === name)}`);
    await mkdir(dir);
    const input = join(dir, 'in.tar');
    await writeFile(input, await make());
    const error = await createSquashfs({ input, outPath: join(dir, 'out.sqfs'), backend, sourceDateEpoch: 1 }).then(
      () => null,
      (e: unknown) => e as { code?: string; message?: string },
    );
    expect(error, 'the backend must refuse this tar').not.toBeNull();
    expect({ code: error!.code, message: error!.message }).toMatchObject({ code });
    expect(String(error!.message).length).toBeGreaterThan(20);
    expect(await readdir(dir)).toEqual(['in.tar']);
  });
});

describe.each(BACKENDS)('%s stops when aborted', (backend) => {
  it('rejects with the abort reason and leaves no file', async () => {
    const dir = join(work, `abort-${backend}`);
    await mkdir(dir);
    const controller = new AbortController();
    const entries: TreeEntry[] = Array.from({ length: 400 }, (_, i) => ({ type: 'file', path: `f${i}`, content: { kind: 'random', size: 50_000, seed: i } }));
    let chunks = 0;
    // A slow producer, like a pipe from `docker save`: aborted half way.
    async function* slow() {
      for await (const chunk of tarStream(entries)) {
        if (++chunks === 200) controller.abort(new CtrbakeError('E_INTERRUPTED', 'interrupted by the test'));
        await new Promise((r) => setTimeout(r, 2));
        yield chunk;
      }
    }
    await expect(createSquashfs({ input: slow(), outPath: join(dir, 'out.sqfs'), backend, sourceDateEpoch: 1, signal: controller.signal })).rejects.toMatchObject({
      code: 'E_INTERRUPTED',
    });
    expect(chunks).toBeLessThan(800);
    expect(await readdir(dir)).toEqual([]);
  });
});
