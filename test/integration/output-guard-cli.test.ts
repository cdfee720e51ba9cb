/**
 * Every command with an output replaces only what it wrote (issue #12, rule 1): loader -o,
 * build -o / --bake-dir / --partition-image, squashfs -o, lock -o, report -o. Run as a user
 * does (the CLI on the built dist/); each refusal comes before any work (no registry is
 * reachable here: a command that went on would fail differently) and leaves the path as it was.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeArchiveBake, type FakeBake } from '../unit/loader/fake-bake.js';
import { assertBuilt, execa, BIN, parseLines, snapshot } from './bake-cli.helpers.js';

let work: string;
let bake: FakeBake;
let tar: string;
beforeAll(async () => {
  await assertBuilt(['src/util/output.ts', 'src/loader/generate.ts', 'src/standalone/build.ts', 'src/squashfs/index.ts', 'src/lock/resolve.ts', 'src/cli/report.ts']);
  work = await mkdtemp(join(tmpdir(), 'ctrbake-guard-'));
  bake = await fakeArchiveBake();
  tar = join(work, 'in.tar');
  await execa('tar', ['-cf', tar, '-C', bake.dir, 'archives']);
  await writeFile(join(work, 'images.txt'), '127.0.0.1:9/ctrbake/none:1.0\n');
  await writeFile(join(work, 'notes.txt'), 'my notes\n');
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
  await rm(bake?.dir ?? '/nonexistent', { recursive: true, force: true });
});

async function cli(args: string[]) {
  const r = await execa('node', [BIN, '--json', ...args], { reject: false, cwd: work });
  return { ...r, last: parseLines(r.stdout).at(-1) };
}

describe('refused before any work, the path left as it was', () => {
  const cases: Array<[string, () => string[], string, string, string]> = [
    ['loader -o the bake dir', () => ['loader', '--manifest', bake.manifestPath, '--layout', 'archive', '--init', 'systemd', '-o', bake.dir], 'E_OUTPUT_IS_INPUT', 'contains the manifest', 'bake'],
    ['loader -o a regular file', () => ['loader', '--manifest', bake.manifestPath, '--layout', 'archive', '--init', 'systemd', '-o', join(work, 'notes.txt')], 'E_OUTPUT_NOT_OURS', 'is a regular file', 'notes'],
    ['squashfs -o its input tar', () => ['squashfs', tar, '-o', tar], 'E_OUTPUT_IS_INPUT', 'is the input tar', 'tar'],
    ['squashfs -o a text file', () => ['squashfs', tar, '-o', join(work, 'notes.txt')], 'E_OUTPUT_NOT_OURS', 'holds other content', 'notes'],
    ['lock -o its images file', () => ['lock', '--platform', 'linux/amd64', '--images', 'images.txt', '-o', 'images.txt'], 'E_OUTPUT_IS_INPUT', 'is the images file', 'images'],
    ['lock -o a file that is no lock', () => ['lock', '--platform', 'linux/amd64', '--images', 'images.txt', '-o', 'notes.txt'], 'E_OUTPUT_NOT_OURS', 'not a previous output of ctrbake lock', 'notes'],
    ['build -o its images file', () => ['build', '--platform', 'linux/amd64', '--images', 'images.txt', '--cache', 'cache', '-o', 'images.txt'], 'E_OUTPUT_IS_INPUT', 'is the images file', 'images'],
    ['build -o . (holds the cache)', () => ['build', '--platform', 'linux/amd64', '--images', join(work, 'images.txt'), '--cache', join(work, 'cache'), '-o', '.'], 'E_OUTPUT_IS_INPUT', 'contains the images file', 'images'],
    ['build --bake-dir inside -o', () => ['build', '--platform', 'linux/amd64', '--images', 'images.txt', '--cache', 'cache', '-o', 'overlay', '--bake-dir', 'overlay/bake'], 'E_OUTPUT_IS_INPUT', 'contains the bake dir (--bake-dir)', 'images'],
    ['build --partition-image a text file', () => ['build', '--platform', 'linux/amd64', '--images', 'images.txt', '--cache', 'cache', '-o', 'overlay', '--partition-image', 'notes.txt', '--partition-device', '/dev/vdb'], 'E_OUTPUT_NOT_OURS', 'not a previous output of ctrbake build (a SquashFS image)', 'notes'],
    ['report -o the manifest it reads', () => ['report', '--manifest', bake.manifestPath, '-o', bake.manifestPath], 'E_OUTPUT_IS_INPUT', 'is the manifest', 'bake'],
  ];
  it.each(cases)('%s: %s', async (_what, args, code, says, kept) => {
    const watched = kept === 'bake' ? bake.dir : kept === 'tar' ? tar : join(work, kept === 'notes' ? 'notes.txt' : 'images.txt');
    const before = kept === 'bake' ? await snapshot(watched) : await readFile(watched, 'hex');
    const r = await cli(args());
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.last).toMatchObject({ type: 'error', code, message: expect.stringContaining(says) });
    expect(kept === 'bake' ? await snapshot(watched) : await readFile(watched, 'hex')).toEqual(before);
  });
});

describe('a previous output of the same command is replaced', () => {
  it('loader -o its previous overlay: exit 0; the same -o holding a user file: refused', async () => {
    const overlay = join(work, 'overlay-ok');
    const args = ['loader', '--manifest', bake.manifestPath, '--layout', 'archive', '--init', 'systemd', '-o', overlay];
    expect((await cli(args)).exitCode).toBe(0);
    const again = await cli(args);
    expect(again.exitCode, again.stderr).toBe(0);
    await rm(join(overlay, 'usr', 'sbin', 'ctrbake-device'));
    const foreign = await cli(args);
    expect(foreign.last).toMatchObject({ type: 'error', code: 'E_OUTPUT_NOT_OURS' });
  });

  it('squashfs -o a previous image, or an empty file: exit 0', async () => {
    const out = join(work, 'x.sqfs');
    await writeFile(out, '');
    expect((await cli(['squashfs', tar, '-o', out])).exitCode).toBe(0);
    expect((await readFile(out)).subarray(0, 4).toString()).toBe('hsqs');
    expect((await cli(['squashfs', tar, '-o', out])).exitCode).toBe(0);
  });

  it('report -o a previous report: let through by the guard (this fake bake then needs --cache)', async () => {
    const out = join(work, 'report.txt');
    await writeFile(out, 'ctrbake report: an older report\n');
    const r = await cli(['report', '--manifest', bake.manifestPath, '-o', out]);
    expect(r.last).toMatchObject({ type: 'error', code: 'E_REPORT_OPTIONS' });
  });
});
