/**
 * A damaged cache (docs/fetch.md, "Damaged cache"): a truncated layer, a layer with a flipped
 * byte, a deleted layer, a replaced config. Real registry on 127.0.0.1, real skopeo fetch, real
 * dockerd bake, all through the CLI. For each: bake fails before any engine starts, leaves no
 * OUT and a previous OUT untouched, and names the image, the digest, the file, the problem and
 * the fetch that repairs it; report and diff say the same; running that very command repairs the
 * file and the bake then succeeds.
 */
import { createHash } from 'node:crypto';
import { cp, mkdtemp, readdir, readFile, rm, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchImages } from '../../src/fetch/fetch.js';
import type { LockFile } from '../../src/formats/index.js';
import { resolveLock } from '../../src/lock/resolve.js';
import { pushFixtureImages } from '../../devkit/fixture-images.js';
import { startRegistry, type TestRegistry } from '../../devkit/registry.js';
import { stagingDirsIn } from './bake-archive.helpers.js';
import { REPO_ROOT, runCli, type CliRun } from './fetch-helpers.js';

const sha256 = async (path: string) => `sha256:${createHash('sha256').update(await readFile(path)).digest('hex')}`;
const blobFile = (cache: string, digest: string) => join(cache, 'blobs', 'sha256', digest.slice(7));
const exists = (path: string) => stat(path).then(() => true, () => false);

/** Every file under dir: relative path -> sha256 and mtime. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files[relative(dir, path)] = `${await sha256(path)} ${(await stat(path)).mtimeMs}`;
  }
  return files;
}

async function assertBuilt(): Promise<void> {
  for (const [src, dist] of [['src/fetch/complete.ts', 'dist/fetch/complete.js'], ['src/fetch/fetch.ts', 'dist/fetch/fetch.js'], ['src/report/layer-source.ts', 'dist/report/layer-source.js']] as const) {
    const built = await stat(join(REPO_ROOT, dist)).catch(() => undefined);
    if (!built || built.mtimeMs < (await stat(join(REPO_ROOT, src))).mtimeMs) throw new Error(`test prerequisite missing: ${dist} is missing or older than ${src}; run \`npm run build\``);
  }
}

interface Damage {
  /** What the message calls the blob: "layer 0", "config". */
  which: string;
  digest: string;
  code: 'E_CACHE_DAMAGED' | 'E_CACHE_MISS';
  problem: RegExp;
}

type Damager = (cache: string, lock: LockFile) => Promise<Damage>;

const CASES: Array<[string, Damager]> = [
  ['a truncated layer', async (cache, lock) => {
    const layer = lock.images[0]!.layers.at(-1)!;
    await truncate(blobFile(cache, layer.digest), Math.floor(layer.size / 2));
    return { which: `layer ${lock.images[0]!.layers.length - 1}`, digest: layer.digest, code: 'E_CACHE_DAMAGED', problem: new RegExp(`: ${Math.floor(layer.size / 2)} bytes, the lock says ${layer.size} \\(truncated\\)`) };
  }],
  ['a layer with one flipped byte (same size)', async (cache, lock) => {
    const layer = lock.images[0]!.layers[0]!;
    const bytes = await readFile(blobFile(cache, layer.digest));
    bytes[Math.floor(bytes.length / 2)]! ^= 0x40;
    await writeFile(blobFile(cache, layer.digest), bytes);
    return { which: 'layer 0', digest: layer.digest, code: 'E_CACHE_DAMAGED', problem: /: its bytes hash to sha256:[0-9a-f]{64}, not to its name/ };
  }],
  ['a deleted layer', async (cache, lock) => {
    const layer = lock.images[0]!.layers[0]!;
    await unlink(blobFile(cache, layer.digest));
    return { which: 'layer 0', digest: layer.digest, code: 'E_CACHE_MISS', problem: / is missing/ };
  }],
  ['a replaced config (another valid image config)', async (cache, lock) => {
    const config = lock.images[0]!.config;
    const json = JSON.parse(await readFile(blobFile(cache, config.digest), 'utf8')) as { config?: { Env?: string[] } };
    json.config = { ...json.config, Env: [...(json.config?.Env ?? []), 'REPLACED=1'] };
    await writeFile(blobFile(cache, config.digest), JSON.stringify(json));
    return { which: 'config', digest: config.digest, code: 'E_CACHE_DAMAGED', problem: /: \d+ bytes, the lock says \d+ \(overwritten or appended to\)/ };
  }],
];

describe('a damaged cache is found before any engine starts, named precisely, and repaired by the command the message names', () => {
  let work: string;
  let registry: TestRegistry;
  let lockPath: string;
  let lock: LockFile;
  let pristine: string;
  let previousOut: string;
  let previous: Record<string, string>;

  const bakeArgs = (cache: string, out: string, ...more: string[]) => ['bake', '--json', '--lock', lockPath, '--cache', cache, '--mode', 'archive', '--engine', 'docker', '-o', out, ...more];

  beforeAll(async () => {
    await assertBuilt();
    work = await mkdtemp(join(tmpdir(), 'ctrbake-cache-damage-'));
    registry = await startRegistry();
    const images = await pushFixtureImages(registry);
    lockPath = join(work, 'sample.lock.json');
    lock = (await resolveLock({ references: [images.sample], platform: 'linux/amd64', output: lockPath, insecureRegistries: [registry.host] })).lock;
    pristine = join(work, 'pristine-cache');
    await fetchImages({ lockPath, cacheDir: pristine, fetcher: 'skopeo', insecureRegistries: [registry.host] });
    previousOut = join(work, 'previous-out');
    const first = await runCli(bakeArgs(pristine, previousOut));
    expect(first.exitCode, first.stderr).toBe(0);
    previous = await snapshot(previousOut);
  }, 300_000);

  afterAll(async () => {
    await registry?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  function expectGuidance(run: CliRun, cache: string, damage: Damage): string {
    expect(run.exitCode, run.stderr).toBe(1);
    expect(run.error?.code).toBe(damage.code);
    const message = run.error!.message;
    const path = blobFile(cache, damage.digest);
    expect(message).toContain(`  ${lock.images[0]!.reference}:\n    ${damage.which} ${damage.digest}: ${path}`);
    expect(message).toMatch(damage.problem);
    const command = message.split('\n').at(-1)!.trim();
    expect(command).toBe(`ctrbake fetch --lock ${lockPath} --cache ${cache}`);
    return command;
  }

  it.each(CASES)('%s', async (name, damager) => {
    const cache = join(work, `cache-${name.replace(/\W+/g, '-')}`);
    await cp(pristine, cache, { recursive: true });
    const damage = await damager(cache, lock);
    const path = blobFile(cache, damage.digest);
    const out = join(work, `out-${name.replace(/\W+/g, '-')}`);

    // bake: fails before any engine starts; no OUT, no staging dir; a previous OUT is untouched.
    const failed = await runCli(bakeArgs(cache, out));
    const command = expectGuidance(failed, cache, damage);
    expect(failed.lines.map((l) => l.event)).not.toContain('engine.started');
    expect(await exists(out)).toBe(false);
    expect(await stagingDirsIn(work)).toEqual([]);
    const forced = await runCli(bakeArgs(cache, previousOut, '--force'));
    expectGuidance(forced, cache, damage);
    expect(forced.lines.map((l) => l.event)).not.toContain('engine.started');
    expect(await snapshot(previousOut)).toEqual(previous);

    // fetch --offline, report and diff give the same guidance.
    expectGuidance(await runCli(['fetch', '--offline', '--json', '--lock', lockPath, '--cache', cache]), cache, damage);
    expectGuidance(await runCli(['report', '--json', '--manifest', lockPath, '--cache', cache]), cache, damage);
    expectGuidance(await runCli(['diff', '--json', lockPath, lockPath, '--cache', cache]), cache, damage);

    // The command from the message, as is; this test registry is plain HTTP, so it needs the
    // same --insecure-registry every fetch of it needs (the message says to add such options).
    const repair = await runCli([...command.split(' ').slice(1), '--insecure-registry', registry.host, '--json']);
    expect(repair.exitCode, repair.stderr).toBe(0);
    if (damage.code === 'E_CACHE_DAMAGED') {
      expect(repair.lines.filter((l) => l.event === 'fetch.evict').map((l) => [l.digest, l.path])).toEqual([[damage.digest, path]]);
      expect(repair.lines.filter((l) => l.event === 'fetch.repaired').map((l) => [l.digest, l.path])).toEqual([[damage.digest, path]]);
      expect(repair.result).toMatchObject({ blobsRepaired: 1, blobsFetched: 1 });
    } else {
      expect(repair.result).toMatchObject({ blobsRepaired: 0, blobsFetched: 1 });
    }
    expect(await sha256(path)).toBe(damage.digest);

    const baked = await runCli(bakeArgs(cache, out));
    expect(baked.exitCode, baked.stderr).toBe(0);
    expect(baked.lines.map((l) => l.event)).toContain('engine.started');
    expect(await exists(join(out, 'manifest.json'))).toBe(true);
  }, 300_000);

  it('an up-to-date OUT is not baked again, so a damaged cache does not fail it (nothing is read from the cache)', async () => {
    const cache = join(work, 'cache-uptodate');
    await cp(pristine, cache, { recursive: true });
    const first = await runCli(bakeArgs(cache, join(work, 'out-uptodate')));
    expect(first.exitCode, first.stderr).toBe(0);
    const layer = lock.images[0]!.layers[0]!;
    await truncate(blobFile(cache, layer.digest), 10);
    const again = await runCli(bakeArgs(cache, join(work, 'out-uptodate')));
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.lines.map((l) => l.event)).toContain('bake.uptodate');
    // Baking anew (--force) does read the cache, and fails with the guidance.
    const forced = await runCli(bakeArgs(cache, join(work, 'out-uptodate'), '--force'));
    expect(forced.error?.code).toBe('E_CACHE_DAMAGED');
  }, 300_000);
});
