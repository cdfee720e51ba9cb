import { RegistryError } from '../errors.js';
import { formatPlatform, type Descriptor, type LockedImage, type Platform } from '../formats/index.js';
import type { FetchedManifest, RegistryClient } from '../registry/client.js';
import { isImageManifestMediaType, isIndexMediaType } from '../formats/media-types.js';
import { configMatchesPlatform, describePlatforms, platformMatches } from '../registry/platform.js';
import { formatReference, type ImageReference, type Repository } from '../registry/reference.js';
import { parseJsonObject, platformOf, type RawDescriptor } from '../formats/oci.js';

/**
 * Pins one reference for one platform: the tag (or the pinned digest) to the index or
 * manifest digest, the index entry for the platform to its manifest, the manifest to its
 * config and layers. Every manifest and the config are verified against their digests;
 * the config's os/architecture must be the platform asked for.
 */

function invalid(repo: Repository, what: string, why: string): RegistryError {
  return new RegistryError('E_MANIFEST_INVALID', `${what} of ${repo.registry}/${repo.repository} is not a valid image manifest: ${why}`, {
    details: { registry: repo.registry, repository: repo.repository },
  });
}

function toDescriptor(repo: Repository, what: string, raw: RawDescriptor | undefined, fallbackMediaType?: string): Descriptor {
  const mediaType = typeof raw?.mediaType === 'string' ? raw.mediaType : fallbackMediaType;
  if (!raw || typeof raw.digest !== 'string' || !/^sha256:[a-f0-9]{64}$/.test(raw.digest)) throw invalid(repo, what, 'a descriptor has no sha256 digest');
  if (typeof raw.size !== 'number' || !Number.isSafeInteger(raw.size) || raw.size < 0) throw invalid(repo, what, `descriptor ${raw.digest} has no valid size`);
  if (!mediaType) throw invalid(repo, what, `descriptor ${raw.digest} has no media type`);
  return { mediaType, digest: raw.digest, size: raw.size };
}

function parseJson(repo: Repository, what: string, m: FetchedManifest): Record<string, unknown> {
  const read = parseJsonObject(m.bytes);
  if (read.problem) throw invalid(repo, what, `it is ${read.problem.message}`);
  return read.value;
}

function platformNotFound(ref: ImageReference, want: Platform, has: string[]): RegistryError {
  const list = has.length ? has.join(', ') : 'none declared';
  return new RegistryError(
    'E_PLATFORM_NOT_FOUND',
    `${formatReference(ref)} has no image for ${formatPlatform(want)}; it has: ${list}. Choose one of these with --platform or use another image`,
    { details: { reference: formatReference(ref), platform: formatPlatform(want), available: has } },
  );
}

export async function resolveImage(client: RegistryClient, ref: ImageReference, want: Platform): Promise<LockedImage> {
  const repo: Repository = { registry: ref.registry, repository: ref.repository };
  const top = await client.getManifest(repo, ref.digest ?? ref.tag!);
  let manifest: FetchedManifest;
  let platformFromIndex: Platform | undefined;
  if (isIndexMediaType(top.mediaType)) {
    const entries = (parseJson(repo, `index ${top.digest}`, top).manifests ?? []) as RawDescriptor[];
    if (!Array.isArray(entries)) throw invalid(repo, `index ${top.digest}`, '"manifests" is not a list');
    const withPlatform = entries.map((e) => ({ e, platform: platformOf(e.platform) }));
    const chosen = withPlatform.find((x) => x.platform && platformMatches(want, x.platform));
    if (!chosen) {
      throw platformNotFound(ref, want, describePlatforms(withPlatform.flatMap((x) => (x.platform ? [x.platform] : []))));
    }
    const desc = toDescriptor(repo, `index ${top.digest}`, chosen.e);
    manifest = await client.getManifest(repo, desc.digest);
    if (manifest.size !== desc.size) throw invalid(repo, `manifest ${desc.digest}`, `it is ${manifest.size} bytes, the index says ${desc.size}`);
    platformFromIndex = chosen.platform;
  } else if (isImageManifestMediaType(top.mediaType)) {
    manifest = top;
  } else {
    throw new RegistryError(
      'E_MANIFEST_UNSUPPORTED',
      `${formatReference(ref)} is a ${top.mediaType || 'manifest of unknown type'}; ctrbake reads OCI and Docker v2 schema 2 images and indexes: push the image again with a current tool`,
      { details: { reference: formatReference(ref), mediaType: top.mediaType } },
    );
  }
  if (!isImageManifestMediaType(manifest.mediaType)) throw invalid(repo, `manifest ${manifest.digest}`, `its media type is ${manifest.mediaType}`);
  const what = `manifest ${manifest.digest}`;
  const body = parseJson(repo, what, manifest);
  const config = toDescriptor(repo, what, body.config as RawDescriptor | undefined);
  if (!Array.isArray(body.layers)) throw invalid(repo, what, '"layers" is not a list');
  const layers = (body.layers as RawDescriptor[]).map((l) => toDescriptor(repo, what, l));

  const configBytes = await client.getBlobBytes(repo, config.digest);
  if (configBytes.length !== config.size) throw invalid(repo, `config ${config.digest}`, `it is ${configBytes.length} bytes, the manifest says ${config.size}`);
  const configJson = parseJsonObject(configBytes);
  if (configJson.problem?.kind === 'not-json') {
    throw new RegistryError('E_MANIFEST_INVALID', `config ${config.digest} of ${repo.registry}/${repo.repository} is not JSON`, { cause: configJson.problem.cause });
  }
  const configPlatform = platformOf(configJson.value);
  if (!configPlatform) throw invalid(repo, `config ${config.digest}`, 'it has no os/architecture');
  if (!configMatchesPlatform(want, configPlatform)) {
    if (!platformFromIndex) throw platformNotFound(ref, want, describePlatforms([configPlatform]));
    throw new RegistryError(
      'E_PLATFORM_MISMATCH',
      `${formatReference(ref)}: the index lists ${manifest.digest} as ${formatPlatform(platformFromIndex)} but its config says ${formatPlatform(configPlatform)}; the image was pushed wrongly, ask its publisher or pin another digest`,
      { details: { reference: formatReference(ref), manifest: manifest.digest, config: formatPlatform(configPlatform) } },
    );
  }
  return {
    reference: formatReference(ref),
    registry: ref.registry,
    repository: ref.repository,
    tag: ref.tag,
    indexDigest: top.digest,
    indexMediaType: top.mediaType,
    manifest: { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size },
    config,
    layers,
    platform: platformFromIndex ?? configPlatform,
  };
}
