import { describe, expect, it } from 'vitest';
import { checkManifestMatchesLock } from '../../../src/fetch/verify.js';
import { DOCKER_LAYER_GZIP, OCI_CONFIG, OCI_MANIFEST } from '../../../src/formats/media-types.js';
import { diffIdsOfConfig, parseImageIndex, parseImageManifest, parseJsonObject, platformOf } from '../../../src/formats/oci.js';
import type { LockedImage } from '../../../src/formats/lock.js';

const D = (c: string) => `sha256:${c.repeat(64)}`;
const manifest = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: D('c'), size: 3 }, layers: [{ mediaType: DOCKER_LAYER_GZIP, digest: D('d'), size: 5 }] };

describe('OCI documents', () => {
  it('parses an image manifest and an index, as text or bytes', () => {
    expect(parseImageManifest(JSON.stringify(manifest)).value).toEqual(manifest);
    expect(parseImageManifest(Buffer.from(JSON.stringify(manifest))).value).toEqual(manifest);
    const index = { manifests: [{ digest: D('a'), platform: { os: 'linux', architecture: 'arm', variant: 'v7' } }] };
    expect(parseImageIndex(JSON.stringify(index)).value).toEqual(index);
  });
  it.each([
    ['not JSON', '{', 'not-json'],
    ['a JSON array', '[]', 'wrong-shape'],
    ['JSON null', 'null', 'wrong-shape'],
    ['an index', JSON.stringify({ manifests: [] }), 'wrong-shape'],
    ['a manifest without config', JSON.stringify({ layers: [] }), 'wrong-shape'],
    ['a manifest whose layers are not a list', JSON.stringify({ config: {}, layers: {} }), 'wrong-shape'],
  ])('an image manifest refuses %s', (_name, text, kind) => {
    expect(parseImageManifest(text).problem?.kind).toBe(kind);
  });
  it('an index refuses a document without a manifests list', () => {
    expect(parseImageIndex(JSON.stringify(manifest)).problem?.message).toBe('"manifests" is not a list');
    expect(parseJsonObject('"text"').problem?.kind).toBe('wrong-shape');
  });
  it.each([
    ['two digests', { rootfs: { diff_ids: [D('1'), D('2')] } }, [D('1'), D('2')]],
    ['no rootfs', { os: 'linux' }, undefined],
    ['a bad digest', { rootfs: { diff_ids: ['sha256:x'] } }, undefined],
    ['rootfs null', { rootfs: null }, undefined],
  ])('diffIdsOfConfig: %s', (_name, config, ids) => {
    expect(diffIdsOfConfig(JSON.stringify(config))).toEqual(ids);
  });
  it('platformOf keeps a non-empty variant and needs os and architecture', () => {
    expect(platformOf({ os: 'linux', architecture: 'arm64', variant: '' })).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(platformOf({ os: 'linux', architecture: 'arm', variant: 'v6' })).toEqual({ os: 'linux', architecture: 'arm', variant: 'v6' });
    expect(platformOf({ os: 'linux' })).toBeUndefined();
  });
});

describe('fetch checks a served manifest through the OCI module', () => {
  const image = { registry: 'r', repository: 'a', manifest: { digest: D('m') }, config: manifest.config, layers: manifest.layers } as unknown as LockedImage;
  it('accepts the manifest the lock pins', () => {
    expect(() => checkManifestMatchesLock(JSON.stringify(manifest), image)).not.toThrow();
  });
  it.each([
    ['not JSON', '{', /expected an image manifest, got bytes that are not JSON/],
    ['JSON null (was a TypeError)', 'null', /expected an image manifest with config and layers, got an index or another document/],
    ['an index', JSON.stringify({ manifests: [] }), /got an index or another document/],
  ])('refuses %s with E_DIGEST_MISMATCH', (_name, text, message) => {
    expect(() => checkManifestMatchesLock(text, image)).toThrow(expect.objectContaining({ code: 'E_DIGEST_MISMATCH', message: expect.stringMatching(message) }));
  });
});
