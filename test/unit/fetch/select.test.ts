import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { detectFetcher } from '../../../src/fetch/select.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ctrbake-unit-select-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function installed(names: string[]): Promise<string> {
  for (const name of names) {
    await writeFile(join(dir, name), '#!/bin/sh\n');
    await chmod(join(dir, name), 0o755);
  }
  return dir;
}

describe('--fetcher auto', () => {
  it.each([
    [['skopeo', 'dockerd', 'podman'], 'skopeo'],
    [['dockerd', 'podman'], 'docker'],
    [['podman'], 'podman'],
    [[], undefined],
  ])('with %j on PATH picks %s', async (names, expected) => {
    expect(await detectFetcher(await installed(names))).toBe(expected);
  });

  it('ignores files that are not executable', async () => {
    await writeFile(join(dir, 'skopeo'), '');
    expect(await detectFetcher(dir)).toBeUndefined();
  });
});
