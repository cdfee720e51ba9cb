/** Small fake bake outputs for the loader's unit tests: a manifest and files that match it. */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { BakeManifest, EngineName, ManifestImage } from '../../../src/formats/index.js';
import { buildManifest } from '../../../src/formats/manifest.js';

const digest = (seed: string) => `sha256:${createHash('sha256').update(seed).digest('hex')}`;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function image(name: string, layers: number, archive?: string): ManifestImage {
  return {
    reference: `registry.example:5000/${name}:1.0`,
    repository: name,
    tag: '1.0',
    digest: digest(`${name}-manifest`),
    indexDigest: digest(`${name}-manifest`),
    imageId: digest(`${name}-config`),
    platform: { os: 'linux', architecture: 'amd64' },
    layers: Array.from({ length: layers }, (_, i) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digest(`${name}-l${i}`), size: 100 + i, diffId: digest(`${name}-d${i}`) })),
    ...(archive ? { archive } : {}),
  };
}

export interface FakeBake {
  dir: string;
  manifestPath: string;
  manifest: BakeManifest;
}

/** An archive bake with two images: "small" (1 layer, 10 bytes) and "big" (2 layers, 30 bytes). */
export async function fakeArchiveBake(): Promise<FakeBake> {
  const dir = await mkdtemp(join(tmpdir(), 'ctrbake-loader-unit-'));
  await mkdir(join(dir, 'archives'));
  const files = { 'archives/small.tar': Buffer.alloc(10, 1), 'archives/big.tar': Buffer.alloc(30, 2) };
  for (const [path, bytes] of Object.entries(files)) await writeFile(join(dir, path), bytes);
  const manifest: BakeManifest = buildManifest({
    mode: 'archive',
    engine: { name: 'docker', version: '20.10.24' },
    storageDriver: 'overlay2',
    archiveFormat: 'docker-archive',
    platform: { os: 'linux', architecture: 'amd64' },
    sourceDateEpoch: 0,
    images: [image('small', 1, 'archives/small.tar'), image('big', 2, 'archives/big.tar')],
    outputs: Object.entries(files).map(([path, bytes]) => ({ path, sha256: sha(bytes), size: bytes.length })),
  });
  const manifestPath = join(dir, 'manifest.json');
  await writeFile(manifestPath, JSON.stringify(manifest, null, 2));
  return { dir, manifestPath, manifest };
}

/** A store bake whose store.tar holds a tiny tree (GNU tar), for the given engine and driver. */
export async function fakeStoreBake(engine: EngineName, storageDriver: string): Promise<FakeBake> {
  const dir = await mkdtemp(join(tmpdir(), 'ctrbake-loader-unit-'));
  const tree = join(dir, 'tree');
  await mkdir(join(tree, 'image'), { recursive: true });
  await writeFile(join(tree, 'image', 'repositories.json'), '{}');
  await execa('tar', ['--create', '--format=pax', `--file=${join(dir, 'store.tar')}`, `--directory=${tree}`, 'image']);
  const { readFile } = await import('node:fs/promises');
  const bytes = await readFile(join(dir, 'store.tar'));
  const manifest: BakeManifest = buildManifest({
    mode: 'store',
    engine: { name: engine, version: engine === 'docker' ? '20.10.24' : '4.3.1' },
    storageDriver,
    platform: { os: 'linux', architecture: 'amd64' },
    sourceDateEpoch: 0,
    images: [image('one', 1)],
    outputs: [{ path: 'store.tar', sha256: sha(bytes), size: bytes.length }],
  });
  const manifestPath = join(dir, 'manifest.json');
  await writeFile(manifestPath, JSON.stringify(manifest, null, 2));
  return { dir, manifestPath, manifest };
}
