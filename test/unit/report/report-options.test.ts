import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveReportOptions, type ReportOptions } from '../../../src/report/report.js';

describe('resolveReportOptions', () => {
  it('fills defaults, makes paths absolute, reads no file, and freezes the result', () => {
    const c = resolveReportOptions({ manifestPath: 'no/such/out/manifest.json', cacheDir: 'cache' });
    expect(c).toMatchObject({ source: { path: resolve('no/such/out/manifest.json') }, cacheDir: resolve('cache'), blockSize: 4096, concurrency: 2 });
    expect(c.budget).toBeUndefined();
    expect(c.layout).toBeUndefined();
    expect(Object.isFrozen(c)).toBe(true);
  });
  it('a pre-read input wins over the paths; a budget is resolved to bytes', () => {
    const input = { kind: 'lock' as const, path: '/l.json', platform: { os: 'linux', architecture: 'amd64' }, outputs: [], images: [] };
    const c = resolveReportOptions({ input, lockPath: 'ignored.json', budget: '1M', layout: 'split', payloadPartition: 'data', blockSize: 1024 });
    expect(c.source).toEqual({ input });
    expect(c).toMatchObject({ layout: 'split', payloadPartition: 'data', blockSize: 1024, budget: { availableBytes: 1024 * 1024 } });
  });
  it.each<[string, ReportOptions, string, RegExp]>([
    ['no input', {}, 'E_REPORT_OPTIONS', /give --manifest OUT\/manifest\.json/],
    ['a block size that is not a power of two', { lockPath: 'l', blockSize: 1000 }, 'E_REPORT_OPTIONS', /--fs-block-size 1000 must be a power of two/],
    ['an unknown layout', { lockPath: 'l', layout: 'flat' as never }, 'E_REPORT_OPTIONS', /--layout flat is not one of/],
    ['an unknown payload partition', { lockPath: 'l', payloadPartition: 'boot' as never }, 'E_REPORT_OPTIONS', /--payload-on boot is not one of/],
    ['a budget that is not a size', { lockPath: 'l', budget: '12Q' }, 'E_SIZE_INVALID', /12Q/],
  ])('refuses %s with a usage error (exit 2) before reading anything', (_name, options, code, message) => {
    expect(() => resolveReportOptions(options)).toThrow(expect.objectContaining({ code, exitCode: 2, message: expect.stringMatching(message) }));
  });
});
