/**
 * The `ctrbake://` BitBake fetcher without BitBake: the layer's python fetch method, driven
 * step by step as BitBake's Fetch class drives it (bitbake-fetcher-stub.ts), against a real
 * registry on 127.0.0.1 and the real CLI. What only BitBake itself can show (PREMIRRORS and
 * MIRRORS resolution, done stamps, --runall=fetch) is run by scripts/bitbake-check.sh.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBitbakeFixtures, type BitbakeFixtures } from './bitbake-fixtures.js';
import { FetcherStub } from './bitbake-fetcher-stub.js';
import { LAYER_DIR, readClass } from './bitbake-shell.js';

let fixtures: BitbakeFixtures;
let root: string;
let stub: FetcherStub;

const url = (ref: string, platform = 'linux/amd64'): string => `ctrbake://${ref};platform=${platform}`;

function vars(dlDir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DL_DIR: dlDir,
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    CTRBAKE_NODE: 'node',
    CTRBAKE_BIN: join(LAYER_DIR, 'bin', 'ctrbake.js'),
    CTRBAKE_HOST_PATH: process.env.PATH ?? '/usr/bin:/bin',
    CTRBAKE_INSECURE_REGISTRIES: fixtures.host,
    ...extra,
  };
}

function tarList(path: string): string[] {
  const r = spawnSync('tar', ['--numeric-owner', '-tvf', path], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim().split('\n');
}

/** Flips one byte inside the data of the last blob of an archive. */
function alterLastBlob(path: string): void {
  const r = spawnSync('python3', ['-c', `
import sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    m = [i for i in t.getmembers() if i.name.startswith("blobs/")][-1]
with open(sys.argv[1], "r+b") as f:
    f.seek(m.offset_data); b = f.read(1); f.seek(m.offset_data); f.write(bytes([b[0] ^ 0xff]))
`, path], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ctrbake-bbfetch-'));
  await chmod(root, 0o755);
  if (!existsSync(join(LAYER_DIR, 'dist', 'cli', 'main.js'))) throw new Error('run npm run build first: bin/ctrbake.js needs dist/');
  stub = await FetcherStub.create(join(root, 'stub'));
  fixtures = await startBitbakeFixtures();
}, 120_000);

afterAll(async () => {
  await fixtures?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

describe('ctrbake:// URLs', () => {
  it('register() adds the method once; the class generates one normalized URL per image and platform', () => {
    expect(stub.run({ op: 'register' }).methods).toEqual(['Ctrbake']);
    const digest = 'a'.repeat(64);
    const out = spawnSync('python3', ['-c', `
import json, sys
sys.path.insert(0, ${JSON.stringify(join(LAYER_DIR, 'lib', 'ctrbake-bb'))})
from ctrbake_bb import imagearchive as a
print(json.dumps(a.src_uri(["busybox:1.36@sha256:${digest}", "r.example:5000/team/app@sha256:${digest}", "busybox:1.36@sha256:${digest}"], "linux/aarch64")))
`], { encoding: 'utf8' });
    expect(out.status, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout)).toEqual([
      `ctrbake://docker.io/library/busybox:1.36@sha256:${digest};platform=linux/arm64/v8`,
      `ctrbake://r.example:5000/team/app@sha256:${digest};platform=linux/arm64/v8`,
    ]);
  });

  it('urldata_init: reference, platform and a DL_DIR name of [A-Za-z0-9._-] unique per image and platform; malformed URLs refused', () => {
    const dl = join(root, 'parse');
    const a = stub.run({ op: 'parse', url: url(fixtures.sample), vars: vars(dl) });
    expect(a.ok, a.message).toBe(true);
    expect(a.reference).toBe(fixtures.sample);
    expect(a.platform).toBe('linux/amd64');
    expect(a.localfile).toMatch(/^ctrbake_[A-Za-z0-9._-]+\.tar$/);
    const b = stub.run({ op: 'parse', url: url(fixtures.sample, 'linux/arm64'), vars: vars(dl) });
    expect(b.platform).toBe('linux/arm64/v8');
    expect(b.localfile).not.toBe(a.localfile);
    for (const bad of [`ctrbake://${fixtures.sample}`, `ctrbake://${fixtures.host}/x;platform=linux/amd64`, 'ctrbake://docker.io/busybox@sha256:' + 'a'.repeat(64) + ';platform=linux/amd64']) {
      const r = stub.run({ op: 'parse', url: bad, vars: vars(dl) });
      expect(r.ok, bad).toBe(false);
      expect(r.error, bad).toBe('MalformedUrl');
    }
  });
});

describe('download, verification and unpack', () => {
  let dl: string;
  let sampleFile: string;

  beforeAll(async () => {
    dl = join(root, 'downloads');
    await mkdir(dl);
  });

  /** A new DL_DIR under the test's root, and where the sample image's archive goes in it. */
  async function newDl(dirName: string): Promise<{ dir: string; name: string; target: string }> {
    const dir = join(root, dirName);
    await mkdir(dir);
    const name = sampleFile.split('/').pop()!;
    return { dir, name, target: join(dir, name) };
  }

  it('download: ONE file per image in DL_DIR, named by the URL, no temp left; a second download elsewhere is byte-identical', async () => {
    const r = stub.run({ op: 'download', url: url(fixtures.sample), vars: vars(dl) });
    expect(r.ok, `${r.message}\n${r.trace}`).toBe(true);
    sampleFile = join(dl, r.localfile!);
    expect((await readdir(dl)).sort()).toEqual([r.localfile, `${r.localfile}.done`]);
    const members = tarList(sampleFile);
    expect(members[0]).toMatch(/^-rw-r--r-- 0\/0 .* 1970-01-01 00:00 ctrbake-image\.json$/);
    expect(members[1]).toMatch(/ lock\.json$/);
    const blobs = members.slice(2).map((l) => l.split(' ').pop()!);
    expect(blobs).toEqual([...blobs].sort());
    expect(blobs).toContain(`blobs/sha256/${fixtures.images.sampleImage.config.digest.slice(7)}`);
    expect(blobs).toContain(`blobs/sha256/${fixtures.sample.split('@sha256:')[1]}`); // the (pinned) manifest

    const dl2 = join(root, 'downloads-2');
    const again = stub.run({ op: 'download', url: url(fixtures.sample), vars: vars(dl2) });
    expect(again.ok, again.message).toBe(true);
    expect((await readFile(join(dl2, r.localfile!))).equals(await readFile(sampleFile))).toBe(true);
  }, 120_000);

  it('BB_NO_NETWORK: NetworkAccess before any registry access, nothing written', async () => {
    const dlOff = join(root, 'downloads-offline');
    const r = stub.run({ op: 'download', url: url(fixtures.multi), vars: vars(dlOff, { BB_NO_NETWORK: '1' }) });
    expect(r.ok).toBe(false);
    expect(r.error).toBe('NetworkAccess');
    expect(r.message).toContain(`ctrbake lock + fetch ${fixtures.multi} --platform linux/amd64`);
    expect(existsSync(dlOff) ? await readdir(dlOff) : []).toEqual([]);
  });

  it('checkstatus: true for an image the registry has for the platform, false otherwise', () => {
    expect(stub.run({ op: 'checkstatus', url: url(fixtures.multi, 'linux/arm64/v8'), vars: vars(join(root, 'x')) }).status).toBe(true);
    const noPlatform = stub.run({ op: 'checkstatus', url: url(fixtures.multi, 'linux/riscv64'), vars: vars(join(root, 'x')) });
    expect([noPlatform.ok, noPlatform.status]).toEqual([true, false]);
    const missing = `${fixtures.host}/ctrbake/absent:1.0@sha256:${'e'.repeat(64)}`;
    expect(stub.run({ op: 'checkstatus', url: url(missing), vars: vars(join(root, 'x')) }).status).toBe(false);
  }, 60_000);

  it('a mirror copy (a symlink into another dir, as BitBake makes for file:// mirrors) passes the done-stamp verification', async () => {
    const { dir: mirrorDl, name, target } = await newDl('downloads-mirror');
    await symlink(sampleFile, target);
    const r = stub.run({ op: 'donestamp', url: url(fixtures.sample), vars: vars(mirrorDl) });
    expect(r.ok, r.message).toBe(true);
    expect(existsSync(join(mirrorDl, `${name}.done`))).toBe(true);
  });

  it.each([
    ['one altered byte in a blob', 'altered', /has sha256 [0-9a-f]{64} \(damaged or altered\)/],
    ['another image under this name', 'other', /holds .*ctrbake\/multi.*, not|is .*multi.* not/],
    ['a truncated file', 'truncated', /not a readable tar|truncated|missing/],
    ['a file that is no tar', 'garbage', /not a readable tar|not a ctrbake image archive/],
  ])('done-stamp verification refuses %s: ChecksumError, set aside as *_bad-digest, no done stamp', async (_name, kind, message) => {
    const { dir, name, target } = await newDl(`bad-${kind}`);
    if (kind === 'other') {
      const o = stub.run({ op: 'download', url: url(fixtures.multi), vars: vars(join(root, 'downloads-other')) });
      expect(o.ok, o.message).toBe(true);
      await copyFile(join(root, 'downloads-other', o.localfile!), target);
    } else {
      await copyFile(sampleFile, target);
      if (kind === 'altered') alterLastBlob(target);
      if (kind === 'truncated') await writeFile(target, (await readFile(sampleFile)).subarray(0, Math.floor((await stat(sampleFile)).size / 2)));
      if (kind === 'garbage') await writeFile(target, 'not an archive\n');
    }
    await writeFile(`${target}.done`, '');
    const r = stub.run({ op: 'donestamp', url: url(fixtures.sample), vars: vars(dir) });
    expect(r.ok).toBe(false);
    expect(r.error).toBe('ChecksumError');
    expect(r.message).toMatch(message);
    expect(r.log).toContain('set aside as');
    expect(r.foreignLogArgs).toEqual([]);
    expect((await readdir(dir)).sort()).toEqual([`${name}_bad-digest`]);
  }, 120_000);

  it('unpack re-verifies: an archive altered after its done stamp is refused and nothing of it lands in the cache', async () => {
    const { dir, target } = await newDl('unpack-altered');
    await copyFile(sampleFile, target);
    alterLastBlob(target);
    const rootdir = join(root, 'unpack-altered-src');
    const r = stub.run({ op: 'unpack', url: url(fixtures.sample), rootdir, vars: vars(dir) });
    expect(r.ok).toBe(false);
    expect(r.error).toBe('UnpackError');
    expect(r.message).toMatch(/damaged or altered/);
    expect(existsSync(join(rootdir, 'ctrbake', 'locks'))).toBe(false);
    const stored = existsSync(join(rootdir, 'ctrbake', 'cache', 'blobs', 'sha256')) ? await readdir(join(rootdir, 'ctrbake', 'cache', 'blobs', 'sha256')) : [];
    for (const f of stored) {
      const h = spawnSync('sha256sum', [join(rootdir, 'ctrbake', 'cache', 'blobs', 'sha256', f)], { encoding: 'utf8' }).stdout.split(' ')[0];
      expect(h, `${f} is stored but does not hash to its name`).toBe(f);
    }
  });

  it("unpack of two images + the class's ctrbake_do_unpack: one lock for the bake, and the CLI finds the cache complete offline", async () => {
    const multi = stub.run({ op: 'download', url: url(fixtures.multi), vars: vars(dl) });
    expect(multi.ok, multi.message).toBe(true);
    const unpackdir = join(root, 'work', 'sources');
    for (const ref of [fixtures.sample, fixtures.multi]) {
      const r = stub.run({ op: 'unpack', url: url(ref), rootdir: unpackdir, vars: vars(dl) });
      expect(r.ok, `${r.message}\n${r.trace}`).toBe(true);
    }
    const classText = readClass();
    const body = /^python ctrbake_do_unpack\(\) \{\n([\s\S]*?)\n\}$/m.exec(classText)![1]!;
    const lockPath = join(unpackdir, 'ctrbake', 'ctrbake.lock.json');
    const post = stub.run({
      op: 'class_python',
      body,
      vars: { ...vars(dl), UNPACKDIR: unpackdir, CTRBAKE_SRC_URI: `${url(fixtures.sample)} ${url(fixtures.multi)}`, CTRBAKE_LOCK: lockPath },
    });
    expect(post.ok, `${post.message}\n${post.trace}`).toBe(true);
    const lock = JSON.parse(readFileSync(lockPath, 'utf8')) as { lockVersion: number; platform: unknown; images: { reference: string }[] };
    expect(lock.lockVersion).toBe(1);
    expect(lock.platform).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(lock.images.map((i) => i.reference)).toEqual([fixtures.multi, fixtures.sample].sort());

    await fixtures.registry.stop();
    try {
      const cli = spawnSync('node', [join(LAYER_DIR, 'bin', 'ctrbake.js'), 'fetch', '--offline', '--lock', lockPath, '--cache', join(unpackdir, 'ctrbake', 'cache')], { encoding: 'utf8' });
      expect(cli.status, `${cli.stdout}${cli.stderr}`).toBe(0);
      expect(cli.stdout + cli.stderr).toContain('offline check, nothing fetched');
    } finally {
      await fixtures.registry.start();
    }
  }, 180_000);
});
