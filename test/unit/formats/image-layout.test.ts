/** formats/image-layout.ts: archives written from blobs unchanged; read back with GNU tar and ctrbake's readers. */
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { useTempDir } from '../../fixtures/temp-dir.js';
import { readDockerArchive } from '../../../src/formats/docker-archive.js';
import { formatLayoutIndex, writeImageLayoutArchive, type LayoutBlob, type LayoutImage } from '../../../src/formats/image-layout.js';
import { OCI_INDEX, OCI_MANIFEST } from '../../../src/formats/media-types.js';
import { readOciArchive } from '../../../src/formats/oci-archive.js';
import { indexTarFile, readTarEntry } from '../../../src/formats/tar/index.js';
import { checkIndexListsManifest } from '../../../src/fetch/index-blob.js';
import type { LockedImage } from '../../../src/formats/index.js';

const digest = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('writeImageLayoutArchive', () => {
  const temp = useTempDir('ctrbake-image-layout-');

  async function blob(name: string, bytes: Buffer): Promise<LayoutBlob> {
    const path = join(temp.path(), name);
    await writeFile(path, bytes);
    return { digest: digest(bytes), size: bytes.length, path };
  }

  async function image(withOci: boolean): Promise<LayoutImage> {
    const layer = await blob('layer', Buffer.from('not really a gzip layer, copied as is'));
    const config = await blob('config', Buffer.from(JSON.stringify({ os: 'linux', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: [`sha256:${'1'.repeat(64)}`] } })));
    const manifestBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { digest: config.digest }, layers: [{ digest: layer.digest }] }));
    const manifest = await blob('manifest', manifestBytes);
    return {
      configDigest: config.digest,
      layerDigests: [layer.digest],
      repoTags: ['registry.example:5000/app:1.0'],
      blobs: withOci ? [config, layer, manifest] : [config, layer],
      ...(withOci ? { oci: { target: { mediaType: OCI_MANIFEST, digest: manifest.digest, size: manifest.size }, name: 'registry.example:5000/app:1.0' } } : {}),
    };
  }

  it.each([false, true])('oci %s: blobs byte for byte under blobs/sha256, manifest.json naming them, sorted entries, same bytes twice', async (oci) => {
    const img = await image(oci);
    const a = join(temp.path(), 'a.tar');
    const b = join(temp.path(), 'b.tar');
    const written = await writeImageLayoutArchive(a, [img], 1_700_000_000);
    await writeImageLayoutArchive(b, [img], 1_700_000_000);
    expect((await readFile(a)).equals(await readFile(b))).toBe(true);
    expect(written).toEqual({ sha256: digest(await readFile(a)).slice(7), size: (await readFile(a)).length });
    const listed = (await execa('tar', ['-tvf', a], { env: { TZ: 'UTC' } })).stdout.split('\n');
    const names = listed.map((l) => l.split(/\s+/).at(-1));
    const blobNames = img.blobs.map((x) => `blobs/sha256/${x.digest.slice(7)}`).sort();
    expect(names).toEqual(['blobs/', 'blobs/sha256/', ...blobNames, ...(oci ? ['index.json'] : []), 'manifest.json', ...(oci ? ['oci-layout'] : [])]);
    for (const line of listed) expect(line).toMatch(/ 0\/0 .* 2023-11-14 /);
    const entries = await indexTarFile(a);
    for (const x of img.blobs) {
      const e = entries.find((y) => y.name === `blobs/sha256/${x.digest.slice(7)}`)!;
      expect((await readTarEntry(a, e)).equals(await readFile(x.path))).toBe(true);
    }
    const [saved] = await readDockerArchive(a, entries);
    expect(saved).toMatchObject({ repoTags: img.repoTags, configName: `blobs/sha256/${img.configDigest.slice(7)}` });
    if (oci) {
      const [read] = await readOciArchive(a, entries);
      expect(read!.layers.map((l) => l.digest)).toEqual(img.layerDigests);
      expect(JSON.parse((await readTarEntry(a, entries.find((e) => e.name === 'index.json')!)).toString())).toEqual({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [{ ...img.oci!.target, annotations: { 'io.containerd.image.name': img.oci!.name, 'org.opencontainers.image.ref.name': img.oci!.name } }],
      });
    }
  });

  it('an unnamed image gets no annotations; a digest reference only containerd\'s', () => {
    const target = { mediaType: OCI_MANIFEST, digest: `sha256:${'a'.repeat(64)}`, size: 3 };
    expect(JSON.parse(formatLayoutIndex([{ oci: { target } }]).toString()).manifests).toEqual([target]);
    const name = `r.example/app@${target.digest}`;
    expect(JSON.parse(formatLayoutIndex([{ oci: { target, name } }]).toString()).manifests).toEqual([{ ...target, annotations: { 'io.containerd.image.name': name } }]);
  });

  it.each<[string, (i: LayoutImage) => LayoutImage[]]>([
    ['no image', () => []],
    ['a blob named but not given', (i) => [{ ...i, blobs: i.blobs.slice(1) }]],
    ['OCI and docker images mixed', (i) => [i, { ...i, oci: undefined }] as LayoutImage[]],
  ])('refuses %s with E_ARCHIVE_INVALID', async (_what, make) => {
    const img = await image(true);
    await expect(writeImageLayoutArchive(join(temp.path(), 'x.tar'), make(img), 0)).rejects.toMatchObject({ code: 'E_ARCHIVE_INVALID' });
  });
});

describe('checkIndexListsManifest (fetch keeps an index only when it lists the lock\'s manifest)', () => {
  const manifest = { mediaType: OCI_MANIFEST, digest: `sha256:${'b'.repeat(64)}`, size: 42 };
  const image = { registry: 'r', repository: 'app', indexDigest: `sha256:${'c'.repeat(64)}`, manifest } as LockedImage;
  it.each<[string, unknown, boolean]>([
    ['listing it', { manifests: [{ ...manifest, platform: { os: 'linux', architecture: 'amd64' } }] }, true],
    ['listing another size', { manifests: [{ ...manifest, size: 43 }] }, false],
    ['without it', { manifests: [] }, false],
    ['a manifest, not an index', { config: {}, layers: [] }, false],
  ])('an index %s', (_what, doc, ok) => {
    const run = () => checkIndexListsManifest(Buffer.from(JSON.stringify(doc)), image);
    if (ok) expect(run).not.toThrow();
    else expect(run).toThrow(expect.objectContaining({ code: 'E_DIGEST_MISMATCH' }));
  });
});
