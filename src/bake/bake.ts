/** `ctrbake bake`: resolves the options once, then runs the mode's implementation. */
import { ConfigError } from '../errors.js';
import type { BakeMode } from '../formats.js';
import { bakeArchive, type BakeResult } from './archive.js';
import { resolveBakeOptions, type BakeOptions, type ResolvedBakeConfig } from './options.js';

type BakeImplementation = (config: Readonly<ResolvedBakeConfig>) => Promise<BakeResult>;

const MODES: Record<BakeMode, BakeImplementation> = {
  archive: bakeArchive,
  store: async () => {
    throw new ConfigError('E_NOT_IMPLEMENTED', '--mode store is not available in this version yet; use --mode archive');
  },
};

export async function bake(options: BakeOptions): Promise<BakeResult> {
  const config = resolveBakeOptions(options);
  return MODES[config.mode](config);
}
