import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { writeReport, type WriteReportOptions } from '../../../src/index.js';

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('writeReport: the checks of `ctrbake report`, for library callers too, before any input is read', () => {
  it.each([
    [{ manifestPath: 'm/manifest.json', lockPath: 'x.lock.json' }, /^give --manifest or --lock, not both$/],
    [{ lockPath: 'x.lock.json', writeLayers: true }, /--write-layers writes next to the manifest: it needs --manifest/],
    [{ lockPath: 'x.lock.json', outputPath: '/nonexistent-dir/r.txt' }, /--output \/nonexistent-dir\/r.txt: the directory \/nonexistent-dir does not exist; create it first/],
  ] as [WriteReportOptions, RegExp][])('%j: E_REPORT_OPTIONS (exit 2)', async (options, message) => {
    await expect(writeReport(options)).rejects.toMatchObject({ code: 'E_REPORT_OPTIONS', exitCode: 2, message: expect.stringMatching(message) });
  });

  it('-o a directory: refused, naming a file to give instead, and nothing is written', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ctrbake-write-report-'));
    await expect(writeReport({ lockPath: join(dir, 'none.lock.json'), outputPath: dir })).rejects.toMatchObject({
      code: 'E_REPORT_OPTIONS',
      message: `--output ${dir} is a directory: give a file name, e.g. ${join(dir, 'report.html')}`,
    });
    expect(await readdir(dir)).toEqual([]);
  });
});
