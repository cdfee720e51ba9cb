import { describe, expect, it } from 'vitest';
import { ConfigError, DoesNotFitError } from '../../../src/errors.js';
import { doesNotFit, judgeBudget, resolveBudget } from '../../../src/report/budget.js';

describe('resolveBudget', () => {
  it('no flags: no budget', () => expect(resolveBudget({})).toBeUndefined());
  it('--budget', () => expect(resolveBudget({ budget: '1M' })).toEqual({ availableBytes: 1024 * 1024, budget: 1024 * 1024 }));
  it('--partition-size with the default 90% watermark', () => {
    expect(resolveBudget({ partitionSize: '1000' })).toEqual({ availableBytes: 900, partitionSize: 1000, watermarkPct: 90, reserve: 0 });
  });
  it('--partition-size, --watermark, --reserve', () => {
    expect(resolveBudget({ partitionSize: '1G', watermarkPct: '80%', reserve: '100M' })).toEqual({
      availableBytes: Math.floor(1024 ** 3 * 0.8) - 100 * 1024 ** 2,
      partitionSize: 1024 ** 3,
      watermarkPct: 80,
      reserve: 100 * 1024 ** 2,
    });
  });
  it.each([
    [{ budget: '1M', partitionSize: '1G' }],
    [{ budget: '1M', reserve: '1K' }],
    [{ watermarkPct: '80' }],
    [{ reserve: '1M' }],
    [{ partitionSize: '0' }],
    [{ partitionSize: '1M', reserve: '1G' }],
    [{ partitionSize: '1M', watermarkPct: '0' }],
    [{ budget: 'lots' }],
  ])('usage error for %j', (opts) => {
    expect(() => resolveBudget(opts)).toThrow(ConfigError);
  });
});

describe('judgeBudget and doesNotFit', () => {
  it('fits with headroom, or is over by the difference', () => {
    expect(judgeBudget({ availableBytes: 100 }, 60)).toMatchObject({ fits: true, headroomBytes: 40, overBytes: 0 });
    expect(judgeBudget({ availableBytes: 100 }, 100)).toMatchObject({ fits: true, headroomBytes: 0 });
    expect(judgeBudget({ availableBytes: 100 }, 130)).toMatchObject({ fits: false, overBytes: 30, headroomBytes: 0 });
  });

  it('the error has exit code 3, says by how much and lists the three largest images first', () => {
    const v = judgeBudget({ availableBytes: 1000, partitionSize: 2000, watermarkPct: 50, reserve: 0 }, 5096);
    const e = doesNotFit(v, 'the archive layout', [
      { reference: 'small', bytes: 10 },
      { reference: 'big', bytes: 3000 },
      { reference: 'mid', bytes: 500 },
      { reference: 'mid2', bytes: 400 },
    ]);
    expect(e).toBeInstanceOf(DoesNotFitError);
    expect(e.exitCode).toBe(3);
    expect(e.code).toBe('E_DOES_NOT_FIT');
    expect(e.message).toContain('over by 4.00 KiB (4096 bytes)');
    expect(e.message).toContain('50% of a 1.95 KiB partition');
    expect(e.message).toMatch(/Largest images: big .*, mid .*, mid2 /);
    expect(e.message).not.toContain('small');
    expect(e.details).toMatchObject({ overBytes: 4096, needBytes: 5096, availableBytes: 1000 });
  });
});
