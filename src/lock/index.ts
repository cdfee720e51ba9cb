/** The lock step's public API. */
export { DEFAULT_LOCK_FILE, resolveLock, type LockOptions, type LockResult } from './resolve.js';
export { serializeLock } from '../formats/lock.js';
export { resolveImage } from './resolve-image.js';
export { parseComposeImages, parseImagesList } from './sources.js';
