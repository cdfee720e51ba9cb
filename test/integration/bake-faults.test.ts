/**
 * Fault injection over the whole `ctrbake bake` CLI (issue #12): SIGINT, SIGTERM and SIGKILL
 * delivered at random points of real bakes, in archive mode and in store mode with
 * --squashfs. After every cut OUT is the old complete output or the new complete output
 * (file list and sha256 of every file), never a mix; no process, mount, staging dir or engine
 * dir is left (after SIGKILL: once the next run of the command restored OUT).
 *
 * Seeded: the seed is printed; CTRBAKE_FAULT_SEED replays a run, CTRBAKE_FAULT_COUNT sets the
 * cuts per signal and mode (default 1: `npm test` stays short; docs/bake.md has the long run).
 */
import { join } from 'node:path';
import { mkdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mountsUnder } from '../../src/engine/mounts.js';
import { processesMentioning } from '../../src/engine/processes.js';
import { prng, seedFrom } from '../../devkit/seeded-random.js';
import { prepareBakeInputs, type BakeInputs } from './bake-archive.helpers.js';
import { assertBuilt, bakeArgs, engineDirsOf, snapshot, stagingDirs, startCli } from './bake-cli.helpers.js';

const SEED = seedFrom('CTRBAKE_FAULT_SEED');
const COUNT = Number(process.env.CTRBAKE_FAULT_COUNT ?? 1);
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGKILL'] as const;
const EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

const random = prng(SEED);
console.log(`bake-faults: seed ${SEED}, ${COUNT} cut(s) per signal and mode; replay with CTRBAKE_FAULT_SEED=${SEED} CTRBAKE_FAULT_COUNT=${COUNT}`);

const MODES = [
  { name: 'archive', args: ['--mode', 'archive'] },
  { name: 'store --squashfs (engine path)', args: ['--mode', 'store', '--squashfs', '--builder', 'engine'] },
  { name: 'store --squashfs (native builder)', args: ['--mode', 'store', '--squashfs'] },
] as const;

type Snapshot = Record<string, string>;

let inputs: BakeInputs;
beforeAll(async () => {
  await assertBuilt(['src/cli/main.ts', 'src/cli/run.ts', 'src/bake/bake.ts', 'src/util/staged-output.ts']);
  inputs = await prepareBakeInputs();
}, 300_000);
afterAll(async () => {
  await inputs?.close();
});

/** Runs one bake to the end; returns how long it worked with its staging dir (in `parent`). */
async function bakeFully(lock: string, out: string, args: readonly string[], parent: string): Promise<number> {
  const run = startCli(bakeArgs(lock, inputs.cacheDir, out, args));
  let staged: number | undefined;
  const watch = setInterval(() => {
    if (staged === undefined) void stagingDirs(parent).then((d) => (staged ??= d.length > 0 ? Date.now() : undefined));
  }, 10);
  const r = await run.child;
  clearInterval(watch);
  expect(r.exitCode, r.stderr).toBe(0);
  expect(staged, 'the bake never had a staging dir').toBeDefined();
  return Date.now() - staged!;
}

async function noLeftovers(parent: string, pid: number): Promise<void> {
  expect(await stagingDirs(parent), 'staging dirs left').toEqual([]);
  expect(await processesMentioning(parent), 'processes left').toEqual([]);
  expect(await mountsUnder([parent]), 'mounts left').toEqual([]);
  expect(await engineDirsOf(pid), 'engine dirs left').toEqual([]);
}

describe.each(MODES)('bake $name: cut by signals at random points', ({ name, args }) => {
  const parent = () => join(inputs.work, name.replace(/\W+/g, '-'));
  const out = () => join(parent(), 'OUT');
  // Two complete outputs (amd64 lock, arm64 lock): every cut bakes OUT from one to the other.
  const outputs: { lock: string; files: Snapshot }[] = [];
  let duration = 0;

  beforeAll(async () => {
    await mkdir(parent(), { recursive: true });
    const ref = join(parent(), 'REF');
    duration = await bakeFully(inputs.lockArm64, ref, args, parent());
    outputs.push({ lock: inputs.lockArm64, files: (await snapshot(ref))! });
    duration = Math.min(duration, await bakeFully(inputs.lockAmd64, out(), args, parent()));
    outputs.push({ lock: inputs.lockAmd64, files: (await snapshot(out()))! });
    expect(outputs[0]!.files).not.toEqual(outputs[1]!.files);
  }, 600_000);

  const cuts = SIGNALS.flatMap((signal) => Array.from({ length: COUNT }, (_, i) => ({ signal, i, at: 0.05 + 0.75 * random() })));
  it.each(cuts)(`${name}: $signal cut #$i at $at of a bake: OUT old or new, never a mix; nothing left`, async ({ signal, at }) => {
    let from: (typeof outputs)[number] | undefined;
    let to: (typeof outputs)[number];
    let run: ReturnType<typeof startCli>;
    let r: Awaited<ReturnType<typeof startCli>['child']>;
    // A bake that ends before its cut point (the machine was faster this time) proves nothing:
    // it must have baked OUT completely; then the cut is tried again, earlier.
    for (let attempt = 0; ; attempt++) {
      const now = await snapshot(out());
      from = outputs.find((o) => JSON.stringify(o.files) === JSON.stringify(now));
      expect(from, 'OUT before the cut is one of the two complete outputs').toBeDefined();
      to = outputs.find((o) => o !== from)!;
      const delay = (duration * at) / 2 ** attempt;
      const started = Date.now();
      run = startCli(bakeArgs(to.lock, inputs.cacheDir, out(), args));
      // The cut lands inside real work: the bake is running, has reported, and its staging dir exists.
      // The cut point is counted from the staging dir's appearance: engine, images, store, commit.
      let stagedAt: number | undefined;
      const landed = await new Promise<{ event: unknown; ms: number } | undefined>((resolve) => {
        let busy = false;
        const timer = setInterval(async () => {
          if (busy) return;
          busy = true;
          try {
            if (run.child.exitCode !== null) {
              clearInterval(timer);
              resolve(undefined);
              return;
            }
            const staging = (await stagingDirs(parent())).length > 0;
            if (stagedAt === undefined) {
              if (staging) stagedAt = Date.now();
              return;
            }
            if (Date.now() - stagedAt < delay || run.lines.length === 0) return;
            // Gone again: the bake committed; a cut now would be after the work (tried again, earlier).
            if (!staging) {
              clearInterval(timer);
              resolve(undefined);
              return;
            }
            if (run.child.exitCode !== null) return;
            clearInterval(timer);
            run.child.kill(signal);
            resolve({ event: run.lines.at(-1)?.event, ms: Date.now() - started });
          } finally {
            busy = false;
          }
        }, 10);
      });
      r = await run.child;
      if (landed) {
        console.log(`bake-faults: ${name} ${signal} ${landed.ms} ms after the start, ${Math.round(delay)} ms into the work (last event ${String(landed.event)}): exit ${r.exitCode}`);
        break;
      }
      expect(r.exitCode, `a bake that ended before its cut failed: ${r.stderr}`).toBe(0);
      expect(await snapshot(out())).toEqual(to.files);
      expect(attempt, `the bake ended before the cut ${attempt + 1} times (cut at ${Math.round(delay)} ms)`).toBeLessThan(3);
    }

    const after = await snapshot(out());
    if (signal === 'SIGKILL') {
      // Killed between the commit's two renames OUT is missing: the next run restores it.
      if (after !== undefined) expect([from!.files, to!.files]).toContainEqual(after);
      const next = startCli(bakeArgs(to!.lock, inputs.cacheDir, out(), args));
      const nr = await next.child;
      expect(nr.exitCode, nr.stderr).toBe(0);
      if (after === undefined) expect(next.lines.some((l) => l.event === 'bake.recovered' && l.restored !== 'none')).toBe(true);
      expect(await snapshot(out())).toEqual(to!.files);
    } else {
      if (r!.exitCode === 0) {
        // The signal came after the commit: the bake completed.
        expect(run!.lines.at(-1)).toMatchObject({ type: 'result' });
        expect(after).toEqual(to!.files);
      } else {
        expect(r!.exitCode, r!.stderr).toBe(EXIT[signal]);
        expect(run!.lines.at(-1)).toMatchObject({ type: 'error', code: 'E_INTERRUPTED' });
        expect([from!.files, to!.files]).toContainEqual(after);
      }
    }
    await noLeftovers(parent(), run!.child.pid!);
  });
});
