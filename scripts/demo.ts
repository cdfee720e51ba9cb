/**
 * The demo behind `npm run demo`. The sample image is built here (busybox-static in a layer,
 * no Docker Hub) and pushed to a registry on 127.0.0.1; then the real CLI runs every step,
 * the registry is stopped, and the baked archive is loaded into a fresh private dockerd and
 * run with no network.
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { startDockerd } from '../src/engine/index.js';
import type { BakeManifest } from '../src/formats/index.js';
import { pushSampleImage, SAMPLE_OUTPUT } from '../devkit/fixture-images.js';
import { startRegistry } from '../devkit/registry.js';

const root = resolve(import.meta.dirname, '..');
const work = join(root, '.demo');
const cli = join(root, 'bin', 'ctrbake.js');

function step(text: string): void {
  process.stdout.write(`\n\x1b[1m== ${text}\x1b[0m\n`);
}

async function ctrbake(args: string[]): Promise<void> {
  process.stdout.write(`$ ctrbake ${args.join(' ')}\n`);
  await execa('node', [cli, ...args], { stdio: 'inherit', cwd: root });
}

async function main(): Promise<void> {
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const lock = join(work, 'ctrbake.lock.json');
  const cache = join(work, 'cache');
  const out = join(work, 'out');

  step('A registry on 127.0.0.1 with the sample image (built here, no Docker Hub)');
  const registry = await startRegistry();
  try {
    const sample = await pushSampleImage(registry);
    process.stdout.write(`pushed ${sample}\n`);

    step('1. lock: pin the tag to digests for linux/amd64');
    await ctrbake(['lock', sample, '--platform', 'linux/amd64', '--insecure-registry', registry.host, '-o', lock]);

    step('2. fetch: download into the content-addressed cache');
    await ctrbake(['fetch', '--lock', lock, '--cache', cache, '--insecure-registry', registry.host]);
  } finally {
    step('The registry is stopped: the bake is offline');
    await registry.close();
  }

  step('3. bake: a private dockerd loads the cache and saves one archive per image');
  await ctrbake(['bake', '--lock', lock, '--cache', cache, '--mode', 'archive', '--offline', '-o', out]);
  // The bake has listed its outputs: the demo does not print them again.
  const manifest = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as BakeManifest;

  step('4. on a "device": a fresh private dockerd loads the archive and runs it with --network none');
  const engine = await startDockerd({ storageDriver: 'overlay2' });
  try {
    const docker = ['-H', `unix://${engine.socketPath}`];
    for (const image of manifest.images) {
      await execa('docker', [...docker, 'load', '-i', join(out, image.archive!)], { stdio: 'inherit' });
      const run = await execa('docker', [...docker, 'run', '--rm', '--network', 'none', image.reference]);
      process.stdout.write(`container says: ${run.stdout}\n`);
      if (!run.stdout.includes(SAMPLE_OUTPUT)) throw new Error(`the sample printed ${JSON.stringify(run.stdout)}`);
    }
  } finally {
    await engine.stop();
  }
  step(`Done. Everything is in ${work}`);
}

main().catch((error: unknown) => {
  process.stderr.write(`demo failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
