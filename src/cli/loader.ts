import { generateLoader, type LoaderResult } from '../loader/generate.js';
import { LOADER_INITS, LOADER_LAYOUTS } from '../loader/options.js';
import { SQUASHFS_BACKENDS, SQUASHFS_COMPRESSIONS } from '../squashfs/index.js';
import { defineCommand, givenOnly } from './command.js';
import { DEVICE_DIR_OPTIONS } from './options.js';

function human(result: LoaderResult): string {
  return `${result.outDir}: ${result.files.length} file(s) for the ${result.layout} layout (${result.engine}, ${result.init}); copy it over the rootfs`;
}

export const loaderCommand = defineCommand({
  command: 'loader',
  describe: 'Write the device side (payload, loader script, init units, engine config) as a rootfs overlay directory',
  options: (y) =>
    y.options({
      manifest: { type: 'string', demandOption: true, describe: 'OUT/manifest.json of a bake (its outputs are read from beside it)' },
      layout: { choices: LOADER_LAYOUTS, demandOption: true, describe: 'how the device gets the images (docs/loader.md)' },
      init: { choices: LOADER_INITS, demandOption: true, describe: 'the init system that runs the loader' },
      output: { alias: 'o', type: 'string', demandOption: true, describe: 'rootfs overlay directory to write (replaced)' },
      ...DEVICE_DIR_OPTIONS,
      'data-root': { type: 'string', describe: 'engine data-root (default /var/lib/docker; podman /var/lib/containers/storage)' },
      'store-mount': { type: 'string', describe: 'mount point of the store SquashFS (default PAYLOAD/store)' },
      'keep-archives': { type: 'boolean', default: true, describe: 'archive: keep archives after loading (--no-keep-archives needs a writable payload dir)' },
      'verify-on-boot': { type: 'boolean', default: false, describe: 'archive: after loading, save every image at each boot (re-reads all layers) and reload damaged ones' },
      'space-margin': { type: 'number', describe: 'archive: KiB to keep free beyond twice the archives (default 16384)' },
      'prepare-order': { type: 'number', describe: 'sysvinit/busybox: start number of the prepare script (19 / 59)' },
      'load-order': { type: 'number', describe: 'sysvinit/busybox: start number of the load script (21 / 61)' },
      'squashfs-backend': { choices: SQUASHFS_BACKENDS, describe: 'store layouts without a baked .sqfs: SquashFS backend (default builtin)' },
      compression: { choices: SQUASHFS_COMPRESSIONS, describe: 'store layouts without a baked .sqfs: compression (default gzip)' },
    }),
  examples: [{ what: 'the archive layout under systemd', lines: ['$0 loader --manifest out/manifest.json --layout archive', '--init systemd -o overlay'] }],
  run: (argv, { reporter, signal }) =>
    generateLoader({
      manifestPath: argv.manifest,
      layout: argv.layout,
      init: argv.init,
      outDir: argv.output,
      keepArchives: argv.keepArchives,
      verifyOnBoot: argv.verifyOnBoot,
      startOrder: givenOnly({ prepare: argv.prepareOrder, load: argv.loadOrder }),
      ...givenOnly({
        payloadDir: argv.payloadDir,
        dataDir: argv.dataDir,
        dataRoot: argv.dataRoot,
        storeMount: argv.storeMount,
        spaceMarginKiB: argv.spaceMargin,
        squashfsBackend: argv.squashfsBackend,
        compression: argv.compression,
      }),
      reporter,
      signal,
    }),
  human,
});
