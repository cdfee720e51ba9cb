import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { mountsUnder, unmountUnder } from '../../../src/engine/mounts.js';

describe('unmountUnder', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) {
      await unmountUnder([dir]);
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('finds nested and stacked mounts (paths with spaces too) and unmounts them deepest first', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ctrbake-mounts-'));
    const outer = join(dir, 'a b');
    await mkdir(outer);
    await execa('mount', ['-t', 'tmpfs', 'tmpfs', outer]);
    const inner = join(outer, 'inner');
    await mkdir(inner);
    await execa('mount', ['-t', 'tmpfs', 'tmpfs', inner]);
    await execa('mount', ['-t', 'tmpfs', 'tmpfs', inner]);
    const found = await mountsUnder([dir]);
    expect(found).toEqual([inner, inner, outer]);
    expect(await mountsUnder([join(dir, 'a')])).toEqual([]);
    expect(await unmountUnder([dir])).toEqual([]);
    expect(await mountsUnder([dir])).toEqual([]);
  });
});
