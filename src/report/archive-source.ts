/**
 * Layers read from the archives next to a manifest (archive mode), for a report without the
 * fetch cache: docker-archive (manifest.json + config + one tar per layer, matched by diff_id)
 * and OCI archive (index.json -> manifest -> blobs, matched by digest). Each layer is a byte
 * range of the archive file; no extraction.
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { readDockerArchive } from '../formats/docker-archive.js';
import { readOciArchive } from '../formats/oci-archive.js';
import { indexTarFile } from '../formats/tar/index.js';
import { compressionOf, type LayerCompression } from '../formats/media-types.js';
import type { ReportInput } from './input.js';

export interface ArchiveLayerLocation {
  file: string;
  offset: number;
  size: number;
  /** From the OCI media type; undefined: sniff the first bytes (docker-archive). */
  compression?: LayerCompression;
}

export interface ArchiveLayers {
  /** By layer digest (OCI) and by diff_id (docker-archive). */
  layers: Map<string, ArchiveLayerLocation>;
  /** Config sizes by config digest. */
  configSizes: Map<string, number>;
}

/** Indexes the layers of every archive the manifest lists; archives that are missing are skipped. */
export async function indexArchiveLayers(input: ReportInput): Promise<ArchiveLayers> {
  const out: ArchiveLayers = { layers: new Map(), configSizes: new Map() };
  if (!input.outDir) return out;
  for (const image of input.images) {
    if (!image.archive) continue;
    // An archive that cannot be read only means its layers must come from the cache.
    await indexArchive(join(input.outDir, image.archive), out).catch(() => undefined);
  }
  return out;
}

async function indexArchive(file: string, out: ArchiveLayers): Promise<void> {
  const entries = await indexTarFile(file);
  const names = new Set(entries.map((e) => e.name));
  if (names.has('manifest.json')) {
    for (const saved of await readDockerArchive(file, entries)) {
      out.configSizes.set(`sha256:${saved.configName.replace(/^blobs\/sha256\//, '').replace(/\.json$/, '')}`, saved.configBytes.length);
      const ids = saved.config.rootfs?.diff_ids ?? [];
      saved.layers.forEach((e, n) => {
        if (ids[n]) out.layers.set(ids[n]!, { file, offset: e.offset, size: e.size });
      });
    }
  } else if (names.has('index.json')) {
    for (const image of await readOciArchive(file, entries)) {
      if (image.config) out.configSizes.set(image.config.digest, image.config.size);
      for (const l of image.layers) {
        if (l.entry) out.layers.set(l.digest, { file, offset: l.entry.offset, size: l.entry.size, compression: compressionOf(l.mediaType) });
      }
    }
  }
}

const MAGIC: Array<[LayerCompression, number[]]> = [
  ['gzip', [0x1f, 0x8b]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
];

/** gzip or zstd by magic bytes, else none. */
export async function sniffCompression(loc: ArchiveLayerLocation): Promise<LayerCompression> {
  if (loc.compression) return loc.compression;
  const fh = await open(loc.file, 'r');
  try {
    const head = Buffer.alloc(4);
    await fh.read(head, 0, Math.min(4, loc.size), loc.offset);
    for (const [kind, magic] of MAGIC) if (magic.every((b, i) => head[i] === b)) return kind;
    return 'none';
  } finally {
    await fh.close();
  }
}
