/** The tar codec: one decoder, one file index on top of it, one encoder. */
export * from './errors.js';
export * from './decode.js';
export * from './encode.js';
export * from './file-index.js';
export * from './normalize.js';
