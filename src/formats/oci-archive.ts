/**
 * The OCI image layout as a tar (oci-layout, index.json, blobs/sha256/...), which podman,
 * skopeo and containerd load. The writer converts an image of a (normalized) docker-archive:
 * layers stay uncompressed, exactly the bytes the engine saved (their digest is the
 * diff_id); the manifest and index are written by us, so the result is deterministic. The
 * reader finds each manifest's config and layers as byte ranges of the archive file.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { InputError } from '../errors.js';
import { OCI_CONFIG, OCI_INDEX, OCI_LAYER_TAR, OCI_MANIFEST } from './media-types.js';
import type { SavedImage } from './docker-archive.js';
import { E_ARCHIVE_INVALID, readTarEntry, writeTarFromSources, type TarIndexEntry, type TarSource } from './tar/index.js';

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

async function sha256Range(file: string, entry: TarIndexEntry): Promise<string> {
  const hash = createHash('sha256');
  if (entry.size > 0) {
    for await (const chunk of createReadStream(file, { start: entry.offset, end: entry.offset + entry.size - 1 })) hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

export interface OciArchiveResult {
  manifestDigest: string;
}

/**
 * Writes `image` (its entries are in `sourceFile`) as an OCI archive at `outPath`, naming it
 * `reference` (annotations org.opencontainers.image.ref.name and io.containerd.image.name).
 * `scratchDir` holds the small generated JSON blobs while the tar is written.
 */
export async function writeOciArchive(
  outPath: string,
  sourceFile: string,
  image: SavedImage,
  reference: string | undefined,
  scratchDir: string,
  mtimeSeconds: number,
): Promise<OciArchiveResult> {
  const diffIds = image.config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== image.layers.length) {
    throw new InputError(E_ARCHIVE_INVALID, `${sourceFile}: ${image.layers.length} layers but ${diffIds.length} diff_ids in the config`);
  }
  const layerDigests: string[] = [];
  for (const [i, layer] of image.layers.entries()) {
    const digest = `sha256:${await sha256Range(sourceFile, layer)}`;
    if (digest !== diffIds[i]) {
      throw new InputError(E_ARCHIVE_INVALID, `${sourceFile}: layer ${i} hashes to ${digest}, the config says ${diffIds[i]}`);
    }
    layerDigests.push(digest);
  }
  const configDigest = `sha256:${sha256(image.configBytes)}`;
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: configDigest, size: image.configBytes.length },
      layers: image.layers.map((l, i) => ({ mediaType: OCI_LAYER_TAR, digest: layerDigests[i], size: l.size })),
    }),
  );
  const manifestDigest = `sha256:${sha256(manifest)}`;
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        {
          mediaType: OCI_MANIFEST,
          digest: manifestDigest,
          size: manifest.length,
          ...(reference ? { annotations: { 'io.containerd.image.name': reference, 'org.opencontainers.image.ref.name': reference } } : {}),
        },
      ],
    }),
  );
  const layout = Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' }));

  // Small blobs go through a scratch file so every entry is a (file, offset) source.
  const blobs = new Map<string, TarSource>();
  const addBuffer = async (name: string, data: Buffer) => {
    const file = `${scratchDir}/${name.replace(/\//g, '_')}`;
    await writeFile(file, data);
    blobs.set(name, { file, entry: { name, type: 'file', mode: 0o644, size: data.length, linkname: '', offset: 0 } });
  };
  await addBuffer(`blobs/sha256/${configDigest.slice(7)}`, image.configBytes);
  await addBuffer(`blobs/sha256/${manifestDigest.slice(7)}`, manifest);
  image.layers.forEach((l, i) => {
    const name = `blobs/sha256/${layerDigests[i]!.slice(7)}`;
    blobs.set(name, { file: sourceFile, entry: { ...l, name, mode: 0o644 } });
  });
  await addBuffer('index.json', index);
  await addBuffer('oci-layout', layout);
  const dir = (name: string): TarSource => ({ file: sourceFile, entry: { name, type: 'dir', mode: 0o755, size: 0, linkname: '', offset: 0 } });
  const sources = [dir('blobs'), dir('blobs/sha256'), ...[...blobs.keys()].filter((n) => n.startsWith('blobs/')).sort().map((n) => blobs.get(n)!), blobs.get('index.json')!, blobs.get('oci-layout')!];
  await writeTarFromSources(outPath, sources, mtimeSeconds);
  return { manifestDigest };
}

export interface OciArchiveLayer {
  digest: string;
  mediaType: string;
  /** The blob's entry; undefined when the archive lacks it. */
  entry?: TarIndexEntry;
}

export interface OciArchiveImage {
  config?: { digest: string; size: number };
  layers: OciArchiveLayer[];
}

/** The images of the OCI archive `file` (entries from `indexTarFile`); manifests it lacks are left out. */
export async function readOciArchive(file: string, entries: readonly TarIndexEntry[]): Promise<OciArchiveImage[]> {
  const byName = new Map(entries.map((e) => [e.name, e]));
  const blob = (digest: string) => byName.get(`blobs/sha256/${digest.replace(/^sha256:/, '')}`);
  const json = async <T>(entry: TarIndexEntry, what: string): Promise<T> => {
    try {
      return JSON.parse((await readTarEntry(file, entry)).toString('utf8')) as T;
    } catch (error) {
      throw new InputError(E_ARCHIVE_INVALID, `OCI archive ${file}: ${what} is not JSON; write the archive again`, { cause: error });
    }
  };
  const indexEntry = byName.get('index.json');
  if (!indexEntry) throw new InputError(E_ARCHIVE_INVALID, `OCI archive ${file}: no index.json; write the archive again`);
  const index = await json<{ manifests?: Array<{ digest: string }> }>(indexEntry, 'index.json');
  const images: OciArchiveImage[] = [];
  for (const m of index.manifests ?? []) {
    const me = blob(m.digest);
    if (!me) continue;
    const manifest = await json<{ config?: { digest: string; size: number }; layers?: Array<{ digest: string; mediaType: string }> }>(me, `manifest ${m.digest}`);
    images.push({
      ...(manifest.config ? { config: manifest.config } : {}),
      layers: (manifest.layers ?? []).map((l) => ({ digest: l.digest, mediaType: l.mediaType, entry: blob(l.digest) })),
    });
  }
  return images;
}
