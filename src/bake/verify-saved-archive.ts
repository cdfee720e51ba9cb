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
import { once } from 'node:events';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import { InputError } from '../errors.js';
import { parseDockerManifest } from '../formats/docker-archive.js';
import { displayName, TarInput } from '../formats/tar/index.js';

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

async function hashEntry(data: AsyncIterable<Buffer>, keepText: boolean): Promise<SavedEntry> {
  const hash = createHash('sha256');
  const chunks: Buffer[] = [];
  const gunzipHash = createHash('sha256');
  let gunzip: ReturnType<typeof createGunzip> | undefined;
  let gunzipDone: Promise<void> | undefined;
  let first = true;
  for await (const view of data) {
    hash.update(view);
    if (first) {
      first = false;
      if (view.length >= 2 && view[0] === 0x1f && view[1] === 0x8b) {
        const g = (gunzip = createGunzip());
        gunzipDone = new Promise((resolve, reject) => {
          g.on('data', (d: Buffer) => gunzipHash.update(d));
          g.on('end', resolve);
          g.on('error', reject);
        });
        // Awaited below; the handler keeps an early failure from counting as unhandled.
        gunzipDone.catch(() => undefined);
      }
    }
    // The decoder's views are only valid until the next read: copy what outlives this one.
    if (keepText) chunks.push(Buffer.from(view));
    if (gunzip && !gunzip.write(Buffer.from(view))) await Promise.race([once(gunzip, 'drain'), gunzipDone]);
  }
  if (gunzip) {
    gunzip.end();
    await gunzipDone;
  }
  return {
    sha256: `sha256:${hash.digest('hex')}`,
    ...(keepText ? { text: Buffer.concat(chunks).toString('utf8') } : {}),
    ...(gunzip ? { gunzipSha256: `sha256:${gunzipHash.digest('hex')}` } : {}),
  };
}

/** Reads a saved archive stream once and checks it; throws E_STORE_VERIFY on any mismatch. */
export async function checkSavedArchive(stream: Readable, what: string): Promise<SavedArchiveCheck[]> {
  const entries = new Map<string, SavedEntry>();
  const tar = new TarInput(stream);
  try {
    for (let entry = await tar.next(); entry !== null; entry = await tar.next()) {
      if (entry.type !== 'file') continue;
      const name = displayName(entry.name).replace(/^\.\//, '');
      const small = entry.size < 4 * 1024 * 1024 && !name.endsWith('.tar');
      entries.set(name, await hashEntry(tar.data(), small));
    }
  } catch (error) {
    await tar.close();
    throw error;
  }

  const fail = (why: string) => new InputError('E_STORE_VERIFY', `${what}: ${why}`);
  const manifestText = entries.get('manifest.json')?.text;
  if (manifestText === undefined) throw fail('the saved archive has no manifest.json');
  const manifest = parseDockerManifest(manifestText, (why) => fail(`the saved archive's ${why}`));
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
    results.push({ repoTags: image.RepoTags, layers: image.Layers.length, configDigest: config.sha256 });
  }
  return results;
}
