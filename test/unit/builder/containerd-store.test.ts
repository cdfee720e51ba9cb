import { describe, expect, it } from 'vitest';
import { containerdMetaDb, goTimeBinary, goVarint, planContainerdStore } from '../../../src/builder/containerd-store.js';
import { readBolt, type BoltBucket } from '../../../src/formats/bbolt.js';
import type { LockFile, LockedImage } from '../../../src/formats/index.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

function image(name: string, config: string, layers: string[]): LockedImage {
  return {
    reference: `127.0.0.1:5000/${name}:1.0`,
    registry: '127.0.0.1:5000',
    repository: name,
    tag: '1.0',
    indexDigest: d(config === 'c' ? 'm' : 'n'),
    indexMediaType: MANIFEST,
    manifest: { mediaType: MANIFEST, digest: d(config === 'c' ? 'm' : 'n'), size: 400 },
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: d(config), size: 500 },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d(l), size: 1000 })),
    platform: { os: 'linux', architecture: 'amd64' },
  };
}

const lock: LockFile = { lockVersion: 1, platform: { os: 'linux', architecture: 'amd64' }, images: [image('one', 'c', ['a', 'b']), image('two', 'e', ['a'])] };

describe('containerd store records', () => {
  it('Go encodings: varint as binary.PutVarint, time as time.MarshalBinary of UTC (bytes read from containerd 1.6\'s meta.db)', () => {
    expect(goVarint(3)).toEqual(Buffer.from([6]));
    expect(goVarint(1052498)).toEqual(Buffer.from('a4bd8001', 'hex'));
    expect(goVarint(405)).toEqual(Buffer.from('aa06', 'hex'));
    expect(goTimeBinary(0)).toEqual(Buffer.from('010000000e7791f70000000000ffff', 'hex'));
  });

  it('the manifest holds the GC references to its config and layers; a shared layer is one blob with both sources', () => {
    const plan = planContainerdStore({ lock, namespace: 'default' });
    expect(plan.blobs.map((b) => b.descriptor.digest)).toEqual([d('a'), d('b'), d('c'), d('e'), d('m'), d('n')]);
    const manifest = plan.blobs.find((b) => b.descriptor.digest === d('m'))!;
    expect(manifest.labels).toEqual({
      'containerd.io/distribution.source.127.0.0.1': 'one',
      'containerd.io/gc.ref.content.config': d('c'),
      'containerd.io/gc.ref.content.l.0': d('a'),
      'containerd.io/gc.ref.content.l.1': d('b'),
    });
    expect(plan.blobs.find((b) => b.descriptor.digest === d('a'))!.labels).toEqual({ 'containerd.io/distribution.source.127.0.0.1': 'one,two' });
  });

  it('meta.db: v1/version 3, the namespace\'s blob and image records; k8s.io adds the CRI names and label', () => {
    const db = readBolt(containerdMetaDb(planContainerdStore({ lock, namespace: 'default' }), 'default', 0));
    const v1 = db.v1 as BoltBucket;
    expect(v1.version).toEqual(Buffer.from([6]));
    const ns = v1.default as BoltBucket;
    expect(Object.keys(ns).sort()).toEqual(['content', 'images', 'leases']);
    const img = (ns.images as BoltBucket)['127.0.0.1:5000/one:1.0'] as BoltBucket;
    expect((img.target as BoltBucket).digest).toEqual(Buffer.from(d('m')));
    expect(img.labels).toBeUndefined();
    const k8s = readBolt(containerdMetaDb(planContainerdStore({ lock, namespace: 'k8s.io' }), 'k8s.io', 0));
    const names = Object.keys(((k8s.v1 as BoltBucket)['k8s.io'] as BoltBucket).images as BoltBucket).sort();
    expect(names).toEqual(['127.0.0.1:5000/one:1.0', '127.0.0.1:5000/one@' + d('m'), '127.0.0.1:5000/two:1.0', '127.0.0.1:5000/two@' + d('n'), d('c'), d('e')].sort());
  });
});
