/**
 * `ctrbake fetch` with skopeo against a real docker-registry: what lands in the cache, offline
 * reruns, auth, retries, failures, parallel fetches and interrupted fetches.
 */
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchImages } from '../../src/fetch/index.js';
import type { LockFile } from '../../src/formats/index.js';
import { pushFixtureImages, type FixtureImages } from '../fixtures/images.js';
import { startRegistry, type TestRegistry } from '../../devkit/registry.js';
import {
  cacheBlobs,
  rehost,
  lockDigests,
  parseCliOutput,
  runCli,
  startCli,
  processesNaming,
  startFaultProxy,
  waitFor,
  writeLock,
} from './fetch-helpers.js';

let work: string;
let registry: TestRegistry;
let images: FixtureImages;
let lock: LockFile;
let lockPath: string;
let authRegistry: TestRegistry;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ctrbake-fetch-skopeo-'));
  registry = await startRegistry();
  images = await pushFixtureImages(registry);
  // The lock comes from `ctrbake lock`: sample and fidelity share the busybox layer, multi is an index.
  lockPath = join(work, 'ctrbake.lock.json');
  const locked = await runCli(['lock', '--platform', 'linux/amd64', images.sample, images.fidelity, images.multi, '--insecure-registry', registry.host, '-o', lockPath]);
  if (locked.exitCode !== 0) throw new Error(`ctrbake lock failed: ${locked.stderr}`);
  lock = JSON.parse(await readFile(lockPath, 'utf8')) as LockFile;
  authRegistry = await startRegistry({ auth: true });
  await pushFixtureImages(authRegistry);
});

afterAll(async () => {
  await registry?.close();
  await authRegistry?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

let n = 0;
const newCache = () => join(work, `cache-${++n}`);

async function expectCacheHoldsLock(cacheDir: string, l: LockFile): Promise<void> {
  const { digests, wrong } = await cacheBlobs(cacheDir);
  expect(wrong, 'files in blobs/ whose bytes do not match their name').toEqual([]);
  expect(digests).toEqual(lockDigests(l));
  expect(await readdir(join(cacheDir, 'tmp'))).toEqual([]);
}

describe('fetch with skopeo', () => {
  it('stores exactly what the lock names, verified, shared layers once; a rerun with the registry stopped does no network I/O', async () => {
    const cache = newCache();
    const first = await runCli(['fetch', '--lock', lockPath, '--cache', cache, '--fetcher', 'skopeo', '--insecure-registry', registry.host, '--json']);
    expect(first.error).toBeUndefined();
    expect(first.exitCode).toBe(0);
    await expectCacheHoldsLock(cache, lock);
    // sample and fidelity share the busybox layer: 3 manifests + 3 configs + distinct layers.
    const distinct = lockDigests(lock).size;
    const named = lock.images.reduce((k, i) => k + 2 + i.layers.length, 0);
    expect(distinct).toBeLessThan(named);
    expect(first.result).toMatchObject({ fetcher: 'skopeo', blobsFetched: distinct, blobsAlreadyCached: 0 });
    const sizes = new Map(lock.images.flatMap((i) => [i.manifest, i.config, ...i.layers]).map((x) => [x.digest, x.size]));
    sizes.set(images.multiIndex.digest, images.multiIndex.size);
    const bytes = [...lockDigests(lock)].reduce((k, d) => k + sizes.get(d)!, 0);
    expect(first.result!.bytesFetched).toBe(bytes);
    expect(first.lines.filter((l) => l.event === 'fetch.blob').length).toBeGreaterThanOrEqual(distinct);

    await registry.stop();
    try {
      const second = await runCli(['fetch', '--lock', lockPath, '--cache', cache, '--insecure-registry', registry.host, '--json', '--retries', '0']);
      expect(second.error).toBeUndefined();
      expect(second.result).toMatchObject({ fetcher: null, blobsFetched: 0, bytesFetched: 0, blobsAlreadyCached: distinct });
      expect((second.result!.images as { status: string }[]).map((i) => i.status)).toEqual(['cached', 'cached', 'cached']);
    } finally {
      await registry.start();
    }
  });

  it('plain fetch re-hashes the cache and fetches a damaged blob again (--verify-cache is an alias); --offline only checks the cache', async () => {
    const cache = newCache();
    const missing = await runCli(['fetch', '--lock', lockPath, '--cache', cache, '--offline', '--json']);
    expect(missing.exitCode).toBe(1);
    expect(missing.error?.code).toBe('E_CACHE_MISS');

    await fetchImages({ lockPath, cacheDir: cache, insecureRegistries: [registry.host] });
    const offline = await runCli(['fetch', '--lock', lockPath, '--cache', cache, '--offline', '--json']);
    expect(offline.error).toBeUndefined();
    expect(offline.result).toMatchObject({ offline: true });

    // Damage a layer in place, same size (bit rot, a bad copy of a mirrored DL_DIR).
    const layer = lock.images[0]!.layers[0]!;
    const path = join(cache, 'blobs', 'sha256', layer.digest.slice(7));
    const damage = async () => {
      const bytes = await readFile(path);
      bytes[100] ^= 0xff;
      await writeFile(path, bytes);
    };
    await damage();
    // --offline finds it, and names the fetch that repairs it.
    const offlineDamaged = await runCli(['fetch', '--lock', lockPath, '--cache', cache, '--offline', '--json']);
    expect(offlineDamaged.error?.code).toBe('E_CACHE_DAMAGED');
    expect(offlineDamaged.error?.message).toContain(`ctrbake fetch --lock ${resolve(lockPath)} --cache ${resolve(cache)}`);
    for (const extra of [[], ['--verify-cache']]) {
      const repaired = await runCli(['fetch', '--lock', lockPath, '--cache', cache, '--insecure-registry', registry.host, ...extra, '--json']);
      expect(repaired.error).toBeUndefined();
      expect(repaired.lines.filter((l) => l.event === 'fetch.evict').map((l) => l.digest)).toEqual([layer.digest]);
      expect(repaired.lines.filter((l) => l.event === 'fetch.repaired').map((l) => [l.digest, l.path])).toEqual([[layer.digest, path]]);
      expect(repaired.result).toMatchObject({ fetcher: 'skopeo', blobsFetched: 1, bytesFetched: layer.size, blobsRepaired: 1 });
      await expectCacheHoldsLock(cache, lock);
      await damage();
    }
  });

  it('downloads each blob once: a layer shared by images, or already cached, is not downloaded again', async () => {
    const proxy = await startFaultProxy(registry.host);
    try {
      const proxied = rehost(lock, proxy.host);
      const cache = newCache();
      const opts = { cacheDir: cache, fetcher: 'skopeo' as const, insecureRegistries: [proxy.host] };
      const first = await fetchImages({ ...opts, lock: proxied });
      // Every config and layer crossed the network exactly once, the shared busybox layer too.
      const blobs = new Set(lock.images.flatMap((i) => [i.config, ...i.layers]).map((d) => d.digest));
      expect([...proxy.stats.blobGets].sort()).toEqual([...blobs].sort());
      expect(first.blobsFetched).toBe(lockDigests(lock).size);

      // Lose one layer of one image: only that layer is downloaded again.
      const fidelity = lock.images.find((i) => i.repository === 'ctrbake/fidelity')!;
      const lost = fidelity.layers[fidelity.layers.length - 1]!;
      await rm(join(cache, 'blobs', 'sha256', lost.digest.slice(7)));
      proxy.stats.blobGets.length = 0;
      const second = await fetchImages({ ...opts, lock: proxied });
      // skopeo reads the (small) config from the source on every copy; no other layer is downloaded.
      expect([...proxy.stats.blobGets].sort()).toEqual([lost.digest, fidelity.config.digest].sort());
      expect(second).toMatchObject({ blobsFetched: 1, bytesFetched: lost.size, blobsAlreadyCached: lockDigests(lock).size - 1 });
      expect(second.images.map((i) => i.status)).toEqual(lock.images.map((i) => (i === fidelity ? 'fetched' : 'cached')));
      await expectCacheHoldsLock(cache, lock);
    } finally {
      await proxy.close();
    }
  });

  it('fetches from a registry with auth using --authfile; the password appears nowhere', async () => {
    const authLock = rehost(lock, authRegistry.host);
    const path = await writeLock(join(work, 'auth.lock.json'), authLock);
    const cache = newCache();
    const { password, username } = authRegistry.auth!;

    const refused = await runCli(['fetch', '--lock', path, '--cache', cache, '--insecure-registry', authRegistry.host, '--json', '--retries', '0']);
    expect(refused.exitCode).toBe(1);
    expect(refused.error?.code, `stdout: ${refused.stdout}\nstderr: ${refused.stderr}`).toBe('E_AUTH_REFUSED');
    expect(refused.error?.message).toContain('--authfile');

    const wrongAuthfile = join(work, 'wrong-auth.json');
    const wrongPassword = `${password}-but-wrong`;
    await writeFile(wrongAuthfile, JSON.stringify({ auths: { [authRegistry.host]: { auth: Buffer.from(`${username}:${wrongPassword}`).toString('base64') } } }));
    const wrong = await runCli(['fetch', '--lock', path, '--cache', cache, '--authfile', wrongAuthfile, '--insecure-registry', authRegistry.host, '--json', '--retries', '0']);
    expect(wrong.error?.code).toBe('E_AUTH_REFUSED');
    expect(wrong.stdout + wrong.stderr).not.toContain(wrongPassword);

    const ok = await runCli(['fetch', '--lock', path, '--cache', cache, '--authfile', authRegistry.authfile!, '--insecure-registry', authRegistry.host, '--json']);
    expect(ok.error).toBeUndefined();
    // --fetcher auto (the default) picks skopeo when it is installed.
    expect(ok.result).toMatchObject({ fetcher: 'skopeo' });
    await expectCacheHoldsLock(cache, authLock);
    const everything = refused.stdout + refused.stderr + wrong.stdout + wrong.stderr + ok.stdout + ok.stderr;
    expect(everything).not.toContain(password);
    expect(everything).not.toContain(Buffer.from(`${username}:${password}`).toString('base64'));
    const grep = await execa('grep', ['-r', '-l', '-F', password, cache], { reject: false });
    expect(grep.exitCode, `files in the cache holding the password: ${grep.stdout}`).toBe(1);
  });

  it('retries transient 503 answers with backoff and succeeds', async () => {
    const proxy = await startFaultProxy(registry.host, { failFirst: 3 });
    const events: string[] = [];
    try {
      const proxied = rehost(lock, proxy.host);
      const result = await fetchImages({
        lock: { ...proxied, images: [proxied.images[0]!] },
        cacheDir: newCache(),
        fetcher: 'skopeo',
        insecureRegistries: [proxy.host],
        retry: { initialDelayMs: 100 },
        reporter: { event: (e) => events.push(e.event), progress() {}, result() {}, error() {} },
      });
      expect(proxy.stats.failed).toBe(3);
      expect(events.filter((e) => e === 'fetch.retry').length).toBeGreaterThanOrEqual(1);
      expect(result.images[0]!.status).toBe('fetched');
    } finally {
      await proxy.close();
    }
  });

  it('E_REGISTRY_UNREACHABLE when the registry stays down after the retries', async () => {
    const proxy = await startFaultProxy(registry.host, { failFirst: 1_000_000 });
    try {
      const path = await writeLock(join(work, 'down.lock.json'), rehost(lock, proxy.host));
      const run = await runCli(['fetch', '--lock', path, '--cache', newCache(), '--insecure-registry', proxy.host, '--json', '--retries', '1']);
      expect(run.exitCode).toBe(1);
      expect(run.error?.code).toBe('E_REGISTRY_UNREACHABLE');
      expect(run.error?.message).toContain(proxy.host);
    } finally {
      await proxy.close();
    }
    const refused = await writeLock(join(work, 'refused.lock.json'), rehost(lock, '127.0.0.1:1'));
    const run = await runCli(['fetch', '--lock', refused, '--cache', newCache(), '--insecure-registry', '127.0.0.1:1', '--json', '--retries', '0']);
    expect(run.error?.code).toBe('E_REGISTRY_UNREACHABLE');
  });

  it('E_REGISTRY_UNREACHABLE (TLS, not retried) names --insecure-registry for a plain-HTTP registry', async () => {
    const run = await runCli(['fetch', '--lock', lockPath, '--cache', newCache(), '--json', '--retries', '0']);
    expect(run.error?.code).toBe('E_REGISTRY_UNREACHABLE');
    expect(run.error?.message).toContain(`--insecure-registry ${registry.host}`);
  });

  it('E_DIGEST_MISMATCH for a blob tampered in the registry storage: the bad blob never enters blobs/', async () => {
    const fidelity = lock.images.find((i) => i.repository === 'ctrbake/fidelity')!;
    const target = fidelity.layers[fidelity.layers.length - 1]!;
    const hex = target.digest.slice('sha256:'.length);
    const stored = join(registry.dataDir, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
    const backup = join(work, 'blob-backup');
    await copyFile(stored, backup);
    const bytes = await readFile(stored);
    bytes[Math.floor(bytes.length / 2)] ^= 0xff;
    await writeFile(stored, bytes);
    const cache = newCache();
    try {
      const run = await runCli(['fetch', '--lock', lockPath, '--cache', cache, '--insecure-registry', registry.host, '--json', '--retries', '0']);
      expect(run.exitCode).toBe(1);
      expect(run.error?.code).toBe('E_DIGEST_MISMATCH');
      const { digests, wrong } = await cacheBlobs(cache);
      expect(wrong).toEqual([]);
      expect(digests.has(target.digest)).toBe(false);
      expect(digests.has(fidelity.manifest.digest)).toBe(false);
    } finally {
      await copyFile(backup, stored);
    }
  });

  it.each([
    ['config digest', (l: LockFile) => ({ ...l.images[0]!, config: { ...l.images[0]!.config, digest: l.images[1]!.config.digest } })],
    ['layer size', (l: LockFile) => ({ ...l.images[0]!, layers: [{ ...l.images[0]!.layers[0]!, size: l.images[0]!.layers[0]!.size + 1 }] })],
  ])('E_DIGEST_MISMATCH for a lock edited to another %s; nothing enters blobs/', async (_what, edit) => {
    const edited: LockFile = { ...lock, images: [edit(lock)] };
    const path = await writeLock(join(work, `edited-${n}.lock.json`), edited);
    const cache = newCache();
    const run = await runCli(['fetch', '--lock', path, '--cache', cache, '--insecure-registry', registry.host, '--json', '--retries', '0']);
    expect(run.error?.code).toBe('E_DIGEST_MISMATCH');
    expect((await cacheBlobs(cache)).digests.size).toBe(0);
  });

  it('a full cache filesystem gives E_CACHE_IO and leaves only verified blobs', async () => {
    const small = join(work, 'small-fs');
    await mkdir(small);
    // 600 KiB: less than the busybox layer.
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=600k,mode=0700', 'ctrbake-test-full', small]);
    try {
      const cache = join(small, 'cache');
      const run = await runCli(['fetch', '--lock', lockPath, '--cache', cache, '--insecure-registry', registry.host, '--json', '--retries', '0']);
      expect(run.exitCode).toBe(1);
      expect(run.error?.code).toBe('E_CACHE_IO');
      expect(run.error?.message).toContain('--cache');
      expect((await cacheBlobs(cache)).wrong).toEqual([]);
      expect(await readdir(join(cache, 'tmp'))).toEqual([]);
    } finally {
      await execa('umount', [small]);
    }
  });

  it('two CLI processes fetching the same lock into one cache at once both succeed', async () => {
    const cache = newCache();
    const args = ['fetch', '--lock', lockPath, '--cache', cache, '--insecure-registry', registry.host, '--json'];
    const [a, b] = (await Promise.all([startCli(args), startCli(args)])).map(parseCliOutput);
    expect(a!.error).toBeUndefined();
    expect(b!.error).toBeUndefined();
    expect([a!.exitCode, b!.exitCode]).toEqual([0, 0]);
    await expectCacheHoldsLock(cache, lock);
  });

  it.each(['SIGTERM', 'SIGKILL'] as const)('a fetch killed with %s mid-download leaves only verified blobs, no downloader, and a rerun resumes', async (signal) => {
    const cache = newCache();
    // Throttled blobs: skopeo copies one blob at a time; the busybox layer (~1 MB) takes ~3 s,
    // every image starts with it, so skopeo is still busy when the first blob is complete.
    const proxy = await startFaultProxy(registry.host, { bytesPerSecond: 400 * 1024 });
    try {
      const slowLock = rehost(lock, proxy.host);
      const path = await writeLock(join(work, `slow-${signal}.lock.json`), slowLock);
      const child = startCli(['fetch', '--lock', path, '--cache', cache, '--insecure-registry', proxy.host, '--json']);
      // Kill once skopeo holds at least one complete new blob in its download dir and is still busy.
      const completeInTmp = await waitFor(async () => {
        const cached = new Set(await readdir(join(cache, 'blobs', 'sha256')).catch(() => [] as string[]));
        for (const dir of await readdir(join(cache, 'tmp')).catch(() => [] as string[])) {
          const names = await readdir(join(cache, 'tmp', dir, 'shared', 'sha256')).catch(() => [] as string[]);
          if (names.some((n) => /^[0-9a-f]{64}$/.test(n) && !cached.has(n))) return true;
        }
        return false;
      }, 30_000);
      expect(completeInTmp, 'skopeo stored no complete blob within 30 s').toBe(true);
      expect(child.exitCode).toBeNull();
      child.kill(signal);
      const killed = parseCliOutput(await child);
      if (signal === 'SIGTERM') expect(killed.exitCode).toBe(143);
      else expect(killed.signal).toBe('SIGKILL');
      // No skopeo left writing into this cache (SIGKILL: its parent-death signal ended it).
      expect(await waitFor(async () => (await processesNaming(cache)).length === 0, 5_000), `still running: ${await processesNaming(cache)}`).toBe(true);
      const afterKill = await cacheBlobs(cache);
      expect(afterKill.wrong).toEqual([]);
      expect(afterKill.digests.size).toBeLessThan(lockDigests(slowLock).size);
      if (signal === 'SIGTERM') {
        // The cleanup kept the complete blobs and removed its download dir.
        expect(await readdir(join(cache, 'tmp'))).toEqual([]);
        expect(afterKill.digests.size).toBeGreaterThan(0);
      }

      // The rerun goes through an unthrottled proxy that records which blobs it downloads.
      const counting = await startFaultProxy(registry.host);
      let rerun;
      try {
        const path2 = await writeLock(join(work, `rerun-${signal}.lock.json`), rehost(lock, counting.host));
        rerun = await runCli(['fetch', '--lock', path2, '--cache', cache, '--insecure-registry', counting.host, '--json']);
      } finally {
        await counting.close();
      }
      expect(rerun.error).toBeUndefined();
      await expectCacheHoldsLock(cache, lock);
      let kept = [...afterKill.digests];
      if (signal === 'SIGKILL') {
        // The dead run's complete blobs were recovered from CACHE/tmp/.
        const recovered = rerun.lines.find((l) => l.event === 'fetch.recovered');
        expect(recovered?.digests).toEqual(expect.arrayContaining([expect.stringMatching(/^sha256:/)]));
        kept = [...kept, ...(recovered!.digests as string[])];
      }
      // Resumed: no layer kept from the killed run was downloaded again (skopeo re-reads configs only).
      const configs = new Set(lock.images.map((i) => i.config.digest));
      const layersAgain = counting.stats.blobGets.filter((d) => kept.includes(d) && !configs.has(d));
      expect(layersAgain).toEqual([]);
      expect(rerun.result!.blobsAlreadyCached).toBeGreaterThan(afterKill.digests.size - 1);
      expect(rerun.result!.blobsFetched).toBe(lockDigests(lock).size - (rerun.result!.blobsAlreadyCached as number));
    } finally {
      await proxy.close();
    }
  });
});
