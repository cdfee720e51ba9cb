/**
 * First boot per loader layout on the simulated device (devkit/device.ts), in one run:
 * time from power-on (namespace + data partition mount) to the first container's output, and
 * KiB written to the data partition by that boot (counted at unmount, after the first
 * container ran); ratios against the archive layout of the same
 * engine. Run as root: `npm run bench -- firstboot` (CTRBAKE_BENCH_RUNS, default 3). The loader
 * tests' fixture images (~3 MiB): a quick check; bench/pipeline.ts boots the same layouts on
 * the realistic image set.
 */
import { LAYOUT_CASES as CASES, setupLoaderFixture } from '../devkit/device-setup.js';
import { SimDevice } from '../devkit/device.js';

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const runs = Number(process.env.CTRBAKE_BENCH_RUNS ?? 3);
const f = await setupLoaderFixture();
const results = new Map<string, { ms: number; kib: number }>();
try {
  for (const c of CASES) {
    const manifest = await f.bake('A', c.mode, { engine: c.engine, ...(c.storageDriver ? { storageDriver: c.storageDriver } : {}) });
    const overlay = await f.loader(manifest, { layout: c.layout, init: 'systemd', spaceMarginKiB: 1024 });
    const ms: number[] = [];
    const kib: number[] = [];
    for (let i = 0; i < runs; i++) {
      const d = await SimDevice.create({ overlayDir: overlay, dataSizeMiB: 128 });
      try {
        const start = process.hrtime.bigint();
        const boot = await d.boot({ init: 'systemd' });
        if (boot.failure) throw new Error(`${c.id}: boot failed at ${boot.failure.name}: ${boot.failure.stderr}`);
        const r = await d.runImage([f.images.sample]);
        if (r.exitCode !== 0) throw new Error(`${c.id}: the first container failed: ${String(r.all)}`);
        ms.push(Number(process.hrtime.bigint() - start) / 1e6);
        // What the boot wrote, flushed: the layout's own cost (a --rm container's files may
        // be deleted before they ever reach the disk, so they are not a fair measure).
        await d.shutdown();
        kib.push(d.lastBootKiB ?? NaN);
      } finally {
        await d.dispose();
      }
    }
    results.set(c.id, { ms: median(ms), kib: median(kib) });
    process.stderr.write(`${c.id}: ${median(ms).toFixed(0)} ms, ${median(kib)} KiB\n`);
  }
} finally {
  await f.dispose();
}

console.log(`first boot to the first running container, median of ${runs} (fixtures: sample + fidelity)`);
console.log('layout               time ms  x archive   written KiB  x archive');
for (const c of CASES) {
  const r = results.get(c.id)!;
  const base = results.get(`${c.engine} archive`)!;
  console.log(
    `${c.id.padEnd(20)} ${r.ms.toFixed(0).padStart(7)}  ${(r.ms / base.ms).toFixed(2).padStart(9)}   ${String(r.kib).padStart(11)}  ${(r.kib / base.kib).toFixed(3).padStart(9)}`,
  );
}
