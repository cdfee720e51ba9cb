/** Default inode/superblock time when SOURCE_DATE_EPOCH is not set: fixed, so outputs stay reproducible. */
export const DEFAULT_SOURCE_DATE_EPOCH = 0;

/** Parses SOURCE_DATE_EPOCH (reproducible-builds.org): a decimal count of seconds. */
export function parseSourceDateEpoch(value: string | undefined): number {
  if (value === undefined || value.trim() === '') return DEFAULT_SOURCE_DATE_EPOCH;
  if (!/^\d+$/.test(value.trim())) {
    throw new Error(`SOURCE_DATE_EPOCH must be a decimal number of seconds, got ${JSON.stringify(value)}`);
  }
  return Number(value.trim());
}
