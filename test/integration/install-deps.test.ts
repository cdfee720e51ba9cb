/**
 * scripts/install-deps.sh installs per purpose: `demo` only what `npm run demo` uses, nothing
 * (the default) everything the tests need. Run for real with dpkg-query and apt-get replaced on
 * PATH (every package reported missing; apt-get records its arguments), so nothing is installed.
 * The script runs from a copy in a temp checkout whose node_modules and dist/ are up to date,
 * so its npm ci / build steps have nothing to do.
 */
import { readFileSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT } from './docs-blocks.js';

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

async function run(args: string[]): Promise<{ exitCode: number | undefined; stderr: string; installed: string[] }> {
  dir = await mkdtemp(join(tmpdir(), 'ctrbake-install-deps-'));
  const log = join(dir, 'apt-get.log');
  await writeFile(join(dir, 'dpkg-query'), '#!/bin/sh\nexit 1\n');
  await writeFile(join(dir, 'apt-get'), `#!/bin/sh\necho "$*" >> '${log}'\n`);
  await chmod(join(dir, 'dpkg-query'), 0o755);
  await chmod(join(dir, 'apt-get'), 0o755);
  await mkdir(join(dir, 'checkout', 'scripts'), { recursive: true });
  await mkdir(join(dir, 'checkout', 'dist', 'cli'), { recursive: true });
  await mkdir(join(dir, 'checkout', 'node_modules'));
  await copyFile(join(ROOT, 'scripts', 'install-deps.sh'), join(dir, 'checkout', 'scripts', 'install-deps.sh'));
  await writeFile(join(dir, 'checkout', 'package-lock.json'), '{}\n');
  await writeFile(join(dir, 'checkout', 'dist', 'cli', 'main.js'), '');
  await writeFile(join(dir, 'checkout', 'node_modules', '.package-lock.json'), '{}\n');
  const past = new Date(Date.now() - 3600_000);
  await utimes(join(dir, 'checkout', 'package-lock.json'), past, past);
  const r = await execa('bash', [join(dir, 'checkout', 'scripts', 'install-deps.sh'), ...args], {
    env: { PATH: `${dir}:${process.env.PATH ?? '/usr/bin:/bin'}` },
    reject: false,
  });
  const lines = await readFile(log, 'utf8').catch(() => '');
  const install = lines.split('\n').find((l) => l.startsWith('install '));
  return { exitCode: r.exitCode, stderr: r.stderr, installed: install ? install.split(' ').filter((w) => !w.startsWith('-') && w !== 'install') : [] };
}

describe('scripts/install-deps.sh', () => {
  it('demo: only docker.io, docker-registry and busybox-static', async () => {
    const r = await run(['demo']);
    expect(r.exitCode).toBe(0);
    expect(r.installed.sort()).toEqual(['busybox-static', 'docker-registry', 'docker.io']);
  });

  it('default: everything the tests need, the demo set included', async () => {
    const r = await run([]);
    expect(r.exitCode).toBe(0);
    for (const p of ['docker.io', 'docker-registry', 'busybox-static', 'podman', 'skopeo', 'squashfs-tools-ng', 'gcc']) expect(r.installed).toContain(p);
  });

  it('an unknown set is a usage error naming the valid ones', async () => {
    const r = await run(['dmeo']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("unknown set 'dmeo'");
    expect(r.stderr).toContain("'demo'");
  });

  it('npm run demo asks for the demo set', () => {
    expect(readFileSync(join(ROOT, 'scripts', 'demo.sh'), 'utf8')).toMatch(/^bash scripts\/install-deps\.sh demo$/m);
  });
});
