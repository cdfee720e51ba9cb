/**
 * Rule: the first-boot size model matches what a device writes. Each layout (docker: archive,
 * overlay-vfs, split, copy; podman: archive, podman-ro) is baked from the benchmark's image set
 * and booted once on the simulated device (systemd init, a private dockerd 20.10 or podman
 * 4.3, an ext4 data partition with 4 KiB blocks); the KiB the boot wrote to the data partition
 * (lifetime_write_kbytes after a sync, the engine up and answering) must be within 10 % of
 * the report's `firstBoot.writtenBytes` for that layout.
 *
 * Image set: bench/lib/image-set.ts at CTRBAKE_SIZE_MODEL_SCALE (default 0.1: three images, seven
 * layers with one shared base, ~2,500 files, ~29 MiB of files; ~6 min). The full set
 * (scale 1: ~260 MiB, ~9,000 files; ~23 min): `CTRBAKE_SIZE_MODEL_SCALE=1 npx vitest run
 * test/integration/size-model.test.ts`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { report } from '../../src/report/report.js';
import { setupSizeModelFixture, SIZE_MODEL_CASES, type SizeModelFixture } from './size-model-setup.js';

const TOLERANCE = 0.1;
const scale = Number(process.env.CTRBAKE_SIZE_MODEL_SCALE ?? '0.1');
if (!(scale > 0 && scale <= 4)) throw new Error(`CTRBAKE_SIZE_MODEL_SCALE must be a number in (0, 4], got ${JSON.stringify(process.env.CTRBAKE_SIZE_MODEL_SCALE)}`);
// Room per case: a bake, a report and a boot of the whole set.
const CASE_TIMEOUT = Math.round((240 + 900 * scale) * 1000);

let f: SizeModelFixture;

beforeAll(async () => {
  f = await setupSizeModelFixture(scale);
}, CASE_TIMEOUT);

afterAll(async () => {
  await f?.dispose();
});

describe(`first-boot model against bytes written on the device (image set at scale ${scale})`, () => {
  it.each(SIZE_MODEL_CASES.map((c) => c.id))(
    '%s: model within 10 %% of the bytes the first boot wrote',
    async (id) => {
      const c = SIZE_MODEL_CASES.find((x) => x.id === id)!;
      const manifestPath = await f.bake(c);
      const r = await report({ manifestPath, cacheDir: f.cacheDir, layout: c.layout });
      const measuredKiB = await f.firstBoot(c, manifestPath);
      const modelKiB = r.firstBoot.writtenBytes / 1024;
      const error = (modelKiB - measuredKiB) / measuredKiB;
      process.stderr.write(`size model: ${c.id}: model ${modelKiB.toFixed(0)} KiB, measured ${measuredKiB} KiB, error ${(100 * error).toFixed(1)} %\n`);
      expect(r.firstBoot.engine).toBe(c.engine);
      expect(Math.abs(error), `${c.id}: model ${modelKiB.toFixed(0)} KiB against ${measuredKiB} KiB written (items: ${r.firstBoot.items.map((i) => `${i.name} ${i.bytes}`).join(', ')})`).toBeLessThanOrEqual(TOLERANCE);
    },
    CASE_TIMEOUT,
  );
});
