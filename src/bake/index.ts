/** The bake stage's public API (re-exported by src/index.ts). */
export { bake } from './bake.js';
export { bakeArchive, archiveFileName, imageTag, type BakeResult } from './archive.js';
export { resolveBakeOptions, type BakeOptions, type ResolvedBakeConfig } from './options.js';
export { stageOutput, recoverStagedOutputs, type StagedOutput } from '../util/staged-output.js';
export { checkOutput, type OutputSpec } from '../util/output.js';
export { isBakeOutput } from './bake-output.js';
// The archive formats bake writes live in the floor; re-exported (with their former names) for the public API.
export { normalizeTar, writeTarFromSources, indexTarFile, indexTarFile as indexTar, compareTarPaths, type TarIndexEntry } from '../formats/tar/index.js';
export { writeOciArchive } from '../formats/oci-archive.js';
export { writeDockerArchive, readDockerArchive, readDockerArchive as readSavedArchive, type ArchiveImageInput, type ArchiveLayerInput, type SavedImage } from '../formats/docker-archive.js';
