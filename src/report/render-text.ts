/** Human text for `ctrbake report` and `ctrbake diff`: aligned tables. */
import { formatPlatform } from '../formats/index.js';
import { describeBudget } from './budget.js';
import type { DiffResult } from './diff.js';
import type { ReportResult } from './report.js';
import { formatSize } from './size.js';

/** Tables stay readable on a 120-column terminal: no row is wider, so none wraps. */
export const TABLE_WIDTH = 120;
/** The first column (an image reference, a path) shares a line with the rest up to this width. */
const FIRST_COLUMN_MAX = 48;

/**
 * Aligned columns, at most `maxWidth` wide. A first-column cell longer than FIRST_COLUMN_MAX
 * gets a line of its own and the row goes on below it; the last column (a free list: images,
 * paths, notes) wraps at spaces onto lines indented to its column. Nothing is cut.
 */
export function table(headers: string[], rows: string[][], rightAlign: boolean[] = [], maxWidth = TABLE_WIDTH): string {
  const last = headers.length - 1;
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  if (last > 0) widths[0] = Math.min(widths[0]!, Math.max(headers[0]!.length, ...rows.map((r) => ((r[0] ?? '').length <= FIRST_COLUMN_MAX ? (r[0] ?? '').length : 0))));
  const lastStart = widths.slice(0, last).reduce((a, w) => a + w + 2, 0);
  const lastWidth = Math.max(20, maxWidth - lastStart);
  if (last > 0) widths[last] = Math.min(widths[last]!, lastWidth);
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (rightAlign[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const render = (cells: string[]): string[] => {
    const out: string[] = [];
    const first = cells[0] ?? '';
    if (last > 0 && first.length > widths[0]!) {
      out.push(...wrapText(first, maxWidth));
      cells = ['', ...cells.slice(1)];
    }
    const pieces = last > 0 ? wrapText(cells[last] ?? '', lastWidth) : [cells[0] ?? ''];
    out.push(line([...cells.slice(0, last), pieces[0] ?? '']));
    for (const piece of pieces.slice(1)) out.push(`${' '.repeat(lastStart)}${piece}`);
    return out;
  };
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.flatMap(render)].join('\n');
}

/** Words of `text` on lines of at most `width`; a longer word is cut into pieces of `width`. */
function wrapText(text: string, width: number): string[] {
  const lines: string[] = [];
  let current = '';
  for (let word of text.split(' ')) {
    while (word.length > width) {
      if (current) lines.push(current);
      current = '';
      lines.push(word.slice(0, width));
      word = word.slice(width);
    }
    if (!current) current = word;
    else if (current.length + 1 + word.length <= width) current += ` ${word}`;
    else {
      lines.push(current);
      current = word;
    }
  }
  if (current || lines.length === 0) lines.push(current);
  return lines;
}

const short = (digest: string) => digest.replace(/^sha256:/, '').slice(0, 12);

export function renderReportText(r: ReportResult): string {
  const t = r.totals;
  const out: string[] = [];
  out.push(`ctrbake report: ${r.source.path} (${r.source.kind}${r.mode ? `, ${r.mode} mode` : ''}), ${formatPlatform(r.platform)}, block size ${r.blockSize}, layout ${r.layout}`);
  out.push('');
  out.push(
    table(
      ['image', 'compressed', 'unpacked', 'unique unpacked', 'layers'],
      [
        ...r.images.map((i) => [i.reference, formatSize(i.compressedBytes), formatSize(i.unpackedBytes), formatSize(i.uniqueUnpackedBytes), String(i.layers.length)]),
        ['total (shared layers once)', formatSize(t.compressedBytes), formatSize(t.unpackedBytes), '', String(t.layers)],
      ],
      [false, true, true, true, true],
    ),
  );
  out.push('');
  out.push(
    `Sharing: ${t.sharedLayers} of ${t.layers} layers are shared; sharing saves ${formatSize(t.sharingSavesCompressedBytes)} compressed and ${formatSize(t.sharingSavesUnpackedBytes)} unpacked.`,
  );
  const shared = r.layers.filter((l) => l.shared);
  if (shared.length) {
    out.push(table(['shared layer', 'compressed', 'unpacked', 'images'], shared.map((l) => [short(l.digest), formatSize(l.compressedBytes), formatSize(l.unpackedBytes), l.images.join(', ')]), [false, true, true, false]));
  }
  out.push('');
  out.push(`Duplicate files across layers: ${t.duplicateGroups} group(s), ${formatSize(t.duplicateWastedBytes)} stored more than once.`);
  if (r.duplicates.length) {
    out.push(
      table(
        ['content', 'size', 'wasted', 'where'],
        r.duplicates.slice(0, 20).map((d) => [d.sha256.slice(0, 12), formatSize(d.size), formatSize(d.wastedBytes), d.occurrences.map((o) => `${short(o.layer)}:/${o.path}`).join(' ')]),
        [false, true, true, false],
      ),
    );
    if (r.duplicates.length > 20) out.push(`... ${r.duplicates.length - 20} more (see --format json)`);
  }
  if (r.squashfs.length) {
    out.push('');
    out.push(table(['SquashFS', 'size'], r.squashfs.map((q) => [q.path, `${formatSize(q.bytes)} (${q.bytes} bytes)`]), [false, true]));
  }
  out.push('');
  const fb = r.firstBoot;
  out.push(`First boot, layout ${r.layout} (${fb.engine}): ${formatSize(fb.writtenBytes)} written to the data partition, ${formatSize(fb.totalBytes)} held at the peak;`);
  out.push(`payload in the rootfs: ${formatSize(fb.rootfsBytes)}; store ${formatSize(fb.storeBytes)} unpacked.`);
  // The note's first clause keeps the table within a terminal; JSON and HTML carry it whole.
  const brief = (note: string) => {
    const first = note.split(/; /)[0]!;
    return first.length <= 60 ? first : `${first.slice(0, first.lastIndexOf(' ', 56))} ...`;
  };
  out.push(table(['item', 'partition', 'kind', 'bytes', 'note'], fb.items.map((i) => [i.name, i.partition, i.kind, formatSize(i.bytes), brief(i.note)]), [false, false, false, true, false]));
  if (r.budget) {
    out.push('');
    out.push(
      r.budget.fits
        ? `Budget: fits, ${formatSize(r.budget.needBytes)} of ${describeBudget(r.budget)}; ${formatSize(r.budget.headroomBytes)} left.`
        : `Budget: DOES NOT FIT, needs ${formatSize(r.budget.needBytes)}, ${describeBudget(r.budget)}: over by ${formatSize(r.budget.overBytes)}.`,
    );
  }
  return `${out.join('\n')}\n`;
}

export function renderDiffText(d: DiffResult): string {
  const store = (v: number | null) => (v === null ? 'unknown' : formatSize(v));
  const rows = d.images.map((i) => [
    i.repository,
    i.status,
    `+${i.addedLayers.length} -${i.droppedLayers.length}`,
    formatSize(i.downloadBytes),
    store(i.storeBytes),
  ]);
  rows.push(['total', '', `+${d.totals.addedLayers} -${d.totals.droppedLayers}`, formatSize(d.totals.downloadBytes), store(d.totals.storeBytes)]);
  const lines = [
    `ctrbake diff ${d.old} -> ${d.new}`,
    '',
    table(['image', 'status', 'layers', 'download', 'store on device'], rows, [false, false, true, true, true]),
    '',
    `Freed after the update: ${store(d.totals.freedBytes)} (layers no new image uses).`,
  ];
  if (d.totals.storeBytes === null) lines.push('Unpacked sizes unknown for some new layers: pass --cache with the new layers fetched, or a manifest with layers.json.');
  return `${lines.join('\n')}\n`;
}
