/**
 * `npm run demo` (README "Two commands on a fresh machine") bakes the sample image and runs it,
 * and leaves the checkout as it found it: `git status --porcelain` is the same before and after
 * (the demo writes under .demo/, which git ignores, and temp dirs it removes).
 * It needs only what `install-deps.sh demo` installs: the demo runs with a PATH from which the
 * programs of every other package install-deps.sh installs are left out (skopeo, podman, gcc,
 * the SquashFS tools, ...), so the fetch falls back to the docker fetcher.
 * CTRBAKE_DEMO_NO_BUILD=1: dist/ is already built (npm test builds it first), and other test
 * files run it at the same time.
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { SAMPLE_OUTPUT } from '../fixtures/images.js';
import { ROOT } from './docs-blocks.js';

async function gitStatus(): Promise<string> {
  return (await execa('git', ['status', '--porcelain', '--untracked-files=all'], { cwd: ROOT })).stdout;
}

/** Debian packages install-deps.sh installs for the tests but not for the demo (gcc-12: gcc's compiler). */
const NOT_FOR_DEMO = ['podman', 'skopeo', 'uidmap', 'squashfs-tools', 'squashfs-tools-ng', 'shellcheck', 'apache2-utils', 'attr', 'jq', 'debootstrap', 'gcc', 'gcc-12', 'chromium', 'zstd', 'genimage', 'make', 'fdisk'];

/** A directory of links to every program on PATH except those of NOT_FOR_DEMO. */
async function demoPath(dir: string): Promise<string> {
  const hidden = new Set<string>();
  for (const pkg of NOT_FOR_DEMO) {
    const r = await execa('dpkg', ['-L', pkg], { reject: false });
    for (const f of r.stdout.split('\n')) if (/\/s?bin\/[^/]+$/.test(f)) hidden.add(basename(f));
  }
  expect(hidden).toContain('skopeo');
  const linked = new Set<string>();
  for (const d of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      continue;
    }
    for (const name of names) {
      if (hidden.has(name) || linked.has(name)) continue;
      linked.add(name);
      await symlink(join(d, name), join(dir, name));
    }
  }
  return dir;
}

let work: string | undefined;
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('npm run demo', () => {
  it('with only the demo packages, runs the sample from the baked archive and leaves git status unchanged', async () => {
    if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('dist/ missing: run npm run build first');
    const before = await gitStatus();
    work = await mkdtemp(join(tmpdir(), 'ctrbake-demo-path-'));
    const path = await demoPath(work);
    const r = await execa('bash', ['-c', 'npm run demo'], {
      cwd: ROOT,
      env: { CTRBAKE_DEMO_NO_BUILD: '1', PATH: path },
      reject: false,
      all: true,
      timeout: 600_000,
    });
    if (r.exitCode !== 0) throw new Error(`npm run demo exited ${r.exitCode ?? r.signal}:\n${(r.all ?? '').slice(-6000)}`);
    expect(r.all).toContain(`container says: ${SAMPLE_OUTPUT}`);
    // skopeo was out of reach: the engine fetched.
    expect(r.all).toMatch(/fetching \d+ missing blob\(s\) with docker/);
    expect(existsSync(join(ROOT, '.demo', 'out', 'manifest.json'))).toBe(true);
    expect(await gitStatus()).toBe(before);
  }, 900_000);
});
