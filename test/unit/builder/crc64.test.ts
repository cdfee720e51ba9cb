import { describe, expect, it } from 'vitest';
import { Crc64 } from '../../../src/builder/crc64.js';

describe('Crc64 (Go hash/crc64, ISO table)', () => {
  it('gives the catalogue check value of CRC-64/GO-ISO for "123456789"', () => {
    expect(new Crc64().update(Buffer.from('123456789')).digest().toString('hex')).toBe('b90956c775a41001');
  });

  it('gives the same sum fed in pieces as fed whole', () => {
    const data = Buffer.from(Array.from({ length: 10_000 }, (_, i) => (i * 7919) & 0xff));
    const whole = new Crc64().update(data).digest();
    const pieces = new Crc64();
    for (let at = 0; at < data.length; at += 333) pieces.update(data.subarray(at, at + 333));
    expect(pieces.digest()).toEqual(whole);
  });

  it('is 0 for no input, as Go sums an empty file', () => {
    expect(new Crc64().digest().toString('hex')).toBe('0000000000000000');
  });
});
