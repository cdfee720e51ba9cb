/**
 * Store mode with the host's dockerd (Debian 12: 20.10), overlay2 and vfs: two bakes of one
 * lock in different directories give the same store.tar bytes; the store extracted into a
 * fresh data-root serves every image to a fresh dockerd (listed, runs with --network none,
 * `docker save` re-reads every layer); store.tar keeps every file property overlay needs and
 * holds nothing but image metadata and layers. Plus a linux/arm64 store.
 */
import { mkdir, mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { execa } from 'execa';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bakeStore, type BakeStoreResult } from '../../src/bake/store.js';
import { mountsUnder } from '../../src/engine/mounts.js';
import { processesMentioning } from '../../src/engine/processes.js';
import { verifyStore, type VerifyStoreResult } from '../../src/bake/verify-store.js';
import { FIXTURE_MTIME } from '../../devkit/layers.js';
import { assertFidelityOutput, CAP_NET_RAW_EP, MULTI_ARM64_ARCH_FILE, SAMPLE_OUTPUT } from '../fixtures/images.js';
import { grepFile, hostStrings, readTarEntries, setupStoreFixture, tarMember, type StoreFixture, type StoreTarEntry } from './store-setup.js';

const DRIVERS = ['overlay2', 'vfs'] as const;
type Driver = (typeof DRIVERS)[number];
const ARM64_SDE = 1_700_000_000;

interface DriverRun {
  a: BakeStoreResult;
  b: BakeStoreResult;
  dirs: string[];
  entries: StoreTarEntry[];
  verified: VerifyStoreResult;
}

let f: StoreFixture;
const runs = {} as Record<Driver, DriverRun>;
let arm64: BakeStoreResult;
let arm64Verified: VerifyStoreResult;

beforeAll(async () => {
  f = await setupStoreFixture();
  for (const driver of DRIVERS) {
    const dirA = await mkdtemp(join(f.work, `${driver}-a-`));
    const a = await bakeStore({ lock: f.lock, cacheDir: f.cacheDir, engine: 'docker', storageDriver: driver, outDir: join(dirA, 'out') });
    await sleep(2_000);
    const dirB = await mkdtemp(join(f.work, `${driver}-second-`));
    const b = await bakeStore({ lock: f.lock, cacheDir: f.cacheDir, engine: 'docker', storageDriver: driver, outDir: join(dirB, 'store-out') });
    const entries = await readTarEntries(a.storeTar.path);
    const verified = await verifyStore({ outDir: a.outDir });
    runs[driver] = { a, b, dirs: [dirA, dirB], entries, verified };
  }
  arm64 = await bakeStore({ lock: f.arm64Lock, cacheDir: f.cacheDir, engine: 'docker', storageDriver: 'overlay2', outDir: join(f.work, 'arm64'), sourceDateEpoch: ARM64_SDE });
  arm64Verified = await verifyStore({ outDir: arm64.outDir });
}, 600_000);

afterAll(async () => {
  await f?.dispose();
});

describe.each(DRIVERS)('docker %s store', (driver) => {
  it('two bakes in different directories, seconds apart, give the same store.tar bytes', () => {
    const { a, b } = runs[driver];
    expect(a.outDir).not.toBe(b.outDir);
    expect(b.storeTar.sha256).toBe(a.storeTar.sha256);
    expect(b.storeTar.size).toBe(a.storeTar.size);
  });

  it('extracted into a fresh data-root: every image listed, runs with --network none, docker save re-reads every layer', () => {
    const v = runs[driver].verified;
    expect(v.engine).toBe('docker');
    expect(v.engineVersion).toMatch(/^20\.10\./);
    expect(v.storageDriver).toBe(driver);
    const fidelity = v.images.find((i) => i.reference === f.images.fidelity);
    const sample = v.images.find((i) => i.reference === f.images.sample);
    assertFidelityOutput(fidelity?.output ?? '');
    expect(sample?.output?.trim()).toBe(SAMPLE_OUTPUT);
    expect(fidelity?.savedLayers).toBe(f.images.fidelityImage.layers.length);
    expect(sample?.savedLayers).toBe(f.images.sampleImage.layers.length);
    // Pinned by digest, as after a pull: `repo@sha256:<manifest digest>` resolves offline.
    expect(fidelity?.digestReferences).toEqual([`${f.images.registry}/ctrbake/fidelity@${f.images.fidelityImage.manifest.digest}`]);
  });

  it('holds only image metadata and layers: no runtime state, engine-id, container or build-host path', async () => {
    const { entries, dirs, a } = runs[driver];
    const top = new Set(entries.map((e) => e.name.split('/')[0]));
    expect([...top].sort()).toEqual(['image', driver]);
    const names = entries.map((e) => stripSlash(e.name));
    // The store's own files, without layer content (an image may well hold a tmp/ dir).
    const skeleton = names.filter((n) => !/^(overlay2\/[0-9a-f]{64}\/diff|vfs\/dir\/[0-9a-f]{64})\//.test(n));
    expect(skeleton.filter((n) => /(^|\/)(engine-id|containers|network|runtimes|swarm|buildkit|plugins|volumes|trust|tmp|mounts|containerd)(\/|$)/.test(n))).toEqual([]);
    expect(names.filter((n) => n.includes('backingFsBlockDev'))).toEqual([]);
    expect(names.some((n) => n.startsWith('./') || n.startsWith('/'))).toBe(false);
    // The build host's name counts only when it is long enough not to occur by chance (hostStrings).
    for (const needle of hostStrings([basename(f.work), ...dirs.map((d) => basename(d)), '.out.ctrbake-', 'ctrbake-d-'])) {
      expect(await grepFile(a.storeTar.path, needle), `store.tar mentions ${needle}`).toBe(false);
    }
  });

  it('store.tar: numeric owners, setuid, hard links, symlinks, xattrs; no atime/ctime; mtimes are SOURCE_DATE_EPOCH or the image\'s', async () => {
    const { entries } = runs[driver];
    const under = (suffix: string) => entries.filter((e) => e.name.endsWith(suffix));
    expect(entries.some((e) => e.uid === 1234 && e.gid === 5678)).toBe(true);
    expect(entries.some((e) => e.type === 'file' && (e.mode & 0o4000) !== 0)).toBe(true);
    expect(entries.some((e) => e.type === 'link')).toBe(true);
    expect(entries.some((e) => e.type === 'symlink')).toBe(true);
    const caps = entries.filter((e) => e.pax['SCHILY.xattr.security.capability'] !== undefined);
    expect(caps.length).toBeGreaterThan(0);
    expect(Buffer.from(caps[0]!.pax['SCHILY.xattr.security.capability']!, 'latin1').toString('hex')).toBe(CAP_NET_RAW_EP.toString('hex'));
    expect(entries.filter((e) => e.pax.atime !== undefined || e.pax.ctime !== undefined)).toEqual([]);
    expect(new Set(entries.map((e) => e.mtime))).toEqual(new Set([0, FIXTURE_MTIME]));
    expect(under('/repositories.json').length).toBe(1);
    if (driver === 'overlay2') {
      // Whiteouts as char 0/0 and opaque dirs as trusted.overlay.opaque=y, inside layer diffs.
      expect(entries.some((e) => e.type === 'character-device' && e.devmajor === 0 && e.devminor === 0 && e.name.includes('/diff/'))).toBe(true);
      expect(entries.some((e) => e.type === 'directory' && e.pax['SCHILY.xattr.trusted.overlay.opaque'] === 'y')).toBe(true);
      // Content-derived link names, used consistently: l/<name> -> ../<id>/diff, and <id>/link holds <name>.
      const links = entries.filter((e) => /^overlay2\/l\/[A-Z2-7]{26}$/.test(e.name));
      const layerDirs = entries.filter((e) => /^overlay2\/[0-9a-f]{64}$/.test(stripSlash(e.name)));
      expect(links.length).toBe(layerDirs.length);
      for (const link of links) {
        const id = /^\.\.\/([0-9a-f]{64})\/diff$/.exec(link.linkname ?? '')?.[1];
        expect(id, `${link.name} -> ${link.linkname}`).toBeDefined();
        expect(await tarMember(runs[driver].a.storeTar.path, `overlay2/${id}/link`)).toBe(basename(link.name));
      }
    }
  });

  it('manifest.json records engine, version, driver and every image with id and layers', () => {
    const m = runs[driver].a.manifest;
    expect(m.mode).toBe('store');
    expect(m.engine.name).toBe('docker');
    expect(m.engine.version).toMatch(/^20\.10\./);
    expect(m.storageDriver).toBe(driver);
    expect(m.images.map((i) => [i.reference, i.imageId])).toEqual(f.lock.images.map((i) => [i.reference, i.config.digest]));
    expect(m.images[0]!.layers.map((l) => l.diffId)).toEqual(f.images.fidelityImage.diffIds);
    expect(m.outputs).toEqual([{ path: 'store.tar', sha256: runs[driver].a.storeTar.sha256, size: runs[driver].a.storeTar.size }]);
  });
});

function stripSlash(name: string): string {
  return name.replace(/\/$/, '');
}

describe('ctrbake bake --mode store --builder engine (CLI)', () => {
  it('bakes the same store.tar as the library, and verify-store checks it', async () => {
    const cli = resolve(import.meta.dirname, '../../bin/ctrbake.js');
    const lockPath = join(f.work, 'cli.lock.json');
    await writeFile(lockPath, `${JSON.stringify(f.lock, null, 2)}\n`);
    const out = join(f.work, 'cli-out');
    const env = { ...process.env, SOURCE_DATE_EPOCH: '0' };
    const bake = await execa('node', [cli, 'bake', '--json', '--lock', lockPath, '--cache', f.cacheDir, '--mode', 'store', '--engine', 'docker', '--storage-driver', 'overlay2', '--builder', 'engine', '-o', out], { env, reject: false });
    expect(bake.exitCode, bake.stdout + bake.stderr).toBe(0);
    const result = JSON.parse(bake.stdout.trim().split('\n').at(-1)!) as { type: string; manifest: { outputs: Array<{ sha256: string }> } };
    expect(result.type).toBe('result');
    expect(result.manifest.outputs[0]!.sha256).toBe(runs.overlay2.a.storeTar.sha256);
    // The CLI's bake also records the input fingerprint (up-to-date check); the rest is the library's manifest.
    const { inputFingerprint, ...written } = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as Record<string, unknown>;
    expect(inputFingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(written).toEqual(runs.overlay2.a.manifest);
    const verify = await execa('node', [cli, 'verify-store', '--json', '-o', out], { reject: false });
    expect(verify.exitCode, verify.stdout + verify.stderr).toBe(0);
    const verified = JSON.parse(verify.stdout.trim().split('\n').at(-1)!) as { type: string; images: Array<{ reference: string; output?: string }> };
    expect(verified.type).toBe('result');
    assertFidelityOutput(verified.images.find((i) => i.reference === f.images.fidelity)?.output ?? '');
  });
});

describe('a store bake killed with SIGTERM', () => {
  it('after the engine started: exit 143, no engine process, mount, private or staging dir, no OUT', async () => {
    const cli = resolve(import.meta.dirname, '../../bin/ctrbake.js');
    const lockPath = join(f.work, 'sigterm.lock.json');
    await writeFile(lockPath, `${JSON.stringify(f.lock, null, 2)}\n`);
    const parent = await mkdtemp(join(f.work, 'sigterm-'));
    const out = join(parent, 'out');
    const child = execa('node', [cli, 'bake', '--json', '--lock', lockPath, '--cache', f.cacheDir, '--mode', 'store', '--engine', 'docker', '--builder', 'engine', '-o', out], { reject: false });
    // Killed while the first image loads: the engine runs and its root (kept for the store) exists.
    const started: string[] = [];
    let killed = false;
    let pending = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
        const event = JSON.parse(pending.slice(0, nl)) as { event?: string; privateDir?: string };
        pending = pending.slice(nl + 1);
        if (event.event === 'engine.started') started.push(String(event.privateDir));
        if (event.event === 'image.loading' && !killed) {
          killed = true;
          child.kill('SIGTERM');
        }
      }
    });
    const r = await child;
    expect(started.length, `no engine.started event; stdout:\n${r.stdout}\nstderr:\n${r.stderr}`).toBe(1);
    expect(r.exitCode, r.stderr).toBe(143);
    expect(await processesMentioning(started[0]!)).toEqual([]);
    expect(await processesMentioning(parent)).toEqual([]);
    expect(await mountsUnder([started[0]!, parent])).toEqual([]);
    await expect(stat(started[0]!)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readdir(parent)).toEqual([]);
  });
});

describe('a failed store bake', () => {
  it('leaves no OUT and no staging dir behind, and keeps an existing OUT', async () => {
    const parent = await mkdtemp(join(f.work, 'fail-'));
    const out = join(parent, 'out');
    await expect(
      bakeStore({ lock: f.lock, cacheDir: f.cacheDir, engine: 'docker', outDir: out, engineBinary: join(parent, 'no-such-dockerd') }),
    ).rejects.toMatchObject({ code: 'E_ENGINE_MISSING' });
    expect(await readdir(parent)).toEqual([]);
    await mkdir(out);
    await writeFile(join(out, 'previous'), 'kept');
    await expect(bakeStore({ lock: f.lock, cacheDir: join(parent, 'empty-cache'), engine: 'docker', outDir: out })).rejects.toMatchObject({ code: expect.stringMatching(/^E_/) });
    expect(await readdir(parent)).toEqual(['out']);
    expect(await readFile(join(out, 'previous'), 'utf8')).toBe('kept');
  });
});

describe('docker store for linux/arm64', () => {
  it('holds the arm64 image: its config and layers, not the host\'s', async () => {
    const m = arm64.manifest;
    expect(m.platform.architecture).toBe('arm64');
    expect(m.images[0]!.imageId).toBe(f.images.multiArm64.config.digest);
    expect(m.images[0]!.layers.map((l) => l.digest)).toEqual(f.images.multiArm64.layers.map((l) => l.digest));
    expect(m.images[0]!.layers.map((l) => l.diffId)).toEqual(f.images.multiArm64.diffIds);
    const entries = await readTarEntries(arm64.storeTar.path);
    const config = JSON.parse(await tarMember(arm64.storeTar.path, `image/overlay2/imagedb/content/sha256/${f.images.multiArm64.config.digest.slice(7)}`)) as { architecture: string };
    expect(config.architecture).toBe('arm64');
    const archFile = entries.find((e) => /^overlay2\/[0-9a-f]{64}\/diff\/etc\/arch$/.test(e.name));
    expect(archFile, 'an arm64 layer diff with /etc/arch').toBeDefined();
    expect((await tarMember(arm64.storeTar.path, archFile!.name)).trim()).toBe(MULTI_ARM64_ARCH_FILE);
    expect(entries.some((e) => e.name.endsWith(`/imagedb/content/sha256/${f.images.multiAmd64.config.digest.slice(7)}`))).toBe(false);
    expect(new Set(entries.map((e) => e.mtime))).toEqual(new Set([ARM64_SDE, FIXTURE_MTIME]));
  });

  it('extracted, a fresh dockerd lists it and saves every layer (it is not run: foreign platform)', () => {
    const [image] = arm64Verified.images;
    expect(image?.reference).toBe(f.images.multi);
    expect(image?.notRun).toMatch(/arm64/);
    expect(image?.savedLayers).toBe(f.images.multiArm64.layers.length);
    // Both the index digest (what `docker pull multi:1.0` records) and the arm64 manifest's.
    expect(image?.digestReferences).toEqual([f.images.multiIndex.digest, f.images.multiArm64.manifest.digest].map((d) => `${f.images.registry}/ctrbake/multi@${d}`));
  });
});
