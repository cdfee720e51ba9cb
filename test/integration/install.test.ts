/**
 * README "Install", followed literally on a fresh clone: the block marked
 * `<!-- run by: test/integration/install.test.ts -->` runs in a `git clone` of this checkout
 * (its committed HEAD) with bash -euo pipefail. `npm link` goes to a temp global prefix
 * (npm_config_prefix), so the machine's global npm dir is not touched; its bin dir is put on
 * PATH as npm's global bin dir is on a user's; the block's last line, `ctrbake --version`, must print
 * the version of package.json. Then `npx ctrbake` works from the clone too,
 * and the clone's `git status` is clean (npm ci never rewrites package-lock.json).
 * npm reads only its cache (npm_config_offline=true), which the checkout's own npm ci filled:
 * tests reach no network. Slow: npm ci and npm link took 2 to 8 min on 2 busy cores.
 */
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { readBlocks, ROOT } from './docs-blocks.js';

const MARKER = '<!-- run by: test/integration/install.test.ts -->';

function installBlock(): string {
  const lines = readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n');
  const block = readBlocks('README.md').find((b) => lines[b.line - 2]?.trim() === MARKER);
  if (!block) throw new Error(`README.md has no shell block preceded by ${MARKER}`);
  return block.body;
}

let work: string | undefined;
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('README install', () => {
  it('npm ci, npm link and npx ctrbake work on a fresh clone and leave it clean', async () => {
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    work = await mkdtemp(join(tmpdir(), 'ctrbake-install-'));
    const clone = join(work, 'ctrbake');
    const prefix = join(work, 'npm-global');
    await mkdir(prefix);
    await execa('git', ['clone', '--quiet', ROOT, clone]);
    const env = { npm_config_prefix: prefix, npm_config_offline: 'true', PATH: `${join(prefix, 'bin')}:${process.env.PATH ?? '/usr/bin:/bin'}` };
    const script = join(work, 'install.sh');
    await writeFile(script, `set -euo pipefail\n${installBlock()}\n`);
    const r = await execa('bash', [script], { cwd: clone, env, reject: false, all: true, timeout: 900_000 });
    if (r.exitCode !== 0) throw new Error(`README.md install block exited ${r.exitCode ?? r.signal}:\n${(r.all ?? '').slice(-6000)}`);
    expect(r.stdout.trim().split('\n').at(-1)).toBe(version);

    const npx = await execa('npx', ['--offline', 'ctrbake', '--version'], { cwd: clone, env });
    expect(npx.stdout.trim()).toBe(version);
    expect((await execa('git', ['status', '--porcelain', '--untracked-files=all'], { cwd: clone })).stdout).toBe('');
  }, 1_200_000);
});
