/**
 * The BitBake DL_DIR image archive: written byte for byte as the Python fetcher wrote it
 * (a conformance case: both writers, one sha256), read back, and refused with the member
 * named for each corruption a mirror or a copied DL_DIR can bring.
 */
import { execFileSync } from 'node:child_process';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeTar, type TarWriteEntry } from '../../../src/formats/tar/encode.js';
import {
  imageArchiveName,
  mergeImageLocks,
  unpackImageArchive,
  verifyImageArchive,
  writeImageArchive,
  type ImageArchiveTarget,
} from '../../../src/fetch/image-archive.js';
import { indexTarFile, readTarEntry } from '../../../src/formats/tar/file-index.js';
import { serializeLock } from '../../../src/formats/lock.js';
import { imageArchiveFixture as fixture, sha } from '../../fixtures/image-archive.js';
import { python } from '../../integration/bitbake-shell.js';

/**
 * The archive as the BitBake fetcher's Python wrote it before it called the CLI (tarfile, PAX
 * format, the same member settings): DL_DIRs and mirrors hold such files, and the CLI must
 * write the same bytes (the file name is the mirror's only key) and accept them.
 */
function pythonWrite(out: string, target: ImageArchiveTarget, lockPath: string, cache: string): void {
  python(`
import json, os, tarfile, io
lock = json.load(open(${JSON.stringify(lockPath)}))
image = lock["images"][0]
blob_dir = os.path.join(${JSON.stringify(cache)}, "blobs", "sha256")
config = json.load(open(os.path.join(blob_dir, image["config"]["digest"][7:])))
wanted = [image["manifest"]["digest"], image["config"]["digest"]] + [l["digest"] for l in image["layers"]] + config["rootfs"]["diff_ids"]
blobs = sorted({d[7:] for d in wanted if os.path.isfile(os.path.join(blob_dir, d[7:]))})
header = (json.dumps({"ctrbakeImageArchive": 1, "reference": ${JSON.stringify(target.reference)}, "platform": ${JSON.stringify(target.platform)}}, indent=2, sort_keys=True) + "\\n").encode()
def member(name, size):
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime, info.uid, info.gid, info.uname, info.gname = size, 0o644, 0, 0, 0, "", ""
    return info
with tarfile.open(${JSON.stringify(out)}, mode="w", format=tarfile.PAX_FORMAT) as tar:
    tar.addfile(member("ctrbake-image.json", len(header)), io.BytesIO(header))
    for name, path in [("lock.json", ${JSON.stringify(lockPath)})] + [("blobs/sha256/" + h, os.path.join(blob_dir, h)) for h in blobs]:
        with open(path, "rb") as f:
            tar.addfile(member(name, os.path.getsize(path)), f)`);
}

/** Rewrites an archive's members (the same codec and options), to make one corruption. */
async function rewrite(from: string, to: string, edit: (members: Array<{ path: string; data: Buffer }>) => Array<{ path: string; data: Buffer }>): Promise<void> {
  const members: Array<{ path: string; data: Buffer }> = [];
  for (const e of await indexTarFile(from)) members.push({ path: e.name, data: await readTarEntry(from, e) });
  const entries: TarWriteEntry[] = edit(members).map((m) => ({ path: m.path, type: 'file', mode: 0o644, size: m.data.length, content: m.data }));
  const chunks: Buffer[] = [];
  for await (const chunk of encodeTar(entries, { posix: true })) chunks.push(chunk);
  await writeFile(to, Buffer.concat(chunks));
}

describe('image archive', () => {
  it('is written byte for byte as the Python fetcher wrote it (sorted members, owner 0, mtime 0, mode 0644)', async () => {
    const f = await fixture();
    const ts = join(f.dir, 'ts.tar');
    const py = join(f.dir, 'py.tar');
    await writeImageArchive(ts, f.target, f.lockPath, f.cache);
    pythonWrite(py, f.target, f.lockPath, f.cache);
    expect(sha(await readFile(ts))).toBe(sha(await readFile(py)));
    const names = (await indexTarFile(ts)).map((e) => e.name);
    expect(names.slice(0, 2)).toEqual(['ctrbake-image.json', 'lock.json']);
    expect(names.slice(2)).toEqual([...names.slice(2)].sort());
    expect(names).toHaveLength(5);
    // GNU tar lists it with owner 0 and mtime 0.
    expect(execFileSync('tar', ['-tvf', ts, '--numeric-owner'], { encoding: 'utf8' })).toMatch(/^-rw-r--r-- 0\/0 .* 1970-01-01 00:00 ctrbake-image\.json$/m);
  });

  it('names the file as the Python fetcher does', () => {
    const ref = '127.0.0.1:5000/library/app@sha256:' + 'a'.repeat(64);
    const py = python(`from ctrbake_bb import imagearchive\nprint(imagearchive.archive_name(${JSON.stringify(ref)}, "linux/arm/v7"))`).trim();
    expect(imageArchiveName(ref, 'linux/arm/v7')).toBe(py);
  });

  it('round trip: verify returns the lock; unpack stores every blob in the cache layout and the lock', async () => {
    const f = await fixture();
    const archive = join(f.dir, imageArchiveName(f.target.reference, f.target.platform));
    await writeImageArchive(archive, f.target, f.lockPath, f.cache);
    const { lock, blobs } = await verifyImageArchive(archive, f.target);
    expect(lock).toEqual(f.lock);
    expect(Object.keys(blobs).sort()).toEqual((await readdir(join(f.cache, 'blobs', 'sha256'))).sort());
    const dest = join(f.dir, 'unpacked');
    const { lockPath: lockOut } = await unpackImageArchive(archive, f.target, dest);
    expect(lockOut).toBe(join(dest, 'locks', `${imageArchiveName(f.target.reference, f.target.platform)}.lock.json`));
    expect(await readFile(lockOut, 'utf8')).toBe(await readFile(f.lockPath, 'utf8'));
    for (const hex of Object.keys(blobs)) expect(sha(await readFile(join(dest, 'cache', 'blobs', 'sha256', hex)))).toBe(hex);
  });

  it('accepts the archive the Python writer wrote', async () => {
    const f = await fixture();
    const py = join(f.dir, 'py.tar');
    pythonWrite(py, f.target, f.lockPath, f.cache);
    await expect(verifyImageArchive(py, f.target)).resolves.toMatchObject({ lock: f.lock });
  });

  describe('refuses, naming the member and the fix', () => {
    const cases: Array<[string, (f: Awaited<ReturnType<typeof fixture>>, archive: string, bad: string) => Promise<ImageArchiveTarget | void>, RegExp]> = [
      [
        'a flipped byte in a blob',
        (f, archive, bad) =>
          rewrite(archive, bad, (ms) => ms.map((m) => (m.path === `blobs/sha256/${f.lock.images[0]!.layers[0]!.digest.slice(7)}` ? { ...m, data: Buffer.from(m.data.map((b, i) => (i === 0 ? b ^ 1 : b))) } : m))),
        /blob blobs\/sha256\/[0-9a-f]{64} has sha256 [0-9a-f]{64} \(damaged or altered\)/,
      ],
      ['a missing blob', (f, archive, bad) => rewrite(archive, bad, (ms) => ms.filter((m) => m.path !== `blobs/sha256/${f.lock.images[0]!.layers[0]!.digest.slice(7)}`)), /layer 0 \(blobs\/sha256\/[0-9a-f]{64}\) is missing/],
      ['an extra member', (_f, archive, bad) => rewrite(archive, bad, (ms) => [...ms, { path: 'notes.txt', data: Buffer.from('hi') }]), /unexpected member "notes\.txt"/],
      [
        'an extra blob the lock does not name',
        (_f, archive, bad) => rewrite(archive, bad, (ms) => [...ms, { path: `blobs/sha256/${sha('x')}`, data: Buffer.from('x') }]),
        /blobs the lock does not name: blobs\/sha256\/[0-9a-f]{64}/,
      ],
      ['a non-archive file', (_f, _archive, bad) => writeFile(bad, 'this is not a tar file at all, just text\n'.repeat(20)), /not a readable tar/],
      [
        'a lock for another reference',
        async (f, archive, bad) => {
          await rewrite(archive, bad, (ms) => ms);
          return { ...f.target, reference: f.target.reference.replace('/app@', '/other@') };
        },
        /is 127\.0\.0\.1:5000\/app@sha256:[0-9a-f]{64} for linux\/arm64\/v8 \(ctrbake-image\.json\), not 127\.0\.0\.1:5000\/other@/,
      ],
      [
        'a lock.json for another reference than its header',
        (f, archive, bad) =>
          rewrite(archive, bad, (ms) =>
            ms.map((m) => (m.path === 'lock.json' ? { ...m, data: Buffer.from(serializeLock({ ...f.lock, images: [{ ...f.lock.images[0]!, reference: '127.0.0.1:5000/other:1', tag: '1' }] })) } : m)),
          ),
        /lock\.json holds 127\.0\.0\.1:5000\/other:1, not 127\.0\.0\.1:5000\/app@/,
      ],
      [
        'a lock for another pinned digest',
        (f, archive, bad) =>
          rewrite(archive, bad, (ms) =>
            ms.map((m) => (m.path === 'lock.json' ? { ...m, data: Buffer.from(serializeLock({ ...f.lock, images: [{ ...f.lock.images[0]!, indexDigest: `sha256:${'e'.repeat(64)}`, manifest: { ...f.lock.images[0]!.manifest, digest: `sha256:${'e'.repeat(64)}` } }] })) } : m)),
          ),
        /lock\.json resolved 127\.0\.0\.1:5000\/app@sha256:[0-9a-f]{64} to sha256:e{64}, not the pinned sha256:/,
      ],
      [
        'a lock for another platform',
        (f, archive, bad) =>
          rewrite(archive, bad, (ms) => ms.map((m) => (m.path === 'lock.json' ? { ...m, data: Buffer.from(serializeLock({ ...f.lock, platform: { os: 'linux', architecture: 'amd64' } })) } : m))),
        /lock\.json holds platform linux\/amd64, not linux\/arm64\/v8/,
      ],
    ];
    it.each(cases)('%s', async (_name, corrupt, message) => {
      const f = await fixture();
      const archive = join(f.dir, 'good.tar');
      const bad = join(f.dir, 'bad.tar');
      await writeImageArchive(archive, f.target, f.lockPath, f.cache);
      const target = (await corrupt(f, archive, bad)) ?? f.target;
      const refused = { code: 'E_IMAGE_ARCHIVE_INVALID', message: expect.stringMatching(message) };
      await expect(verifyImageArchive(bad, target)).rejects.toMatchObject(refused);
      await expect(verifyImageArchive(bad, target)).rejects.toThrow(/^bad\.tar: .*; delete it and fetch again/);
      await expect(unpackImageArchive(bad, target, join(f.dir, 'dest'))).rejects.toMatchObject(refused);
    });
  });

  it('unpack never stores a damaged blob under its name', async () => {
    const f = await fixture();
    const archive = join(f.dir, 'good.tar');
    const bad = join(f.dir, 'bad.tar');
    await writeImageArchive(archive, f.target, f.lockPath, f.cache);
    const layerHex = f.lock.images[0]!.layers[0]!.digest.slice(7);
    await rewrite(archive, bad, (ms) => ms.map((m) => (m.path === `blobs/sha256/${layerHex}` ? { ...m, data: Buffer.from('X' + m.data.subarray(1).toString()) } : m)));
    await expect(unpackImageArchive(bad, f.target, join(f.dir, 'dest'))).rejects.toMatchObject({ code: 'E_IMAGE_ARCHIVE_INVALID' });
    expect(await readdir(join(f.dir, 'dest', 'cache', 'blobs', 'sha256'))).not.toContain(layerHex);
  });

  it('merges one-image locks as the Python fetcher did (sorted by reference, each once)', async () => {
    const a = await fixture('zed', 'z');
    const b = await fixture('app', 'a');
    const ts = join(a.dir, 'merged-ts.json');
    const py = join(a.dir, 'merged-py.json');
    const merged = await mergeImageLocks([a.lockPath, b.lockPath, a.lockPath], ts);
    expect(merged.images.map((i) => i.reference)).toEqual([b.target.reference, a.target.reference]);
    // The old Python merge: json.dumps(indent=2) of {lockVersion, platform, images sorted by reference}.
    python(`
import json
images = {}
for p in ${JSON.stringify([a.lockPath, b.lockPath, a.lockPath])}:
    lock = json.load(open(p))
    images[lock["images"][0]["reference"]] = lock["images"][0]
open(${JSON.stringify(py)}, "w").write(json.dumps({"lockVersion": 1, "platform": lock["platform"], "images": [images[r] for r in sorted(images)]}, indent=2) + "\\n")`);
    expect(await readFile(ts, 'utf8')).toBe(await readFile(py, 'utf8'));
  });

  it('refuses to merge locks of different platforms, naming the lock', async () => {
    const a = await fixture('app', 'a');
    const other = join(a.dir, 'amd64.json');
    await writeFile(other, serializeLock({ ...a.lock, platform: { os: 'linux', architecture: 'amd64' }, images: [{ ...a.lock.images[0]!, reference: '127.0.0.1:5000/b:1', tag: '1' }] }));
    await expect(mergeImageLocks([a.lockPath, other], join(a.dir, 'm.json'))).rejects.toThrow(/amd64\.json: platform linux\/amd64 differs from linux\/arm64\/v8; lock every image for the same platform/);
  });
});
