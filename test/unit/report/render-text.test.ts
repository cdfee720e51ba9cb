/**
 * Text tables stay readable at 120 columns (issue 12, rule 6): with long references, long
 * image lists and long duplicate paths no line is wider than 120 characters, so a terminal
 * never wraps a row, and nothing is cut: every cell's text is still in the output.
 */
import { describe, expect, it } from 'vitest';
import type { DiffResult } from '../../../src/report/diff.js';
import { renderDiffText, table } from '../../../src/report/render-text.js';

const longRef = (n: number) => `registry.internal.example.com:5000/platform-team/edge-gateway-service-${n}:2024.11.3-build.1234`;
const words = (text: string) => text.split(/\s+/).filter(Boolean);

function expectFits(text: string, width = 120): void {
  const over = text.split('\n').filter((l) => l.length > width);
  expect(over, `lines longer than ${width}`).toEqual([]);
}

describe('text tables at 120 columns', () => {
  const cases: [string, string[], string[][], boolean[]][] = [
    ['images with long references', ['image', 'compressed', 'unpacked', 'unique unpacked', 'layers'], [0, 1, 2].map((n) => [longRef(n), '12.3 MiB', '40.1 MiB', '1.2 MiB', '7']), [false, true, true, true, true]],
    ['a layer shared by many images', ['shared layer', 'compressed', 'unpacked', 'images'], [['0123456789ab', '28.0 MiB', '80.4 MiB', [0, 1, 2, 3].map(longRef).join(', ')]], [false, true, true, false]],
    [
      'duplicate files in deep paths',
      ['content', 'size', 'wasted', 'where'],
      [['abcdef012345', '1.0 MiB', '3.0 MiB', [0, 1, 2, 3].map((n) => `0123456789a${n}:/usr/lib/python3.11/site-packages/some_vendor_package/_vendored/data/file-${n}.bin`).join(' ')]],
      [false, true, true, false],
    ],
    ['a path with no space longer than a line', ['item', 'bytes', 'note'], [['layer', '4 KiB', `/var/lib/docker/${'x'.repeat(200)}`]], [false, true, false]],
  ];

  it.each(cases)('%s: no line over 120 columns, every word kept', (_name, headers, rows, align) => {
    const text = table(headers, rows, align);
    expectFits(text);
    const flat = text.replace(/\s+/g, '');
    for (const cell of rows.flat()) for (const w of words(cell)) expect(flat).toContain(w.replace(/\s+/g, ''));
  });

  it('short tables are unchanged: one line per row, columns aligned', () => {
    const text = table(['image', 'size'], [['a:1', '1 KiB'], ['bb:2', '10 KiB']], [false, true]);
    expect(text).toBe(['image    size', '-----  ------', 'a:1     1 KiB', 'bb:2   10 KiB'].join('\n'));
  });

  it('diff: long repositories stay within 120 columns', () => {
    const d = {
      old: '/builds/2024-11/out/manifest.json',
      new: '/builds/2024-12/ctrbake.lock.json',
      blockSize: 4096,
      images: [0, 1].map((n) => ({ repository: `registry.internal.example.com:5000/platform-team/subsystems/networking/edge-gateway-service-${n}`, oldReference: longRef(n), newReference: longRef(n + 5), status: 'changed', addedLayers: [], droppedLayers: [], downloadBytes: 123456789, storeBytes: 987654321 })),
      totals: { addedLayers: 3, droppedLayers: 2, downloadBytes: 123456789, storeBytes: 987654321, freedBytes: 1000 },
    } as unknown as DiffResult;
    const text = renderDiffText(d);
    expectFits(text);
    for (const i of d.images) expect(text).toContain(i.repository);
  });
});
