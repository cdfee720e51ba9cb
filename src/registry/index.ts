/** The registry client's public API. */
export { RegistryClient, sha256Digest, type RegistryClientOptions, type FetchedManifest, type ManifestHead, type BlobResponse } from './client.js';
export { REQUEST_RETRY, DOWNLOAD_RETRY, type RetryPolicy } from '../util/retry.js';
export { parseReference, formatReference, isDigest, type ImageReference, type Repository } from './reference.js';
export { parsePlatform, normalizePlatform, platformMatches, configMatchesPlatform } from './platform.js';
export { readAuthfile, parseAuthfile, findCredentials, Secret, type Credentials } from './auth.js';
export { pushBlob, pushManifest } from './push.js';
export * as mediaTypes from '../formats/media-types.js';
