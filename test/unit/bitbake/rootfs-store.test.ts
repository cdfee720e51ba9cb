/**
 * What ctrbake-rootfs-store.bbclass reads of a rootfs bundle (lib/ctrbake-bb/ctrbake_bb/
 * rootfsstore.py, run with python3): the bake's manifest.json and the loader's daemon.json,
 * read as JSON; a bundle that is not a docker store is refused with a message naming the field.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { python } from '../../integration/bitbake-shell.js';

const dir = mkdtempSync(join(tmpdir(), 'ctrbake-rootfs-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const storeManifest = { manifestVersion: 1, mode: 'store', engine: { name: 'docker', version: '20.10.24' }, storageDriver: 'vfs', images: [], outputs: [] };
const loaderDaemonJson = `${JSON.stringify({ 'data-root': '/var/lib/docker', 'storage-driver': 'vfs', features: { 'containerd-snapshotter': false } }, null, 2)}\n`;

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** Runs one rootfsstore function; its result, or the ValueError's message. */
function run(call: string): { ok?: string; error?: string } {
  return JSON.parse(
    python(`
import json
from ctrbake_bb import rootfsstore
try:
    print(json.dumps({"ok": rootfsstore.${call}}))
except ValueError as e:
    print(json.dumps({"error": str(e)}))`),
  ) as { ok?: string; error?: string };
}

describe('the rootfs store class reads JSON as JSON', () => {
  it('the storage driver of a docker store, whatever the manifest\'s formatting', () => {
    const path = file('compact.json', JSON.stringify(storeManifest));
    expect(run(`store_driver(${JSON.stringify(path)})`)).toEqual({ ok: 'vfs' });
  });

  it.each([
    ['an archive bake', { ...storeManifest, mode: 'archive' }, "mode 'archive'"],
    ['a podman store', { ...storeManifest, engine: { name: 'podman', version: '4.3' } }, "engine.name 'podman'"],
    ['no storage driver', { ...storeManifest, storageDriver: undefined }, 'storageDriver None'],
    ['another manifest version', { ...storeManifest, manifestVersion: 2 }, 'manifestVersion 1'],
  ])('refuses %s, naming the field', (_name, manifest, field) => {
    const path = file('bad.json', JSON.stringify(manifest));
    const { error } = run(`store_driver(${JSON.stringify(path)})`);
    expect(error).toContain(field);
    expect(error).toContain(path);
  });

  it('refuses a manifest that is not JSON or not there, naming the file', () => {
    const notJson = file('not.json', '{"storageDriver": "vfs",');
    expect(run(`store_driver(${JSON.stringify(notJson)})`).error).toContain(`${notJson} is not JSON`);
    expect(run(`store_driver(${JSON.stringify(join(dir, 'missing.json'))})`).error).toContain('CTRBAKE_LAYOUT = "rootfs"');
  });

  it("daemon.json is the loader's, with the image's data-root", () => {
    const manifest = file('manifest.json', JSON.stringify(storeManifest, null, 2));
    const daemon = file('daemon.json', loaderDaemonJson);
    const { ok } = run(`engine_config(${JSON.stringify(daemon)}, ${JSON.stringify(manifest)}, "/data/docker")`);
    expect(ok).toBe(`${JSON.stringify({ 'data-root': '/data/docker', 'storage-driver': 'vfs', features: { 'containerd-snapshotter': false } }, null, 2)}\n`);
  });

  it('refuses a daemon.json that does not pin the store\'s driver', () => {
    const manifest = file('manifest.json', JSON.stringify({ ...storeManifest, storageDriver: 'overlay2' }));
    const daemon = file('daemon.json', loaderDaemonJson);
    expect(run(`engine_config(${JSON.stringify(daemon)}, ${JSON.stringify(manifest)}, "/var/lib/docker")`).error).toContain("does not pin storage-driver 'overlay2'");
  });
});
