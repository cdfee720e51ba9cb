/**
 * The benchmark's image set, built offline from files on this machine: three images that share
 * one base layer (shared libraries of /usr/lib/x86_64-linux-gnu + busybox), each with its own
 * application layer (python3.11 / perl + git / valgrind + gzipped docs) and a small config
 * layer. Real ELF files, text and already-compressed data; layers are GNU tar (PAX), gzip
 * level 6 like `docker push` would serve, OCI manifests for linux/amd64.
 *
 * Built once and cached under /var/tmp/ctrbake-bench-images-<key> (key: the spec below and
 * the sizes and mtimes of the picked files), then pushed to a local registry on every run.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, lstat, mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { Descriptor } from '../../src/formats/index.js';
import { RegistryClient } from '../../src/registry/client.js';
import { OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST } from '../../src/formats/media-types.js';
import { pushBlob, pushManifest } from '../../src/registry/push.js';

const exec = promisify(execFile);
const gzipAsync = promisify(gzip);

const MTIME = 1_600_000_000;
const CREATED = new Date(MTIME * 1000).toISOString().replace('.000Z', 'Z');
/** Files above this are left out, so no single file dominates a layer. */
const MAX_FILE = 16 * 1024 * 1024;
const MIB = 1024 * 1024;

interface Source {
  root: string;
  limitMiB: number;
}

interface LayerSpec {
  name: string;
  sources: Source[];
  /** Extra files written for the layer (path -> content), e.g. an app's config. */
  extra?: Record<string, string>;
  busybox?: boolean;
}

interface ImageSpec {
  repository: string;
  layers: LayerSpec[];
  cmd: string[];
}

const BASE: LayerSpec = { name: 'base', sources: [{ root: '/usr/lib/x86_64-linux-gnu', limitMiB: 90 }], busybox: true };

/** `scale` multiplies every size limit (1 = the default set, ~270 MiB unpacked). */
function spec(scale: number): ImageSpec[] {
  const s = (layers: LayerSpec[]): LayerSpec[] => layers.map((l) => ({ ...l, sources: l.sources.map((x) => ({ ...x, limitMiB: Math.max(1, Math.round(x.limitMiB * scale)) })) }));
  return [
    {
      repository: 'bench/python',
      cmd: ['/bin/sh', '-c', 'echo python app'],
      layers: s([BASE, { name: 'python', sources: [{ root: '/usr/lib/python3.11', limitMiB: 60 }, { root: '/usr/lib/python3', limitMiB: 15 }] }, { name: 'python-conf', sources: [], extra: { 'etc/app/python.conf': 'app=python\n' } }]),
    },
    {
      repository: 'bench/perl-git',
      cmd: ['/bin/sh', '-c', 'echo perl-git app'],
      layers: s([BASE, { name: 'perl-git', sources: [{ root: '/usr/share/perl', limitMiB: 25 }, { root: '/usr/lib/git-core', limitMiB: 25 }, { root: '/usr/share/zoneinfo', limitMiB: 5 }] }, { name: 'perl-git-conf', sources: [], extra: { 'etc/app/perl-git.conf': 'app=perl-git\n' } }]),
    },
    {
      repository: 'bench/tools',
      cmd: ['/bin/sh', '-c', 'echo tools app'],
      layers: s([BASE, { name: 'tools', sources: [{ root: '/usr/libexec/valgrind', limitMiB: 30 }, { root: '/usr/share/doc', limitMiB: 30 }] }, { name: 'tools-conf', sources: [], extra: { 'etc/app/tools.conf': 'app=tools\n' } }]),
    },
  ];
}

/** Regular files (<= MAX_FILE), dirs and symlinks under root, sorted, until limit bytes of files. */
async function pickFiles(root: string, limit: number): Promise<{ paths: string[]; bytes: number; stamp: string }> {
  const paths: string[] = [];
  const stamp: string[] = [];
  let bytes = 0;
  const walk = async (dir: string): Promise<boolean> => {
    let names: string[];
    try {
      names = (await readdir(dir)).sort();
    } catch {
      return true;
    }
    paths.push(dir);
    for (const name of names) {
      const path = join(dir, name);
      const st = await lstat(path);
      if (st.isDirectory()) {
        if (!(await walk(path))) return false;
      } else if (st.isSymbolicLink() || (st.isFile() && st.size <= MAX_FILE)) {
        if (st.isFile() && bytes + st.size > limit) return false;
        paths.push(path);
        stamp.push(`${path}:${st.size}:${st.mtimeMs}`);
        if (st.isFile()) bytes += st.size;
      }
    }
    return true;
  };
  await walk(root);
  return { paths, bytes, stamp: createHash('sha256').update(stamp.join('\n')).digest('hex') };
}

interface BuiltLayerFile {
  digest: string;
  diffId: string;
  size: number;
  unpackedBytes: number;
}

export interface BenchImage {
  repository: string;
  tag: string;
  manifest: Descriptor;
  config: Descriptor;
  layers: (Descriptor & { diffId: string; unpackedBytes: number })[];
}

export interface BenchImageSet {
  dir: string;
  images: BenchImage[];
  /** Unique layers (by digest). */
  uniqueLayers: (Descriptor & { diffId: string; unpackedBytes: number; path: string })[];
  /** Sum of the files in every image's layers (what a full unpack of each image holds). */
  unpackedBytes: number;
  uniqueUnpackedBytes: number;
}

const sha = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function buildLayer(layer: LayerSpec, dir: string, work: string): Promise<BuiltLayerFile> {
  const list: string[] = [];
  let unpackedBytes = 0;
  for (const s of layer.sources) {
    const picked = await pickFiles(s.root, s.limitMiB * MIB);
    // parents of the root, so the tar holds every directory
    const parts = s.root.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) list.push(parts.slice(0, i).join('/'));
    list.push(...picked.paths.map((p) => p.slice(1)));
    unpackedBytes += picked.bytes;
  }
  const extras = join(work, `extra-${layer.name}`);
  await mkdir(extras, { recursive: true });
  const extraList: string[] = [];
  for (const [path, content] of Object.entries(layer.extra ?? {})) {
    await mkdir(join(extras, path, '..'), { recursive: true });
    await writeFile(join(extras, path), content);
    unpackedBytes += content.length;
  }
  if (layer.busybox) {
    await mkdir(join(extras, 'bin'), { recursive: true });
    await copyFile('/bin/busybox', join(extras, 'bin/busybox'));
    for (const applet of ['sh', 'ls', 'cat', 'echo', 'sleep', 'true']) await symlink('busybox', join(extras, 'bin', applet));
    await mkdir(join(extras, 'etc'), { recursive: true });
    await writeFile(join(extras, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    await writeFile(join(extras, 'etc/group'), 'root:x:0:\n');
    await mkdir(join(extras, 'tmp'), { mode: 0o1777 });
    unpackedBytes += (await lstat('/bin/busybox')).size;
  }
  for (const name of (await readdir(extras, { recursive: true })).sort()) extraList.push(name);
  const listFile = join(work, `${layer.name}.list`);
  const extraFile = join(work, `${layer.name}.extra`);
  await writeFile(listFile, [...new Set(list)].map((l) => `${l}\n`).join(''));
  await writeFile(extraFile, extraList.map((l) => `${l}\n`).join(''));
  const tarPath = join(work, `${layer.name}.tar`);
  await exec('tar', ['--format=pax', '--pax-option=delete=atime,delete=ctime', '--sort=name', `--mtime=@${MTIME}`, '--owner=0', '--group=0', '--numeric-owner', '--no-recursion', '-cf', tarPath, '-C', '/', '-T', listFile, '-C', extras, '-T', extraFile], { maxBuffer: 64 * MIB });
  const tar = await readFile(tarPath);
  const gz = await gzipAsync(tar, { level: 6 });
  const digest = sha(gz);
  await writeFile(join(dir, digest.slice(7)), gz);
  await rm(tarPath);
  return { digest, diffId: sha(tar), size: gz.length, unpackedBytes };
}

/** Builds the set into the cache dir (or reuses it) and returns its description. */
export async function buildImageSet(scale = 1, cacheBase = '/var/tmp'): Promise<BenchImageSet> {
  const images = spec(scale);
  const stamps: string[] = [];
  for (const i of images) for (const l of i.layers) for (const s of l.sources) stamps.push((await pickFiles(s.root, s.limitMiB * MIB)).stamp);
  const key = createHash('sha256').update(JSON.stringify({ v: 2, images, stamps })).digest('hex').slice(0, 16);
  const dir = join(cacheBase, `ctrbake-bench-images-${key}`);
  const indexPath = join(dir, 'set.json');
  try {
    return JSON.parse(await readFile(indexPath, 'utf8')) as BenchImageSet;
  } catch {
    // not built yet
  }
  const tmp = await mkdtemp(`${dir}.tmp-`);
  const work = join(tmp, 'work');
  await mkdir(work);
  try {
    const built = new Map<string, BuiltLayerFile>();
    const out: BenchImage[] = [];
    for (const image of images) {
      const layers = [];
      for (const l of image.layers) {
        let b = built.get(l.name);
        if (!b) {
          b = await buildLayer(l, tmp, work);
          built.set(l.name, b);
        }
        layers.push({ mediaType: OCI_LAYER_GZIP, digest: b.digest, size: b.size, diffId: b.diffId, unpackedBytes: b.unpackedBytes });
      }
      const config = Buffer.from(
        JSON.stringify({
          architecture: 'amd64',
          os: 'linux',
          created: CREATED,
          config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: image.cmd },
          rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
          history: layers.map((l) => ({ created: CREATED, created_by: `bench layer ${l.diffId.slice(7, 19)}` })),
        }),
      );
      const configDesc = { mediaType: OCI_CONFIG, digest: sha(config), size: config.length };
      await writeFile(join(tmp, configDesc.digest.slice(7)), config);
      const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: configDesc, layers: layers.map(({ mediaType, digest, size }) => ({ mediaType, digest, size })) }));
      const manifestDesc = { mediaType: OCI_MANIFEST, digest: sha(manifest), size: manifest.length };
      await writeFile(join(tmp, manifestDesc.digest.slice(7)), manifest);
      out.push({ repository: image.repository, tag: '1.0', manifest: manifestDesc, config: configDesc, layers });
    }
    const unique = new Map<string, BenchImageSet['uniqueLayers'][number]>();
    for (const i of out) for (const l of i.layers) unique.set(l.digest, { ...l, path: join(dir, l.digest.slice(7)) });
    const set: BenchImageSet = {
      dir,
      images: out,
      uniqueLayers: [...unique.values()],
      unpackedBytes: out.reduce((a, i) => a + i.layers.reduce((b, l) => b + l.unpackedBytes, 0), 0),
      uniqueUnpackedBytes: [...unique.values()].reduce((a, l) => a + l.unpackedBytes, 0),
    };
    await rm(work, { recursive: true, force: true });
    await writeFile(join(tmp, 'set.json'), JSON.stringify(set, null, 2));
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
    return set;
  } catch (error) {
    await rm(tmp, { recursive: true, force: true });
    throw error;
  }
}

/** Pushes every blob and manifest of the set to `host` (a plain-HTTP registry); returns the references. */
export async function pushImageSet(set: BenchImageSet, host: string): Promise<string[]> {
  const client = await RegistryClient.create({ insecureRegistries: [host], retry: { retries: 1, initialDelayMs: 100 } });
  const refs: string[] = [];
  for (const image of set.images) {
    const repo = { registry: host, repository: image.repository };
    for (const d of [...image.layers, image.config]) await pushBlob(client, repo, await readFile(join(set.dir, d.digest.slice(7))));
    await pushManifest(client, repo, image.tag, await readFile(join(set.dir, image.manifest.digest.slice(7))), OCI_MANIFEST);
    refs.push(`${host}/${image.repository}:${image.tag}`);
  }
  return refs;
}
