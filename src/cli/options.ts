/**
 * Options that several commands share, each defined once. A table is a plain object of yargs
 * options (`y.options(TABLE)`): yargs infers the argv type from it, so handlers need no cast.
 * An option whose help text differs by command stays in its command's module.
 */
import type { Options } from 'yargs';
import { LAYOUTS, PARTITIONS } from '../report/layout-model.js';

export const ENGINES = ['docker', 'podman'] as const;

/** The budget flags of `report` and `bake`. */
export const BUDGET_OPTIONS = {
  budget: { type: 'string', describe: 'bytes the data partition may take at first boot, e.g. 512M, 1.5GiB, 4096 (K/M/G/T = 1024-based, kB/MB/GB = 1000-based)' },
  'partition-size': { type: 'string', describe: 'size of the data partition (instead of --budget)' },
  watermark: { type: 'string', describe: 'with --partition-size: fill at most this percentage of it (default 90)' },
  reserve: { type: 'string', describe: 'with --partition-size: bytes kept free for other data (default 0)' },
  layout: { choices: LAYOUTS, describe: 'device layout for the first-boot model (default: from the bake mode and storage driver)' },
  'fs-block-size': { type: 'number', describe: 'block size of the data partition\'s filesystem (default 4096)' },
  'payload-on': {
    choices: PARTITIONS,
    describe: 'where the loader puts the archives or store image: rootfs (the default of ctrbake loader --payload-dir) or data (a ctrbake loader --payload-dir on the data partition, counted in the budget)',
  },
} as const satisfies Record<string, Options>;

/** The budget flags as the library's budget options (bake's `fit`, report's options). */
export function budgetFrom(argv: { budget?: string; partitionSize?: string; watermark?: string; reserve?: string }) {
  return { budget: argv.budget, partitionSize: argv.partitionSize, watermarkPct: argv.watermark, reserve: argv.reserve };
}

export const LOCK_INPUT_OPTION = {
  lock: { type: 'string', demandOption: true, describe: 'lock file written by `ctrbake lock`' },
} as const satisfies Record<string, Options>;

export const AUTHFILE_OPTION = {
  authfile: { type: 'string', describe: 'registry credentials: docker config.json or containers auth.json' },
} as const satisfies Record<string, Options>;

/**
 * For commands with REF positionals. Not `array: true`: that would swallow the REF arguments
 * after it; repeating the flag gives an array.
 */
export const INSECURE_REGISTRY_OPTION = {
  'insecure-registry': { type: 'string', describe: 'HOST:PORT spoken to over plain HTTP (repeat the flag for several)' },
} as const satisfies Record<string, Options>;

/** A flag given once is a string, repeated an array: always an array for the library. */
export function repeated(value: string | string[] | undefined): string[] {
  return ([] as string[]).concat(value ?? []);
}

export const IMAGES_FILE_OPTION = {
  images: { type: 'string', describe: 'file with one reference per line (# comments)' },
} as const satisfies Record<string, Options>;

/** Where the loader puts things on the device (`loader`, `build`). */
export const DEVICE_DIR_OPTIONS = {
  'payload-dir': { type: 'string', describe: 'read-only payload dir on the device (default /usr/share/ctrbake)' },
  'data-dir': { type: 'string', describe: 'writable loader state on the device (default /var/lib/ctrbake)' },
} as const satisfies Record<string, Options>;
