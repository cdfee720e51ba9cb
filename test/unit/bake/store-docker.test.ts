/**
 * normalizeDockerStore on synthetic data-roots shaped like dockerd 20.10's: the engine's
 * random cache ids and link names differ between two roots, the normalized trees do not.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { addDockerDigestReferences, familiarRepository, normalizeDockerStore } from '../../../src/bake/store-docker.js';
import { base32, layerCacheId as cacheIdForChain, overlayLinkName as linkNameFor } from '../../../src/builder/store-ids.js';

const CONFIG = 'c'.repeat(64);
const CHAIN1 = '1'.repeat(64);
const CHAIN2 = '2'.repeat(64);
const DIFF2 = 'd'.repeat(64);

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function put(path: string, content: string): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, content);
}

/** A data-root after `docker load` of a 2-layer image, plus runtime state. */
async function makeDataRoot(driver: 'overlay2' | 'vfs'): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'ctrbake-dstore-'));
  dirs.push(root);
  const [old1, old2] = [randomBytes(32).toString('hex'), randomBytes(32).toString('hex')];
  const [link1, link2] = [base32(randomBytes(16)).slice(0, 26), base32(randomBytes(16)).slice(0, 26)];
  const img = join(root, 'image', driver);
  await put(join(img, 'repositories.json'), JSON.stringify({ Repositories: { 'reg:5000/app': { 'reg:5000/app:1': `sha256:${CONFIG}` } } }));
  await put(join(img, 'imagedb/content/sha256', CONFIG), JSON.stringify({ rootfs: { type: 'layers', diff_ids: [`sha256:${CHAIN1}`, `sha256:${DIFF2}`] } }));
  await put(join(img, 'imagedb/metadata/sha256', CONFIG, 'lastUpdated'), new Date().toISOString());
  await put(join(img, 'layerdb/sha256', CHAIN1, 'cache-id'), old1);
  await put(join(img, 'layerdb/sha256', CHAIN1, 'diff'), `sha256:${CHAIN1}`);
  await put(join(img, 'layerdb/sha256', CHAIN2, 'cache-id'), old2);
  await put(join(img, 'layerdb/sha256', CHAIN2, 'diff'), `sha256:${DIFF2}`);
  await put(join(img, 'layerdb/sha256', CHAIN2, 'parent'), `sha256:${CHAIN1}`);
  await put(join(img, 'layerdb/mounts', 'f'.repeat(64), 'mount-id'), 'x');
  await mkdir(join(img, 'layerdb/tmp'));
  await mkdir(join(img, 'distribution'));
  for (const state of ['containers/abc/config.v2.json', 'network/files/local-kv.db', 'engine-id', 'volumes/metadata.db', 'buildkit/cache.db', 'runtimes/x', 'tmp/x', 'swarm/x', 'plugins/x', 'trust/x', 'containerd/daemon/x']) {
    await put(join(root, state), 'runtime');
  }
  if (driver === 'overlay2') {
    const o = join(root, 'overlay2');
    await put(join(o, old1, 'diff', 'bin', 'sh'), 'sh');
    await put(join(o, old1, 'link'), link1);
    await put(join(o, old1, 'committed'), '');
    await put(join(o, old2, 'diff', 'etc', 'x'), 'x');
    await put(join(o, old2, 'link'), link2);
    await put(join(o, old2, 'lower'), `l/${link1}`);
    await mkdir(join(o, old2, 'work'));
    await put(join(o, `${old2}-init`, 'diff', 'x'), 'container init layer');
    await mkdir(join(o, 'l'));
    await symlink(`../${old1}/diff`, join(o, 'l', link1));
    await symlink(`../${old2}/diff`, join(o, 'l', link2));
  } else {
    await put(join(root, 'vfs', 'dir', old1, 'bin', 'sh'), 'sh');
    await put(join(root, 'vfs', 'dir', old2, 'bin', 'sh'), 'sh');
    await put(join(root, 'vfs', 'backingFsBlockDev'), '');
  }
  return root;
}

/** Every path under root with its content (files) or target (symlinks). */
async function snapshot(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      const rel = relative(root, path);
      if (entry.isSymbolicLink()) out[rel] = `-> ${await readlink(path)}`;
      else if (entry.isDirectory()) {
        out[`${rel}/`] = '';
        await walk(path);
      } else out[rel] = await readFile(path, 'utf8');
    }
  };
  await walk(root);
  return out;
}

describe.each(['overlay2', 'vfs'] as const)('normalizeDockerStore (%s)', (driver) => {
  it('gives the same tree for two loads with different random ids, and keeps only image metadata and layers', async () => {
    const [a, b] = [await makeDataRoot(driver), await makeDataRoot(driver)];
    const ra = await normalizeDockerStore(a, driver);
    await normalizeDockerStore(b, driver);
    const snap = await snapshot(a);
    expect(await snapshot(b)).toEqual(snap);
    expect(await readdir(a)).toEqual(['image', driver].sort());
    expect(ra.members).toEqual(['image', driver].sort());
    expect(ra.layerCount).toBe(2);
    expect(ra.images).toEqual([{ id: `sha256:${CONFIG}`, references: ['reg:5000/app:1'], diffIds: [`sha256:${CHAIN1}`, `sha256:${DIFF2}`] }]);
    expect(await readdir(join(a, 'image', driver))).toEqual(['distribution', 'imagedb', 'layerdb', 'repositories.json']);
    expect(await readdir(join(a, 'image', driver, 'layerdb'))).toEqual(['sha256']);
    expect(Object.keys(snap).filter((p) => p.includes('lastUpdated'))).toEqual([]);
    const [new1, new2] = [cacheIdForChain(CHAIN1), cacheIdForChain(CHAIN2)];
    expect(snap[`image/${driver}/layerdb/sha256/${CHAIN1}/cache-id`]).toBe(new1);
    expect(snap[`image/${driver}/layerdb/sha256/${CHAIN2}/cache-id`]).toBe(new2);
    if (driver === 'overlay2') {
      expect((await readdir(join(a, 'overlay2'))).sort()).toEqual([new1, new2, 'l'].sort());
      expect(snap[`overlay2/${new1}/link`]).toBe(linkNameFor(new1));
      expect(snap[`overlay2/${new2}/lower`]).toBe(`l/${linkNameFor(new1)}`);
      expect(snap[`overlay2/l/${linkNameFor(new1)}`]).toBe(`-> ../${new1}/diff`);
      expect(snap[`overlay2/l/${linkNameFor(new2)}`]).toBe(`-> ../${new2}/diff`);
      expect(snap[`overlay2/${new1}/diff/bin/sh`]).toBe('sh');
    } else {
      expect(await readdir(join(a, 'vfs'))).toEqual(['dir']);
      expect((await readdir(join(a, 'vfs', 'dir'))).sort()).toEqual([new1, new2].sort());
    }
  });
});

describe('normalizeDockerStore errors', () => {
  it('refuses a lower file naming a link no layer owns', async () => {
    const root = await makeDataRoot('overlay2');
    const layerdb = join(root, 'image/overlay2/layerdb/sha256', CHAIN2, 'cache-id');
    const old2 = await readFile(layerdb, 'utf8');
    await writeFile(join(root, 'overlay2', old2, 'lower'), 'l/NOSUCHLINKNOSUCHLINKNOSUC');
    await expect(normalizeDockerStore(root, 'overlay2')).rejects.toMatchObject({ code: 'E_STORE_LAYOUT' });
  });

  it('refuses a data-root without a layer store for the driver', async () => {
    const root = await makeDataRoot('vfs');
    await expect(normalizeDockerStore(root, 'overlay2')).rejects.toMatchObject({ code: 'E_STORE_LAYOUT' });
  });
});

describe('digest references', () => {
  it.each([
    ['docker.io/library/busybox', 'busybox'],
    ['docker.io/me/app', 'me/app'],
    ['docker.io/library/a/b', 'library/a/b'],
    ['reg:5000/app', 'reg:5000/app'],
  ])('familiarRepository(%s) = %s', (input, expected) => {
    expect(familiarRepository(input)).toBe(expected);
  });

  it('adds repository@digest entries next to the tags, keys sorted as Go writes them', async () => {
    const root = await makeDataRoot('overlay2');
    await normalizeDockerStore(root, 'overlay2');
    const d1 = `sha256:${'e'.repeat(64)}`;
    const d2 = `sha256:${'0'.repeat(64)}`;
    await addDockerDigestReferences(root, 'overlay2', [
      { repository: 'reg:5000/app', digests: [d1, d2], imageId: `sha256:${CONFIG}` },
      { repository: 'docker.io/library/busybox', digests: [d1], imageId: `sha256:${CONFIG}` },
    ]);
    const text = await readFile(join(root, 'image/overlay2/repositories.json'), 'utf8');
    expect(text).toBe(
      JSON.stringify({
        Repositories: {
          busybox: { [`busybox@${d1}`]: `sha256:${CONFIG}` },
          'reg:5000/app': { [`reg:5000/app:1`]: `sha256:${CONFIG}`, [`reg:5000/app@${d2}`]: `sha256:${CONFIG}`, [`reg:5000/app@${d1}`]: `sha256:${CONFIG}` },
        },
      }),
    );
  });
});
