import { RegistryError } from '../errors.js';
import { sha256Digest, type RegistryClient } from './client.js';
import type { Repository } from './reference.js';

/**
 * Pushing, for test fixtures and tooling: monolithic blob upload (POST then PUT with the
 * digest) and manifest PUT. Blobs the registry already has are skipped.
 */

export interface PushedBlob {
  digest: string;
  size: number;
}

export async function pushBlob(client: RegistryClient, repo: Repository, bytes: Buffer): Promise<PushedBlob> {
  const digest = sha256Digest(bytes);
  const pushed = { digest, size: bytes.length };
  if (await client.request(repo, `blobs/${digest}`, { method: 'HEAD', action: 'push', accept: [404] }).then((r) => r.status !== 404)) {
    return pushed;
  }
  const start = await client.request(repo, 'blobs/uploads/', { method: 'POST', action: 'push', headers: { 'Content-Length': '0' } });
  const location = start.headers.get('location');
  await start.body?.cancel();
  if (!location) throw new RegistryError('E_REGISTRY_RESPONSE', `registry ${repo.registry} started an upload without a Location header`);
  const url = new URL(location, client.baseUrl(repo.registry));
  url.searchParams.set('digest', digest);
  const done = await client.request(repo, '', {
    url: url.toString(),
    method: 'PUT',
    action: 'push',
    headers: { 'Content-Type': 'application/octet-stream' },
    body: bytes,
  });
  await done.body?.cancel();
  return pushed;
}

/** PUT a manifest or index under a tag or its digest; returns its digest. */
export async function pushManifest(client: RegistryClient, repo: Repository, reference: string, bytes: Buffer, mediaType: string): Promise<string> {
  const digest = sha256Digest(bytes);
  const res = await client.request(repo, `manifests/${reference}`, {
    method: 'PUT',
    action: 'push',
    headers: { 'Content-Type': mediaType },
    body: bytes,
  });
  await res.body?.cancel();
  const served = res.headers.get('docker-content-digest');
  if (served && served !== digest) {
    throw new RegistryError('E_DIGEST_MISMATCH', `registry ${repo.registry} stored manifest ${reference} as ${served}, expected ${digest}`);
  }
  return digest;
}
