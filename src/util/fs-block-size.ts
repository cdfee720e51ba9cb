/**
 * The target filesystem's block size, which rounds every file in the size models of `report`,
 * `diff` and bake's budget check (`--fs-block-size`). Below the stages so that bake checks
 * the flag without importing report.
 */
import { ConfigError } from '../errors.js';

export const DEFAULT_BLOCK_SIZE = 4096;

export function resolveBlockSize(value: number | undefined): number {
  const b = value ?? DEFAULT_BLOCK_SIZE;
  if (!Number.isInteger(b) || b < 512 || b > 65536 || (b & (b - 1)) !== 0) {
    throw new ConfigError('E_REPORT_OPTIONS', `--fs-block-size ${b} must be a power of two from 512 to 65536 (ext4 uses 4096)`);
  }
  return b;
}
