import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createReporter } from '../../../src/cli/output.js';

function stream(tty: boolean, columns?: number): PassThrough & { isTTY?: boolean; columns?: number; text(): string } {
  const s = new PassThrough() as PassThrough & { isTTY?: boolean; columns?: number; text(): string };
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  s.isTTY = tty;
  if (columns !== undefined) s.columns = columns;
  s.text = () => Buffer.concat(chunks).toString('utf8');
  return s;
}

describe('createReporter', () => {
  it('--json: one NDJSON object per event, progress and result', () => {
    const stdout = stream(false);
    const r = createReporter({ json: true, stdout, stderr: stream(false) });
    r.event({ event: 'a', message: 'hello' });
    r.progress({ event: 'p', current: 1, total: 2 });
    r.result({ ok: true });
    const lines = stdout.text().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toEqual([
      { type: 'event', event: 'a', message: 'hello' },
      { type: 'progress', event: 'p', current: 1, total: 2 },
      { type: 'result', ok: true },
    ]);
  });

  it('human, not a TTY: events as lines on stderr, no progress redraws', () => {
    const stderr = stream(false);
    const r = createReporter({ json: false, stdout: stream(false), stderr });
    r.progress({ event: 'p', message: 'copying', current: 1, total: 2 });
    r.event({ event: 'a', message: 'done' });
    expect(stderr.text()).toBe('done\n');
  });

  it.each([[0], [undefined], [80]])('human on a TTY with %s columns shows the progress text', (columns) => {
    const stderr = stream(true, columns);
    const r = createReporter({ json: false, stdout: stream(false), stderr });
    r.progress({ event: 'p', message: 'copying', current: 1, total: 4 });
    expect(stderr.text()).toContain('copying 25%');
  });
});
