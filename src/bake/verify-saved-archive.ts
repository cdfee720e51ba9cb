/**
 * Checks an archive an engine wrote with `docker save` / `podman save`: every layer the
 * archive's manifest.json names hashes to the diff_id its image config declares. Saving
 * re-reads every layer from the store (files plus tar-split metadata), so this proves the
 * store's layer content and metadata are intact, not just listed.
 *
 * Works for docker-archive (docker 20.10, podman), and for docker 25+'s save output (an OCI
 * layout that also has manifest.json, layers under blobs/sha256/).
 */
import { createHash } from 'node:crypto';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import * as tarStream from 'tar-stream';
import { InputError } from '../errors.js';

export interface SavedArchiveCheck {
  /** Image references (RepoTags) the archive names. */
  repoTags: string[];
  /** Number of layers checked against the config's diff_ids. */
  layers: number;
  configDigest: string;
}

interface SavedEntry {
  sha256: string;
  /** Kept for small JSON files only. */
  text?: string;
  /** sha256 of the gunzipped bytes, when the entry is gzip. */
  gunzipSha256?: string;
}

async function hashEntry(stream: Readable, keepText: boolean): Promise<SavedEntry> {
  const hash = createHash('sha256');
  const chunks: Buffer[] = [];
  let head: Buffer | undefined;
  const gunzipHash = createHash('sha256');
  let gunzip: ReturnType<typeof createGunzip> | undefined;
  let gunzipDone: Promise<void> | undefined;
  await pipeline(
    stream,
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        if (keepText) chunks.push(chunk);
        if (head === undefined) {
          head = chunk.subarray(0, 2);
          if (head.length === 2 && head[0] === 0x1f && head[1] === 0x8b) {
            gunzip = createGunzip();
            gunzipDone = new Promise((resolve, reject) => {
              gunzip!.on('data', (d: Buffer) => gunzipHash.update(d));
              gunzip!.on('end', resolve);
              gunzip!.on('error', reject);
            });
          }
        }
        if (gunzip) gunzip.write(chunk, cb);
        else cb();
      },
      final(cb) {
        if (gunzip) gunzip.end(cb);
        else cb();
      },
    }),
  );
  if (gunzipDone) await gunzipDone;
  return {
    sha256: `sha256:${hash.digest('hex')}`,
    ...(keepText ? { text: Buffer.concat(chunks).toString('utf8') } : {}),
    ...(gunzip ? { gunzipSha256: `sha256:${gunzipHash.digest('hex')}` } : {}),
  };
}

/** Reads a saved archive stream once and checks it; throws E_STORE_VERIFY on any mismatch. */
export async function checkSavedArchive(stream: Readable, what: string): Promise<SavedArchiveCheck[]> {
  const entries = new Map<string, SavedEntry>();
  const extract = tarStream.extract();
  extract.on('entry', (header, entryStream, next) => {
    const name = header.name.replace(/^\.\//, '');
    if (header.type !== 'file') {
      entryStream.resume();
      entryStream.on('end', next);
      return;
    }
    const small = (header.size ?? 0) < 4 * 1024 * 1024 && !name.endsWith('.tar');
    hashEntry(entryStream as unknown as Readable, small).then(
      (entry) => {
        entries.set(name, entry);
        next();
      },
      (error: unknown) => next(error as Error),
    );
  });
  await pipeline(stream, extract);

  const fail = (why: string) => new InputError('E_STORE_VERIFY', `${what}: ${why}`);
  const manifestText = entries.get('manifest.json')?.text;
  if (manifestText === undefined) throw fail('the saved archive has no manifest.json');
  const manifest = JSON.parse(manifestText) as Array<{ Config: string; RepoTags?: string[] | null; Layers: string[] }>;
  const results: SavedArchiveCheck[] = [];
  for (const image of manifest) {
    const config = entries.get(image.Config);
    if (config?.text === undefined) throw fail(`the saved archive lacks the config ${image.Config}`);
    const diffIds = (JSON.parse(config.text) as { rootfs?: { diff_ids?: string[] } }).rootfs?.diff_ids ?? [];
    if (diffIds.length !== image.Layers.length) {
      throw fail(`the saved image has ${image.Layers.length} layers, its config declares ${diffIds.length}`);
    }
    image.Layers.forEach((layerPath, i) => {
      const layer = entries.get(layerPath);
      if (!layer) throw fail(`the saved archive lacks layer ${layerPath}`);
      const actual = layer.gunzipSha256 ?? layer.sha256;
      if (actual !== diffIds[i]) throw fail(`layer ${i} (${layerPath}) hashes to ${actual}, the config declares ${diffIds[i]}`);
    });
    results.push({ repoTags: image.RepoTags ?? [], layers: image.Layers.length, configDigest: config.sha256 });
  }
  return results;
}
