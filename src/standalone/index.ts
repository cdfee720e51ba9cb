/** The standalone (one-call) pipeline's public API. */
export { buildStandalone, type StandaloneBuildResult, type StandaloneFetchSummary } from './build.js';
export { bakeFor, resolveStandaloneOptions, type ResolvedStandaloneConfig, type StandaloneBuildOptions } from './options.js';
export { defaultLockPath, lockMismatch } from './lock-step.js';
export { parseKconfig, platformFromBr2, platformFromKconfig, resolveTarget, SUPPORTED_ARM_CPUS, SUPPORTED_BR2_ARCHES, type ResolvedTarget, type TargetOptions } from './target.js';
