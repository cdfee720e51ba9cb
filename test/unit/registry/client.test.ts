/**
 * The client's protocol handling against a small in-process HTTP server: the Bearer token
 * flow (docker-registry on this machine only does htpasswd Basic, which the integration tests
 * cover), retries of 429/5xx, and digest checks.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../../src/registry/client.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

let server: Server | undefined;
const tmpDirs: string[] = [];
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
  for (const d of tmpDirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function serve(handler: Handler): Promise<string> {
  server = createServer(handler);
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function authfile(host: string, user: string, password: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ctrbake-client-test-'));
  tmpDirs.push(dir);
  const path = join(dir, 'auth.json');
  await writeFile(path, JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } } }));
  return path;
}

const MANIFEST = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: {}, layers: [] }));
const DIGEST = `sha256:${createHash('sha256').update(MANIFEST).digest('hex')}`;

function sendManifest(res: ServerResponse, digest = DIGEST): void {
  res.writeHead(200, { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json', 'Docker-Content-Digest': digest });
  res.end(MANIFEST);
}

describe('RegistryClient', () => {
  it('follows the Bearer challenge: gets a token for the repository scope with Basic credentials, then uses it', async () => {
    const tokenRequests: { scope: string | null; service: string | null; authorization?: string }[] = [];
    const host = await serve((req, res) => {
      const url = new URL(req.url!, 'http://x');
      if (url.pathname === '/token') {
        tokenRequests.push({ scope: url.searchParams.get('scope'), service: url.searchParams.get('service'), authorization: req.headers.authorization });
        const ok = req.headers.authorization === `Basic ${Buffer.from('alice:s3cret').toString('base64')}`;
        res.writeHead(ok ? 200 : 401, { 'Content-Type': 'application/json' });
        res.end(ok ? JSON.stringify({ token: 'tok-123' }) : '{}');
        return;
      }
      if (req.headers.authorization !== 'Bearer tok-123') {
        res.writeHead(401, { 'WWW-Authenticate': `Bearer realm="http://${req.headers.host}/token",service="test-registry",scope="repository:team/app:pull"` });
        res.end();
        return;
      }
      sendManifest(res);
    });
    const client = await RegistryClient.create({ insecureRegistries: [host], authfile: await authfile(host, 'alice', 's3cret') });
    const repo = { registry: host, repository: 'team/app' };
    const m = await client.getManifest(repo, '1.0');
    expect(m.digest).toBe(DIGEST);
    expect(m.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    await client.getManifest(repo, DIGEST);
    expect(tokenRequests).toEqual([{ scope: 'repository:team/app:pull', service: 'test-registry', authorization: expect.stringMatching(/^Basic /) }]);

    const wrong = await RegistryClient.create({ insecureRegistries: [host], authfile: await authfile(host, 'alice', 'wrong') });
    await expect(wrong.getManifest(repo, '1.0')).rejects.toMatchObject({ code: 'E_AUTH_REFUSED', message: expect.stringContaining('check --authfile') });
  });

  it('retries 503 and 429 with backoff, then succeeds', async () => {
    let calls = 0;
    const host = await serve((_req, res) => {
      calls++;
      if (calls === 1) res.writeHead(503).end();
      else if (calls === 2) res.writeHead(429).end();
      else sendManifest(res);
    });
    const retries: number[] = [];
    const client = await RegistryClient.create({
      insecureRegistries: [host],
      retry: { retries: 2, initialDelayMs: 10 },
      onRetry: ({ delayMs }) => retries.push(delayMs),
    });
    expect((await client.getManifest({ registry: host, repository: 'a' }, 'latest')).digest).toBe(DIGEST);
    expect(calls).toBe(3);
    expect(retries).toEqual([10, 20]);
  });

  it('gives up after the configured attempts with the last status', async () => {
    let calls = 0;
    const host = await serve((_req, res) => {
      calls++;
      res.writeHead(500, { 'Content-Type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'UNKNOWN', message: 'boom' }] }));
    });
    const client = await RegistryClient.create({ insecureRegistries: [host], retry: { retries: 1, initialDelayMs: 1 } });
    await expect(client.getManifest({ registry: host, repository: 'a' }, 'latest')).rejects.toMatchObject({
      code: 'E_REGISTRY_RESPONSE',
      message: expect.stringContaining('HTTP 500'),
    });
    expect(calls).toBe(2);
  });

  it('does not retry client errors: 404 is E_MANIFEST_UNKNOWN at once', async () => {
    let calls = 0;
    const host = await serve((_req, res) => {
      calls++;
      res.writeHead(404).end();
    });
    const client = await RegistryClient.create({ insecureRegistries: [host], retry: { retries: 3, initialDelayMs: 1 } });
    await expect(client.getManifest({ registry: host, repository: 'a' }, 'latest')).rejects.toMatchObject({ code: 'E_MANIFEST_UNKNOWN' });
    expect(calls).toBe(1);
  });

  it('rejects a manifest whose bytes do not match the digest asked for or the digest the registry claims', async () => {
    const other = `sha256:${'1'.repeat(64)}`;
    const host = await serve((_req, res) => sendManifest(res, other));
    const client = await RegistryClient.create({ insecureRegistries: [host] });
    const repo = { registry: host, repository: 'a' };
    await expect(client.getManifest(repo, other)).rejects.toMatchObject({ code: 'E_DIGEST_MISMATCH' });
    await expect(client.getManifest(repo, 'latest')).rejects.toMatchObject({ code: 'E_DIGEST_MISMATCH' });
  });

  it('reports a registry that never answers as E_REGISTRY_UNREACHABLE after the header deadline', async () => {
    const host = await serve(() => undefined);
    const client = await RegistryClient.create({ insecureRegistries: [host], timeoutMs: 200, retry: { retries: 1, initialDelayMs: 1 } });
    await expect(client.getManifest({ registry: host, repository: 'a' }, 'latest')).rejects.toMatchObject({
      code: 'E_REGISTRY_UNREACHABLE',
      message: expect.stringContaining('ETIMEDOUT'),
    });
  });
});
