/**
 * report() on a lock and a cache written here (no registry, no engine): chain-aware sharing,
 * totals, layers.json, and errors for a missing layer.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Descriptor, LockedImage, LockFile } from '../../../src/formats/index.js';
import { layersFileFromReport } from '../../../src/report/layers-file.js';
import { renderReportHtml, treemapLayerCount } from '../../../src/report/render-html.js';
import { renderReportText } from '../../../src/report/render-text.js';
import { report } from '../../../src/report/report.js';
import { buildLayer, sha256, type BuiltLayer } from '../../../devkit/layers.js';

const B = 4096;
let dir: string;
let cacheDir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ctrbake-report-unit-'));
  cacheDir = join(dir, 'cache');
  await mkdir(join(cacheDir, 'blobs', 'sha256'), { recursive: true });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function putBlob(bytes: Buffer): Promise<Descriptor> {
  const digest = sha256(bytes);
  await writeFile(join(cacheDir, 'blobs', 'sha256', digest.slice(7)), bytes);
  return { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size: bytes.length };
}

async function image(name: string, layers: BuiltLayer[]): Promise<LockedImage> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) } }));
  const configDesc = { ...(await putBlob(config)), mediaType: 'application/vnd.oci.image.config.v1+json' };
  const layerDescs = [];
  for (const l of layers) layerDescs.push(await putBlob(l.gz));
  return {
    reference: `registry.test/${name}:1`,
    registry: 'registry.test',
    repository: name,
    tag: '1',
    indexDigest: sha256(Buffer.from(name)),
    indexMediaType: 'application/vnd.oci.image.manifest.v1+json',
    manifest: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256(Buffer.from(name)), size: 100 },
    config: configDesc,
    layers: layerDescs,
    platform: { os: 'linux', architecture: 'amd64' },
  };
}

async function writeLock(images: LockedImage[]): Promise<string> {
  const lock: LockFile = { lockVersion: 1, platform: { os: 'linux', architecture: 'amd64' }, images };
  const path = join(dir, 'lock.json');
  await writeFile(path, JSON.stringify(lock));
  return path;
}

describe('report on a lock and a cache', () => {
  it('a layer on different parents is stored twice (engines key layers by chain) but downloaded once', async () => {
    const base = await buildLayer([{ type: 'file', path: 'base', content: Buffer.alloc(3 * B, 1) }]);
    const other = await buildLayer([{ type: 'file', path: 'other', content: Buffer.alloc(B, 2) }]);
    const common = await buildLayer([{ type: 'file', path: 'common', content: Buffer.alloc(5 * B, 3) }]);
    const x = await image('x', [base, common]);
    const y = await image('y', [other, common]);
    const z = await image('z', [base, common]);
    const r = await report({ lockPath: await writeLock([x, y, z]), cacheDir });
    // base: root + 3 blocks; other: root + 1; common: root + 5.
    const size = { base: 4 * B, other: 2 * B, common: 6 * B };
    expect(r.layers.map((l) => [l.digest, l.parent, l.unpackedBytes, l.images.length])).toEqual([
      [base.digest, null, size.base, 2],
      [common.digest, base.digest, size.common, 2],
      [other.digest, null, size.other, 1],
      [common.digest, other.digest, size.common, 1],
    ]);
    expect(r.totals.unpackedBytes).toBe(size.base + size.other + 2 * size.common);
    expect(r.totals.unpackedBytesUnshared).toBe(3 * size.common + 2 * size.base + size.other);
    expect(r.totals.sharedLayers).toBe(2);
    // x and z have the same config (same diff_ids): one blob.
    expect(z.config.digest).toBe(x.config.digest);
    expect(r.totals.compressedBytes).toBe(base.size + other.size + common.size + x.config.size + y.config.size);
    expect(r.images.find((i) => i.reference === y.reference)!.uniqueUnpackedBytes).toBe(size.other + size.common);
    expect(r.images.find((i) => i.reference === y.reference)!.uniqueCompressedBytes).toBe(other.size);
    // One layer blob is no duplicate of itself.
    expect(r.duplicates).toEqual([]);
    expect(r.firstBoot.items.find((i) => i.name === 'unpacked layers')!.bytes).toBe(r.totals.unpackedBytes);

    const lf = layersFileFromReport(r);
    expect(lf.images[1]!.layers.map((l) => [l.digest, l.diffId, l.size, l.unpackedSize])).toEqual([
      [other.digest, other.diffId, other.size, size.other],
      [common.digest, common.diffId, common.size, size.common],
    ]);
    expect(renderReportText(r)).toContain('2 of 4 layers are shared');
    const html = renderReportHtml(r);
    expect((html.match(/class="tm-layer"/g) ?? []).length).toBe(treemapLayerCount(r));
    expect(treemapLayerCount(r)).toBe(4);
  });

  it('zstd and uncompressed layers measure the same as gzip (zstd through the host zstd command)', async () => {
    const l = await buildLayer([{ type: 'file', path: 'f', content: Buffer.alloc(2 * B + 1, 7) }]);
    const { execa } = await import('execa');
    const zst = (await execa('zstd', ['-q', '-c'], { input: l.tar, encoding: 'buffer' })).stdout as unknown as Buffer;
    const base = await image('gz', [l]);
    const zImage: LockedImage = { ...base, reference: 'registry.test/zst:1', repository: 'zst', layers: [{ ...(await putBlob(Buffer.from(zst))), mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd' }] };
    const tImage: LockedImage = { ...base, reference: 'registry.test/tar:1', repository: 'tar', layers: [{ ...(await putBlob(l.tar)), mediaType: 'application/vnd.oci.image.layer.v1.tar' }] };
    const r = await report({ lockPath: await writeLock([base, zImage, tImage]), cacheDir });
    expect(r.layers.map((x) => x.unpackedBytes)).toEqual([4 * B, 4 * B, 4 * B]);
    expect(r.layers.map((x) => x.tarBytes)).toEqual([l.tar.length, l.tar.length, l.tar.length]);
  });

  it('a layer missing from the cache is E_CACHE_MISS naming the file and the fetch that repairs it', async () => {
    const a = await buildLayer([{ type: 'file', path: 'a', content: 'a' }]);
    const img = await image('a', [a]);
    const path = join(cacheDir, 'blobs', 'sha256', a.digest.slice(7));
    await rm(path);
    const lockPath = await writeLock([img]);
    const error = await report({ lockPath, cacheDir }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'E_CACHE_MISS', details: { repair: `ctrbake fetch --lock ${lockPath} --cache ${cacheDir}` } });
    expect((error as Error).message).toContain(`layer 0 ${a.digest}: ${path} is missing`);
    expect((error as Error).message).toContain(`ctrbake fetch --lock ${lockPath} --cache ${cacheDir}`);
  });

  it.each([
    ['a truncated', (gz: Buffer) => gz.subarray(0, 20), /\d+ bytes, the lock says \d+ \(truncated\)/],
    ['a flipped-byte', (gz: Buffer) => Buffer.from(gz.map((b, i) => (i === 10 ? b ^ 0xff : b))), /its bytes hash to sha256:[0-9a-f]{64}, not to its name/],
  ])('%s layer blob is E_CACHE_DAMAGED naming the file, the problem and the fetch that repairs it', async (_name, damage, problem) => {
    const a = await buildLayer([{ type: 'file', path: 'a', content: 'a' }]);
    const img = await image('a', [a]);
    const path = join(cacheDir, 'blobs', 'sha256', a.digest.slice(7));
    await writeFile(path, damage(Buffer.from(a.gz)));
    const lockPath = await writeLock([img]);
    const error = await report({ lockPath, cacheDir }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'E_CACHE_DAMAGED' });
    expect((error as Error).message).toContain(`${img.reference}:\n    layer 0 ${a.digest}: ${path}: `);
    expect((error as Error).message).toMatch(problem);
    expect((error as Error).message).toContain(`ctrbake fetch --lock ${lockPath} --cache ${cacheDir}`);
  });

  it.each([
    [{ blockSize: 1000 }, 'E_REPORT_OPTIONS'],
    [{ layout: 'nope' }, 'E_REPORT_OPTIONS'],
    [{ budget: '1X' }, 'E_SIZE_INVALID'],
    [{ cacheDir: undefined }, 'E_REPORT_OPTIONS'],
  ])('bad options %j: usage error %s', async (opts, code) => {
    const a = await buildLayer([{ type: 'file', path: 'a', content: 'a' }]);
    const lockPath = await writeLock([await image('a', [a])]);
    await expect(report({ lockPath, cacheDir, ...(opts as object) })).rejects.toMatchObject({ code, exitCode: 2 });
  });
});
