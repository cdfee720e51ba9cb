/**
 * `npm run test:engines` (not part of `npm test`): every engine a device may run x every
 * loader layout x every store kind, on the simulated device (devkit/device.ts) with the
 * loader's own generated configs. Engines: the host's dockerd 20.10 and podman 4.3, and
 * Debian 13's and sid's from debootstrap trees (devkit/debian-tree.ts, built on first use:
 * about a minute each); sid's dockerd also with the containerd image store
 * (`"features": {"containerd-snapshotter": true}`, the Docker 29 default, see SNAPSHOTTER).
 * Store kinds: the engine path's bake, and ctrbake's own builder where it exists (docker
 * overlay2: split and copy), built for the engine's version.
 *
 * Each cell boots a fresh device (systemd) and checks, in this order:
 *   - every image of the lock listed under its reference with the lock's image id (config digest),
 *   - the fidelity image runs with every property intact, the sample prints its line,
 *   - save round trip: `save` of the fidelity image re-reads every layer (each hashes to its
 *     diff id, the config is the lock's), then rmi (not on a read-only store), load of the
 *     saved archive, and the image is back with the lock's id,
 *   - every image has the lock's repo digest (`repo@manifest digest`) and it resolves.
 * The first failing check ends the cell. The table (engine x layout x store kind: works /
 * fails with the first error line / n.a.) is printed at the end and written to
 * CTRBAKE_ENGINES_TABLE when set; docs/engine-compat.md holds the last run's.
 *
 * knownFailure() lists the cells that fail today, with the first error line they fail with and
 * the issue that fixes them. Such a cell still runs and is shown as failing; the test fails
 * when it starts to work (remove it from the list then), when it fails otherwise, and when any
 * other cell fails.
 */
import { createReadStream } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, it } from 'vitest';
import { checkSavedArchive } from '../../src/bake/verify-saved-archive.js';
import type { LockFile, LockedImage } from '../../src/formats/index.js';
import type { DebianSuite } from '../../devkit/debian-tree.js';
import type { SimDevice } from '../../devkit/device.js';
import { bakeInto, type LoaderFixture } from '../../devkit/device-setup.js';
import { assertFidelityOutput, SAMPLE_OUTPUT } from '../fixtures/images.js';
import { useLoaderFixture } from '../integration/loader-harness.js';

type Where = 'host' | DebianSuite;

interface EngineCase {
  id: string;
  kind: 'docker' | 'podman';
  where: Where;
  /** docker: the device's daemon.json switched to the containerd image store. */
  snapshotter?: boolean;
  /** docker: the version the builder's stores are made for (tar-split flavour). */
  builderFor?: string;
}

const ENGINES: readonly EngineCase[] = [
  { id: 'dockerd, host (Debian 12)', kind: 'docker', where: 'host', builderFor: '20.10' },
  { id: 'dockerd, Debian 13', kind: 'docker', where: 'trixie', builderFor: '26.1' },
  { id: 'dockerd, Debian sid', kind: 'docker', where: 'sid', builderFor: '28.5' },
  { id: 'dockerd, Debian sid, containerd-snapshotter', kind: 'docker', where: 'sid', snapshotter: true, builderFor: '28.5' },
  { id: 'podman, host (Debian 12)', kind: 'podman', where: 'host' },
  { id: 'podman, Debian 13', kind: 'podman', where: 'trixie' },
  { id: 'podman, Debian sid', kind: 'podman', where: 'sid' },
];

type Layout = 'archive' | 'overlay-vfs' | 'split' | 'copy' | 'podman-ro';
type StoreKind = 'engine' | 'builder';
interface Column {
  layout: Layout;
  store: StoreKind;
}
const COLUMNS: readonly Column[] = [
  { layout: 'archive', store: 'engine' },
  { layout: 'overlay-vfs', store: 'engine' },
  { layout: 'split', store: 'engine' },
  { layout: 'split', store: 'builder' },
  { layout: 'copy', store: 'engine' },
  { layout: 'copy', store: 'builder' },
  { layout: 'podman-ro', store: 'engine' },
];

/** Which (engine, column) exist: docker has no podman-ro, podman no overlay-vfs/split; the builder writes docker overlay2 only. */
function applies(engine: EngineCase, c: Column): boolean {
  if (engine.kind === 'podman') return c.store === 'engine' && ['archive', 'copy', 'podman-ro'].includes(c.layout);
  if (c.layout === 'podman-ro') return false;
  return c.store === 'engine' || c.layout === 'split' || c.layout === 'copy';
}

/**
 * The Docker 29 default on a fresh install: the containerd image store, and no storage-driver
 * (with the containerd store, `storage-driver` names a snapshotter: `overlay2` would make every
 * container fail with "snapshotter not loaded: overlay2"). The loader's daemon.json pins
 * `containerd-snapshotter: false`; this row shows what a device whose config turns it on gets.
 */
function snapshotterConfig(config: Record<string, unknown>): Record<string, unknown> {
  const { 'storage-driver': _driver, features, ...rest } = config;
  return { ...rest, features: { ...(features as object | undefined), 'containerd-snapshotter': true } };
}

interface KnownFailure {
  /** Why, and the issue that fixes it. */
  why: string;
  /** The first error line it fails with today: failing otherwise is a new failure. */
  error: RegExp;
}

/** The cells that fail today (see the file comment). */
function knownFailure(engine: EngineCase, c: Column): KnownFailure | undefined {
  if (engine.snapshotter) {
    return c.layout === 'archive'
      ? { why: 'issue #15: under the containerd image store an image id is its manifest digest, and archives re-saved by an engine carry digests not in the lock', error: /boot failed at service:ctrbake-load\.service|image id sha256:\w+, the lock's is/ }
      : { why: 'issue #15: the containerd image store ignores a graph-driver store (0 images, no warning)', error: /./ };
  }
  if (engine.kind === 'podman') {
    // Its stores too: the engine path fills them with `podman load` of such archives.
    return { why: 'issue #15: podman records the digest of the manifest it writes when it loads a docker-archive, not the registry\'s; an OCI layout from the cache, or the podman store written by the builder, keeps it', error: /repo digests .* lack / };
  }
  if (c.layout === 'archive') {
    return { why: 'issue #15: `docker load` of a docker-archive records no repo digest (the archive lacks the registry\'s manifest); an OCI layout from the cache keeps it', error: /repo digests .* lack / };
  }
  return undefined;
}

function cellKey(engine: EngineCase, c: Column): string {
  return `${engine.id} | ${c.layout} | ${c.store}`;
}

interface CellResult {
  status: 'works' | 'fails' | 'n.a.';
  error?: string;
  known?: string;
}

const results = new Map<string, CellResult>();
const versions = new Map<string, string>();
let f: LoaderFixture;
let lock: LockFile;
const bakes = new Map<string, Promise<string>>();
const overlays = new Map<string, Promise<string>>();

const device = useLoaderFixture(async (fixture) => {
  f = fixture;
  lock = JSON.parse(await readFile(f.lockA, 'utf8')) as LockFile;
}, 300_000);

/** OUT/manifest.json of a bake of lock A, made once per kind. */
function bakeFor(engine: EngineCase, c: Column): Promise<string> {
  const base = { lockPath: f.lockA, cacheDir: f.cacheDir, engine: engine.kind } as const;
  let key: string;
  let run: () => Promise<string>;
  if (c.layout === 'archive') {
    key = `${engine.kind} archive`;
    run = () => bakeInto(f.work, { ...base, mode: 'archive' });
  } else if (c.store === 'builder') {
    key = `builder ${engine.builderFor!}`;
    run = () => bakeInto(f.work, { ...base, mode: 'store', storageDriver: 'overlay2', builder: 'native', engineVersion: engine.builderFor! });
  } else {
    const driver = engine.kind === 'podman' ? 'overlay' : c.layout === 'overlay-vfs' ? 'vfs' : 'overlay2';
    key = `${engine.kind} store ${driver}`;
    run = () => bakeInto(f.work, { ...base, mode: 'store', storageDriver: driver });
  }
  if (!bakes.has(key)) bakes.set(key, run());
  return bakes.get(key)!;
}

async function overlayFor(engine: EngineCase, c: Column): Promise<string> {
  const manifest = await bakeFor(engine, c);
  const key = `${manifest} ${c.layout}`;
  if (!overlays.has(key)) overlays.set(key, f.loader(manifest, { layout: c.layout, init: 'systemd' }));
  return overlays.get(key)!;
}

function must(ok: boolean, message: string): void {
  if (!ok) throw new Error(message);
}

function firstLine(text: unknown): string {
  return String(text ?? '').trim().split('\n').find((l) => l.trim() !== '') ?? '(no output)';
}

/** What a failed command said: its stderr's last line (the error, after any progress), else its output's first. */
function errorLine(r: { stderr?: unknown; all?: unknown }): string {
  const lines = String(r.stderr ?? '').trim().split('\n').filter((l) => l.trim() !== '');
  return lines.at(-1) ?? firstLine(r.all);
}

interface Inspected {
  Id: string;
  RepoTags?: string[] | null;
  RepoDigests?: string[] | null;
}

/** The engine CLI of the device (docker: the host's client on the device's engine socket). */
function cli(d: SimDevice, engine: EngineCase, args: readonly string[]): Promise<{ exitCode?: number; stdout: unknown; stderr: unknown; all: unknown }> {
  return engine.kind === 'docker' ? d.docker(args) : d.podman(args);
}

async function inspect(d: SimDevice, engine: EngineCase, ref: string): Promise<Inspected> {
  const r = await cli(d, engine, ['image', 'inspect', ref]);
  must(r.exitCode === 0, `${engine.kind} image inspect ${ref} failed: ${errorLine(r)}`);
  const found = (JSON.parse(String(r.stdout)) as Inspected[])[0]!;
  return { ...found, Id: found.Id.startsWith('sha256:') ? found.Id : `sha256:${found.Id}` };
}

function repoDigest(image: LockedImage): string {
  return `${image.registry}/${image.repository}@${image.manifest.digest}`;
}

async function expectListed(d: SimDevice, engine: EngineCase, image: LockedImage): Promise<void> {
  const byTag = await inspect(d, engine, image.reference);
  must(byTag.Id === image.config.digest, `${image.reference}: image id ${byTag.Id}, the lock's is ${image.config.digest}`);
  must((byTag.RepoTags ?? []).includes(image.reference), `${image.reference}: not among its repo tags ${JSON.stringify(byTag.RepoTags)}`);
}

async function expectRepoDigest(d: SimDevice, engine: EngineCase, image: LockedImage): Promise<void> {
  const byTag = await inspect(d, engine, image.reference);
  must((byTag.RepoDigests ?? []).includes(repoDigest(image)), `${image.reference}: repo digests ${JSON.stringify(byTag.RepoDigests)} lack ${repoDigest(image)}`);
  const byDigest = await inspect(d, engine, repoDigest(image));
  must(byDigest.Id === image.config.digest, `${repoDigest(image)} resolves to ${byDigest.Id}, not ${image.config.digest}`);
}

async function expectRuns(d: SimDevice, engine: EngineCase): Promise<void> {
  const fidelity = await d.runImage([f.images.fidelity]);
  must(fidelity.exitCode === 0, `run ${f.images.fidelity} failed: ${errorLine(fidelity)}`);
  assertFidelityOutput(String(fidelity.stdout));
  const sample = await d.runImage([f.images.sample]);
  must(sample.exitCode === 0, `run ${f.images.sample} failed: ${errorLine(sample)}`);
  must(String(sample.stdout).trim() === SAMPLE_OUTPUT, `${f.images.sample} printed ${JSON.stringify(String(sample.stdout).trim())} (${engine.id})`);
}

async function expectSaveRoundTrip(d: SimDevice, engine: EngineCase, layout: Layout, image: LockedImage): Promise<void> {
  const file = join(d.dir, 'saved.tar');
  try {
    const saveArgs = engine.kind === 'docker' ? ['save', '-o', file, image.reference] : ['save', '--format', 'docker-archive', '-o', file, image.reference];
    const saved = await cli(d, engine, saveArgs);
    must(saved.exitCode === 0, `save ${image.reference} failed: ${errorLine(saved)}`);
    const [check] = await checkSavedArchive(createReadStream(file), `save ${image.reference}`);
    must(check?.configDigest === image.config.digest, `the saved ${image.reference} holds config ${check?.configDigest}, the lock's is ${image.config.digest}`);
    must(check.layers === image.layers.length, `the saved ${image.reference} has ${check.layers} layers, the lock ${image.layers.length}`);
    if (layout !== 'podman-ro') {
      const rmi = await cli(d, engine, ['rmi', image.reference]);
      must(rmi.exitCode === 0, `rmi ${image.reference} failed: ${errorLine(rmi)}`);
    }
    const load = await cli(d, engine, ['load', '-i', file]);
    must(load.exitCode === 0, `load of the saved ${image.reference} failed: ${errorLine(load)}`);
    const back = await inspect(d, engine, image.reference);
    must(back.Id === image.config.digest, `${image.reference} loaded back as ${back.Id}, not ${image.config.digest}`);
  } finally {
    await rm(file, { force: true });
  }
}

async function runCell(engine: EngineCase, c: Column): Promise<void> {
  const d = await device(await overlayFor(engine, c));
  if (engine.snapshotter) {
    const path = d.path('/etc/docker/daemon.json');
    await writeFile(path, `${JSON.stringify(snapshotterConfig(JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>))}\n`);
  }
  const boot = await d.boot(engine.kind === 'docker' ? { init: 'systemd', dockerd: engine.where } : { init: 'systemd', podman: engine.where });
  if (boot.failure) throw new Error(`boot failed at ${boot.failure.name}: ${errorLine(boot.failure)}`);
  const version = engine.kind === 'docker' ? boot.engine!.version : String((await d.podman(['version', '--format', '{{.Client.Version}}'])).stdout).trim();
  versions.set(engine.id, version);
  for (const image of lock.images) await expectListed(d, engine, image);
  await expectRuns(d, engine);
  await expectSaveRoundTrip(d, engine, c.layout, lock.images.find((i) => i.reference === f.images.fidelity)!);
  // Last, so a cell that fails only here shows that everything else works.
  for (const image of lock.images) await expectRepoDigest(d, engine, image);
}

describe.each(ENGINES)('$id', (engine) => {
  for (const c of COLUMNS) {
    const key = cellKey(engine, c);
    if (!applies(engine, c)) {
      results.set(key, { status: 'n.a.' });
      continue;
    }
    it(`${c.layout}, ${c.store === 'engine' ? 'engine-path store' : "ctrbake's builder store"}`, async () => {
      const known = knownFailure(engine, c);
      try {
        await runCell(engine, c);
      } catch (error) {
        const line = firstLine((error as Error).message);
        const expected = known?.error.test(line) === true;
        results.set(key, { status: 'fails', error: line, ...(expected ? { known: known!.why } : {}) });
        if (expected) return;
        throw error;
      }
      results.set(key, { status: 'works' });
      if (known) throw new Error(`${key} works now: remove it from knownFailure (${known.why}) and update docs/engine-compat.md`);
    }, 300_000);
  }
});

/** The results table (markdown): one row per engine, one column per layout and store kind. */
function table(): string {
  const notes: string[] = [];
  const head = ['engine', 'version', ...COLUMNS.map((c) => `${c.layout}${c.store === 'builder' ? ' (builder)' : ''}`)];
  const rows = ENGINES.map((engine) => [
    engine.id,
    versions.get(engine.id) ?? '?',
    ...COLUMNS.map((c) => {
      const r = results.get(cellKey(engine, c));
      if (!r) return 'not run';
      if (r.status !== 'fails') return r.status;
      notes.push(`${r.error}${r.known ? ` (known: ${r.known})` : ''}`);
      return `fails [${notes.length}]`;
    }),
  ]);
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [
    line(head),
    line(head.map(() => '---')),
    ...rows.map(line),
    '',
    ...notes.map((n, i) => `[${i + 1}] ${n}`),
    '',
    'Store kinds: engine = baked by the host engine (dockerd 20.10 / podman 4.3); builder = ctrbake --builder native, made for the engine\'s version.',
  ].join('\n');
}

afterAll(async () => {
  const text = table();
  console.log(`\nengine x layout x store kind (${new Date().toISOString()}):\n\n${text}\n`);
  if (process.env.CTRBAKE_ENGINES_TABLE) await writeFile(process.env.CTRBAKE_ENGINES_TABLE, `${text}\n`);
});
