/**
 * `ctrbake bake` never deletes what it did not write (issue #12, rule 1) and an interrupted
 * bake leaves the previous OUT exactly as it was (rule 2), as a user runs it: the CLI on the
 * built dist/, real engines, a cache filled from a local registry (then stopped).
 */
import { cp, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256File } from '../../src/util/fs.js';
import { prepareBakeInputs, type BakeInputs } from './bake-archive.helpers.js';
import { assertBuilt, bakeArgs, execa, BIN, parseLines, snapshot, stagingDirs, startCli } from './bake-cli.helpers.js';

let inputs: BakeInputs;
beforeAll(async () => {
  await assertBuilt(['src/cli/main.ts', 'src/cli/run.ts', 'src/bake/bake.ts', 'src/util/output.ts', 'src/util/staged-output.ts']);
  inputs = await prepareBakeInputs();
}, 300_000);
afterAll(async () => {
  await inputs?.close();
});

async function cli(args: string[], cwd?: string) {
  return execa('node', [BIN, ...args], { reject: false, ...(cwd ? { cwd } : {}), env: { SOURCE_DATE_EPOCH: '1600000000' } });
}

describe('bake -o: only what ctrbake wrote is replaced, checked before any work', () => {
  it('-o . in the lock\'s directory: E_OUTPUT_IS_INPUT, exit 2, the lock still there, no engine started', async () => {
    const dir = join(inputs.work, 'dot');
    await mkdir(dir);
    await cp(inputs.lockAmd64, join(dir, 'ctrbake.lock.json'));
    const before = await sha256File(join(dir, 'ctrbake.lock.json'));
    const r = await cli(bakeArgs('ctrbake.lock.json', inputs.cacheDir, '.', ['--mode', 'archive']), dir);
    expect(r.exitCode, r.stderr).toBe(2);
    const lines = parseLines(r.stdout);
    expect(lines.filter((l) => l.type === 'event')).toEqual([]);
    expect(lines.at(-1)).toMatchObject({ type: 'error', code: 'E_OUTPUT_IS_INPUT', message: expect.stringMatching(/^-o \S+\/dot contains the lock file \S+\/dot\/ctrbake.lock.json: .*choose another -o/) });
    expect(await sha256File(join(dir, 'ctrbake.lock.json'))).toBe(before);
  });

  it('-o a directory holding the cache: E_OUTPUT_IS_INPUT, the cache intact', async () => {
    const dir = join(inputs.work, 'holds-cache');
    await mkdir(dir);
    await cp(inputs.cacheDir, join(dir, 'cache'), { recursive: true });
    const before = await snapshot(join(dir, 'cache'));
    const r = await cli(bakeArgs(inputs.lockAmd64, join(dir, 'cache'), `${dir}/`, ['--mode', 'archive']));
    expect(r.exitCode, r.stderr).toBe(2);
    expect(parseLines(r.stdout).at(-1)).toMatchObject({ type: 'error', code: 'E_OUTPUT_IS_INPUT', message: expect.stringContaining('contains the cache') });
    expect(await snapshot(join(dir, 'cache'))).toEqual(before);
  });

  it.each([
    ['a regular file', async (p: string) => writeFile(p, 'my notes\n'), /is a regular file and a directory is written there/],
    ['a directory of other files', async (p: string) => (await mkdir(p), writeFile(join(p, 'thesis.tex'), 'mine')), /holds other files/],
  ])('-o %s: E_OUTPUT_NOT_OURS, exit 2, left exactly as it was', async (_what, prepare, message) => {
    const out = join(inputs.work, `foreign-${Math.random().toString(36).slice(2)}`);
    await prepare(out);
    const before = (await stat(out)).isDirectory() ? await snapshot(out) : await readFile(out, 'utf8');
    const r = await cli(bakeArgs(inputs.lockAmd64, inputs.cacheDir, out, ['--mode', 'archive']));
    expect(r.exitCode, r.stderr).toBe(2);
    const last = parseLines(r.stdout).at(-1);
    expect(last).toMatchObject({ type: 'error', code: 'E_OUTPUT_NOT_OURS' });
    expect(String(last!.message)).toMatch(message);
    expect(String(last!.message)).toContain('choose a new or empty directory for -o');
    expect((await stat(out)).isDirectory() ? await snapshot(out) : await readFile(out, 'utf8')).toEqual(before);
  });

  it('human output: the same code, in the format of every error', async () => {
    const out = join(inputs.work, 'human-notes');
    await writeFile(out, 'x');
    const r = await cli(['bake', '--lock', inputs.lockAmd64, '--cache', inputs.cacheDir, '--mode', 'archive', '-o', out]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/^ctrbake: error E_OUTPUT_NOT_OURS: -o .*human-notes is a regular file/m);
  });
});

describe('bake --squashfs interrupted while packing store.sqfs', () => {
  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)('%s: exit %i, E_INTERRUPTED as the final --json line, the previous OUT byte for byte, nothing left', async (signal, exitCode) => {
    const out = join(inputs.work, `sqfs-${signal}`);
    const first = await cli(bakeArgs(inputs.lockAmd64, inputs.cacheDir, out, ['--mode', 'store', '--squashfs']));
    expect(first.exitCode, first.stderr).toBe(0);
    const before = await snapshot(out);
    expect(Object.keys(before!)).toEqual(['manifest.json', 'store.sqfs', 'store.tar']);

    const run = startCli(bakeArgs(inputs.lockArm64, inputs.cacheDir, out, ['--mode', 'store', '--squashfs']));
    const seen = await new Promise<boolean>((resolve) => {
      const timer = setInterval(() => {
        if (run.lines.some((l) => l.event === 'bake.squashfs')) {
          clearInterval(timer);
          run.child.kill(signal);
          resolve(true);
        } else if (run.child.exitCode !== null) {
          clearInterval(timer);
          resolve(false);
        }
      }, 5);
    });
    const r = await run.child;
    expect(seen, `no bake.squashfs event before the end: ${r.stderr}`).toBe(true);
    expect(r.exitCode, r.stderr).toBe(exitCode);
    expect(run.lines.at(-1)).toMatchObject({ type: 'error', code: 'E_INTERRUPTED', message: expect.stringContaining(`interrupted by ${signal}`) });
    expect(await snapshot(out)).toEqual(before);
    expect(await stagingDirs(inputs.work)).toEqual([]);
  });

  it('SIGTERM in human mode: "ctrbake: error E_INTERRUPTED: ..." on stderr', async () => {
    const out = join(inputs.work, 'sqfs-human');
    const run = startCli(['bake', '--lock', inputs.lockAmd64, '--cache', inputs.cacheDir, '--mode', 'archive', '-o', out]);
    let stderr = '';
    run.child.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString();
      if (stderr.includes('started (private')) run.child.kill('SIGTERM');
    });
    const r = await run.child;
    expect(r.exitCode, r.stderr).toBe(143);
    expect(r.stderr).toMatch(/^ctrbake: error E_INTERRUPTED: interrupted by SIGTERM: .*run the command again$/m);
    await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
