/** `ctrbake bake`: resolves the options once, then runs the mode's implementation. */
import type { BakeMode } from '../formats.js';
import { bakeArchive, type BakeResult } from './archive.js';
import { resolveBakeOptions, type BakeOptions, type ResolvedBakeConfig } from './options.js';
import { bakeStoreFromConfig } from './store.js';

type BakeImplementation = (config: Readonly<ResolvedBakeConfig>) => Promise<BakeResult>;

const MODES: Record<BakeMode, BakeImplementation> = {
  archive: bakeArchive,
  store: bakeStoreFromConfig,
};

export async function bake(options: BakeOptions): Promise<BakeResult> {
  const config = resolveBakeOptions(options);
  return MODES[config.mode](config);
}
