/**
 * Converts an image from a (normalized) docker-archive into an OCI image layout archive
 * (oci-layout, index.json, blobs/sha256/...) that podman, skopeo and containerd load.
 * Layers stay uncompressed, exactly the bytes the engine saved (their digest is the diff_id);
 * the manifest and index are written by us, so the result is deterministic.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { InputError } from '../errors.js';
import { writeTarFromSources, type TarSource } from './normalize-archive.js';
import type { SavedImage } from './saved-archive.js';
import type { TarIndexEntry } from './tar-index.js';
import { writeFile } from 'node:fs/promises';
import { OCI_CONFIG, OCI_INDEX, OCI_LAYER_TAR, OCI_MANIFEST } from '../formats/media-types.js';


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
    throw new InputError('E_ARCHIVE_INVALID', `${sourceFile}: ${image.layers.length} layers but ${diffIds.length} diff_ids in the config`);
  }
  const layerDigests: string[] = [];
  for (const [i, layer] of image.layers.entries()) {
    const digest = `sha256:${await sha256Range(sourceFile, layer)}`;
    if (digest !== diffIds[i]) {
      throw new InputError('E_ARCHIVE_INVALID', `${sourceFile}: layer ${i} hashes to ${digest}, the config says ${diffIds[i]}`);
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
  const dir = (name: string): TarSource => ({ file: sourceFile, entry: { name, type: 'directory', mode: 0o755, size: 0, linkname: '', offset: 0 } });
  const sources = [dir('blobs'), dir('blobs/sha256'), ...[...blobs.keys()].filter((n) => n.startsWith('blobs/')).sort().map((n) => blobs.get(n)!), blobs.get('index.json')!, blobs.get('oci-layout')!];
  await writeTarFromSources(outPath, sources, mtimeSeconds);
  return { manifestDigest };
}
