/**
 * `npm run demo` (README "Two commands on a fresh machine") bakes the sample image and runs it,
 * and leaves the checkout as it found it: `git status --porcelain` is the same before and after
 * (the demo writes under .demo/, which git ignores, and temp dirs it removes).
 * CTRBAKE_DEMO_NO_BUILD=1: dist/ is already built (npm test builds it first), and other test
 * files run it at the same time.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { SAMPLE_OUTPUT } from '../fixtures/images.js';
import { ROOT } from './docs-blocks.js';

async function gitStatus(): Promise<string> {
  return (await execa('git', ['status', '--porcelain', '--untracked-files=all'], { cwd: ROOT })).stdout;
}

describe('npm run demo', () => {
  it('runs the sample from the baked archive and leaves git status unchanged', async () => {
    if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('dist/ missing: run npm run build first');
    const before = await gitStatus();
    const r = await execa('bash', ['-c', 'npm run demo'], {
      cwd: ROOT,
      env: { CTRBAKE_DEMO_NO_BUILD: '1' },
      reject: false,
      all: true,
      timeout: 600_000,
    });
    if (r.exitCode !== 0) throw new Error(`npm run demo exited ${r.exitCode ?? r.signal}:\n${(r.all ?? '').slice(-6000)}`);
    expect(r.all).toContain(`container says: ${SAMPLE_OUTPUT}`);
    expect(existsSync(join(ROOT, '.demo', 'out', 'manifest.json'))).toBe(true);
    expect(await gitStatus()).toBe(before);
  }, 900_000);
});
