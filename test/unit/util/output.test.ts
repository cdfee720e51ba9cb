import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isBakeOutput } from '../../../src/bake/bake-output.js';
import { isLoaderOutput } from '../../../src/loader/loader-output.js';
import { isLockFile } from '../../../src/lock/lock-output.js';
import { isReportFile } from '../../../src/report/report-output.js';
import { checkOutput, realpathLoose, startsWith, type OutputSpec } from '../../../src/util/output.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'ctrbake-output-'));
});
afterEach(() => rm(root, { recursive: true, force: true }));

const MANIFEST = JSON.stringify({ manifestVersion: 1, ctrbakeVersion: '0.1.0', mode: 'archive', outputs: [{ path: 'archives/a.tar', sha256: 'x', size: 1 }] });

function dirSpec(path: string): OutputSpec {
  return { path, flag: '-o', command: 'bake', kind: 'directory', signature: 'manifest.json written by ctrbake bake', isOurs: isBakeOutput };
}
function fileSpec(path: string): OutputSpec {
  return { path, flag: '-o', command: 'squashfs', kind: 'file', signature: 'a SquashFS image', isOurs: startsWith(Buffer.from('hsqs')) };
}

describe('checkOutput: what may be replaced', () => {
  it.each([
    ['absent', async (p: string) => p],
    ['an empty dir', async (p: string) => (await mkdir(p), p)],
    ['a previous bake output', async (p: string) => {
      await mkdir(join(p, 'archives'), { recursive: true });
      await writeFile(join(p, 'manifest.json'), MANIFEST);
      await writeFile(join(p, 'archives', 'a.tar'), 'x');
      return p;
    }],
    ['a symlink to a previous bake output (the target is written, the link stays)', async (p: string) => {
      const target = join(root, 'real');
      await mkdir(target);
      await writeFile(join(target, 'manifest.json'), MANIFEST);
      await symlink(target, p);
      return p;
    }],
  ])('directory output %s: accepted', async (_what, prepare) => {
    const out = await prepare(join(root, 'OUT'));
    const checked = await checkOutput(dirSpec(out), [{ path: join(root, 'lock.json'), what: 'lock file' }]);
    expect(checked.path).toBe(await realpathLoose(out));
  });

  it.each([
    ['a regular file', 'E_OUTPUT_NOT_OURS', /is a regular file and a directory is written there/, async (p: string) => writeFile(p, 'notes')],
    ['a dir with other files', 'E_OUTPUT_NOT_OURS', /holds other files/, async (p: string) => (await mkdir(p), writeFile(join(p, 'thesis.tex'), 'x'))],
    ['a bake output with a user file added', 'E_OUTPUT_NOT_OURS', /holds other files/, async (p: string) => {
      await mkdir(p);
      await writeFile(join(p, 'manifest.json'), MANIFEST);
      await writeFile(join(p, 'notes.txt'), 'mine');
    }],
    ['a bake output with an archive the manifest does not list', 'E_OUTPUT_NOT_OURS', /holds other files/, async (p: string) => {
      await mkdir(join(p, 'archives'), { recursive: true });
      await writeFile(join(p, 'manifest.json'), MANIFEST);
      await writeFile(join(p, 'archives', 'mine.tar'), 'x');
    }],
    ['a manifest.json that is not ctrbake\'s', 'E_OUTPUT_NOT_OURS', /holds other files/, async (p: string) => (await mkdir(p), writeFile(join(p, 'manifest.json'), '{"name":"npm"}'))],
    ['a dangling symlink', 'E_OUTPUT_NOT_OURS', /symbolic link to a missing path/, async (p: string) => symlink(join(root, 'gone'), p)],
  ])('directory output that is %s: %s, nothing touched', async (_what, code, message, prepare) => {
    const out = join(root, 'OUT');
    await prepare(out);
    const before = await readdir(root, { recursive: true });
    await expect(checkOutput(dirSpec(out), [])).rejects.toMatchObject({ code, exitCode: 2, message: expect.stringMatching(message) });
    expect(await readdir(root, { recursive: true })).toEqual(before);
  });

  it.each([
    ['the lock file itself', (r: string) => join(r, 'lock.json'), 'is the lock file'],
    ['the dir of the lock (-o .)', (r: string) => r, 'contains the lock file'],
    ['the same dir spelled with .., a trailing slash', (r: string) => `${join(r, 'sub', '..')}/`, 'contains the lock file'],
    ['a parent of the cache', (r: string) => join(r, 'work'), 'contains the cache'],
    ['a symlink to the cache\'s parent', (r: string) => join(r, 'link'), 'contains the cache'],
  ])('-o %s: E_OUTPUT_IS_INPUT naming the input', async (_what, outOf, says) => {
    await mkdir(join(root, 'sub'));
    await mkdir(join(root, 'work', 'cache'), { recursive: true });
    await symlink(join(root, 'work'), join(root, 'link'));
    await writeFile(join(root, 'lock.json'), '{}');
    const inputs = [
      { path: join(root, 'lock.json'), what: 'lock file' },
      { path: join(root, 'work', 'cache'), what: 'cache' },
    ];
    await expect(checkOutput(dirSpec(outOf(root)), inputs)).rejects.toMatchObject({ code: 'E_OUTPUT_IS_INPUT', exitCode: 2, message: expect.stringContaining(says) });
  });

  it('an input that does not exist yet is still compared (a cache fetch will create)', async () => {
    await expect(checkOutput(dirSpec(root), [{ path: join(root, 'new-cache'), what: 'cache' }])).rejects.toMatchObject({ code: 'E_OUTPUT_IS_INPUT' });
  });

  it.each([
    ['absent', async () => undefined, true],
    ['empty', async (p: string) => writeFile(p, ''), true],
    ['a SquashFS image', async (p: string) => writeFile(p, Buffer.concat([Buffer.from('hsqs'), Buffer.alloc(96)])), true],
    ['a text file', async (p: string) => writeFile(p, 'my notes'), false],
    ['a directory', async (p: string) => mkdir(p), false],
  ])('file output %s: accepted %s', async (_what, prepare, ok) => {
    const out = join(root, 'x.sqfs');
    await prepare(out);
    const run = checkOutput(fileSpec(out), []);
    if (ok) await expect(run).resolves.toMatchObject({ path: out });
    else await expect(run).rejects.toMatchObject({ code: 'E_OUTPUT_NOT_OURS' });
  });
});

describe('recognisers', () => {
  it('a loader output by its device script; a lock by its fields', async () => {
    const overlay = join(root, 'overlay');
    await mkdir(join(overlay, 'usr', 'sbin'), { recursive: true });
    expect(await isLoaderOutput(overlay)).toBe(false);
    const script = await readFile(join(import.meta.dirname, '../../../templates/loader/ctrbake-device.sh'));
    await writeFile(join(overlay, 'usr', 'sbin', 'ctrbake-device'), script);
    expect(await isLoaderOutput(overlay)).toBe(true);
    await writeFile(join(root, 'lock.json'), JSON.stringify({ lockVersion: 1, platform: { os: 'linux', architecture: 'amd64' }, images: [] }));
    expect(await isLockFile(join(root, 'lock.json'))).toBe(true);
    await writeFile(join(root, 'package.json'), JSON.stringify({ name: 'x' }));
    expect(await isLockFile(join(root, 'package.json'))).toBe(false);
  });

  it.each([
    ['text', 'ctrbake report: OUT/manifest.json (manifest, archive mode)\n', true],
    ['html', '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">\n<title>ctrbake report</title>', true],
    ['json', JSON.stringify({ source: { kind: 'manifest', path: 'x' }, totals: {} }), true],
    ['another JSON', JSON.stringify({ source: 'x' }), false],
    ['a README', '# ctrbake\n', false],
  ])('a report file (%s): %s', async (_what, content, expected) => {
    await writeFile(join(root, 'r'), content);
    expect(await isReportFile(join(root, 'r'))).toBe(expected);
  });
});
