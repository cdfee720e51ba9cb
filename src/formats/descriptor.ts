/** The OCI building blocks every format names: a platform and a content descriptor. */

/** A target platform as OCI writes it (the lock's, an index entry's, a config's). */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** An OCI content descriptor: what a blob is, its digest and size. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}
