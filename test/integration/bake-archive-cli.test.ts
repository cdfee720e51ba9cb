/**
 * `ctrbake bake` as a user runs it (node bin/ctrbake.js, the built dist/): --json events and
 * result, exit codes, and SIGTERM in the middle of a bake leaving nothing behind.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mountsUnder } from '../../src/engine/mounts.js';
import { processesMentioning } from '../../src/engine/processes.js';
import { prepareBakeInputs, stagingDirsIn, type BakeInputs } from './bake-archive.helpers.js';
import { assertBuilt, BIN, onJsonLines, parseLines } from './bake-cli.helpers.js';

describe('ctrbake bake (CLI)', () => {
  let inputs: BakeInputs;
  beforeAll(async () => {
    await assertBuilt(['src/cli/bake.ts', 'src/bake/archive.ts', 'src/engine/dockerd.ts']);
    inputs = await prepareBakeInputs();
  }, 300_000);
  afterAll(async () => {
    await inputs?.close();
  });

  it('--json prints NDJSON events and one result with the manifest; exit 0', async () => {
    const out = join(inputs.work, 'out');
    const r = await execa('node', [BIN, 'bake', '--json', '--lock', inputs.lockAmd64, '--cache', inputs.cacheDir, '--mode', 'archive', '--engine', 'docker', '-o', out, '--offline'], {
      reject: false,
      env: { SOURCE_DATE_EPOCH: '1600000000' },
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const lines = parseLines(r.stdout);
    const events = lines.filter((l) => l.type === 'event').map((l) => l.event);
    expect(events).toEqual(['bake.start', 'engine.started', 'image.loaded', 'image.saved', 'image.loaded', 'image.saved', 'engine.stopped', 'bake.done']);
    const result = lines.at(-1)!;
    expect(result).toMatchObject({ type: 'result', outDir: out, manifest: { mode: 'archive', sourceDateEpoch: 1600000000 } });
    await stat(join(out, 'manifest.json'));
  });

  it.each(['docker', 'podman'])('%s: SIGTERM after the engine started: exit 143, no engine process left, no mount, no private or staging dir, no OUT', async (engine) => {
    const out = join(inputs.work, `killed-${engine}`);
    const child = execa('node', [BIN, 'bake', '--json', '--lock', inputs.lockAmd64, '--cache', inputs.cacheDir, '--mode', 'archive', '--engine', engine, '-o', out], {
      reject: false,
      buffer: { stdout: true },
    });
    let privateDir: string | undefined;
    onJsonLines(child.stdout!, (obj) => {
      if (obj.event === 'engine.started' && !privateDir) {
        privateDir = String(obj.privateDir);
        child.kill('SIGTERM');
      }
    });
    const r = await child;
    expect(privateDir, `no engine.started event; stdout:\n${r.stdout}\nstderr:\n${r.stderr}`).toBeDefined();
    expect(r.exitCode, r.stderr).toBe(143);
    expect(r.stderr).toContain('SIGTERM received, cleaning up');
    expect(await processesMentioning(privateDir!)).toEqual([]);
    expect(await mountsUnder([privateDir!])).toEqual([]);
    await expect(stat(privateDir!)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await stagingDirsIn(inputs.work)).toEqual([]);
  });

  it.each(['docker', 'podman'])('%s as root without CAP_SYS_ADMIN: E_PRIVILEGES saying what is needed; nothing left', async (engine) => {
    const out = join(inputs.work, `unprivileged-${engine}`);
    const r = await execa(
      'setpriv',
      ['--inh-caps=-sys_admin', '--bounding-set=-sys_admin', '--', 'node', BIN, 'bake', '--json', '--lock', inputs.lockAmd64, '--cache', inputs.cacheDir, '--mode', 'archive', '--engine', engine, '-o', out],
      { reject: false },
    );
    expect(r.exitCode, r.stderr).toBe(1);
    expect(parseLines(r.stdout).at(-1)).toMatchObject({
      type: 'error',
      code: 'E_PRIVILEGES',
      message: expect.stringContaining('run as root, or in a privileged build container (e.g. cqfd with --privileged)'),
    });
    await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await stagingDirsIn(inputs.work)).toEqual([]);
  });

  it.each([
    [['--mode', 'archive', '--engine', 'docker', '--storage-driver', 'overlay'], 2, 'E_CONFIG'],
    [['--mode', 'archive', '--engine', 'podman', '--cache', '/nonexistent-cache'], 1, 'E_CACHE_MISS'],
    [['--mode', 'archive', '--engine', 'docker', '--cache', '/nonexistent-cache', '--offline'], 1, 'E_CACHE_MISS'],
  ])('%j => exit %i with %s', async (args, exitCode, code) => {
    const out = join(inputs.work, `bad-${code}-${args.length}`);
    const base = ['bake', '--json', '--lock', inputs.lockAmd64, '-o', out];
    const r = await execa('node', [BIN, ...base, ...(args.includes('--cache') ? [] : ['--cache', inputs.cacheDir]), ...args], { reject: false });
    expect(r.exitCode, r.stderr).toBe(exitCode);
    expect(parseLines(r.stdout).at(-1)).toMatchObject({ type: 'error', code });
    await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
