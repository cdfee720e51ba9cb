/**
 * Shared setup of the bake-archive tests: a registry with the fixture images, locks for
 * linux/amd64 (sample + fidelity) and linux/arm64 (multi), fetched with skopeo into one cache,
 * then the registry is STOPPED: every bake in these tests runs with no registry at all.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchImages } from '../../src/fetch/fetch.js';
import type { LockFile } from '../../src/formats/index.js';
import { resolveLock } from '../../src/lock/resolve.js';
import { pushFixtureImages, type FixtureImages } from '../../devkit/fixture-images.js';
import { startRegistry, type TestRegistry } from '../../devkit/registry.js';
import { expect } from 'vitest';
import type { RunningDockerd } from '../../src/engine/dockerd.js';

export interface BakeInputs {
  work: string;
  cacheDir: string;
  images: FixtureImages;
  registry: TestRegistry;
  /** sample + fidelity, linux/amd64 */
  lockAmd64: string;
  lockAmd64Content: LockFile;
  /** multi, linux/arm64 */
  lockArm64: string;
  lockArm64Content: LockFile;
  close(): Promise<void>;
}

export async function prepareBakeInputs(): Promise<BakeInputs> {
  const work = await mkdtemp(join(tmpdir(), 'ctrbake-bake-test-'));
  const registry = await startRegistry();
  try {
    const images = await pushFixtureImages(registry);
    const insecureRegistries = [registry.host];
    const lockAmd64 = join(work, 'amd64.lock.json');
    const lockArm64 = join(work, 'arm64.lock.json');
    const a = await resolveLock({ references: [images.sample, images.fidelity], platform: 'linux/amd64', output: lockAmd64, insecureRegistries });
    const b = await resolveLock({ references: [images.multi], platform: 'linux/arm64', output: lockArm64, insecureRegistries });
    const cacheDir = join(work, 'cache');
    await fetchImages({ lockPath: lockAmd64, cacheDir, fetcher: 'skopeo', insecureRegistries });
    await fetchImages({ lockPath: lockArm64, cacheDir, fetcher: 'skopeo', insecureRegistries });
    await registry.stop();
    return {
      work,
      cacheDir,
      images,
      registry,
      lockAmd64,
      lockAmd64Content: a.lock,
      lockArm64,
      lockArm64Content: b.lock,
      async close() {
        await registry.close();
        await rm(work, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await registry.close();
    await rm(work, { recursive: true, force: true });
    throw error;
  }
}

export interface TarHeaderInfo {
  name: string;
  type: string;
  mtime: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  pax: Record<string, string> | null;
}

/** Every header of a tar file, in order (content skipped). */
export async function readTarHeaders(path: string): Promise<TarHeaderInfo[]> {
  const { extract } = await import('tar-stream');
  const { createReadStream } = await import('node:fs');
  const ex = extract();
  const headers: TarHeaderInfo[] = [];
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (h, stream, next) => {
      headers.push({
        name: h.name,
        type: h.type ?? 'file',
        mtime: Math.floor((h.mtime?.getTime() ?? 0) / 1000),
        uid: h.uid ?? 0,
        gid: h.gid ?? 0,
        uname: h.uname ?? '',
        gname: h.gname ?? '',
        pax: (h.pax as Record<string, string> | undefined) ?? null,
      });
      stream.on('end', next);
      stream.resume();
    });
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  createReadStream(path).pipe(ex);
  await done;
  return headers;
}

/** Names of leftover staging dirs (`.OUT.ctrbake-*`) in `parent`. */
export async function stagingDirsIn(parent: string): Promise<string[]> {
  const { readdir } = await import('node:fs/promises');
  return (await readdir(parent)).filter((n) => n.includes('.ctrbake-'));
}

/** Runs `image` in the private dockerd with no network; its output (exit 0 expected). */
export async function dockerRun(d: RunningDockerd, image: string): Promise<string> {
  const container = await d.docker.createContainer({ Image: image, HostConfig: { NetworkMode: 'none' } });
  try {
    await container.start();
    const { StatusCode } = (await container.wait()) as { StatusCode: number };
    const raw = (await container.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
    let out = '';
    for (let i = 0; i + 8 <= raw.length; ) {
      const size = raw.readUInt32BE(i + 4);
      out += raw.subarray(i + 8, i + 8 + size).toString();
      i += 8 + size;
    }
    expect(StatusCode, out).toBe(0);
    return out;
  } finally {
    await container.remove({ force: true });
  }
}

/** `docker load` through the API; every event of the stream checked for an error. */
export async function dockerLoad(d: RunningDockerd, archive: string): Promise<void> {
  const stream = await d.docker.loadImage(archive);
  const events = await new Promise<Record<string, unknown>[]>((resolve, reject) =>
    d.docker.modem.followProgress(stream, (err: Error | null, res: Record<string, unknown>[]) => (err ? reject(err) : resolve(res))),
  );
  expect(events.filter((e) => e.error)).toEqual([]);
}
