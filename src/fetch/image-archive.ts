/**
 * The BitBake DL_DIR image archive (docs/yocto.md): one image for one platform as one file,
 * `ctrbake_<name>_<platform>_<12 hex>.tar`, an uncompressed tar written the same way by
 * everyone (sorted members, owner 0, mtime 0, mode 0644, no directories) holding
 *
 *     ctrbake-image.json   {"ctrbakeImageArchive": 1, "platform": ..., "reference": ...}
 *     lock.json            the lock of this one image, as `ctrbake lock` wrote it
 *     blobs/sha256/<hex>   the platform manifest (when cached), the config, the layers
 *                          (as published, or uncompressed under their diff_id)
 *
 * Nothing in it is trusted because of where it came from (registry, PREMIRRORS, a copied
 * DL_DIR): the reader re-hashes every blob against its name, checks the lock against the URL
 * (reference, pinned digest, platform) and the blobs against the lock. The BitBake fetcher
 * (lib/ctrbake-bb) calls `ctrbake image-archive` for all of it.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { InputError } from '../errors.js';
import { normalizePlatform, parsePlatform } from '../registry/platform.js';
import { fsyncDir, tempSiblingPath, toJsonFile, writeFileAtomic } from '../util/fs.js';
import { isObject } from '../formats/check.js';
import { formatPlatform } from '../formats/index.js';
import { readLock, validateLock, type LockedImage, type LockFile } from '../formats/lock.js';
import { indexTarFile, readTarEntry, type TarIndexEntry } from '../formats/tar/file-index.js';
import { writeTarFile, type TarWriteEntry } from '../formats/tar/encode.js';

export const E_IMAGE_ARCHIVE_INVALID = 'E_IMAGE_ARCHIVE_INVALID';
export const IMAGE_ARCHIVE_VERSION = 1;

const HEADER = 'ctrbake-image.json';
const LOCK = 'lock.json';
const BLOB_RE = /^blobs\/sha256\/([0-9a-f]{64})$/;
const PINNED_RE = /^[^@]+@(sha256:[0-9a-f]{64})$/;
const MAX_JSON = 1 << 20;

/** What an archive must hold: the URL's reference (normalized) and platform (OS/ARCH[/VARIANT]). */
export interface ImageArchiveTarget {
  reference: string;
  platform: string;
}

export interface ImageArchiveContents {
  lock: LockFile;
  /** Blob hex name -> size. */
  blobs: Record<string, number>;
}

function invalid(archive: string, what: string): InputError {
  return new InputError(E_IMAGE_ARCHIVE_INVALID, `${basename(archive)}: ${what}; delete it and fetch again (BitBake: run the recipe's cleanall task, or remove the file from the mirror)`);
}

const hexOf = (digest: string): string => digest.slice('sha256:'.length);

/** The DL_DIR file name: readable, unique for (reference, platform), only [A-Za-z0-9._-]. */
export function imageArchiveName(reference: string, platform: string): string {
  const readable = reference.split('@', 1)[0]!.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[_.]+|[_.]+$/g, '').slice(0, 80);
  const plat = platform.replace(/[^A-Za-z0-9]+/g, '-');
  const hash = createHash('sha256').update(`${reference}\0${platform}`).digest('hex').slice(0, 12);
  return `ctrbake_${readable}_${plat}_${hash}.tar`;
}

function oneImage(lock: LockFile, where: string, fail: (what: string) => Error): LockedImage {
  if (lock.images.length !== 1) throw fail(`${where} is a lock of ${lock.images.length} images, not exactly one`);
  return lock.images[0]!;
}

async function configDiffIds(path: string): Promise<string[]> {
  try {
    const config: unknown = JSON.parse(await readFile(path, 'utf8'));
    const ids = isObject(config) && isObject(config.rootfs) ? config.rootfs.diff_ids : undefined;
    return Array.isArray(ids) ? ids.filter((d): d is string => typeof d === 'string') : [];
  } catch {
    return [];
  }
}

/** Hex names of every blob this image may have: manifest, config, layers as published and uncompressed. */
function wantedHexes(image: LockedImage, diffIds: readonly string[]): Set<string> {
  const digests = [image.manifest.digest, image.config.digest, ...image.layers.map((l) => l.digest), ...diffIds];
  return new Set(digests.filter((d) => d.startsWith('sha256:')).map(hexOf));
}

function headerText(target: ImageArchiveTarget): Buffer {
  // Keys sorted and two-space indented, as the Python writer wrote them.
  return Buffer.from(`${JSON.stringify({ ctrbakeImageArchive: IMAGE_ARCHIVE_VERSION, platform: target.platform, reference: target.reference }, null, 2)}\n`);
}

async function* fileEntries(members: Array<{ path: string; file?: string; data?: Buffer }>): AsyncGenerator<TarWriteEntry> {
  for (const m of members) {
    const size = m.data ? m.data.length : (await stat(m.file!)).size;
    yield { path: m.path, type: 'file', mode: 0o644, size, content: m.data ?? createReadStream(m.file!) };
  }
}

/**
 * Writes the archive of the one image of `lockPath` from `cacheDir` (the blobs the lock needs
 * that the cache has) to `archive`, atomically.
 */
export async function writeImageArchive(archive: string, target: ImageArchiveTarget, lockPath: string, cacheDir: string): Promise<void> {
  const lock = await readLock(lockPath);
  const image = oneImage(lock, lockPath, (what) => new InputError('E_LOCK_INVALID', `${what}; lock one reference for one platform`));
  const blobDir = join(cacheDir, 'blobs', 'sha256');
  const wanted = wantedHexes(image, await configDiffIds(join(blobDir, hexOf(image.config.digest))));
  const present: string[] = [];
  for (const hex of wanted) if ((await stat(join(blobDir, hex)).catch(() => undefined))?.isFile()) present.push(hex);
  present.sort();
  const tmp = tempSiblingPath(archive);
  try {
    await writeTarFile(
      tmp,
      fileEntries([{ path: HEADER, data: headerText(target) }, { path: LOCK, file: lockPath }, ...present.map((hex) => ({ path: `blobs/sha256/${hex}`, file: join(blobDir, hex) }))]),
      0o644,
      { posix: true },
    );
    const fh = await open(tmp, 'r+');
    await fh.sync().finally(() => fh.close());
    await rename(tmp, archive);
    await fsyncDir(join(archive, '..'));
  } catch (error) {
    await unlink(tmp).catch(() => undefined);
    throw error;
  }
}

async function hashEntry(archive: string, entry: TarIndexEntry): Promise<string> {
  const hash = createHash('sha256');
  if (entry.size > 0) for await (const chunk of createReadStream(archive, { start: entry.offset, end: entry.offset + entry.size - 1 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function parseJson(archive: string, member: string, data: Buffer): unknown {
  try {
    return JSON.parse(data.toString('utf8'));
  } catch {
    throw invalid(archive, `${member} is not JSON`);
  }
}

function checkLock(archive: string, lock: LockFile, target: ImageArchiveTarget): LockedImage {
  const image = oneImage(lock, LOCK, (what) => invalid(archive, what));
  if (image.reference !== target.reference) throw invalid(archive, `${LOCK} holds ${image.reference}, not ${target.reference}`);
  const pinned = PINNED_RE.exec(target.reference)?.[1];
  if (pinned && pinned !== image.indexDigest && pinned !== image.manifest.digest) {
    throw invalid(archive, `${LOCK} resolved ${target.reference} to ${image.indexDigest}, not the pinned ${pinned}`);
  }
  const want = formatPlatform(normalizePlatform(parsePlatform(target.platform)));
  if (formatPlatform(lock.platform) !== want) throw invalid(archive, `${LOCK} holds platform ${formatPlatform(lock.platform)}, not ${target.platform}`);
  return image;
}

async function checkBlobs(archive: string, image: LockedImage, blobs: Record<string, number>, readBlob: (hex: string) => Promise<Buffer>): Promise<void> {
  const config = image.config;
  if (blobs[hexOf(config.digest)] !== config.size) throw invalid(archive, `config blobs/sha256/${hexOf(config.digest)} is missing or of the wrong size`);
  const manifestHex = hexOf(image.manifest.digest);
  if (manifestHex in blobs) {
    const manifest = parseJson(archive, `blobs/sha256/${manifestHex}`, await readBlob(manifestHex));
    const listed = isObject(manifest) ? [manifest.config, ...(Array.isArray(manifest.layers) ? manifest.layers : [])].map((d) => (isObject(d) ? d.digest : undefined)) : [];
    const expected = [config.digest, ...image.layers.map((l) => l.digest)];
    if (JSON.stringify(listed) !== JSON.stringify(expected)) throw invalid(archive, `manifest blobs/sha256/${manifestHex} does not list the lock's config and layers`);
  }
  const configJson = parseJson(archive, `blobs/sha256/${hexOf(config.digest)}`, await readBlob(hexOf(config.digest)));
  const ids = isObject(configJson) && isObject(configJson.rootfs) && Array.isArray(configJson.rootfs.diff_ids) ? configJson.rootfs.diff_ids.filter((d): d is string => typeof d === 'string') : [];
  image.layers.forEach((layer, i) => {
    if (blobs[hexOf(layer.digest)] === layer.size) return;
    const diffId = ids[i];
    if (diffId?.startsWith('sha256:') && hexOf(diffId) in blobs) return;
    throw invalid(archive, `layer ${i} (blobs/sha256/${hexOf(layer.digest)}) is missing`);
  });
  const wanted = wantedHexes(image, ids);
  const extra = Object.keys(blobs).filter((hex) => !wanted.has(hex)).sort();
  if (extra.length) throw invalid(archive, `blobs the lock does not name: ${extra.map((h) => `blobs/sha256/${h}`).join(' ')}`);
}

interface Scanned extends ImageArchiveContents {
  lockBytes: Buffer;
  entries: Map<string, TarIndexEntry>;
}

/** Reads the archive's table of contents, its header and lock; every blob re-hashed against its name. */
async function scan(archive: string, target: ImageArchiveTarget, store?: (hex: string, entry: TarIndexEntry) => Promise<string>): Promise<Scanned> {
  let index: TarIndexEntry[];
  try {
    index = await indexTarFile(archive);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new InputError(E_IMAGE_ARCHIVE_INVALID, `${archive} does not exist; fetch it again`, { cause: error });
    throw new InputError(E_IMAGE_ARCHIVE_INVALID, `${basename(archive)}: not a readable tar (${(error as Error).message}); delete it and fetch again`, { cause: error });
  }
  const entries = new Map<string, TarIndexEntry>();
  const blobs: Record<string, number> = {};
  for (const entry of index) {
    if (entry.type !== 'file') throw invalid(archive, `member ${JSON.stringify(entry.name)} is not a regular file`);
    if (entries.has(entry.name)) throw invalid(archive, `member ${entry.name} is there twice`);
    entries.set(entry.name, entry);
    if (entry.name === HEADER || entry.name === LOCK) {
      if (entry.size > MAX_JSON) throw invalid(archive, `${entry.name} is too large`);
      continue;
    }
    const hex = BLOB_RE.exec(entry.name)?.[1];
    if (!hex) throw invalid(archive, `unexpected member ${JSON.stringify(entry.name)}`);
    const got = store ? await store(hex, entry) : await hashEntry(archive, entry);
    if (got !== hex) throw invalid(archive, `blob ${entry.name} has sha256 ${got} (damaged or altered)`);
    blobs[hex] = entry.size;
  }
  const headerEntry = entries.get(HEADER);
  const lockEntry = entries.get(LOCK);
  if (!headerEntry || !lockEntry) throw invalid(archive, `not a ctrbake image archive (no ${HEADER} or ${LOCK})`);
  const header = parseJson(archive, HEADER, await readTarEntry(archive, headerEntry));
  const version = isObject(header) ? header.ctrbakeImageArchive : undefined;
  if (version !== IMAGE_ARCHIVE_VERSION) throw invalid(archive, `archive version ${JSON.stringify(version)}, expected ${IMAGE_ARCHIVE_VERSION}`);
  const h = header as Record<string, unknown>;
  if (h.reference !== target.reference || h.platform !== target.platform) {
    throw invalid(archive, `is ${String(h.reference)} for ${String(h.platform)} (${HEADER}), not ${target.reference} for ${target.platform}`);
  }
  const lockBytes = await readTarEntry(archive, lockEntry);
  let lock: LockFile;
  try {
    lock = validateLock(parseJson(archive, LOCK, lockBytes), `${basename(archive)}: ${LOCK}`);
  } catch (error) {
    if ((error as InputError).code === E_IMAGE_ARCHIVE_INVALID) throw error;
    throw invalid(archive, `${LOCK} is not a valid lock (${(error as Error).message})`);
  }
  checkLock(archive, lock, target);
  return { lock, blobs, lockBytes, entries };
}

/** Verifies the archive (the module comment says what); returns its lock and blobs. */
export async function verifyImageArchive(archive: string, target: ImageArchiveTarget): Promise<ImageArchiveContents> {
  const { lock, blobs, entries } = await scan(archive, target);
  await checkBlobs(archive, lock.images[0]!, blobs, (hex) => readTarEntry(archive, entries.get(`blobs/sha256/${hex}`)!));
  return { lock, blobs };
}

/** Copies one blob into the cache under its name, hashing on the way; a wrong blob never gets its name. */
async function storeBlob(archive: string, blobDir: string, hex: string, entry: TarIndexEntry): Promise<string> {
  const final = join(blobDir, hex);
  const existing = await stat(final).catch(() => undefined);
  // Another archive of this unpack stored it (verified); hash ours anyway.
  if (existing?.isFile() && existing.size === entry.size) return hashEntry(archive, entry);
  const tmp = tempSiblingPath(final);
  const hash = createHash('sha256');
  const out = await open(tmp, 'w', 0o644);
  try {
    if (entry.size > 0) {
      for await (const chunk of createReadStream(archive, { start: entry.offset, end: entry.offset + entry.size - 1 })) {
        hash.update(chunk as Buffer);
        await out.write(chunk as Buffer);
      }
    }
    await out.close();
    const got = hash.digest('hex');
    if (got === hex) await rename(tmp, final);
    return got;
  } finally {
    await out.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
  }
}

/**
 * Verifies the archive while storing its blobs in DEST/cache (the CLI's cache layout) and
 * writes its lock to DEST/locks/<archive name>.lock.json (`lockPath`).
 */
export async function unpackImageArchive(archive: string, target: ImageArchiveTarget, dest: string): Promise<ImageArchiveContents & { lockPath: string }> {
  const blobDir = join(dest, 'cache', 'blobs', 'sha256');
  await mkdir(blobDir, { recursive: true });
  const { lock, blobs, lockBytes } = await scan(archive, target, (hex, entry) => storeBlob(archive, blobDir, hex, entry));
  await checkBlobs(archive, lock.images[0]!, blobs, (hex) => readFile(join(blobDir, hex)));
  const locks = join(dest, 'locks');
  await mkdir(locks, { recursive: true });
  const out = join(locks, `${imageArchiveName(target.reference, target.platform)}.lock.json`);
  await writeFileAtomic(out, lockBytes);
  return { lock, blobs, lockPath: out };
}

/** One lock for the bake from per-image locks (same platform; images sorted by reference, each once), written atomically. */
export async function mergeImageLocks(lockPaths: readonly string[], out: string): Promise<LockFile> {
  if (lockPaths.length === 0) throw new InputError('E_LOCK_INVALID', 'no image locks to merge; unpack at least one image archive first');
  let platform: LockFile['platform'] | undefined;
  const images = new Map<string, LockedImage>();
  for (const path of lockPaths) {
    const lock = await readLock(path);
    const image = oneImage(lock, path, (what) => new InputError('E_LOCK_INVALID', `${what}; merge the locks of single images`));
    if (platform === undefined) platform = lock.platform;
    else if (JSON.stringify(lock.platform) !== JSON.stringify(platform)) {
      throw new InputError('E_LOCK_INVALID', `${path}: platform ${formatPlatform(lock.platform)} differs from ${formatPlatform(platform)}; lock every image for the same platform`);
    }
    images.set(image.reference, image);
  }
  const merged: LockFile = { lockVersion: 1, platform: platform!, images: [...images.keys()].sort().map((r) => images.get(r)!) };
  await writeFileAtomic(out, toJsonFile(merged));
  return merged;
}
