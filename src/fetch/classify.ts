import { CommandError, InputError, RegistryError, type CtrbakeError } from '../errors.js';
import type { LockedImage } from '../formats/index.js';
import { redactSecrets } from './auth.js';
import {
  DigestMismatchError,
  E_AUTH_REFUSED,
  E_FETCHER_FAILED,
  E_BLOB_UNKNOWN,
  E_CACHE_IO,
  E_MANIFEST_UNKNOWN,
  E_REGISTRY_UNREACHABLE,
} from './errors.js';
import { TransientError } from './retry.js';
import { imageLabel } from './verify.js';

const LOCAL_IO = /no space left on device|disk quota exceeded|read-only file system/i;
const DIGEST = /digest did not match|digest mismatch|does not match (the )?(expected )?digest|computed digest/i;
const AUTH = /unauthorized|no basic auth credentials|authentication required|invalid username\/password|incorrect username or password|access to the resource is denied|\b401\b|\b403\b|forbidden/i;
const TLS = /server gave HTTP response to HTTPS client|x509:|certificate|tls: /i;
const TRANSIENT =
  /connection refused|connection reset|no such host|i\/o timeout|timeout|TLS handshake|\bEOF\b|\b50[0-9]\b|\b429\b|too many requests|toomanyrequests|network is unreachable|broken pipe|server misbehaving|temporary failure|service unavailable|bad gateway/i;
const NOT_FOUND = /manifest unknown|name unknown|blob unknown|\b404\b|not found|repository name not known|does not exist/i;

/**
 * Turns the error text of a registry client (skopeo, podman, dockerd) into a ctrbake error:
 * transient failures become TransientError (retried), the rest get their stable code.
 * `text` must already be redacted or is redacted here with `secrets`.
 */
export function classifyRegistryFailure(
  rawText: string,
  image: LockedImage,
  tool: string,
  secrets: readonly string[],
): CtrbakeError | TransientError {
  const text = redactSecrets(rawText, secrets);
  const label = imageLabel(image);
  if (LOCAL_IO.test(text)) {
    return new InputError(E_CACHE_IO, `${tool} could not write ${label} to the cache: ${text}. Free space or choose another --cache.`);
  }
  if (DIGEST.test(text)) {
    return new DigestMismatchError(`content of ${label} (${tool}: ${text})`, 'the digests the lock pins', 'other bytes');
  }
  if (TLS.test(text)) {
    return new RegistryError(
      E_REGISTRY_UNREACHABLE,
      `${tool} could not talk TLS to ${image.registry} for ${label}: ${text}. ` +
        `If this registry serves plain HTTP or a self-signed certificate, pass --insecure-registry ${image.registry}.`,
    );
  }
  if (AUTH.test(text)) {
    return new RegistryError(
      E_AUTH_REFUSED,
      `${image.registry} refused access to ${label}: ${text}. ` +
        'Check --authfile: it must hold credentials for this registry (docker config.json or containers auth.json format) that may pull this repository.',
      { details: { registry: image.registry, repository: image.repository } },
    );
  }
  if (TRANSIENT.test(text)) return new TransientError(`${tool}: ${text}`);
  if (/blob unknown/i.test(text)) {
    return new RegistryError(E_BLOB_UNKNOWN, `${image.registry} lacks a blob of ${label}: ${text}. Push the image again.`, {
      details: { registry: image.registry, repository: image.repository, digest: image.manifest.digest },
    });
  }
  if (NOT_FOUND.test(text)) {
    return new RegistryError(
      E_MANIFEST_UNKNOWN,
      `${image.registry} does not have ${label}: ${text}. The image was deleted or the lock was edited; run \`ctrbake lock\` again.`,
      { details: { registry: image.registry, repository: image.repository, digest: image.manifest.digest } },
    );
  }
  return new CommandError(E_FETCHER_FAILED, `${tool} failed to fetch ${label}: ${text}`);
}
