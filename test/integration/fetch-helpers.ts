/**
 * Helpers for the fetch integration tests: lock files for the fixture images, the CLI as a
 * child process, a cache checker, and a fault-injecting HTTP proxy in front of a registry.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { request, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { execa, type ResultPromise } from 'execa';
import type { LockedImage, LockFile } from '../../src/formats/index.js';
import type { BuiltImage, FixtureImages } from '../fixtures/images.js';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');
export const CLI = join(REPO_ROOT, 'bin', 'ctrbake.js');

export function lockedImage(registry: string, repository: string, tag: string, image: BuiltImage, indexDigest?: string): LockedImage {
  return {
    reference: `${registry}/${repository}:${tag}`,
    registry,
    repository,
    tag,
    indexDigest: indexDigest ?? image.manifest.digest,
    indexMediaType: indexDigest ? 'application/vnd.oci.image.index.v1+json' : image.manifest.mediaType,
    manifest: image.manifest,
    config: image.config,
    layers: image.layers,
    platform: image.platform,
  };
}

/** A lock of sample + fidelity (sharing the busybox layer) + multi for linux/arm64, hosted at `registry`. */
export function fixtureLock(f: FixtureImages, registry = f.registry): LockFile {
  return {
    lockVersion: 1,
    platform: { os: 'linux', architecture: 'amd64' },
    images: [
      lockedImage(registry, 'ctrbake/sample', '1.0', f.sampleImage),
      lockedImage(registry, 'ctrbake/fidelity', '1.0', f.fidelityImage),
      lockedImage(registry, 'ctrbake/multi', '1.0', f.multiArm64, f.multiIndex.digest),
    ],
  };
}

/** The same images served by another host (a proxy, a second registry with the same pushes). */
export function rehost(lock: LockFile, host: string): LockFile {
  return {
    ...lock,
    images: lock.images.map((i) => ({ ...i, registry: host, reference: i.reference.replace(i.registry, host) })),
  };
}

export async function writeLock(path: string, lock: LockFile): Promise<string> {
  await writeFile(path, `${JSON.stringify(lock, null, 2)}\n`);
  return path;
}

/** Every distinct blob digest a lock names (manifests, configs, layers). */
export function lockDigests(lock: LockFile): Set<string> {
  const out = new Set<string>();
  for (const i of lock.images) {
    for (const d of [i.manifest, i.config, ...i.layers]) out.add(d.digest);
    // Fetch keeps the image index a tag resolved to (multi-platform images), whatever the fetcher.
    if (i.indexDigest !== i.manifest.digest) out.add(i.indexDigest);
  }
  return out;
}

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(path), h);
  return h.digest('hex');
}

/** The cache's blobs: every file's name checked against the sha256 of its bytes. */
export async function cacheBlobs(cacheDir: string): Promise<{ digests: Set<string>; wrong: string[] }> {
  const dir = join(cacheDir, 'blobs', 'sha256');
  const digests = new Set<string>();
  const wrong: string[] = [];
  let names: string[] = [];
  try {
    names = await readdir(dir);
  } catch {
    // no blobs yet
  }
  for (const name of names) {
    if ((await sha256(join(dir, name))) === name) digests.add(`sha256:${name}`);
    else wrong.push(name);
  }
  return { digests, wrong };
}

export interface CliRun {
  exitCode: number | undefined;
  signal: string | undefined;
  stdout: string;
  stderr: string;
  lines: Record<string, unknown>[];
  result?: Record<string, unknown>;
  error?: { code: string; message: string };
}

export function parseCliOutput(r: { exitCode?: number; signal?: string; stdout: unknown; stderr: unknown }): CliRun {
  const stdout = String(r.stdout ?? '');
  const lines = stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return {
    exitCode: r.exitCode,
    signal: r.signal,
    stdout,
    stderr: String(r.stderr ?? ''),
    lines,
    result: lines.find((l) => l.type === 'result'),
    error: lines.find((l) => l.type === 'error') as CliRun['error'],
  };
}

export function startCli(args: string[]): ResultPromise<{ reject: false }> {
  return execa('node', [CLI, ...args], { reject: false, cwd: REPO_ROOT, env: { LC_ALL: 'C' } });
}

export async function runCli(args: string[]): Promise<CliRun> {
  return parseCliOutput(await startCli(args));
}

export interface FaultProxy {
  host: string;
  /** Requests seen, and how many were answered 503 on purpose. */
  stats: { requests: number; failed: number; bodyBytes: number; blobGets: string[] };
  close(): Promise<void>;
}

export interface FaultProxyOptions {
  /** Answer 503 to the first N requests. */
  failFirst?: number;
  /** Throttle blob bodies to about this many bytes per second. */
  bytesPerSecond?: number;
  /** Called once when a blob body starts flowing. */
  onBlobBody?: () => void;
}

/** A tiny HTTP proxy on 127.0.0.1 in front of a plain-HTTP registry that injects faults. */
export async function startFaultProxy(target: string, options: FaultProxyOptions = {}): Promise<FaultProxy> {
  const [targetHost, targetPort] = target.split(':');
  const stats = { requests: 0, failed: 0, bodyBytes: 0, blobGets: [] as string[] };
  let signalled = false;
  const sockets = new Set<import('node:net').Socket>();
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    stats.requests++;
    const blobGet = req.method === 'GET' ? /\/blobs\/(sha256:[0-9a-f]{64})/.exec(req.url ?? '') : null;
    if (blobGet) stats.blobGets.push(blobGet[1]!);
    if (stats.requests <= (options.failFirst ?? 0)) {
      stats.failed++;
      req.resume();
      res.writeHead(503, { 'Content-Type': 'text/plain' }).end('injected 503\n');
      return;
    }
    const upstream = request(
      { host: targetHost, port: Number(targetPort), method: req.method, path: req.url, headers: { ...req.headers, host: target } },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        const isBlob = req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '');
        if (!isBlob || !options.bytesPerSecond) {
          up.pipe(res);
          return;
        }
        if (!signalled) {
          signalled = true;
          options.onBlobBody?.();
        }
        throttle(up, res, options.bytesPerSecond, stats);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    host: `127.0.0.1:${port}`,
    stats,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

function throttle(src: IncomingMessage, dest: ServerResponse, bytesPerSecond: number, stats: { bodyBytes: number }): void {
  const chunkSize = Math.max(1024, Math.floor(bytesPerSecond / 10));
  const queue: Buffer[] = [];
  let ended = false;
  src.on('data', (c: Buffer) => {
    for (let i = 0; i < c.length; i += chunkSize) queue.push(c.subarray(i, i + chunkSize));
  });
  src.on('end', () => {
    ended = true;
  });
  const timer = setInterval(() => {
    const next = queue.shift();
    if (next) {
      stats.bodyBytes += next.length;
      dest.write(next);
    } else if (ended) {
      clearInterval(timer);
      dest.end();
    }
  }, 100);
  dest.on('close', () => {
    clearInterval(timer);
    src.destroy();
  });
}

/** Polls `check` every 50 ms until it holds or `timeoutMs` passed. */
export async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}

/** `pid args` of every process whose command line contains `text`. */
export async function processesNaming(text: string): Promise<string[]> {
  const ps = await execa('ps', ['-eo', 'pid=,args='], { reject: false });
  return String(ps.stdout).split('\n').filter((l) => l.includes(text));
}
