/**
 * The images the docs' examples name, pushed to a test registry: REGISTRY/product/app:1.4,
 * REGISTRY/product/agent:2.0 and REGISTRY/product/db:9.1. Each is an OCI index for
 * linux/amd64 (busybox from busybox-static, runnable here) and linux/arm64/v8 (files only),
 * with one shared base layer per platform and one layer of its own, so reports show sharing.
 */
import { readFile } from 'node:fs/promises';
import type { Platform } from '../../src/formats/index.js';
import { RegistryClient } from '../../src/registry/client.js';
import { OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST } from '../../src/formats/media-types.js';
import { pushBlob, pushManifest } from '../../src/registry/push.js';
import { BUSYBOX_PATH } from '../fixtures/images.js';
import { buildLayer, FIXTURE_CREATED, sha256, type BuiltLayer } from '../../devkit/layers.js';
import type { TestRegistry } from '../../devkit/registry.js';

export const DOC_IMAGES = [
  { repository: 'product/app', tag: '1.4' },
  { repository: 'product/agent', tag: '2.0' },
  { repository: 'product/db', tag: '9.1' },
] as const;

const AMD64: Platform = { os: 'linux', architecture: 'amd64' };
const ARM64: Platform = { os: 'linux', architecture: 'arm64', variant: 'v8' };

async function baseLayers(): Promise<Map<Platform, BuiltLayer>> {
  let busybox: Buffer;
  try {
    busybox = await readFile(BUSYBOX_PATH);
  } catch {
    throw new Error(`test prerequisite missing: ${BUSYBOX_PATH} (Debian package busybox-static); run scripts/install-deps.sh as root`);
  }
  const amd64 = await buildLayer([
    { type: 'file', path: 'bin/busybox', content: busybox, mode: 0o755 },
    ...['cat', 'sh'].map((a) => ({ type: 'symlink' as const, path: `bin/${a}`, target: 'busybox' })),
  ]);
  const arm64 = await buildLayer([{ type: 'file', path: 'etc/arch', content: 'arm64\n' }]);
  return new Map([
    [AMD64, amd64],
    [ARM64, arm64],
  ]);
}

/** Pushes the images; returns their references ("HOST/product/app:1.4", ...). */
export async function pushDocImages(registry: TestRegistry): Promise<string[]> {
  const client = await RegistryClient.create({ insecureRegistries: [registry.host], retry: { retries: 1, initialDelayMs: 100 } });
  const bases = await baseLayers();
  const references: string[] = [];
  for (const { repository, tag } of DOC_IMAGES) {
    const repo = { registry: registry.host, repository };
    const name = repository.split('/')[1]!;
    const manifests = [];
    for (const [platform, base] of bases) {
      const own = await buildLayer([{ type: 'file', path: `srv/${name}/VERSION`, content: `${name} ${tag} ${platform.architecture}\n` }]);
      const layers = [base, own];
      const config = Buffer.from(
        JSON.stringify({
          architecture: platform.architecture,
          os: platform.os,
          ...(platform.variant ? { variant: platform.variant } : {}),
          created: FIXTURE_CREATED,
          config: { Cmd: ['/bin/cat', `/srv/${name}/VERSION`] },
          rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
          history: layers.map(() => ({ created: FIXTURE_CREATED, created_by: 'ctrbake docs test' })),
        }),
      );
      for (const l of layers) await pushBlob(client, repo, l.gz);
      await pushBlob(client, repo, config);
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: { mediaType: OCI_CONFIG, digest: sha256(config), size: config.length },
          layers: layers.map((l) => ({ mediaType: OCI_LAYER_GZIP, digest: l.digest, size: l.size })),
        }),
      );
      const digest = sha256(manifest);
      await pushManifest(client, repo, digest, manifest, OCI_MANIFEST);
      manifests.push({ mediaType: OCI_MANIFEST, digest, size: manifest.length, platform });
    }
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }));
    await pushManifest(client, repo, tag, index, OCI_INDEX);
    references.push(`${registry.host}/${repository}:${tag}`);
  }
  return references;
}
