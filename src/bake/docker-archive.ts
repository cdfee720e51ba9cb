/**
 * Writes a docker-archive (the `docker save` format: manifest.json, one config JSON per image,
 * one file per layer) from files on disk, for loading into an engine. Layer files may be
 * compressed: `docker load` and podman's docker-archive transport decompress them and check
 * each against the config's rootfs.diff_ids.
 *
 * The tar is deterministic: fixed entry order, mtime, owner and mode.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { pack, type Pack } from 'tar-stream';

export interface ArchiveLayerInput {
  /** File holding the layer (tar, or gzip/zstd-compressed tar). */
  path: string;
  /** Entry name in the archive, e.g. "<hex>.tar.gz" or "<hex>/layer.tar". */
  name: string;
}

export interface ArchiveImageInput {
  /** The image config's bytes; its entry is named `<sha256 hex>.json`. */
  configBytes: Buffer;
  configName: string;
  layers: ArchiveLayerInput[];
  /** Tags to give the image on load, e.g. ["127.0.0.1:5000/ctrbake/sample:1.0"]. */
  repoTags: string[];
}

function addBuffer(p: Pack, name: string, data: Buffer, mtime: Date): Promise<void> {
  return new Promise((resolve, reject) => {
    p.entry({ name, size: data.length, mode: 0o644, uid: 0, gid: 0, uname: '', gname: '', mtime, type: 'file' }, data, (err) => (err ? reject(err) : resolve()));
  });
}

async function addFile(p: Pack, name: string, path: string, mtime: Date): Promise<void> {
  const { size } = await stat(path);
  const entry = p.entry({ name, size, mode: 0o644, uid: 0, gid: 0, uname: '', gname: '', mtime, type: 'file' });
  await pipeline(createReadStream(path), entry);
}

/** Writes `images` as one docker-archive at `outPath`. */
export async function writeDockerArchive(outPath: string, images: readonly ArchiveImageInput[], mtimeSeconds = 0): Promise<void> {
  const mtime = new Date(mtimeSeconds * 1000);
  const p = pack();
  const written = pipeline(p, createWriteStream(outPath, { mode: 0o600 }));
  try {
    const done = new Set<string>();
    for (const image of images) {
      if (!done.has(image.configName)) {
        await addBuffer(p, image.configName, image.configBytes, mtime);
        done.add(image.configName);
      }
      for (const layer of image.layers) {
        if (done.has(layer.name)) continue;
        await addFile(p, layer.name, layer.path, mtime);
        done.add(layer.name);
      }
    }
    const manifest = images.map((i) => ({ Config: i.configName, RepoTags: i.repoTags, Layers: i.layers.map((l) => l.name) }));
    await addBuffer(p, 'manifest.json', Buffer.from(JSON.stringify(manifest)), mtime);
    p.finalize();
  } catch (error) {
    p.destroy(error as Error);
    await written.catch(() => undefined);
    throw error;
  }
  await written;
}
