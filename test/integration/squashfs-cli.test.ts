/**
 * `ctrbake squashfs` as a user runs it (bin/ctrbake.js over dist/, built by `npm test`):
 * files and stdin, --json, exit codes, a missing host tool, progress only on a TTY.
 */
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256File } from '../../src/util/fs.js';
import { expectedTree, writeTarFile, type TreeEntry } from '../fixtures/tars.js';
import { diffTrees, Mounts, treeFromDir } from './squashfs-oracle.js';

const BIN = resolve(__dirname, '../../bin/ctrbake.js');
const ENTRIES: TreeEntry[] = [
  { type: 'dir', path: 'etc' },
  { type: 'file', path: 'etc/motd', content: Buffer.from('hello\n'), uid: 1000, gid: 1000, mode: 0o640 },
  { type: 'file', path: 'data', content: { kind: 'mixed', size: 9 * 1024 * 1024, seed: 7, randomEvery: 3 } },
  { type: 'symlink', path: 'link', target: 'etc/motd' },
];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function ctrbake(args: string[], opts: { stdinFile?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
    if (opts.stdinFile) createReadStream(opts.stdinFile).pipe(child.stdin);
    else child.stdin.end();
  });
}

const mounts = new Mounts();
let dir: string;
let tar: string;

beforeAll(async () => {
  await stat(join(resolve(__dirname, '../..'), 'dist/cli/main.js')).catch(() => {
    throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
  });
  dir = await mounts.tempDir();
  tar = join(dir, 'in.tar');
  await writeTarFile(tar, ENTRIES);
});
afterAll(async () => {
  await mounts.releaseAll();
});

describe('ctrbake squashfs', () => {
  it('writes an image from a file that the kernel mounts', async () => {
    const out = join(dir, 'file.sqfs');
    const run = await ctrbake(['squashfs', tar, '-o', out], { env: { SOURCE_DATE_EPOCH: '1234567' } });
    expect(run.stderr).not.toMatch(/error/);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`${out}: `);
    const tree = await treeFromDir(await mounts.mountSquashfs(out));
    expect(diffTrees(tree, expectedTree(ENTRIES, { sourceDateEpoch: 1234567 }))).toEqual([]);
  });

  it.each(['builtin', 'tar2sqfs', 'sqfstar'])('reads stdin with "-" and prints one JSON result (%s)', async (backend) => {
    const out = join(dir, `stdin-${backend}.sqfs`);
    const run = await ctrbake(['squashfs', '-', '-o', out, '--backend', backend, '--compression', 'zstd', '--block-size', '64K', '--json'], { stdinFile: tar });
    expect(run.code).toBe(0);
    const lines = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const result = lines.at(-1)!;
    expect(result).toMatchObject({ type: 'result', path: out, backend, compression: 'zstd', blockSize: 65536 });
    expect(result.sha256).toBe(await sha256File(out));
    expect(result.bytes).toBe((await stat(out)).size);
    // No progress bar in --json mode on a pipe: only events/progress objects, all JSON.
    expect(run.stderr).toBe('');
  });

  it.each(['builtin', 'tar2sqfs', 'sqfstar'])('--json progress: tar bytes read of the total, image bytes written, a last event at the end (%s)', async (backend) => {
    const out = join(dir, `progress-${backend}.sqfs`);
    const run = await ctrbake(['squashfs', tar, '-o', out, '--backend', backend, '--json']);
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const progress = lines.filter((l) => l.type === 'progress' && l.event === 'squashfs.progress');
    const tarBytes = (await stat(tar)).size;
    const imageBytes = (await stat(out)).size;
    expect(progress.length).toBeGreaterThan(0);
    for (const p of progress) {
      expect(p.total).toBe(tarBytes);
      expect(p.current as number).toBeLessThanOrEqual(tarBytes);
      expect(p.written as number).toBeLessThanOrEqual(imageBytes);
      expect(p.message).toMatch(/read, [\d.]+ MiB written$/);
    }
    // The last one, before the result: everything read and the whole image written.
    expect(progress.at(-1)).toMatchObject({ current: tarBytes, written: imageBytes });
    expect(lines.indexOf(progress.at(-1)!)).toBeLessThan(lines.findIndex((l) => l.type === 'result'));
  });

  it('--gzip-impl canonical: another image of the same tree, the same bytes twice; node is the default', async () => {
    const paths = { default: join(dir, 'gz-default.sqfs'), node: join(dir, 'gz-node.sqfs'), canonical: join(dir, 'gz-canonical.sqfs'), again: join(dir, 'gz-canonical2.sqfs') };
    for (const [name, flags] of [['default', []], ['node', ['--gzip-impl', 'node']], ['canonical', ['--gzip-impl', 'canonical']], ['again', ['--gzip-impl', 'canonical']]] as const) {
      const run = await ctrbake(['squashfs', tar, '-o', paths[name], ...flags], { env: { SOURCE_DATE_EPOCH: '1234567' } });
      expect(run.code, run.stderr).toBe(0);
    }
    expect(await sha256File(paths.node)).toBe(await sha256File(paths.default));
    expect(await sha256File(paths.again)).toBe(await sha256File(paths.canonical));
    expect(await sha256File(paths.canonical)).not.toBe(await sha256File(paths.default));
    const tree = await treeFromDir(await mounts.mountSquashfs(paths.canonical));
    expect(diffTrees(tree, expectedTree(ENTRIES, { sourceDateEpoch: 1234567 }))).toEqual([]);
  });

  it('bad input: exit 1, the error code in JSON, no output left', async () => {
    const bad = join(dir, 'dup.tar');
    await writeTarFile(bad, [{ type: 'file', path: 'a' }, { type: 'file', path: './a' }]);
    const run = await ctrbake(['squashfs', bad, '-o', join(dir, 'bad.sqfs'), '--json']);
    expect(run.code).toBe(1);
    expect(JSON.parse(run.stdout.trim().split('\n').at(-1)!)).toMatchObject({ type: 'error', code: 'E_TAR_DUPLICATE' });
    expect((await readdir(dir)).filter((n) => n.startsWith('bad') || n.startsWith('.bad'))).toEqual([]);
  });

  it.each([
    [['--compression', 'xz'], 'E_SQUASHFS_OPTIONS'],
    [['--block-size', '100000'], 'E_SQUASHFS_OPTIONS'],
    [['--block-size', 'big'], 'E_SQUASHFS_OPTIONS'],
    [['--level', '42'], 'E_SQUASHFS_OPTIONS'],
    [['--gzip-impl', 'canonical', '--backend', 'tar2sqfs'], 'E_SQUASHFS_OPTIONS'],
    [['--gzip-impl', 'canonical', '--compression', 'zstd'], 'E_SQUASHFS_OPTIONS'],
  ])('usage errors exit 2: %j', async (flags, code) => {
    const run = await ctrbake(['squashfs', tar, '-o', join(dir, 'usage.sqfs'), ...flags, '--json']);
    expect(run.code).toBe(2);
    expect(JSON.parse(run.stdout.trim().split('\n').at(-1)!)).toMatchObject({ type: 'error', code });
  });

  it.each([
    ['tar2sqfs', 'squashfs-tools-ng'],
    ['sqfstar', 'squashfs-tools'],
  ])('a missing %s names the Debian package %s', async (backend, pkg) => {
    const run = await ctrbake(['squashfs', tar, '-o', join(dir, 'missing.sqfs'), '--backend', backend], { env: { PATH: '/nonexistent' } });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('E_SQUASHFS_TOOL_MISSING');
    expect(run.stderr).toContain(`apt-get install ${pkg}`);
  });

  it('draws progress on a TTY and not on a pipe', async () => {
    const out = join(dir, 'tty.sqfs');
    // script(1) gives the command a pseudo-terminal (0 columns unless told).
    const cmd = `stty cols 120; ${process.execPath} ${BIN} squashfs ${tar} -o ${out} --workers 1`;
    const tty = await new Promise<Run>((res, rej) => {
      const child = spawn('script', ['-qec', cmd, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.on('error', rej);
      child.on('close', (code) => res({ code, stdout, stderr: '' }));
    });
    expect(tty.code).toBe(0);
    expect(tty.stdout).toMatch(/\r\x1b\[Ksquashfs \(builtin\): [\d.]+ MiB of [\d.]+ MiB read, [\d.]+ MiB written/);
    const piped = await ctrbake(['squashfs', tar, '-o', join(dir, 'pipe.sqfs')]);
    expect(piped.code).toBe(0);
    expect(piped.stderr).not.toContain('\r');
  });
});
