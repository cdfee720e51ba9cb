import { describe, expect, it } from 'vitest';
import { ConfigError, CtrbakeError, DoesNotFitError, EXIT_DOES_NOT_FIT, EXIT_USAGE, InputError } from '../../src/errors.js';
import { parseSourceDateEpoch } from '../../src/util/sde.js';

describe('errors', () => {
  it.each([
    [new ConfigError('E_X', 'bad flag'), EXIT_USAGE],
    [new InputError('E_Y', 'bad input'), 1],
    [new DoesNotFitError('too big'), EXIT_DOES_NOT_FIT],
  ])('%s maps to exit code %i', (error, code) => {
    expect(error).toBeInstanceOf(CtrbakeError);
    expect(error.exitCode).toBe(code);
  });

  it('keeps the cause', () => {
    const cause = new Error('root');
    expect(new InputError('E_Y', 'wrapped', { cause }).cause).toBe(cause);
  });
});

describe('parseSourceDateEpoch', () => {
  it.each([
    [undefined, 0],
    ['', 0],
    ['1700000000', 1700000000],
  ])('%s -> %i', (value, expected) => {
    expect(parseSourceDateEpoch(value)).toBe(expected);
  });
  it.each(['-1', '1.5', 'yesterday'])('rejects %s', (value) => {
    expect(() => parseSourceDateEpoch(value)).toThrow(/SOURCE_DATE_EPOCH/);
  });
});
