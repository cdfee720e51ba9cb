/**
 * normalizePodmanStore on synthetic graphroots shaped like podman 4.3's: random link names and
 * creation times differ between two roots, the normalized trees do not.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { normalizePodmanStore } from '../../../src/bake/store-podman.js';
import { base32, overlayLinkName as linkNameFor } from '../../../src/builder/store-ids.js';

const L1 = '1'.repeat(64);
const L2 = '2'.repeat(64);
const IMG = 'c'.repeat(64);
const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function put(path: string, content: string | Buffer): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, content);
}

/** podman takes an image's `created` from its config: the same in every load. */
const CONFIG_CREATED = '2020-09-13T12:26:40.5Z';

async function makeGraphroot(driver: 'overlay' | 'vfs', options: { incomplete?: boolean } = {}): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'ctrbake-pstore-'));
  dirs.push(root);
  const now = () => new Date(Date.now() + Math.floor(Math.random() * 1e6)).toISOString();
  // Loaded in an order that differs from id order: normalization sorts.
  const layers = [
    { id: L2, parent: L1, created: now(), 'diff-digest': `sha256:${'d'.repeat(64)}`, 'diff-size': 10 },
    { id: L1, created: now(), 'diff-digest': `sha256:${L1}`, 'diff-size': 20, ...(options.incomplete ? { flags: { incomplete: true } } : {}) },
  ];
  await put(join(root, `${driver}-layers`, 'layers.json'), JSON.stringify(layers));
  await put(join(root, `${driver}-layers`, 'layers.lock'), randomBytes(64));
  await put(join(root, `${driver}-layers`, `${L1}.tar-split.gz`), 'ts1');
  await put(join(root, `${driver}-layers`, `${L2}.tar-split.gz`), 'ts2');
  await put(join(root, `${driver}-images`, 'images.json'), JSON.stringify([{ id: IMG, names: ['reg:5000/app:1'], layer: L2, created: CONFIG_CREATED }]));
  await put(join(root, `${driver}-images`, 'images.lock'), randomBytes(64));
  await put(join(root, `${driver}-images`, IMG, 'manifest'), '{}');
  for (const state of ['libpod/bolt_state.db', 'storage.lock', 'userns.lock', 'defaultNetworkBackend', 'mounts/x', 'tmp/x', `${driver}-containers/containers.json`]) {
    await put(join(root, state), randomBytes(8));
  }
  if (driver === 'overlay') {
    const [k1, k2] = [base32(randomBytes(16)).slice(0, 26), base32(randomBytes(16)).slice(0, 26)];
    await put(join(root, 'overlay', L1, 'diff', 'bin', 'sh'), 'sh');
    await put(join(root, 'overlay', L1, 'link'), k1);
    await mkdir(join(root, 'overlay', L1, 'empty'));
    await put(join(root, 'overlay', L2, 'diff', 'etc', 'x'), 'x');
    await put(join(root, 'overlay', L2, 'link'), k2);
    await put(join(root, 'overlay', L2, 'lower'), `l/${k1}`);
    await put(join(root, 'overlay', '.has-mount-program'), 'false');
    await mkdir(join(root, 'overlay', 'l'));
    await symlink(`../${L1}/diff`, join(root, 'overlay', 'l', k1));
    await symlink(`../${L2}/diff`, join(root, 'overlay', 'l', k2));
  } else {
    await put(join(root, 'vfs', 'dir', L1, 'bin', 'sh'), 'sh');
    await put(join(root, 'vfs', 'dir', L2, 'bin', 'sh'), 'sh');
  }
  return root;
}

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

describe.each(['overlay', 'vfs'] as const)('normalizePodmanStore (%s)', (driver) => {
  it('gives the same tree for two loads with different link names, times and lock tokens; keeps only images and layers', async () => {
    const [a, b] = [await makeGraphroot(driver), await makeGraphroot(driver)];
    const result = await normalizePodmanStore(a, driver, 0);
    await normalizePodmanStore(b, driver, 0);
    const snap = await snapshot(a);
    expect(await snapshot(b)).toEqual(snap);
    expect((await readdir(a)).sort()).toEqual([driver, `${driver}-images`, `${driver}-layers`].sort());
    expect(result.images).toEqual([{ id: `sha256:${IMG}`, references: ['reg:5000/app:1'], diffIds: [] }]);
    const layers = JSON.parse(snap[`${driver}-layers/layers.json`]!) as Array<{ id: string; created: string }>;
    expect(layers.map((l) => l.id)).toEqual([L1, L2]);
    expect(layers.map((l) => l.created)).toEqual(['1970-01-01T00:00:00Z', '1970-01-01T00:00:00Z']);
    // The image's `created` is the config's, not SOURCE_DATE_EPOCH (issue #15).
    expect((JSON.parse(snap[`${driver}-images/images.json`]!) as Array<{ created: string }>).map((i) => i.created)).toEqual([CONFIG_CREATED]);
    expect(snap[`${driver}-layers/layers.lock`]).toBe('');
    expect(snap[`${driver}-images/images.lock`]).toBe('');
    if (driver === 'overlay') {
      expect(snap[`overlay/${L2}/lower`]).toBe(`l/${linkNameFor(L1)}`);
      expect(snap[`overlay/l/${linkNameFor(L1)}`]).toBe(`-> ../${L1}/diff`);
      expect(snap['overlay/.has-mount-program']).toBeUndefined();
    }
  });

  it('refuses a store with an incomplete layer (an interrupted load)', async () => {
    const root = await makeGraphroot(driver, { incomplete: true });
    await expect(normalizePodmanStore(root, driver, 0)).rejects.toMatchObject({ code: 'E_STORE_LAYOUT' });
  });
});
