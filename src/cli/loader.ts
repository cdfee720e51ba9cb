import type { Argv, CommandModule } from 'yargs';
import { generateLoader, type LoaderResult } from '../loader/generate.js';
import { LOADER_INITS, LOADER_LAYOUTS, type LoaderInit, type LoaderLayout } from '../loader/options.js';
import { SQUASHFS_BACKENDS, SQUASHFS_COMPRESSIONS, type SquashfsBackendName, type SquashfsCompression } from '../squashfs/index.js';
import { addExamples } from './examples.js';
import { runCommand, type GlobalArgs } from './run.js';

interface LoaderArgs extends GlobalArgs {
  manifest: string;
  layout: LoaderLayout;
  init: LoaderInit;
  output: string;
  payloadDir?: string;
  dataDir?: string;
  dataRoot?: string;
  storeMount?: string;
  keepArchives: boolean;
  verifyOnBoot: boolean;
  spaceMargin?: number;
  prepareOrder?: number;
  loadOrder?: number;
  squashfsBackend?: SquashfsBackendName;
  compression?: SquashfsCompression;
}

function human(result: LoaderResult): string {
  return `${result.outDir}: ${result.files.length} file(s) for the ${result.layout} layout (${result.engine}, ${result.init}); copy it over the rootfs`;
}

export const loaderCommand: CommandModule<GlobalArgs, LoaderArgs> = {
  command: 'loader',
  describe: 'Write the device side (payload, loader script, init units, engine config) as a rootfs overlay directory',
  builder: (y: Argv<GlobalArgs>) =>
    addExamples(
    y
      .option('manifest', { type: 'string', demandOption: true, describe: 'OUT/manifest.json of a bake (its outputs are read from beside it)' })
      .option('layout', { choices: LOADER_LAYOUTS, demandOption: true, describe: 'how the device gets the images (docs/loader.md)' })
      .option('init', { choices: LOADER_INITS, demandOption: true, describe: 'the init system that runs the loader' })
      .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'rootfs overlay directory to write (replaced)' })
      .option('payload-dir', { type: 'string', describe: 'read-only payload dir on the device (default /usr/share/ctrbake)' })
      .option('data-dir', { type: 'string', describe: 'writable loader state on the device (default /var/lib/ctrbake)' })
      .option('data-root', { type: 'string', describe: 'engine data-root (default /var/lib/docker; podman /var/lib/containers/storage)' })
      .option('store-mount', { type: 'string', describe: 'mount point of the store SquashFS (default PAYLOAD/store)' })
      .option('keep-archives', { type: 'boolean', default: true, describe: 'archive: keep archives after loading (--no-keep-archives needs a writable payload dir)' })
      .option('verify-on-boot', { type: 'boolean', default: false, describe: 'archive: after loading, save every image at each boot (re-reads all layers) and reload damaged ones' })
      .option('space-margin', { type: 'number', describe: 'archive: KiB to keep free beyond twice the archives (default 16384)' })
      .option('prepare-order', { type: 'number', describe: 'sysvinit/busybox: start number of the prepare script (19 / 59)' })
      .option('load-order', { type: 'number', describe: 'sysvinit/busybox: start number of the load script (21 / 61)' })
      .option('squashfs-backend', { choices: SQUASHFS_BACKENDS, describe: 'store layouts without a baked .sqfs: SquashFS backend (default builtin)' })
      .option('compression', { choices: SQUASHFS_COMPRESSIONS, describe: 'store layouts without a baked .sqfs: compression (default gzip)' }) as unknown as Argv<LoaderArgs>,
      [
        { what: 'the archive layout under systemd', lines: ['$0 loader --manifest out/manifest.json --layout archive', '--init systemd -o overlay'] },
      ],
    ) as unknown as Argv<LoaderArgs>,
  handler: (argv) =>
    runCommand<LoaderResult>(
      argv,
      async ({ reporter, signal }) =>
        generateLoader({
          manifestPath: argv.manifest,
          layout: argv.layout,
          init: argv.init,
          outDir: argv.output,
          ...(argv.payloadDir ? { payloadDir: argv.payloadDir } : {}),
          ...(argv.dataDir ? { dataDir: argv.dataDir } : {}),
          ...(argv.dataRoot ? { dataRoot: argv.dataRoot } : {}),
          ...(argv.storeMount ? { storeMount: argv.storeMount } : {}),
          keepArchives: argv.keepArchives,
          verifyOnBoot: argv.verifyOnBoot,
          ...(argv.spaceMargin !== undefined ? { spaceMarginKiB: argv.spaceMargin } : {}),
          startOrder: {
            ...(argv.prepareOrder !== undefined ? { prepare: argv.prepareOrder } : {}),
            ...(argv.loadOrder !== undefined ? { load: argv.loadOrder } : {}),
          },
          ...(argv.squashfsBackend ? { squashfsBackend: argv.squashfsBackend } : {}),
          ...(argv.compression ? { compression: argv.compression } : {}),
          reporter,
          signal,
        }),
      human,
    ),
};
