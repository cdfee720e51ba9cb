import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkPrivileges, PRIVILEGES_HINT, resolveBinary } from '../../../src/engine/prerequisites.js';
import { checkSocketPath } from '../../../src/engine/private-dir.js';

describe('resolveBinary', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ctrbake-prereq-'));
    await writeFile(join(dir, 'tool'), '#!/bin/sh\n');
    await chmod(join(dir, 'tool'), 0o755);
    await writeFile(join(dir, 'not-executable'), '');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('finds a name in PATH and keeps a path as given', async () => {
    expect(await resolveBinary('tool', 'pkg', `/nonexistent:${dir}`)).toBe(join(dir, 'tool'));
    expect(await resolveBinary(join(dir, 'tool'), 'pkg', '')).toBe(join(dir, 'tool'));
  });

  it.each([
    ['a name not in PATH', 'tool-missing', 'docker.io'],
    ['a missing path', '/nonexistent/dockerd', 'docker.io'],
    ['a file that is not executable', 'not-executable', 'podman'],
  ])('%s => E_ENGINE_MISSING naming the package', async (_what, binary, pkg) => {
    await expect(resolveBinary(binary, pkg, dir)).rejects.toMatchObject({
      code: 'E_ENGINE_MISSING',
      message: expect.stringContaining(`apt-get install ${pkg}`),
    });
  });
});

describe('checkPrivileges', () => {
  it('passes as root with CAP_SYS_ADMIN (the test machine runs as root)', async () => {
    expect(process.getuid?.(), 'these tests must run as root').toBe(0);
    await expect(checkPrivileges('x')).resolves.toBeUndefined();
  });

  it('names what is needed when it fails', () => {
    expect(PRIVILEGES_HINT).toBe('run as root, or in a privileged build container (e.g. cqfd with --privileged)');
  });
});

describe('checkSocketPath', () => {
  it.each([
    ['/tmp/ctrbake-d-abcdef/d.sock', true],
    [`/tmp/${'x'.repeat(90)}/d.sock`, false],
    [`/${'y'.repeat(99)}`, false],
  ])('%s ok=%s', (path, ok) => {
    if (ok) expect(() => checkSocketPath(path)).not.toThrow();
    else expect(() => checkSocketPath(path)).toThrow(expect.objectContaining({ code: 'E_ENGINE_START' }));
  });
});
