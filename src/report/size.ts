/**
 * Byte sizes on the command line and in reports.
 *
 * Accepted: a whole number of bytes ("4096", "4096B"), or a number (fractions allowed) with a
 * binary suffix K, M, G, T, KiB, MiB, GiB, TiB (powers of 1024, as mkfs, dd and genimage read
 * "512M") or a decimal suffix kB, MB, GB, TB (powers of 1000). Suffixes are case-sensitive
 * where they differ (kB vs KiB), no spaces, no signs, no exponents; a fraction of a byte is
 * rounded down. Anything else is a usage error.
 */
import { ConfigError } from '../errors.js';

export const E_SIZE_INVALID = 'E_SIZE_INVALID';

const UNITS: Record<string, number> = {
  '': 1,
  B: 1,
  K: 1024,
  KiB: 1024,
  M: 1024 ** 2,
  MiB: 1024 ** 2,
  G: 1024 ** 3,
  GiB: 1024 ** 3,
  T: 1024 ** 4,
  TiB: 1024 ** 4,
  kB: 1000,
  KB: 1000,
  MB: 1000 ** 2,
  GB: 1000 ** 3,
  TB: 1000 ** 4,
};

const SIZE_RE = /^(\d+(?:\.\d+)?)([A-Za-z]*)$/;

/** Parses a size; `what` names the flag for the message (e.g. "--budget"). */
export function parseSize(text: string | number, what = 'size'): number {
  if (typeof text === 'number') {
    if (!Number.isSafeInteger(text) || text < 0) throw new ConfigError(E_SIZE_INVALID, `${what} must be a whole number of bytes >= 0, got ${text}`);
    return text;
  }
  const m = SIZE_RE.exec(text);
  const unit = m ? UNITS[m[2]!] : undefined;
  if (!m || unit === undefined || (unit === 1 && m[1]!.includes('.'))) {
    throw new ConfigError(
      E_SIZE_INVALID,
      `${what} ${JSON.stringify(text)} is not a size: use bytes (4096) or a number with K, M, G, T (powers of 1024, also KiB..TiB) or kB, MB, GB, TB (powers of 1000), e.g. 512M or 1.5GiB`,
      { details: { value: text } },
    );
  }
  const bytes = Math.floor(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes)) throw new ConfigError(E_SIZE_INVALID, `${what} ${JSON.stringify(text)} is too large`, { details: { value: text } });
  return bytes;
}

/** Parses a percentage 1..100 ("90" or "90%"). */
export function parsePercent(text: string | number, what = 'percentage'): number {
  const s = String(text);
  const m = /^(\d+(?:\.\d+)?)%?$/.exec(s);
  const value = m ? Number(m[1]) : NaN;
  if (!m || !(value > 0 && value <= 100)) {
    throw new ConfigError(E_SIZE_INVALID, `${what} ${JSON.stringify(s)} is not a percentage in (0, 100], e.g. 90 or 90%`, { details: { value: s } });
  }
  return value;
}

/** Human size with binary units: "1.5 MiB", "812 B". */
export function formatSize(bytes: number): string {
  const sign = bytes < 0 ? '-' : '';
  let v = Math.abs(bytes);
  if (v < 1024) return `${sign}${v} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let i = -1;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${sign}${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${units[i]}`;
}
