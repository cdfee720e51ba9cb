/**
 * The ctrbake class's task logic without BitBake: do_fetch and do_unpack through the layer's
 * ctrbake:// fetcher (python, with the bb stand-in of bitbake-fetcher-stub.ts) and the
 * class's ctrbake_do_unpack postfunc; the shell bodies of do_ctrbake_bake and do_install,
 * taken from the .bbclass and expanded as BitBake would, run with sh (set -e) and a PATH of
 * HOSTTOOLS-like links; against a real registry on 127.0.0.1 and the real CLI (private
 * dockerd/podman). Real BitBake runs: scripts/bitbake-check.sh.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, cp, lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BakeManifest } from '../../src/formats/index.js';
import { FetcherStub } from './bitbake-fetcher-stub.js';
import { startBitbakeFixtures, type BitbakeFixtures } from './bitbake-fixtures.js';
import { expand, LAYER_DIR, ROOTFS_CLASS_FILE, python, readClass, taskScript, weakDefaults } from './bitbake-shell.js';

const CLASS = readClass();
const SDE = '1700000000';
/** What BitBake's HOSTTOOLS dir would hold for these tasks (OE-core's list has all of them). */
const HOSTTOOLS = ['node', 'sh', 'mkdir', 'cp', 'mv', 'rm', 'grep', 'sed', 'id', 'cat', 'env', 'tar', 'ls', 'printf', 'dirname'];

let fixtures: BitbakeFixtures;
let root: string;
let hosttools: string;
let stub: FetcherStub;

function which(tool: string): string {
  const r = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${tool} is needed on the host (scripts/install-deps.sh)`);
  return r.stdout.trim();
}

interface Recipe {
  pn: string;
  layout: string;
  images: string[];
  dlDir: string;
  runner?: string;
  extra?: Record<string, string>;
}

function vars(r: Recipe): Record<string, string> {
  const defaults: Record<string, string> = {};
  for (const [k, v] of weakDefaults(CLASS)) if (!v.includes('${@')) defaults[k] = v;
  for (const m of CLASS.matchAll(/^([A-Z][A-Z0-9_]*) = "([^"]*)"$/gm)) defaults[m[1]!] = m[2]!;
  const [mode, engine, driver, builder] = JSON.parse(python(`
import json
from ctrbake_bb.layouts import defaults, default_builder
m, e, s = defaults(${JSON.stringify(r.layout)})
print(json.dumps([m, e, s, default_builder(m, e, s, "docker-archive")]))`)) as [string, string, string, string];
  const platform = 'linux/amd64';
  const lockId = python(`
from ctrbake_bb.refs import lock_id
print(lock_id(${JSON.stringify(platform)}, ${JSON.stringify(r.images)}))`).trim();
  const workdir = join(root, 'work', r.pn);
  return {
    ...defaults,
    PN: r.pn,
    WORKDIR: workdir,
    UNPACKDIR: join(workdir, 'sources'),
    CTRBAKE_SRC: join(workdir, 'sources', 'ctrbake'),
    CTRBAKE_SRC_URI: python(`
import json
from ctrbake_bb.imagearchive import src_uri
print(" ".join(src_uri(${JSON.stringify(r.images)}, ${JSON.stringify(platform)})))`).trim(),
    CTRBAKE_BIN: join(LAYER_DIR, 'bin', 'ctrbake.js'),
    PATH: hosttools,
    D: join(workdir, 'image'),
    DL_DIR: r.dlDir,
    BB_NO_NETWORK: '',
    SOURCE_DATE_EPOCH: SDE,
    CTRBAKE_LAYERDIR: LAYER_DIR,
    CTRBAKE_IMAGES: r.images.join(' '),
    CTRBAKE_LAYOUT: r.layout,
    CTRBAKE_MODE: mode,
    CTRBAKE_ENGINE: engine,
    CTRBAKE_STORAGE_DRIVER: driver,
    CTRBAKE_BUILDER: builder,
    CTRBAKE_PLATFORM: platform,
    CTRBAKE_LOCK_ID: lockId,
    CTRBAKE_INIT: 'systemd',
    CTRBAKE_INSECURE_REGISTRIES: fixtures.host,
    CTRBAKE_RUNNER: r.runner ?? '',
    ...r.extra,
  };
}

interface TaskRun {
  status: number | null;
  output: string;
}

/** One task as BitBake runs it: [cleandirs] emptied, cwd in [dirs], HOSTTOOLS PATH, set -e. */
async function runTask(task: string, v: Record<string, string>, opts: { user?: number } = {}): Promise<TaskRun> {
  const script = taskScript(CLASS, task, v);
  let cwd = v.DL_DIR!;
  if (task === 'do_ctrbake_bake') {
    cwd = join(v.WORKDIR!, 'ctrbake');
    await rm(cwd, { recursive: true, force: true });
    await mkdir(cwd, { recursive: true });
  } else if (task === 'ctrbake_do_install') {
    cwd = v.WORKDIR!;
    await rm(v.D!, { recursive: true, force: true });
    await mkdir(v.D!, { recursive: true });
  } else {
    await mkdir(cwd, { recursive: true });
  }
  // A build user owns its TMPDIR: the work dir (sources, bake dir, D) is theirs.
  if (opts.user !== undefined) spawnSync('chown', ['-R', `${opts.user}:${opts.user}`, v.WORKDIR!]);
  const argv = opts.user === undefined ? ['sh', '-c', script] : [which('setpriv'), `--reuid=${opts.user}`, `--regid=${opts.user}`, '--clear-groups', 'sh', '-c', script];
  const r = spawnSync(argv[0]!, argv.slice(1), {
    cwd,
    encoding: 'utf8',
    env: { PATH: hosttools, HOME: root, LANG: 'C.UTF-8' },
    timeout: 300_000,
  });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

async function expectOk(task: string, v: Record<string, string>, opts: { user?: number } = {}): Promise<string> {
  const r = await runTask(task, v, opts);
  expect(r.status, r.output).toBe(0);
  return r.output;
}

async function files(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).map(String).sort();
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ctrbake-bbtasks-'));
  await chmod(root, 0o755);
  hosttools = join(root, 'hosttools');
  await mkdir(hosttools);
  for (const tool of HOSTTOOLS) await symlink(which(tool), join(hosttools, tool));
  if (!existsSync(join(LAYER_DIR, 'dist', 'cli', 'main.js'))) throw new Error('run npm run build first: bin/ctrbake.js needs dist/');
  stub = await FetcherStub.create(join(root, 'stub'));
  fixtures = await startBitbakeFixtures();
}, 120_000);

/** do_fetch then do_unpack (UNPACKDIR emptied first, as its [cleandirs]) as BitBake runs them. */
async function fetchAndUnpack(v: Record<string, string>): Promise<void> {
  const urls = v.CTRBAKE_SRC_URI!.split(' ');
  for (const url of urls) {
    const r = stub.run({ op: 'download', url, vars: v });
    expect(r.ok, `${r.message}\n${r.trace}`).toBe(true);
  }
  await rm(v.UNPACKDIR!, { recursive: true, force: true });
  await mkdir(v.UNPACKDIR!, { recursive: true });
  for (const url of urls) {
    const r = stub.run({ op: 'unpack', url, rootdir: v.UNPACKDIR, vars: v });
    expect(r.ok, `${r.message}\n${r.trace}`).toBe(true);
  }
  const body = /^python ctrbake_do_unpack\(\) \{\n([\s\S]*?)\n\}$/m.exec(CLASS)![1]!;
  const post = stub.run({ op: 'class_python', body, vars: { ...v, CTRBAKE_LOCK: join(v.CTRBAKE_SRC!, 'ctrbake.lock.json') } });
  expect(post.ok, `${post.message}\n${post.trace}`).toBe(true);
}

afterAll(async () => {
  await fixtures?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

describe('ctrbake class tasks with the real CLI', () => {
  let dl: string;
  let archive: Record<string, string>;
  let split: Record<string, string>;
  let rootfs: Record<string, string>;
  let asUser: Record<string, string>;

  beforeAll(() => {
    dl = join(root, 'downloads');
    archive = vars({ pn: 'bundle-archive', layout: 'archive', images: [fixtures.sample], dlDir: dl });
    // split with the engine path through a runner (a pass-through one: this test runs as
    // root), proving the runner path and the hand-back of the outputs
    split = vars({ pn: 'bundle-split', layout: 'split', images: [fixtures.sample, fixtures.multi], dlDir: dl, runner: 'env', extra: { CTRBAKE_BUILDER: 'engine' } });
    rootfs = vars({ pn: 'bundle-rootfs', layout: 'rootfs', images: [fixtures.sample], dlDir: dl });
    // split by default: the native builder, run below as a plain user with no runner and no sudo
    asUser = vars({ pn: 'bundle-split-user', layout: 'split', images: [fixtures.sample, fixtures.multi], dlDir: dl });
  }, 300_000);

  it('do_fetch + do_unpack with the ctrbake:// fetcher: one archive per image in DL_DIR, the cache and the lock under UNPACKDIR', async () => {
    for (const v of [archive, split, rootfs, asUser]) await fetchAndUnpack(v);
    // sample (shared by the three recipes) and multi: two files, each with its done stamp
    expect((await readdir(dl)).filter((f) => /^ctrbake_.*\.tar$/.test(f))).toHaveLength(2);
    const lock = JSON.parse(await readFile(join(split.CTRBAKE_SRC!, 'ctrbake.lock.json'), 'utf8')) as { images: { reference: string; manifest: { digest: string } }[] };
    expect(lock.images.map((i) => i.reference)).toEqual([fixtures.multi, fixtures.sample].sort());
    const blobs = await readdir(join(archive.CTRBAKE_SRC!, 'cache', 'blobs', 'sha256'));
    expect(blobs).toContain(fixtures.images.sampleImage.config.digest.slice('sha256:'.length));
  }, 600_000);

  it('do_ctrbake_bake + do_install, archive layout: the package holds the archive, manifest, device script, units and daemon.json', async () => {
    await fixtures.registry.stop(); // the bake is offline
    await expectOk('do_ctrbake_bake', archive);
    await expectOk('ctrbake_do_install', archive);
    const d = archive.D!;
    const list = await files(d);
    expect(list).toEqual(expect.arrayContaining([
      'usr/share/ctrbake/manifest.json', 'usr/share/ctrbake/images.list', 'usr/sbin/ctrbake-device', 'etc/docker/daemon.json',
      'etc/systemd/system/ctrbake-prepare.service', 'etc/systemd/system/ctrbake-load.service',
    ]));
    expect(list.filter((f) => /^usr\/share\/ctrbake\/archives\/.+\.tar$/.test(f))).toHaveLength(1);
    const manifest = JSON.parse(await readFile(join(d, 'usr/share/ctrbake/manifest.json'), 'utf8')) as BakeManifest;
    expect(manifest.mode).toBe('archive');
    expect(manifest.sourceDateEpoch).toBe(Number(SDE));
    expect(manifest.images.map((i) => i.digest)).toEqual([fixtures.sample.split('@')[1]]);
    // no absolute build path leaks into what is shipped
    const text = (await Promise.all(['usr/share/ctrbake/manifest.json', 'usr/share/ctrbake/ctrbake.conf', 'etc/docker/daemon.json'].map((f) => readFile(join(d, f), 'utf8')))).join('\n');
    expect(text).not.toContain(root);
  }, 300_000);

  it('do_ctrbake_bake through CTRBAKE_RUNNER, split layout with two images: the store SquashFS and the split units', async () => {
    await expectOk('do_ctrbake_bake', split);
    await expectOk('ctrbake_do_install', split);
    const list = await files(split.D!);
    expect(list).toEqual(expect.arrayContaining(['usr/share/ctrbake/store.sqfs', 'usr/share/ctrbake/manifest.json', 'usr/sbin/ctrbake-device', 'etc/docker/daemon.json']));
    const manifest = JSON.parse(await readFile(join(split.D!, 'usr/share/ctrbake/manifest.json'), 'utf8')) as BakeManifest;
    expect([manifest.mode, manifest.engine.name, manifest.storageDriver]).toEqual(['store', 'docker', 'overlay2']);
    expect(manifest.images).toHaveLength(2);
    expect(manifest.platform).toEqual({ os: 'linux', architecture: 'amd64' });
  }, 300_000);

  it('as a plain user (nobody, no groups), no CTRBAKE_RUNNER, no sudo on PATH: split layout by the native builder, outputs owned by the user, same store as the engine path', async () => {
    expect(asUser.CTRBAKE_BUILDER).toBe('native');
    expect(asUser.CTRBAKE_RUNNER).toBe('');
    expect(existsSync(join(hosttools, 'sudo'))).toBe(false);
    await expectOk('do_ctrbake_bake', asUser, { user: 65534 });
    await expectOk('ctrbake_do_install', asUser, { user: 65534 });
    const d = asUser.D!;
    expect(await files(d)).toEqual(expect.arrayContaining(['usr/share/ctrbake/store.sqfs', 'usr/share/ctrbake/manifest.json', 'usr/sbin/ctrbake-device', 'etc/docker/daemon.json']));
    for (const f of ['usr/share/ctrbake/store.sqfs', 'usr/share/ctrbake/manifest.json']) expect((await lstat(join(d, f))).uid, f).toBe(65534);
    const manifest = JSON.parse(await readFile(join(d, 'usr/share/ctrbake/manifest.json'), 'utf8')) as BakeManifest;
    expect([manifest.mode, manifest.engine.name, manifest.engine.version, manifest.storageDriver, manifest.sourceDateEpoch]).toEqual(['store', 'docker', '20.10', 'overlay2', Number(SDE)]);
    // The same images as the engine path's split bundle above (run as root through the runner).
    const engine = JSON.parse(await readFile(join(split.D!, 'usr/share/ctrbake/manifest.json'), 'utf8')) as BakeManifest;
    expect(manifest.images.map((i) => [i.reference, i.imageId, i.layers.map((l) => l.diffId)])).toEqual(engine.images.map((i) => [i.reference, i.imageId, i.layers.map((l) => l.diffId)]));
  }, 300_000);

  it('rootfs layout + the ctrbake-rootfs-store image class: store.tar shipped, then extracted into IMAGE_ROOTFS/var/lib/docker', async () => {
    await expectOk('do_ctrbake_bake', rootfs);
    await expectOk('ctrbake_do_install', rootfs);
    expect(await files(rootfs.D!)).toEqual(expect.arrayContaining(['usr/share/ctrbake/bundle-rootfs/store.tar', 'usr/share/ctrbake/bundle-rootfs/manifest.json', 'usr/share/ctrbake/bundle-rootfs/daemon.json']));

    const imageRootfs = join(root, 'image-rootfs');
    await cp(rootfs.D!, imageRootfs, { recursive: true });
    const imageClass = readClass(ROOTFS_CLASS_FILE);
    const imageVars: Record<string, string> = {};
    for (const [k, v] of weakDefaults(imageClass)) imageVars[k] = v;
    Object.assign(imageVars, { IMAGE_ROOTFS: imageRootfs, CTRBAKE_ROOTFS_STORE: 'bundle-rootfs' });
    imageVars.CTRBAKE_ROOTFS_STORE_DIR = expand(/^CTRBAKE_ROOTFS_STORE_DIR = "([^"]*)"$/m.exec(imageClass)![1]!, imageVars);
    // ROOTFS_POSTPROCESS_COMMAND's functions, in its order: python, shell, python
    const commands = /^ROOTFS_POSTPROCESS_COMMAND \+= "([^"]*)"$/m.exec(imageClass)![1]!.split(' ');
    expect(commands).toEqual(['ctrbake_rootfs_check_store', 'ctrbake_rootfs_extract_store', 'ctrbake_rootfs_engine_config']);
    for (const fn of commands) {
      const body = new RegExp(`^python ${fn}\\(\\) \\{\\n([\\s\\S]*?)\\n\\}$`, 'm').exec(imageClass)?.[1];
      if (body !== undefined) {
        const r = stub.run({ op: 'class_python', body, vars: imageVars });
        expect(r.ok, `${fn}: ${r.message}\n${r.trace}`).toBe(true);
      } else {
        const r = spawnSync('sh', ['-c', taskScript(imageClass, fn, imageVars)], { encoding: 'utf8', env: { PATH: hosttools } });
        expect(r.status, `${fn}: ${r.stdout}${r.stderr}`).toBe(0);
      }
    }
    expect(existsSync(join(imageRootfs, 'usr/share/ctrbake/bundle-rootfs/store.tar'))).toBe(false);
    const dataRoot = await readdir(join(imageRootfs, 'var/lib/docker'));
    expect(dataRoot).toEqual(expect.arrayContaining(['image', 'overlay2']));
    expect(dataRoot).not.toContain('containers');
    // the loader's daemon.json for the store (shipped by the bundle), moved to /etc/docker
    const daemon = JSON.parse(await readFile(join(imageRootfs, 'etc/docker/daemon.json'), 'utf8')) as Record<string, unknown>;
    expect(daemon).toEqual({ 'data-root': '/var/lib/docker', 'storage-driver': 'overlay2', features: { 'containerd-snapshotter': false } });
    expect(existsSync(join(imageRootfs, 'usr/share/ctrbake/bundle-rootfs/daemon.json'))).toBe(false);
  }, 300_000);

  it('a runner that drops SOURCE_DATE_EPOCH fails the bake with a message naming the fix', async () => {
    const r = await runTask('do_ctrbake_bake', { ...archive, CTRBAKE_RUNNER: 'env -u SOURCE_DATE_EPOCH' });
    expect(r.status).toBe(1);
    expect(r.output).toContain('the bake did not get SOURCE_DATE_EPOCH=1700000000');
    expect(r.output).toContain('env_keep');
  }, 300_000);

  it.each([
    ['no runner', '', 'needs root, but BitBake runs as'],
    ['a runner that does not give root', 'env', 'does not run node as root'],
  ])('as a non-root user with %s, the bake fails before baking and names CTRBAKE_RUNNER and docs/cqfd.md', async (_name, runner, message) => {
    const r = await runTask('do_ctrbake_bake', { ...archive, CTRBAKE_RUNNER: runner }, { user: 65534 });
    expect(r.status).toBe(1);
    expect(r.output).toContain(message);
    expect(r.output).toContain('CTRBAKE_RUNNER');
    expect(r.output).toContain('docs/cqfd.md');
    expect(r.output).not.toContain('ctrbake: error'); // the CLI never started
  }, 60_000);
});
