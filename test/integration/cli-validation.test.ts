/**
 * Every option combination is checked before any work (issue 12, rule 4): the real CLI, with
 * inputs that would make any later step fail with another code, so a check that ran late (after
 * reading the lock, starting an engine or resolving tags) shows as the wrong code. Nothing is
 * written: the output path stays absent.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeStoreBake, type FakeBake } from '../unit/loader/fake-bake.js';

const BIN = resolve(import.meta.dirname, '../../bin/ctrbake.js');
// Made at load time: the case tables below name paths inside it.
const dir = mkdtempSync(join(tmpdir(), 'ctrbake-cli-validation-'));
let split: FakeBake;
beforeAll(async () => {
  split = await fakeStoreBake('docker', 'overlay2');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await rm(split.dir, { recursive: true, force: true });
});

interface Run {
  exitCode: number;
  stdout: string;
  stderr: string;
}

async function ctrbake(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const r = await execa(process.execPath, [BIN, ...args], { reject: false, env, timeout: 60_000 });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** The last --json line: the error object. */
function jsonError(run: Run): { type: string; code: string; message: string } {
  return JSON.parse(run.stdout.trim().split('\n').at(-1)!);
}

describe('unknown and misspelled flags', () => {
  it.each([
    [['bake', '--cahce', 'c'], '--cahce', '--cache'],
    [['bake', '--lock', 'l', '--cache', 'c', '--mode', 'store', '-o', 'o', '--squashfs', '--squashfs-backnd', 'tar2sqfs'], '--squashfs-backnd', '--squashfs-backend'],
    [['lock', '--platfrom', 'linux/amd64', 'x'], '--platfrom', '--platform'],
    [['fetch', '--lock', 'l', '--cache', 'c', '--verfy-cache'], '--verfy-cache', '--verify-cache'],
    [['squashfs', 'in.tar', '--outptu', 'x.sqfs'], '--outptu', '--output'],
    [['loader', '--manifest', 'm', '--layuot', 'split'], '--layuot', '--layout'],
    [['report', '--manifets', 'm'], '--manifets', '--manifest'],
    [['diff', 'a', 'b', '--fromat', 'json'], '--fromat', '--format'],
    [['build', '--cache', 'c', '--compresion', 'xz'], '--compresion', '--compression'],
    [['verify-store', '--ouput', 'o'], '--ouput', '--output'],
  ])('%j: exit 2, E_UNKNOWN_ARGUMENT naming %s and suggesting %s, not a missing argument', async (args, typed, suggested) => {
    const run = await ctrbake(args);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain(`ctrbake: error E_UNKNOWN_ARGUMENT: Unknown argument: ${typed} (did you mean ${suggested}?)`);
    expect(run.stderr).not.toContain('Missing required');
  });

  it('--json: the unknown flag ends stdout as an error object, once', async () => {
    const run = await ctrbake(['bake', '--cahce', 'c', '--json']);
    expect(run.exitCode).toBe(2);
    expect(jsonError(run)).toMatchObject({ type: 'error', code: 'E_UNKNOWN_ARGUMENT', message: 'Unknown argument: --cahce (did you mean --cache?)' });
    expect(run.stderr).toBe('');
  });

  it('a flag far from every known one gets no suggestion', async () => {
    const run = await ctrbake(['bake', '--zzzzzz']);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain('Unknown argument: --zzzzzz\n');
  });

  it('other usage errors keep their yargs text, with a code', async () => {
    const run = await ctrbake(['fetch', '--cache', join(dir, 'never')]);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain('ctrbake: error E_USAGE: Missing required argument: lock');
    expect(existsSync(join(dir, 'never'))).toBe(false);
  });
});

describe('option combinations refused before any work', () => {
  const noLock = () => join(dir, 'no-such.lock.json');
  const out = () => join(dir, 'never-out');
  const bake = (...extra: string[]) => ['bake', '--lock', noLock(), '--cache', join(dir, 'cache'), '-o', out(), '--json', ...extra];

  it.each([
    [bake('--mode', 'store', '--squashfs', '--compression', 'xz'), 'E_CONFIG', /builtin backend does not compress with xz.*--squashfs-backend tar2sqfs/],
    [bake('--mode', 'store', '--squashfs', '--block-size', '1000'), 'E_CONFIG', /--block-size 1000 is not a power of two/],
    [bake('--mode', 'store', '--squashfs', '--squashfs-backend', 'sqfstar', '--compression', 'xz', '--gzip-impl', 'canonical'), 'E_CONFIG', /--gzip-impl applies to the builtin backend/],
    [bake('--mode', 'store', '--archive-format', 'oci-archive'), 'E_CONFIG', /--archive-format applies to --mode archive/],
    [bake('--mode', 'archive', '--layout', 'split'), 'E_CONFIG', /add --budget SIZE or --partition-size SIZE/],
    [bake('--mode', 'archive', '--budget', '1G', '--fs-block-size', '1000'), 'E_REPORT_OPTIONS', /--fs-block-size 1000 must be a power of two/],
    [['build', '--platform', 'linux/amd64', 'registry.invalid/x:1', '--cache', join(dir, 'cache'), '-o', out(), '--compression', 'xz', '--json'], 'E_SQUASHFS_OPTIONS', /--squashfs-backend tar2sqfs/],
    [['build', '--platform', 'linux/amd64', 'registry.invalid/x:1', '--cache', join(dir, 'cache'), '-o', out(), '--offline', '--relock', '--json'], 'E_STANDALONE_CONFIG', /--relock .* --offline/],
    [['build', '--platform', 'linux/amd64', 'registry.invalid/x:1', '--cache', join(dir, 'cache'), '-o', out(), '--data-root', 'var/lib/docker', '--json'], 'E_STANDALONE_CONFIG', /--data-root "var\/lib\/docker" must be an absolute device path/],
    [['lock', '--platform', 'linux/amd64', '--retries', '-3', '-o', join(dir, 'l.json'), '127.0.0.1:1/a:1', '--json'], 'E_BAD_RETRIES', /--retries must be a whole number/],
    [['fetch', '--lock', noLock(), '--cache', join(dir, 'cache'), '--retries', '-3', '--json'], 'E_BAD_RETRIES', /--retries must be a whole number/],
    [['report', '--lock', noLock(), '--write-layers', '--json'], 'E_REPORT_OPTIONS', /--write-layers .* needs --manifest/],
    [['report', '--lock', noLock(), '-o', join(dir, 'missing-dir', 'r.txt'), '--json'], 'E_REPORT_OPTIONS', /missing-dir does not exist; create it first/],
    [['diff', noLock(), noLock(), '--fs-block-size', '0', '--json'], 'E_REPORT_OPTIONS', /--fs-block-size 0 must be a power of two/],
  ])('%j: exit 2, %s', async (args, code, message) => {
    const run = await ctrbake(args);
    expect(run.exitCode, run.stdout + run.stderr).toBe(2);
    expect(jsonError(run)).toMatchObject({ type: 'error', code, message: expect.stringMatching(message) });
    expect(existsSync(out())).toBe(false);
  });

  it('lock: a missing -o directory is found before any registry is asked', async () => {
    const run = await ctrbake(['lock', '--platform', 'linux/amd64', '--retries', '0', '-o', join(dir, 'missing-dir', 'l.json'), '127.0.0.1:1/a:1', '--json']);
    expect(run.exitCode).toBe(1);
    expect(jsonError(run)).toMatchObject({ code: 'E_LOCK_WRITE', message: expect.stringMatching(/missing-dir does not exist; create it first/) });
    expect(run.stdout).not.toContain('"lock.start"');
  });

  it('loader: a store layout that must pack store.tar refuses the builtin backend with xz, before writing', async () => {
    const run = await ctrbake(['loader', '--manifest', split.manifestPath, '--layout', 'split', '--init', 'systemd', '-o', out(), '--compression', 'xz', '--json']);
    expect(run.exitCode).toBe(2);
    expect(jsonError(run)).toMatchObject({ code: 'E_SQUASHFS_OPTIONS', message: expect.stringMatching(/--squashfs-backend tar2sqfs/) });
    expect(existsSync(out())).toBe(false);
  });

  it.each([
    ['bake --squashfs', () => bake('--mode', 'store', '--squashfs', '--squashfs-backend', 'tar2sqfs'), 'tar2sqfs'],
    ['loader --layout split', () => ['loader', '--manifest', split.manifestPath, '--layout', 'split', '--init', 'systemd', '-o', out(), '--squashfs-backend', 'sqfstar', '--json'], 'sqfstar'],
  ])('%s without the tool on PATH: E_SQUASHFS_TOOL_MISSING before any work, naming --squashfs-backend', async (_name, args, tool) => {
    const run = await ctrbake(args(), { PATH: '/nonexistent' });
    expect(run.exitCode).toBe(1);
    expect(jsonError(run)).toMatchObject({ code: 'E_SQUASHFS_TOOL_MISSING', message: expect.stringContaining(`${tool} was not found on PATH`) });
    expect(jsonError(run).message).toContain('or use --squashfs-backend builtin');
    expect(existsSync(out())).toBe(false);
  });
});
