/**
 * The up-to-date check of `ctrbake bake` (docs/bake.md, "Up to date"): a second bake with the
 * same lock, options and versions starts no engine and leaves OUT byte-identical; a changed
 * lock, a changed option, a tampered or missing output, or --force bake again.
 * Real dockerd and podman, fixture images from a local registry (stopped before baking).
 */
import { readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bake } from '../../src/bake/bake.js';
import type { BakeOptions } from '../../src/bake/options.js';
import type { ProgressEvent, Reporter } from '../../src/util/reporter.js';
import type { BakeManifest } from '../../src/formats/index.js';
import { prepareBakeInputs, type BakeInputs } from './bake-archive.helpers.js';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'ctrbake.js');

function recorder(): { reporter: Reporter; events: ProgressEvent[] } {
  const events: ProgressEvent[] = [];
  return { events, reporter: { event: (e) => events.push(e), progress() {}, result() {}, error() {} } };
}

/** Every file under dir: relative path -> bytes and mtime. */
async function snapshot(dir: string): Promise<Map<string, { bytes: Buffer; mtimeMs: number }>> {
  const files = new Map<string, { bytes: Buffer; mtimeMs: number }>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files.set(relative(dir, path), { bytes: await readFile(path), mtimeMs: (await stat(path)).mtimeMs });
  }
  return files;
}

async function assertBuilt(): Promise<void> {
  for (const [src, dist] of [
    ['src/cli/bake.ts', 'dist/cli/bake.js'],
    ['src/bake/bake.ts', 'dist/bake/bake.js'],
    ['src/bake/up-to-date.ts', 'dist/bake/up-to-date.js'],
  ]) {
    const built = await stat(join(ROOT, dist)).catch(() => undefined);
    const source = await stat(join(ROOT, src));
    if (!built || built.mtimeMs < source.mtimeMs) throw new Error(`test prerequisite missing: ${dist} is missing or older than ${src}; run \`npm run build\``);
  }
}

const names = (events: ProgressEvent[]): string[] => events.map((e) => e.event);

describe('bake: up to date', () => {
  let inputs: BakeInputs;
  let base: BakeOptions;
  beforeAll(async () => {
    await assertBuilt();
    inputs = await prepareBakeInputs();
    base = { lockPath: inputs.lockAmd64, cacheDir: inputs.cacheDir, mode: 'archive', engine: 'docker', outDir: join(inputs.work, 'out'), sourceDateEpoch: 1_600_000_000 };
  }, 300_000);
  afterAll(async () => {
    await inputs?.close();
  });

  async function bakeWithEvents(options: Partial<BakeOptions> = {}): Promise<{ events: string[]; upToDate: unknown; manifest: BakeManifest }> {
    const r = recorder();
    const result = await bake({ ...base, ...options, reporter: r.reporter });
    return { events: names(r.events), upToDate: result.upToDate, manifest: result.manifest };
  }

  it('CLI --json: the second bake reports bake.uptodate, starts no engine, leaves OUT byte-identical (mtimes too)', async () => {
    const out = join(inputs.work, 'cli-out');
    const run = () =>
      execa('node', [BIN, 'bake', '--json', '--lock', inputs.lockAmd64, '--cache', inputs.cacheDir, '--mode', 'archive', '-o', out], { reject: false, env: { SOURCE_DATE_EPOCH: '1600000000' } });
    const first = await run();
    expect(first.exitCode, first.stderr).toBe(0);
    const manifest = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as BakeManifest;
    expect(manifest.inputFingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
    const before = await snapshot(out);

    const second = await run();
    expect(second.exitCode, second.stderr).toBe(0);
    const lines = second.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.filter((l) => l.type === 'event').map((l) => l.event)).toEqual(['bake.uptodate']);
    expect(lines.at(-1)).toMatchObject({ type: 'result', upToDate: true, outDir: out, manifest: { inputFingerprint: manifest.inputFingerprint } });
    expect(await snapshot(out)).toEqual(before);
  }, 300_000);

  it('a changed lock bakes again (same content under another name does not)', async () => {
    const first = await bakeWithEvents();
    expect(first.events).toContain('engine.started');
    const copy = join(inputs.work, 'copy.lock.json');
    await writeFile(copy, await readFile(inputs.lockAmd64));
    expect((await bakeWithEvents({ lockPath: copy })).events).toEqual(['bake.uptodate']);

    const fewer = join(inputs.work, 'fewer.lock.json');
    await writeFile(fewer, JSON.stringify({ ...inputs.lockAmd64Content, images: inputs.lockAmd64Content.images.slice(0, 1) }, null, 2));
    const changed = await bakeWithEvents({ lockPath: fewer });
    expect(changed.events.slice(0, 2)).toEqual(['bake.outdated', 'bake.start']);
    expect(changed.events).toContain('engine.started');
    expect(changed.manifest.images).toHaveLength(1);
    expect(changed.manifest.inputFingerprint).not.toBe(first.manifest.inputFingerprint);
  }, 300_000);

  it.each([
    ['SOURCE_DATE_EPOCH', { sourceDateEpoch: 1_700_000_000 }],
    ['--archive-format', { archiveFormat: 'oci-archive' }],
    ['--storage-driver', { storageDriver: 'vfs' }],
    ['--engine', { engine: 'podman' }],
  ] as [string, Partial<BakeOptions>][])('a changed %s bakes again, then is up to date', async (_what, change) => {
    await bakeWithEvents();
    const changed = await bakeWithEvents(change);
    expect(changed.events).toContain('engine.started');
    expect(changed.events[0]).toBe('bake.outdated');
    expect((await bakeWithEvents(change)).events).toEqual(['bake.uptodate']);
  }, 300_000);

  it('a tampered output (same size) or a missing one bakes again and restores the same bytes', async () => {
    const first = await bakeWithEvents();
    const out = base.outDir;
    const good = await snapshot(out);
    const archive = join(out, first.manifest.outputs[0]!.path);
    const bytes = await readFile(archive);
    bytes[bytes.length - 2048] = (bytes[bytes.length - 2048]! + 1) % 256;
    await writeFile(archive, bytes);
    const tampered = await bakeWithEvents();
    expect(tampered.events).toContain('engine.started');
    expect(await readFile(archive)).toEqual(good.get(relative(out, archive))!.bytes);

    await unlink(join(out, first.manifest.outputs[1]!.path));
    const missing = await bakeWithEvents();
    expect(missing.events).toContain('engine.started');
    for (const [path, { bytes: b }] of good) if (path !== 'manifest.json') expect(await readFile(join(out, path)), path).toEqual(b);
  }, 300_000);

  it('--force bakes although OUT is up to date', async () => {
    await bakeWithEvents();
    const forced = await bakeWithEvents({ force: true });
    expect(forced.events).not.toContain('bake.uptodate');
    expect(forced.events).toContain('engine.started');
    expect(forced.upToDate).toBe(false);
  }, 300_000);

  it('--verify-outputs catches a same-size change whose mtime was put back; the default check does not hash', async () => {
    const first = await bakeWithEvents();
    const archive = join(base.outDir, first.manifest.outputs[0]!.path);
    const st = await stat(archive);
    const bytes = await readFile(archive);
    bytes[bytes.length - 2048] = (bytes[bytes.length - 2048]! + 1) % 256;
    await writeFile(archive, bytes);
    await execa('touch', ['-m', '-d', `@${Math.floor(st.mtimeMs / 1000)}`, archive]);
    expect((await bakeWithEvents()).events).toEqual(['bake.uptodate']);
    const verified = await bakeWithEvents({ verifyOutputs: true });
    expect(verified.events[0]).toBe('bake.outdated');
    expect(verified.events).toContain('engine.started');
    expect((await bakeWithEvents({ verifyOutputs: true })).events).toEqual(['bake.uptodate']);
  }, 300_000);

  it('store mode: the second bake is up to date and returns the store tar', async () => {
    const outDir = join(inputs.work, 'store-out');
    // The default builder for a docker overlay2 store: ctrbake's own, no engine started.
    const first = await bakeWithEvents({ mode: 'store', outDir });
    expect(first.events).toContain('bake.start');
    expect(first.events).not.toContain('engine.started');
    const before = await snapshot(outDir);
    const r = recorder();
    const second = await bake({ ...base, mode: 'store', outDir, reporter: r.reporter });
    expect(names(r.events)).toEqual(['bake.uptodate']);
    expect(second.storeTar).toMatchObject({ path: join(outDir, 'store.tar'), size: first.manifest.outputs[0]!.size });
    expect(await snapshot(outDir)).toEqual(before);
    await rm(outDir, { recursive: true, force: true });
  }, 300_000);
});
