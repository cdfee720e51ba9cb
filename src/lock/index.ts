/** The lock step's public API. */
export { DEFAULT_LOCK_FILE, resolveLock, serializeLock, type LockOptions, type LockResult } from './resolve.js';
export { resolveImage } from './resolve-image.js';
export { parseComposeImages, parseImagesList } from './sources.js';
