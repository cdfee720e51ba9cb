/**
 * The budget check bake runs before it starts an engine or writes an output: the lock gives
 * compressed sizes, the cache's layer blobs give unpacked sizes, so the first-boot need of the
 * layout is known up front. Over budget: DoesNotFitError (exit 3) and bake writes nothing.
 */
import type { BakeMode, LockFile } from '../formats/index.js';
import type { Reporter } from '../util/reporter.js';
import type { BudgetOptions, BudgetVerdict } from './budget.js';
import { resolveBudget } from './budget.js';
import { lockToInput } from './input.js';
import type { Layout } from './layout-model.js';
import { report } from './report.js';

export interface BakeBudgetOptions extends BudgetOptions {
  lock: LockFile;
  lockPath: string;
  cacheDir: string;
  mode: BakeMode;
  engine: string;
  storageDriver: string;
  layout?: Layout;
  blockSize?: number;
  reporter?: Reporter;
  signal?: AbortSignal;
}

/** undefined when no budget was given; throws ConfigError for bad flags, DoesNotFitError when over. */
export async function checkBakeBudget(options: BakeBudgetOptions): Promise<BudgetVerdict | undefined> {
  if (!resolveBudget(options)) return undefined;
  const input = { ...lockToInput(options.lock, options.lockPath), mode: options.mode, engine: options.engine, storageDriver: options.storageDriver };
  const result = await report({
    input,
    cacheDir: options.cacheDir,
    ...(options.layout ? { layout: options.layout } : {}),
    ...(options.blockSize ? { blockSize: options.blockSize } : {}),
    budget: options.budget,
    partitionSize: options.partitionSize,
    watermarkPct: options.watermarkPct,
    reserve: options.reserve,
    ...(options.payloadPartition ? { payloadPartition: options.payloadPartition } : {}),
    ...(options.reporter ? { reporter: options.reporter } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  options.reporter?.event({ event: 'bake.budget', message: `budget: fits, ${result.budget!.needBytes} of ${result.budget!.availableBytes} bytes (layout ${result.layout})`, ...result.budget });
  return result.budget;
}
