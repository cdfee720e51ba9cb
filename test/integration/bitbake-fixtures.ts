/**
 * Images for the BitBake checks, on a real registry on 127.0.0.1: the fixture images pinned
 * by digest, plus `ctrbake/sample:2.0`, a second version of the sample repository with other
 * content (a digest change of "the same image").
 *
 * Used by test/integration/bitbake-tasks.test.ts and, through `serve`, by
 * scripts/bitbake-check.sh:
 *   npx vite-node test/integration/bitbake-fixtures.ts -- serve OUT.json
 * writes the references to OUT.json and keeps the registry up until SIGTERM/SIGINT.
 */
import { writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import { pushFixtureImages, type FixtureImages } from '../../devkit/fixture-images.js';
import { startRegistry, type TestRegistry } from '../../devkit/registry.js';

export interface BitbakeFixtures {
  registry: TestRegistry;
  host: string;
  images: FixtureImages;
  /** HOST/ctrbake/sample:1.0@sha256:... (linux/amd64, prints SAMPLE_OUTPUT). */
  sample: string;
  /** HOST/ctrbake/sample:2.0@sha256:... (the fidelity image's content under the sample repository). */
  sampleV2: string;
  /** HOST/ctrbake/multi:1.0@sha256:<index> (linux/amd64 and linux/arm64/v8). */
  multi: string;
  close(): Promise<void>;
}

export async function startBitbakeFixtures(): Promise<BitbakeFixtures> {
  const registry = await startRegistry();
  try {
    const images = await pushFixtureImages(registry);
    const host = registry.host;
    await execa('skopeo', [
      'copy', '--quiet', '--preserve-digests', '--src-tls-verify=false', '--dest-tls-verify=false',
      `docker://${images.fidelity}`, `docker://${host}/ctrbake/sample:2.0`,
    ]);
    return {
      registry,
      host,
      images,
      sample: `${images.sample}@${images.sampleImage.manifest.digest}`,
      sampleV2: `${host}/ctrbake/sample:2.0@${images.fidelityImage.manifest.digest}`,
      multi: `${images.multi}@${images.multiIndex.digest}`,
      close: () => registry.close(),
    };
  } catch (error) {
    await registry.close();
    throw error;
  }
}

async function serve(outFile: string): Promise<void> {
  const fixtures = await startBitbakeFixtures();
  const { host, sample, sampleV2, multi } = fixtures;
  await writeFile(outFile, `${JSON.stringify({ host, sample, sampleV2, multi }, null, 2)}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await fixtures.close();
}

const args = process.argv.slice(2).filter((a) => a !== '--');
if (args[0] === 'serve' && args[1]) {
  serve(args[1]).then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`bitbake-fixtures: ${error instanceof Error ? error.stack : String(error)}\n`);
      process.exit(1);
    },
  );
}
