import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EnginePullError } from '../../../src/engine/engine.js';
import { podmanEngine } from '../../../src/engine/podman-engine.js';
import type { PodmanExecResult } from '../../../src/engine/podman.js';

const HEX = 'a'.repeat(64);
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ctrbake-podman-engine-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A podman that answers from a script and records each command (its args and the authfile it was given). */
function scripted(answer: (args: readonly string[]) => PodmanExecResult) {
  const calls: string[][] = [];
  const engine = podmanEngine({
    version: '4.3.1',
    storageDriver: 'vfs',
    root: join(dir, 'root'),
    privateDir: dir,
    exec: async (args, options) => {
      calls.push([...args]);
      const r = answer(args);
      if (r.exitCode !== 0 && options?.reject !== false) throw new Error(`podman ${args.join(' ')} failed`);
      return r;
    },
    stop: async () => undefined,
  });
  return { engine, calls };
}

const ok = (stdout = ''): PodmanExecResult => ({ stdout, stderr: '', exitCode: 0 });

describe('podmanEngine', () => {
  it.each([
    ['Error: nope: image not known', undefined],
    ['Error: no such image', undefined],
  ])('inspect gives undefined for a missing image (%s)', async (stderr, expected) => {
    const { engine } = scripted(() => ({ stdout: '', stderr, exitCode: 125 }));
    expect(await engine.inspect('x')).toBe(expected);
  });

  it('inspect of another failure is E_ENGINE_COMMAND with podman\'s message', async () => {
    const { engine } = scripted(() => ({ stdout: '', stderr: 'database is locked', exitCode: 125 }));
    await expect(engine.inspect('x')).rejects.toMatchObject({ code: 'E_ENGINE_COMMAND', message: expect.stringContaining('database is locked') });
  });

  it('inspect gives the id with its sha256: prefix, the platform and the diff_ids', async () => {
    const { engine } = scripted(() => ok(JSON.stringify([{ Id: HEX, Os: 'linux', Architecture: 'arm64', Variant: 'v8', RootFS: { Layers: ['sha256:1'] } }])));
    expect(await engine.inspect('x')).toEqual({ id: `sha256:${HEX}`, os: 'linux', architecture: 'arm64', variant: 'v8', diffIds: ['sha256:1'] });
  });

  it('pull without an authfile gives podman an empty one (never the host user\'s credentials); insecure skips TLS checks', async () => {
    const { engine, calls } = scripted(() => ok());
    await engine.pull('r:5000/a@sha256:1', { insecure: true });
    const args = calls[0]!;
    expect(args.slice(0, 2)).toEqual(['pull', '--quiet']);
    expect(args).toContain('--tls-verify=false');
    const authfile = args[args.indexOf('--authfile') + 1]!;
    expect(authfile.startsWith(dir)).toBe(true);
    expect(JSON.parse(await readFile(authfile, 'utf8'))).toEqual({ auths: {} });
  });

  it('a failed pull is an EnginePullError carrying podman\'s own text for classification', async () => {
    const { engine } = scripted(() => ({ stdout: '', stderr: 'connection refused', exitCode: 125 }));
    const error = await engine.pull('r/a@sha256:1', { authfile: '/given.json' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EnginePullError);
    expect(error).toMatchObject({ code: 'E_ENGINE_COMMAND', detail: 'connection refused' });
  });

  it('pullRecords lists the image dir\'s files as manifest candidates and keeps no layer records', async () => {
    const imageDir = join(dir, 'root', 'vfs-images', HEX);
    await mkdir(join(imageDir, 'subdir'), { recursive: true });
    await writeFile(join(imageDir, 'manifest-sha256=abc'), '{}');
    const { engine } = scripted(() => ok());
    expect(await engine.pullRecords(`sha256:${HEX}`, [])).toEqual({ manifestCandidates: [join(imageDir, 'manifest-sha256=abc')] });
    expect(await engine.pullRecords(`sha256:${'b'.repeat(64)}`, [])).toEqual({ manifestCandidates: [] });
  });

  it('run gives the exit code and what the container printed, its final newline kept', async () => {
    const { engine, calls } = scripted(() => ok('hello'));
    expect(await engine.run('img')).toEqual({ exitCode: 0, stdout: 'hello\n', stderr: '' });
    expect(calls[0]).toEqual(expect.arrayContaining(['run', '--rm', '--network', 'none', 'img']));
  });
});
