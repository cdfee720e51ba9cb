/**
 * Storage budgets: either `budget` (bytes ctrbake may use on the data partition) or
 * `partitionSize` with `watermarkPct` (fill at most this share of it; default 90) and
 * `reserve` (bytes kept free for everything else; default 0):
 *   available = floor(partitionSize * watermarkPct / 100) - reserve
 */
import { ConfigError, DoesNotFitError } from '../errors.js';
import { formatSize, parsePercent, parseSize } from './size.js';

export const DEFAULT_WATERMARK_PCT = 90;

export interface BudgetOptions {
  budget?: string | number;
  partitionSize?: string | number;
  watermarkPct?: string | number;
  reserve?: string | number;
  /**
   * Where the loader puts the payload (archives, store SquashFS): 'rootfs' (its default
   * --payload-dir, /usr/share/ctrbake, in the read-only rootfs) or 'data' (a --payload-dir on
   * the data partition). Only payload on the data partition counts against the budget.
   */
  payloadPartition?: 'rootfs' | 'data';
}

export interface ResolvedBudget {
  availableBytes: number;
  budget?: number;
  partitionSize?: number;
  watermarkPct?: number;
  reserve?: number;
}

export interface BudgetVerdict extends ResolvedBudget {
  needBytes: number;
  fits: boolean;
  /** needBytes - availableBytes when over, else 0. */
  overBytes: number;
  /** availableBytes - needBytes when it fits, else 0. */
  headroomBytes: number;
}

/** Checks and combines the budget flags; undefined when no budget was asked for. */
export function resolveBudget(options: BudgetOptions): ResolvedBudget | undefined {
  const has = (v: unknown) => v !== undefined && v !== null && v !== '';
  if (has(options.budget)) {
    if (has(options.partitionSize) || has(options.watermarkPct) || has(options.reserve)) {
      throw new ConfigError('E_BUDGET_OPTIONS', '--budget cannot be combined with --partition-size, --watermark or --reserve: give one or the other');
    }
    const budget = parseSize(options.budget!, '--budget');
    return { availableBytes: budget, budget };
  }
  if (!has(options.partitionSize)) {
    if (has(options.watermarkPct) || has(options.reserve)) {
      throw new ConfigError('E_BUDGET_OPTIONS', '--watermark and --reserve need --partition-size');
    }
    return undefined;
  }
  const partitionSize = parseSize(options.partitionSize!, '--partition-size');
  if (partitionSize === 0) throw new ConfigError('E_BUDGET_OPTIONS', '--partition-size must be larger than 0');
  const watermarkPct = has(options.watermarkPct) ? parsePercent(options.watermarkPct!, '--watermark') : DEFAULT_WATERMARK_PCT;
  const reserve = has(options.reserve) ? parseSize(options.reserve!, '--reserve') : 0;
  const availableBytes = Math.floor((partitionSize * watermarkPct) / 100) - reserve;
  if (availableBytes < 0) {
    throw new ConfigError('E_BUDGET_OPTIONS', `--reserve ${formatSize(reserve)} is more than ${watermarkPct}% of --partition-size ${formatSize(partitionSize)}`);
  }
  return { availableBytes, partitionSize, watermarkPct, reserve };
}

export function judgeBudget(budget: ResolvedBudget, needBytes: number): BudgetVerdict {
  const fits = needBytes <= budget.availableBytes;
  return {
    ...budget,
    needBytes,
    fits,
    overBytes: fits ? 0 : needBytes - budget.availableBytes,
    headroomBytes: fits ? budget.availableBytes - needBytes : 0,
  };
}

export function describeBudget(b: ResolvedBudget): string {
  if (b.partitionSize === undefined) return `budget ${formatSize(b.availableBytes)}`;
  return `${formatSize(b.availableBytes)} available (${b.watermarkPct}% of a ${formatSize(b.partitionSize)} partition${b.reserve ? ` less ${formatSize(b.reserve)} reserved` : ''})`;
}

/** The error for an over-budget result: by how much, and the largest images. */
export function doesNotFit(verdict: BudgetVerdict, what: string, largest: ReadonlyArray<{ reference: string; bytes: number }>): DoesNotFitError {
  const top = [...largest].sort((a, b) => b.bytes - a.bytes).slice(0, 3);
  return new DoesNotFitError(
    `${what} needs ${formatSize(verdict.needBytes)} (${verdict.needBytes} bytes) but the ${describeBudget(verdict)}: over by ${formatSize(verdict.overBytes)} (${verdict.overBytes} bytes). ` +
      `Largest images: ${top.map((i) => `${i.reference} (${formatSize(i.bytes)})`).join(', ')}. Drop or slim an image, pick a layout that writes less at first boot, or raise the budget`,
    {
      details: {
        needBytes: verdict.needBytes,
        availableBytes: verdict.availableBytes,
        overBytes: verdict.overBytes,
        largestImages: top,
      },
    },
  );
}
