/** The bake stage's public API (re-exported by src/index.ts). */
export { bake } from './bake.js';
export { bakeArchive, archiveFileName, imageTag, type BakeResult } from './archive.js';
export { resolveBakeOptions, type BakeOptions, type ResolvedBakeConfig } from './options.js';
export { stageOutput, recoverStagedOutputs, type StagedOutput } from '../util/staged-output.js';
export { checkOutput, type OutputSpec } from '../util/output.js';
export { isBakeOutput } from './bake-output.js';
export { normalizeTar, writeTarFromSources } from './normalize-archive.js';
export { writeOciArchive } from './oci-archive.js';
export { writeDockerArchive, type ArchiveImageInput, type ArchiveLayerInput } from './docker-archive.js';
export { readSavedArchive, type SavedImage } from './saved-archive.js';
export { indexTar, compareTarPaths, type TarIndexEntry } from './tar-index.js';
