/**
 * Names the builder gives what the engine names at random, derived from the layer's chain
 * id so a store is byte-reproducible. The same scheme as the engine path's normalizer
 * (bake/store-normalize.ts), so both paths name a layer alike; kept here because bake
 * dispatches to the builder and the builder must not import bake (no cycle).
 *   cache id (overlay2/<id>, layerdb cache-id): sha256 hex of "sha256:<chain hex>"
 *   link (overlay2/l/<link>): RFC 4648 base32 of the first 16 bytes of
 *     sha256("ctrbake overlay link " + cache id), 26 chars, as the engine's random ones
 *   chain id: OCI image spec, chain(0) = diff(0), chain(n) = sha256(chain(n-1) + " " + diff(n))
 */
import { createHash } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

export function layerCacheId(chainId: string): string {
  return sha256(chainId.startsWith('sha256:') ? chainId : `sha256:${chainId}`).toString('hex');
}

export function overlayLinkName(cacheId: string): string {
  const bytes = sha256(`ctrbake overlay link ${cacheId}`).subarray(0, 16);
  let out = '';
  // 16 bytes = 128 bits: 25 full 5-bit groups and 3 bits left, padded on the right.
  let acc = 0n;
  for (const byte of bytes) acc = (acc << 8n) | BigInt(byte);
  acc <<= 2n;
  for (let i = 25; i >= 0; i--) out += ALPHABET[Number((acc >> BigInt(i * 5)) & 31n)];
  return out;
}

export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const diffId of diffIds) {
    const previous = out.at(-1);
    out.push(previous === undefined ? diffId : `sha256:${sha256(`${previous} ${diffId}`).toString('hex')}`);
  }
  return out;
}
