import { CommandError } from '../errors.js';
import { findProgram } from '../util/process.js';
import { E_FETCHER_MISSING } from './errors.js';
import { createEngineFetcher } from './engine-fetcher.js';
import { createSkopeoFetcher } from './skopeo.js';
import type { FetcherName, ImageFetcher, ResolvedFetchConfig } from './types.js';

/** Which fetcher `auto` means on this machine: skopeo when installed, else docker, else podman. */
export async function detectFetcher(path = process.env.PATH ?? ''): Promise<FetcherName | undefined> {
  if (await findProgram('skopeo', path)) return 'skopeo';
  if (await findProgram('dockerd', path)) return 'docker';
  if (await findProgram('podman', path)) return 'podman';
  return undefined;
}

export async function createFetcher(config: ResolvedFetchConfig): Promise<ImageFetcher> {
  const name = config.fetcher === 'auto' ? await detectFetcher() : config.fetcher;
  switch (name) {
    case 'skopeo':
      return createSkopeoFetcher(config);
    case 'docker':
    case 'podman':
      return createEngineFetcher(name, config);
    default:
      throw new CommandError(
        E_FETCHER_MISSING,
        'no fetcher found: install skopeo (Debian: apt-get install skopeo), or docker.io or podman for --fetcher docker|podman',
      );
  }
}
