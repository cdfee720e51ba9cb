import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { formatSize, parsePercent, parseSize } from '../../../src/report/size.js';

describe('parseSize', () => {
  it.each([
    ['4096', 4096],
    ['0', 0],
    ['4096B', 4096],
    ['1K', 1024],
    ['1KiB', 1024],
    ['512M', 512 * 1024 ** 2],
    ['512MiB', 512 * 1024 ** 2],
    ['1.5GiB', 1.5 * 1024 ** 3],
    ['1.5G', 1.5 * 1024 ** 3],
    ['2T', 2 * 1024 ** 4],
    ['1kB', 1000],
    ['1KB', 1000],
    ['1MB', 1_000_000],
    ['1.5GB', 1_500_000_000],
    ['1.1K', 1126],
  ])('%s -> %d', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  it.each(['', ' 1M', '1M ', '1 M', '-1', '+1', '1e9', '1.5', '0x10', '1m', '1Mi', '1MIB', '1.5.2G', 'M', '1PB', '1,5G', 'NaN', '99999999999999T'])(
    'rejects %j with a usage error (exit 2)',
    (text) => {
      let error: unknown;
      try {
        parseSize(text, '--budget');
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).exitCode).toBe(2);
      expect((error as ConfigError).message).toContain('--budget');
    },
  );

  it('takes whole numbers of bytes from library callers', () => {
    expect(parseSize(123)).toBe(123);
    expect(() => parseSize(1.5)).toThrow(ConfigError);
    expect(() => parseSize(-1)).toThrow(ConfigError);
  });
});

describe('parsePercent', () => {
  it.each([['90', 90], ['90%', 90], ['100', 100], ['12.5', 12.5]])('%s -> %d', (t, v) => expect(parsePercent(t)).toBe(v));
  it.each(['0', '101', '-5', 'x', '', '90 %', '%'])('rejects %j', (t) => expect(() => parsePercent(t)).toThrow(ConfigError));
});

describe('formatSize', () => {
  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1024, '1.00 KiB'],
    [1536, '1.50 KiB'],
    [10 * 1024 ** 2, '10.0 MiB'],
    [512 * 1024 ** 2, '512 MiB'],
    [-2048, '-2.00 KiB'],
  ])('%d -> %s', (b, s) => expect(formatSize(b)).toBe(s));
});
