import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';

const cli = resolve(import.meta.dirname, '../../bin/ctrbake.js');
let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('ctrbake CLI shell', () => {
  it('rejected arguments exit 2 and the command does not run', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ctrbake-cli-'));
    const cache = join(dir, 'cache');
    const r = await execa('node', [cli, 'fetch', '--cache', cache], { reject: false });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('Missing required argument: lock');
    expect(existsSync(cache)).toBe(false);
  });

  it.each([[['bogus']], [[]], [['lock', '--platform']]])('usage error %j exits 2', async (args) => {
    const r = await execa('node', [cli, ...args], { reject: false });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/^ctrbake: /);
  });

  it('--help lists every command of the contract', async () => {
    const r = await execa('node', [cli, '--help']);
    for (const c of ['lock', 'fetch', 'bake', 'squashfs', 'loader', 'report']) expect(r.stdout).toContain(`ctrbake ${c}`);
  });
});
