import type { Descriptor, LockedImage } from '../formats/index.js';
import { parseImageManifest } from '../formats/oci.js';
import { DigestMismatchError } from './errors.js';

export function imageLabel(image: LockedImage): string {
  return `${image.registry}/${image.repository}@${image.manifest.digest}`;
}

/**
 * The platform manifest must list exactly the lock's config and layers (digest, size, media
 * type, order): otherwise the lock and the registry disagree and nothing may be cached.
 */
export function checkManifestMatchesLock(manifestText: string, image: LockedImage): void {
  const what = `manifest of ${imageLabel(image)}`;
  const read = parseImageManifest(manifestText);
  if (read.problem?.kind === 'not-json') throw new DigestMismatchError(what, 'an image manifest', read.problem.message, { cause: read.problem.cause });
  if (read.problem) throw new DigestMismatchError(what, 'an image manifest with config and layers', 'an index or another document');
  const manifest = read.value;
  const describe = (d: Partial<Descriptor> | undefined) => `${d?.digest} (${d?.size} bytes, ${d?.mediaType})`;
  if (!sameDescriptor(manifest.config, image.config)) {
    throw new DigestMismatchError(`config in ${what}`, describe(image.config), describe(manifest.config));
  }
  if (manifest.layers.length !== image.layers.length) {
    throw new DigestMismatchError(`layer count in ${what}`, String(image.layers.length), String(manifest.layers.length));
  }
  image.layers.forEach((layer, i) => {
    if (!sameDescriptor(manifest.layers[i], layer)) {
      throw new DigestMismatchError(`layer ${i} in ${what}`, describe(layer), describe(manifest.layers[i]));
    }
  });
}

function sameDescriptor(a: Partial<Descriptor> | undefined, b: Descriptor): boolean {
  return a?.digest === b.digest && a.size === b.size && a.mediaType === b.mediaType;
}
