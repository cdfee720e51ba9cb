/**
 * Names the builder gives what the engine names at random, derived from the layer's chain
 * id so a store is byte-reproducible. The same scheme as the engine path's normalizer
 * (bake/store-normalize.ts and store-podman.ts use these functions), so both paths name a
 * layer alike; here because bake dispatches to the builder and the builder imports no bake.
 *   cache id (overlay2/<id>, layerdb cache-id): sha256 hex of "sha256:<chain hex>"
 *   link (overlay2/l/<link>): RFC 4648 base32 of the first 16 bytes of
 *     sha256("ctrbake overlay link " + cache id), 26 chars, as the engine's random ones
 *   chain id: OCI image spec, chain(0) = diff(0), chain(n) = sha256(chain(n-1) + " " + diff(n))
 */
import { createHash } from 'node:crypto';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** RFC 4648 base32 without padding. */
export function base32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

export function layerCacheId(chainId: string): string {
  return sha256(chainId.startsWith('sha256:') ? chainId : `sha256:${chainId}`).toString('hex');
}

/** 26 base32 chars from 16 bytes, the shape of the engines' random `l/` names (short: mount options fit a page). */
export function overlayLinkName(cacheId: string): string {
  return base32(sha256(`ctrbake overlay link ${cacheId}`).subarray(0, 16)).slice(0, 26);
}

export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const diffId of diffIds) {
    const previous = out.at(-1);
    out.push(previous === undefined ? diffId : `sha256:${sha256(`${previous} ${diffId}`).toString('hex')}`);
  }
  return out;
}
