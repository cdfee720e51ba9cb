/**
 * Image size against the host tools on a realistic input (issue 9: "output no larger than
 * any alternative's"): a tar of real binaries, libraries and documentation from this
 * machine's /usr, written by GNU tar, through builtin, tar2sqfs and sqfstar with gzip at
 * the same level and block size. Sizes only; times are in bench/squashfs.ts.
 *
 * builtin with gzipImplementation `canonical` (pako with zlib's hash): its data blocks
 * (file content outside fragments) are exactly as large as tar2sqfs's (both are canonical
 * zlib), and the image is no larger than either tool's. builtin's default gzip (node:zlib,
 * faster) is larger: +2.6 % on this input (guarded at 3 %). Both images mount and equal tar2sqfs's (sqfsdiff).
 */
import { execFile } from 'node:child_process';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSquashfs, type SquashfsBackendName } from '../../src/squashfs/index.js';
import { SquashfsReader, type SquashfsLayout } from '../../devkit/squashfs-reader.js';
import { pickHostFiles } from '../../devkit/host-files.js';
import { Mounts, sqfsdiff, treeFromDir } from './squashfs-oracle.js';

const exec = promisify(execFile);
const MiB = 1024 * 1024;
/** Sources and byte budgets: ELF binaries, shared libraries, text and small files. */
const SOURCES: Array<{ root: string; budget: number }> = [
  { root: '/usr/bin', budget: 10 * MiB },
  { root: '/usr/lib/x86_64-linux-gnu', budget: 10 * MiB },
  { root: '/usr/share/doc', budget: 3 * MiB },
];
const MIN_INPUT = 15 * MiB;
const MAX_FILE = 4 * MiB;

const mounts = new Mounts();
let work: string;
let tarBytes = 0;
const images: Partial<Record<string, { path: string; bytes: number; layout: SquashfsLayout }>> = {};

async function layout(path: string): Promise<SquashfsLayout> {
  const reader = await SquashfsReader.open(path);
  try {
    return reader.layout();
  } finally {
    reader.close();
  }
}

beforeAll(async () => {
  work = await mounts.tempDir('ctrbake-size-');
  const paths: string[] = [];
  let total = 0;
  for (const { root, budget } of SOURCES) {
    const st = await stat(root).catch(() => undefined);
    if (!st?.isDirectory()) throw new Error(`${root} is missing: this test builds its input from the machine's /usr (Debian 12)`);
    const picked = await pickHostFiles(root, budget, MAX_FILE);
    paths.push(...picked.paths);
    total += picked.bytes;
  }
  if (total < MIN_INPUT) throw new Error(`only ${total} bytes of files under ${SOURCES.map((s) => s.root).join(', ')}: need ${MIN_INPUT} for a realistic input`);
  const list = join(work, 'files');
  await writeFile(list, `${paths.map((p) => p.slice(1)).join('\n')}\n`);
  const tar = join(work, 'input.tar');
  await exec('tar', ['--format=pax', '--no-recursion', '--numeric-owner', '-C', '/', '-cf', tar, '-T', list], { maxBuffer: 64 * MiB });
  tarBytes = (await stat(tar)).size;
  for (const backend of ['builtin', 'canonical', 'tar2sqfs', 'sqfstar'] as const) {
    const path = join(work, `${backend}.sqfs`);
    const result = await createSquashfs({
      input: tar,
      outPath: path,
      backend: backend === 'canonical' ? 'builtin' : (backend as SquashfsBackendName),
      ...(backend === 'canonical' ? { gzipImplementation: 'canonical' as const } : {}),
      compression: 'gzip',
      blockSize: 131072,
      workers: 2,
      sourceDateEpoch: 0,
      digest: false,
    });
    images[backend] = { path, bytes: result.bytes, layout: await layout(path) };
  }
  // The figures, for the record (vitest prints console output of the setup).
  console.log(`squashfs-size: tar ${tarBytes} bytes; ${JSON.stringify(images, (k, v) => (k === 'path' ? undefined : v))}`);
}, 600_000);
afterAll(async () => {
  await mounts.releaseAll();
});

describe('gzip image size on a tar of /usr binaries, libraries and docs', () => {
  it('builtin, canonical gzip, compresses data blocks exactly as small as tar2sqfs (canonical zlib, level 9)', () => {
    expect(images.canonical!.layout.dataBlocks).toBe(images.tar2sqfs!.layout.dataBlocks);
  });

  it('builtin, canonical gzip: image no larger than tar2sqfs (bytes used and file size)', () => {
    expect(images.canonical!.layout.bytesUsed).toBeLessThanOrEqual(images.tar2sqfs!.layout.bytesUsed);
    expect(images.canonical!.bytes).toBeLessThanOrEqual(images.tar2sqfs!.bytes);
  });

  it('builtin, canonical gzip: image no larger than sqfstar (mksquashfs) (bytes used and file size)', () => {
    expect(images.canonical!.layout.bytesUsed).toBeLessThanOrEqual(images.sqfstar!.layout.bytesUsed);
    expect(images.canonical!.bytes).toBeLessThanOrEqual(images.sqfstar!.bytes);
  });

  // node:zlib (Chromium's zlib) misses short matches: on this mixed input it measured +2.6 %
  // (on the bench's /usr/lib tar +1.4 %); the guard is 3 %, canonical is the small choice.
  it('builtin, default gzip (node:zlib): at most 3 % larger than tar2sqfs and sqfstar, and larger than canonical', () => {
    for (const tool of ['tar2sqfs', 'sqfstar']) expect(images.builtin!.layout.bytesUsed).toBeLessThanOrEqual(images[tool]!.layout.bytesUsed * 1.03);
    expect(images.builtin!.layout.dataBlocks).toBeGreaterThan(images.canonical!.layout.dataBlocks);
  });

  it.each(['builtin', 'canonical'])('the %s image mounts and holds what tar2sqfs holds', async (name) => {
    const diff = await sqfsdiff(images.tar2sqfs!.path, images[name]!.path);
    expect(diff.report).toBe('');
    expect(diff.code).toBe(0);
    const tree = await treeFromDir(await mounts.mountSquashfs(images[name]!.path));
    expect(Object.keys(tree).length).toBeGreaterThan(500);
  });
});
