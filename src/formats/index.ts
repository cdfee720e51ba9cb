/**
 * The files steps use to talk to each other. Their formats are public and documented
 * in docs/lock.md (lock), docs/fetch.md (cache), docs/bake.md (manifest.json) and
 * docs/report.md (layers.json); bump the version field on any incompatible change.
 */

export type { Descriptor, LockedImage, LockFile, Platform } from './lock.js';
import type { Platform } from './lock.js';

export type { ArchiveFormat, BakeManifest, BakeMode, EngineName, TargetEngine, ManifestImage, ManifestLayer, OutputFile } from './manifest.js';

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}
