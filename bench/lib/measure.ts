/**
 * How the pipeline bench measures a step: wall time (hrtime around the step), CPU time and peak
 * memory. Commands run under GNU time (`/usr/bin/time -f`): %U+%S is the CPU time of the
 * command and every descendant it reaped, %M the largest resident set of any single process
 * in that tree (ru_maxrss of children: a maximum, not a sum). A daemon the bench starts itself
 * (the alternatives' dockerd + containerd) is read from /proc before it stops: VmHWM and
 * utime+stime.
 */
import { spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';

export const GNU_TIME = '/usr/bin/time';

export interface StepCost {
  wallS: number;
  cpuS: number;
  /** KiB, largest single process. */
  peakRssKiB: number;
}

export const ZERO: StepCost = { wallS: 0, cpuS: 0, peakRssKiB: 0 };

export function addCost(a: StepCost, b: StepCost): StepCost {
  return { wallS: a.wallS + b.wallS, cpuS: a.cpuS + b.cpuS, peakRssKiB: Math.max(a.peakRssKiB, b.peakRssKiB) };
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Where GNU time writes its line (a scratch dir). */
  scratch: string;
  stdout?: 'ignore' | 'capture';
}

let counter = 0;

/** Runs argv under GNU time; throws with stderr on a non-zero exit. */
export async function timed(argv: string[], options: RunOptions): Promise<StepCost & { stdout: string }> {
  const timeFile = join(options.scratch, `time-${process.pid}-${counter++}.txt`);
  const start = process.hrtime.bigint();
  const child = spawn(GNU_TIME, ['-f', '%U %S %M', '-o', timeFile, ...argv], {
    env: options.env ?? process.env,
    ...(options.cwd ? { cwd: options.cwd } : {}),
    stdio: ['ignore', options.stdout === 'capture' ? 'pipe' : 'ignore', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8000)));
  const code = await new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c) => resolve(c ?? -1));
  });
  const wallS = Number(process.hrtime.bigint() - start) / 1e9;
  const line = (await readFile(timeFile, 'utf8').catch(() => '')).trim().split('\n').at(-1) ?? '';
  await rm(timeFile, { force: true });
  if (code !== 0) throw new Error(`${argv.join(' ')} exited with ${code}:\n${stderr}`);
  const [user, sys, rss] = line.split(' ').map(Number);
  return { wallS, cpuS: (user ?? 0) + (sys ?? 0), peakRssKiB: rss ?? 0, stdout };
}

/** A running process's peak RSS (KiB) and CPU seconds so far, from /proc. */
export async function procCost(pid: number): Promise<{ peakRssKiB: number; cpuS: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const hwm = Number(/^VmHWM:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[11], [12]: utime, stime in clock ticks (100 Hz on Linux)
  const cpuS = (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) / 100;
  return { peakRssKiB: hwm, cpuS };
}

/** Wall time of an in-process step (peak memory and CPU of the bench process itself are not attributed). */
export async function wall<T>(fn: () => Promise<T>): Promise<{ wallS: number; value: T }> {
  const start = process.hrtime.bigint();
  const value = await fn();
  return { wallS: Number(process.hrtime.bigint() - start) / 1e9, value };
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
