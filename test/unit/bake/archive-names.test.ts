import { describe, expect, it } from 'vitest';
import { archiveFileName, imageTag } from '../../../src/bake/archive.js';
import type { LockedImage } from '../../../src/formats/index.js';

describe('archive names', () => {
  const image = (over: Partial<LockedImage>): LockedImage =>
    ({ reference: 'x', registry: '127.0.0.1:5000', repository: 'ctrbake/sample', tag: '1.0', manifest: { digest: `sha256:${'a'.repeat(64)}` }, ...over }) as LockedImage;

  it('tags by registry/repository:tag, and not at all for digest-only references', () => {
    expect(imageTag(image({}))).toBe('127.0.0.1:5000/ctrbake/sample:1.0');
    expect(imageTag(image({ tag: null }))).toBeUndefined();
  });

  it('flattens the reference into a file name, unique within a bake', () => {
    const taken = new Set<string>();
    expect(archiveFileName(image({}), 'docker-archive', taken)).toBe('127.0.0.1_5000_ctrbake_sample_1.0.tar');
    expect(archiveFileName(image({}), 'docker-archive', taken)).toBe('127.0.0.1_5000_ctrbake_sample_1.0-2.tar');
    expect(archiveFileName(image({ registry: 'docker.io', repository: 'library/busybox', tag: null }), 'oci-archive', taken)).toBe(`docker.io_library_busybox_sha256_${'a'.repeat(64)}.oci.tar`);
  });
});
