/** The budget flags of `report` and `bake`, defined once (see options.ts). */
import type { Options } from 'yargs';
import { LAYOUTS, PARTITIONS } from '../report/layout-model.js';

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
