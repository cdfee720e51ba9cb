import type { Reporter } from '../util/reporter.js';
import type { LockedImage } from '../formats/index.js';
import type { AuthFile } from './auth.js';
import type { RetryPolicy } from '../util/retry.js';

export type FetcherName = 'skopeo' | 'docker' | 'podman';
export type FetcherChoice = 'auto' | FetcherName;

/** The frozen configuration every fetcher receives (made once by resolveFetchConfig). */
export interface ResolvedFetchConfig {
  cacheDir: string;
  fetcher: FetcherChoice;
  auth?: AuthFile;
  /** Strings scrubbed from any external tool output ctrbake shows (see auth.ts). */
  secrets: readonly string[];
  /** host:port of registries spoken to over plain HTTP / without TLS verification. */
  insecureRegistries: ReadonlySet<string>;
  retry: RetryPolicy;
  reporter: Reporter;
  signal?: AbortSignal;
}

/** 'index': the image index the lock's tag resolved to (multi-platform images). */
export type BlobKind = 'index' | 'manifest' | 'config' | 'layer';

export interface StoredBlob {
  kind: BlobKind;
  /** The digest the blob is stored under (for an uncompressed layer: its diff_id). */
  digest: string;
  size: number;
  /** 'stored': this run moved it into blobs/; 'existed': a verified copy was already there. */
  outcome: 'stored' | 'existed';
  /** Layers only: stored uncompressed under the diff_id instead of the published digest. */
  uncompressed?: boolean;
}

export interface ImageFetchOutcome {
  blobs: StoredBlob[];
  /** False when the engine could not give the platform manifest's original bytes. */
  manifestCached: boolean;
}

/** One way of getting an image's blobs into the cache. */
export interface ImageFetcher {
  readonly name: FetcherName;
  /** Downloads `image` and moves every verified blob into the cache. */
  fetchImage(image: LockedImage): Promise<ImageFetchOutcome>;
  /** Releases what the fetcher started (engines, temp dirs); idempotent. */
  close(): Promise<void>;
}
