/**
 * Running `ctrbake bake` as a user does (node bin/ctrbake.js on the built dist/), watching its
 * --json events as they come, and comparing OUT dirs by file list and sha256.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { sha256File } from '../../src/util/fs.js';

export const ROOT = join(import.meta.dirname, '..', '..');
export const BIN = join(ROOT, 'bin', 'ctrbake.js');

/** Fails when dist/ is older than the sources the CLI tests run. */
export async function assertBuilt(files: readonly string[]): Promise<void> {
  for (const src of files) {
    const dist = src.replace(/^src\//, 'dist/').replace(/\.ts$/, '.js');
    const built = await stat(join(ROOT, dist)).catch(() => undefined);
    const source = await stat(join(ROOT, src));
    if (!built || built.mtimeMs < source.mtimeMs) throw new Error(`test prerequisite missing: ${dist} is missing or older than ${src}; run \`npm run build\``);
  }
}

export function parseLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export interface WatchedRun {
  child: ResultPromise<{ reject: false }>;
  /** --json lines seen so far. */
  lines: Record<string, unknown>[];
}

/** Starts `node bin/ctrbake.js ARGS` and collects its --json lines as they arrive. */
export function startCli(args: readonly string[], options: { cwd?: string; env?: Record<string, string> } = {}): WatchedRun {
  // forceKillAfterDelay: false: execa would follow a SIGTERM with SIGKILL after 5 s, while ctrbake still tears down.
  const child = execa('node', [BIN, ...args], { reject: false, forceKillAfterDelay: false, ...(options.cwd ? { cwd: options.cwd } : {}), env: { SOURCE_DATE_EPOCH: '1600000000', ...options.env } });
  const lines: Record<string, unknown>[] = [];
  onJsonLines(child.stdout!, (line) => lines.push(line));
  return { child, lines };
}

/** Calls `each` with every --json line of `stdout` as it arrives. */
export function onJsonLines(stdout: NodeJS.ReadableStream, each: (line: Record<string, unknown>) => void): void {
  let pending = '';
  stdout.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (line.trim()) each(JSON.parse(line) as Record<string, unknown>);
    }
  });
}

export function bakeArgs(lock: string, cache: string, out: string, extra: readonly string[]): string[] {
  return ['bake', '--json', '--lock', lock, '--cache', cache, '-o', out, ...extra];
}

/** Every file under DIR (relative path -> sha256), sorted; undefined when DIR is missing. */
export async function snapshot(dir: string): Promise<Record<string, string> | undefined> {
  let entries: string[];
  try {
    entries = await readdir(dir, { recursive: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const files: Record<string, string> = {};
  for (const e of entries.sort()) {
    const path = join(dir, e);
    const st = await stat(path);
    files[relative(dir, path)] = st.isDirectory() ? 'dir' : await sha256File(path);
  }
  return files;
}

/** Names of staging dirs (`.OUT.ctrbake-*`) in `parent`. */
export async function stagingDirs(parent: string): Promise<string[]> {
  return (await readdir(parent)).filter((n) => n.includes('.ctrbake-'));
}

/** Private engine dirs under /tmp whose owner file names `pid`. */
export async function engineDirsOf(pid: number, base = '/tmp'): Promise<string[]> {
  const found: string[] = [];
  for (const name of await readdir(base)) {
    if (!/^ctrbake-[dp]-/.test(name)) continue;
    const owner = await readFile(join(base, name, 'owner'), 'utf8').catch(() => '');
    if (owner && (JSON.parse(owner) as { pid: number }).pid === pid) found.push(join(base, name));
  }
  return found;
}

export { execa };
