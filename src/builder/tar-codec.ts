/**
 * The builder's one door to the project's tar codec (decoder: TarInput; encoder:
 * encodeHeader). The codec is moving to src/formats/tar/ (issue #13): only this file's
 * imports change when it does.
 */
export { BLOCK, TarInput, displayName, type TarEntry, type TarEntryType } from '../squashfs/writer/tar-input.js';
export { encodeHeader, endOfArchive, padding, type CanonicalEntry } from '../squashfs/backends/tar-writer.js';
