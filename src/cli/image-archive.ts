import { ConfigError } from '../errors.js';
import {
  mergeImageLocks,
  unpackImageArchive,
  verifyImageArchive,
  writeImageArchive,
  type ImageArchiveTarget,
} from '../fetch/image-archive.js';
import { defineCommand } from './command.js';

export const IMAGE_ARCHIVE_ACTIONS = ['write', 'verify', 'unpack', 'merge-locks'] as const;
type Action = (typeof IMAGE_ARCHIVE_ACTIONS)[number];

/** What one action did: the files it wrote or checked. */
export interface ImageArchiveCommandResult {
  action: Action;
  /** write, verify, unpack: the archive. */
  archive?: string;
  reference?: string;
  platform?: string;
  /** verify, unpack: the blobs the archive holds (all re-hashed). */
  blobs?: number;
  /** unpack: the image's lock; merge-locks: the merged lock. */
  lock?: string;
  /** merge-locks: images in the merged lock. */
  images?: number;
}

function need<T>(value: T | undefined, flag: string, action: Action): T {
  if (value === undefined || value === '') throw new ConfigError('E_USAGE', `ctrbake image-archive ${action} needs ${flag}; see \`ctrbake image-archive --help\``);
  return value;
}

function human(r: ImageArchiveCommandResult): string {
  switch (r.action) {
    case 'write':
      return `wrote ${r.archive} (${r.reference} for ${r.platform})`;
    case 'verify':
      return `${r.archive}: ${r.reference} for ${r.platform}, ${r.blobs} blob(s) intact`;
    case 'unpack':
      return `${r.archive}: ${r.blobs} blob(s) verified into the cache; lock ${r.lock}`;
    case 'merge-locks':
      return `wrote ${r.lock} (${r.images} image(s))`;
  }
}

export const imageArchiveCommand = defineCommand({
  command: 'image-archive <action> [locks..]',
  describe: 'The BitBake DL_DIR file of one image (docs/yocto.md): write it from a one-image lock and a cache, verify it (every blob re-hashed, the lock checked against the reference and platform), unpack it into a cache, merge the unpacked locks',
  options: (y) =>
    y
      .positional('action', { choices: IMAGE_ARCHIVE_ACTIONS, demandOption: true, describe: 'write | verify | unpack | merge-locks' })
      .positional('locks', { type: 'string', array: true, describe: 'merge-locks: the one-image locks to merge' })
      .options({
        archive: { alias: 'a', type: 'string', describe: 'the archive file (write: created atomically)' },
        reference: { type: 'string', describe: 'write, verify, unpack: the normalized reference the archive must hold (REGISTRY/REPOSITORY[:TAG]@sha256:...)' },
        platform: { type: 'string', describe: 'write, verify, unpack: the platform the archive must hold (OS/ARCH[/VARIANT])' },
        lock: { type: 'string', describe: 'write: the lock of the one image (from `ctrbake lock`)' },
        cache: { type: 'string', describe: 'write: the cache the image was fetched into (`ctrbake fetch --cache`)' },
        dest: { type: 'string', describe: 'unpack: blobs go to DEST/cache, the lock to DEST/locks/<archive name>.lock.json' },
        output: { alias: 'o', type: 'string', describe: 'merge-locks: the merged lock file' },
      }),
  examples: [
    { what: 'write the DL_DIR file of one fetched image', lines: ['$0 image-archive write -a img.tar --reference REF', '  --platform linux/arm64 --lock one.lock.json --cache cache'] },
    { what: 'check a file from a mirror before using it', lines: ['$0 image-archive verify -a img.tar --reference REF', '  --platform linux/arm64'] },
    { what: 'one lock for the bake from the unpacked images', lines: ['$0 image-archive merge-locks -o ctrbake.lock.json', '  work/locks/*.lock.json'] },
  ],
  run: async (argv): Promise<ImageArchiveCommandResult> => {
    const action = argv.action;
    if (action === 'merge-locks') {
      const out = need(argv.output, '-o FILE', action);
      const merged = await mergeImageLocks(argv.locks ?? [], out);
      return { action, lock: out, images: merged.images.length };
    }
    const archive = need(argv.archive, '--archive FILE', action);
    const target: ImageArchiveTarget = { reference: need(argv.reference, '--reference REF', action), platform: need(argv.platform, '--platform OS/ARCH', action) };
    if (action === 'write') {
      await writeImageArchive(archive, target, need(argv.lock, '--lock FILE', action), need(argv.cache, '--cache DIR', action));
      return { action, archive, ...target };
    }
    if (action === 'verify') {
      const { blobs } = await verifyImageArchive(archive, target);
      return { action, archive, ...target, blobs: Object.keys(blobs).length };
    }
    const dest = need(argv.dest, '--dest DIR', action);
    const { lockPath, blobs } = await unpackImageArchive(archive, target, dest);
    return { action, archive, ...target, lock: lockPath, blobs: Object.keys(blobs).length };
  },
  human,
});
