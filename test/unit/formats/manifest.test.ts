import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { testTempDir } from '../../fixtures/temp-dir.js';
import { verifyStore } from '../../../src/bake/verify-store.js';
import { resolveLoaderOptions } from '../../../src/loader/options.js';
import { buildManifest, looksLikeManifest, MANIFEST_FILE, manifestImageOf, parseManifest, readManifest, writeManifest, type BakeManifest, type ManifestImage } from '../../../src/formats/manifest.js';
import { readReportInput } from '../../../src/report/input.js';
import { VERSION } from '../../../src/version.js';

const D = (c: string) => `sha256:${c.repeat(64)}`;
const image: ManifestImage = {
  reference: 'registry.example:5000/app:1.0',
  repository: 'app',
  tag: '1.0',
  digest: D('a'),
  indexDigest: D('b'),
  imageId: D('c'),
  platform: { os: 'linux', architecture: 'amd64' },
  layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: D('d'), size: 100, diffId: D('e') }],
  archive: 'archives/app.tar',
};
const manifest: BakeManifest = buildManifest({
  mode: 'archive',
  engine: { name: 'docker', version: '20.10.24' },
  storageDriver: 'overlay2',
  archiveFormat: 'docker-archive',
  platform: { os: 'linux', architecture: 'amd64' },
  sourceDateEpoch: 0,
  images: [image, { ...image, tag: null, archive: 'archives/b.tar' }],
  outputs: [
    { path: 'archives/b.tar', sha256: 'f'.repeat(64), size: 20 },
    { path: 'archives/app.tar', sha256: '0'.repeat(64), size: 10 },
  ],
});
const withImage = (i: number, patch: Record<string, unknown>) => ({ ...manifest, images: manifest.images.map((img, n) => (n === i ? { ...img, ...patch } : img)) });


describe('buildManifest', () => {
  it('builds the one shape of manifest.json: version fields first, outputs sorted by path', () => {
    expect(Object.keys(manifest)).toEqual(['manifestVersion', 'ctrbakeVersion', 'mode', 'engine', 'storageDriver', 'archiveFormat', 'platform', 'sourceDateEpoch', 'images', 'outputs']);
    expect(manifest.ctrbakeVersion).toBe(VERSION);
    expect(manifest.outputs.map((o) => o.path)).toEqual(['archives/app.tar', 'archives/b.tar']);
  });
  it('manifestImageOf records a locked image with its diff ids (empty where the engine gave none)', () => {
    const locked = { ...image, registry: 'registry.example:5000', indexMediaType: 'x', manifest: { mediaType: 'm', digest: D('a'), size: 1 }, config: { mediaType: 'c', digest: D('c'), size: 2 }, layers: [image.layers[0]!, image.layers[0]!] };
    const recorded = manifestImageOf(locked, [D('e')], 'archives/app.tar');
    expect(Object.keys(recorded)).toEqual(['reference', 'repository', 'tag', 'digest', 'indexDigest', 'imageId', 'platform', 'layers', 'archive']);
    expect(recorded.layers.map((l) => l.diffId)).toEqual([D('e'), '']);
    expect('archive' in manifestImageOf(locked, [])).toBe(false);
  });
  it('a store manifest has no archiveFormat key', () => {
    const store = buildManifest({ ...manifest, mode: 'store', archiveFormat: undefined, outputs: [{ path: 'store.tar', sha256: 'a'.repeat(64), size: 1 }] });
    expect('archiveFormat' in store).toBe(false);
  });
});

describe('parseManifest', () => {
  it('accepts a manifest it built, with or without a fingerprint', () => {
    expect(parseManifest(manifest)).toEqual({ manifest });
    expect(parseManifest({ ...manifest, inputFingerprint: D('9') }).problem).toBeUndefined();
  });
  it.each([
    ['not an object', 'x', /not a JSON object/],
    ['another version', { ...manifest, manifestVersion: 2 }, /not a ctrbake manifest \(manifestVersion 2/],
    ['an unknown mode', { ...manifest, mode: 'tarball' }, /^mode must be one of archive, store, got "tarball"$/],
    ['no engine', { ...manifest, engine: undefined }, /^engine must be an object/],
    ['an unknown engine', { ...manifest, engine: { name: 'rkt', version: '2' } }, /^engine\.name must be one of docker, podman, containerd/],
    ['an empty containerd namespace', { ...manifest, namespace: '' }, /^namespace must be a non-empty string/],
    ['an engine without version', { ...manifest, engine: { name: 'docker' } }, /^engine\.version must be a string/],
    ['an empty storage driver', { ...manifest, storageDriver: '' }, /^storageDriver must be a non-empty string/],
    ['a bad archive format', { ...manifest, archiveFormat: 'zip' }, /^archiveFormat must be one of/],
    ['a negative SOURCE_DATE_EPOCH', { ...manifest, sourceDateEpoch: -1 }, /^sourceDateEpoch must be a non-negative integer/],
    ['images not an array', { ...manifest, images: {} }, /^images must be an array/],
    ['a bad image digest', withImage(1, { digest: 'sha256:1' }), /^images\[1\]\.digest must be "sha256:" and 64 hex digits/],
    ['a bad image id', withImage(0, { imageId: 'c'.repeat(64) }), /^images\[0\]\.imageId must be/],
    ['a bad layer digest', withImage(0, { layers: [{ ...image.layers[0]!, digest: 'sha256:../x' }] }), /^images\[0\]\.layers\[0\]\.digest must be/],
    ['a bad diff id', withImage(1, { layers: [{ ...image.layers[0]!, diffId: 'x' }] }), /^images\[1\]\.layers\[0\]\.diffId must be/],
    ['an archive outside OUT', withImage(0, { archive: '../etc/passwd' }), /^images\[0\]\.archive "\.\.\/etc\/passwd" must be a path inside OUT/],
    ['no outputs', { ...manifest, outputs: null }, /^outputs must be an array/],
    ['an absolute output', { ...manifest, outputs: [{ path: '/etc/shadow', sha256: '0'.repeat(64), size: 1 }] }, /^outputs\[0\]\.path "\/etc\/shadow" must be a path inside OUT/],
    ['an output sha256 with prefix', { ...manifest, outputs: [{ path: 'a', sha256: D('0'), size: 1 }] }, /^outputs\[0\]\.sha256 must be 64 hex digits/],
    ['a bad fingerprint', { ...manifest, inputFingerprint: 'abc' }, /^inputFingerprint must be/],
  ])('refuses %s, naming the field', (_name, value, message) => {
    const read = parseManifest(value);
    expect(read.problem?.kind).toBe('invalid');
    expect(read.problem?.message).toMatch(message);
  });
});

describe('readManifest / writeManifest', () => {
  it('writes a manifest that reads back equal', async () => {
    const dir = await testTempDir('ctrbake-unit-manifest-');
    const path = join(dir, MANIFEST_FILE);
    await writeManifest(path, manifest);
    expect(await readFile(path, 'utf8')).toBe(`${JSON.stringify(manifest, null, 2)}\n`);
    expect(await readManifest(path)).toEqual({ manifest });
    expect(looksLikeManifest(manifest)).toBe(true);
  });
  it.each([
    ['unreadable', undefined],
    ['not-json', '{"manifestVersion":'],
  ] as const)('reports a %s file as a problem, not as a thrown error', async (kind, content) => {
    const dir = await testTempDir('ctrbake-unit-manifest-');
    const path = join(dir, MANIFEST_FILE);
    if (content !== undefined) await writeFile(path, content);
    expect((await readManifest(path)).problem?.kind).toBe(kind);
  });
});

describe('the readers of manifest.json name the field with their own code', () => {
  const bad = { ...manifest, images: [{ ...image, layers: [{ ...image.layers[0]!, size: 'big' }] }] };
  it('report: E_REPORT_INPUT naming the file and the field', async () => {
    const dir = await testTempDir('ctrbake-unit-manifest-');
    const path = join(dir, MANIFEST_FILE);
    await writeFile(path, JSON.stringify(bad));
    await expect(readReportInput(path)).rejects.toMatchObject({ code: 'E_REPORT_INPUT', message: expect.stringContaining(`${path}: images[0].layers[0].size must be a non-negative integer`) });
  });
  it('loader: E_LOADER_INPUT naming the file and the field', async () => {
    const dir = await testTempDir('ctrbake-unit-manifest-');
    const path = join(dir, MANIFEST_FILE);
    await writeFile(path, JSON.stringify(bad));
    await expect(resolveLoaderOptions({ manifestPath: path, layout: 'archive', init: 'systemd', outDir: join(dir, 'overlay') })).rejects.toMatchObject({
      code: 'E_LOADER_INPUT',
      message: expect.stringContaining(`${path} is not a ctrbake manifest (manifestVersion 1): images[0].layers[0].size must be a non-negative integer`),
    });
  });
  it('verify-store: an OUT without manifest.json is E_STORE_VERIFY_INPUT (exit 2), not a raw ENOENT', async () => {
    const dir = await testTempDir('ctrbake-unit-manifest-');
    await expect(verifyStore({ outDir: dir })).rejects.toMatchObject({ code: 'E_STORE_VERIFY_INPUT', exitCode: 2, message: expect.stringContaining('--mode store') });
  });
  it('verify-store: a manifest with a bad field is E_STORE_VERIFY_INPUT naming it', async () => {
    const dir = await testTempDir('ctrbake-unit-manifest-');
    await writeFile(join(dir, MANIFEST_FILE), JSON.stringify({ ...bad, mode: 'store' }));
    await expect(verifyStore({ outDir: dir })).rejects.toMatchObject({ code: 'E_STORE_VERIFY_INPUT', message: expect.stringContaining('images[0].layers[0].size') });
  });
});
