import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InputError } from '../errors.js';
import { parseDockerManifest, symlinkTarget } from '../formats/docker-archive.js';
import { displayName, TarInput } from '../formats/tar/index.js';
import type { LockedImage } from '../formats/index.js';
import { diffIdsOfConfig } from '../formats/oci.js';
import { commitBlob } from './cache.js';
import { DigestMismatchError, E_FETCHER_FAILED } from './errors.js';
import type { StoredBlob } from './types.js';
import { imageLabel } from './verify.js';

/**
 * An image saved by an engine (`docker save`, `podman save --format docker-archive`),
 * unpacked into a work dir under CACHE/tmp/: each regular entry written to its own file and
 * hashed on the way, so nothing is read twice.
 */
interface SavedEntry {
  file: string;
  digest: string;
  size: number;
}

export interface SavedArchive {
  entries: Map<string, SavedEntry>;
  links: Map<string, string>;
}

const norm = (p: string) => posix.normalize(p).replace(/^\.\//, '').replace(/^\/+/, '');

export async function unpackSavedImage(stream: Readable, workDir: string): Promise<SavedArchive> {
  const entries = new Map<string, SavedEntry>();
  const links = new Map<string, string>();
  const tar = new TarInput(stream);
  let n = 0;
  try {
    for (let entry = await tar.next(); entry !== null; entry = await tar.next()) {
      const name = norm(displayName(entry.name));
      if (entry.type === 'symlink') links.set(name, symlinkTarget(name, displayName(entry.linkname)));
      else if (entry.type === 'hardlink') links.set(name, norm(displayName(entry.linkname)));
      if (entry.type !== 'file') continue;
      const file = join(workDir, `entry-${n++}`);
      const hash = createHash('sha256');
      let size = 0;
      const data = tar.data();
      await pipeline(
        Readable.from(
          (async function* () {
            for await (const chunk of data) {
              hash.update(chunk);
              size += chunk.length;
              // The decoder reuses its views: copy before the write stream keeps them.
              yield Buffer.from(chunk);
            }
          })(),
        ),
        createWriteStream(file),
      );
      entries.set(name, { file, digest: `sha256:${hash.digest('hex')}`, size });
    }
  } catch (error) {
    await tar.close();
    throw error;
  }
  return { entries, links };
}

function lookup(saved: SavedArchive, path: string): SavedEntry | undefined {
  let p = norm(path);
  for (let i = 0; i < 8; i++) {
    const entry = saved.entries.get(p);
    if (entry) return entry;
    const next = saved.links.get(p);
    if (!next) return undefined;
    p = next;
  }
  return undefined;
}

/**
 * Checks a saved image against the lock and moves what it can verify into the cache: the config
 * (its digest must be the lock's config digest) and each layer as the uncompressed tar under its
 * diff_id (the sha256 of the tar must equal the config's rootfs.diff_ids[i]).
 */
export async function commitSavedImage(cacheDir: string, saved: SavedArchive, image: LockedImage, tool: string): Promise<StoredBlob[]> {
  const label = imageLabel(image);
  const broken = (why: string) => new InputError(E_FETCHER_FAILED, `${tool} saved ${label} in an unexpected form: ${why}`);
  const manifestEntry = saved.entries.get('manifest.json');
  if (!manifestEntry) throw broken('no manifest.json');
  const list = parseDockerManifest(await readFile(manifestEntry.file), (why) => broken(why));
  if (list.length !== 1 || !list[0]!.Config) throw broken('manifest.json does not describe one image');
  const { Config, Layers } = list[0]!;

  const configEntry = lookup(saved, Config);
  if (!configEntry) throw broken(`missing ${Config}`);
  if (configEntry.digest !== image.config.digest || configEntry.size !== image.config.size) {
    throw new DigestMismatchError(`config of ${label} as ${tool} pulled it`, `${image.config.digest} (${image.config.size} bytes)`, `${configEntry.digest} (${configEntry.size} bytes)`);
  }
  const diffIds = diffIdsOfConfig(await readFile(configEntry.file, 'utf8'));
  if (!diffIds || diffIds.length !== image.layers.length || Layers.length !== diffIds.length) {
    throw new DigestMismatchError(`layer count of ${label}`, `${image.layers.length} layers`, `${diffIds?.length ?? 'no'} diff_ids, ${Layers.length} saved layers`);
  }
  const layerEntries = Layers.map((path, i) => {
    const entry = lookup(saved, path);
    if (!entry) throw broken(`missing ${path}`);
    if (entry.digest !== diffIds[i]) throw new DigestMismatchError(`uncompressed layer ${i} of ${label} (diff_id)`, diffIds[i]!, entry.digest);
    return entry;
  });

  // Everything checked: now move into blobs/. Entries may repeat (same layer twice): commit each file once.
  const blobs: StoredBlob[] = [];
  const done = new Set<string>();
  const outcome = await commitBlob(cacheDir, configEntry.file, { digest: image.config.digest, size: image.config.size, what: `config of ${label}` });
  blobs.push({ kind: 'config', digest: image.config.digest, size: image.config.size, outcome });
  for (const [i, entry] of layerEntries.entries()) {
    if (done.has(entry.file)) continue;
    done.add(entry.file);
    const stored = await commitBlob(cacheDir, entry.file, { digest: diffIds[i]!, size: entry.size, what: `uncompressed layer ${i} of ${label}` });
    blobs.push({ kind: 'layer', digest: diffIds[i]!, size: entry.size, outcome: stored, uncompressed: true });
  }
  return blobs;
}
