/**
 * `report --format html`: one self-contained file (inline CSS, SVG and a little JS; no URL
 * to fetch) that opens offline. Charts: a treemap of the store's unpacked bytes by image and
 * layer (shared layers in their own group), and bars of compressed against unpacked bytes per
 * image; then the tables.
 */
import { formatPlatform } from '../formats/index.js';
import { describeBudget } from './budget.js';
import type { LayerReport, ReportResult } from './report.js';
import { formatSize } from './size.js';
import { squarify, type Rect } from './treemap.js';

const PALETTE = ['#4e79a7', '#59a14f', '#9c755f', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#bab0ac', '#86bcb6', '#8cd17d'];
export const SHARED_COLOR = '#e15759';
const TREEMAP: Rect = { x: 0, y: 0, w: 960, h: 420 };

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const short = (d: string) => d.replace(/^sha256:/, '').slice(0, 12);

interface Group {
  name: string;
  color: string;
  layers: LayerReport[];
}

function groups(r: ReportResult): Group[] {
  const out: Group[] = [];
  const shared = r.layers.filter((l) => l.shared);
  if (shared.length) out.push({ name: 'shared layers', color: SHARED_COLOR, layers: shared });
  r.images.forEach((image, i) => {
    const own = r.layers.filter((l) => !l.shared && l.images[0] === image.reference);
    if (own.length) out.push({ name: image.reference, color: PALETTE[i % PALETTE.length]!, layers: own });
  });
  return out;
}

/** Number of layer rectangles the treemap draws (layers with unpacked bytes > 0). */
export function treemapLayerCount(r: ReportResult): number {
  return r.layers.filter((l) => l.unpackedBytes > 0).length;
}

function treemapSvg(r: ReportResult): string {
  const parts: string[] = [];
  const placedGroups = squarify(
    groups(r).map((g) => ({ value: g.layers.reduce((s, l) => s + l.unpackedBytes, 0), item: g })),
    TREEMAP,
  );
  for (const pg of placedGroups) {
    const g = pg.item;
    const inner: Rect = { x: pg.x + 2, y: pg.y + 18, w: Math.max(0, pg.w - 4), h: Math.max(0, pg.h - 20) };
    parts.push(`<g class="tm-group"><rect class="tm-frame" x="${pg.x.toFixed(2)}" y="${pg.y.toFixed(2)}" width="${pg.w.toFixed(2)}" height="${pg.h.toFixed(2)}" fill="#fff" stroke="#333"/>`);
    if (pg.w > 60) parts.push(`<text x="${(pg.x + 4).toFixed(2)}" y="${(pg.y + 13).toFixed(2)}" class="tm-label">${esc(clip(g.name, pg.w / 7))}</text>`);
    for (const pl of squarify(g.layers.map((l) => ({ value: l.unpackedBytes, item: l })), inner)) {
      const l = pl.item;
      const title = `${g.name}\nlayer ${l.digest}\nunpacked ${formatSize(l.unpackedBytes)}, compressed ${formatSize(l.compressedBytes)}\n${l.files} files\nimages: ${l.images.join(', ')}`;
      parts.push(
        `<rect class="tm-layer" data-digest="${esc(l.digest)}" data-shared="${l.shared ? 1 : 0}" data-bytes="${l.unpackedBytes}" x="${pl.x.toFixed(2)}" y="${pl.y.toFixed(2)}" width="${pl.w.toFixed(2)}" height="${pl.h.toFixed(2)}" fill="${g.color}" stroke="#fff" stroke-width="1"><title>${esc(title)}</title></rect>`,
      );
      if (pl.w > 70 && pl.h > 16) parts.push(`<text class="tm-text" x="${(pl.x + 4).toFixed(2)}" y="${(pl.y + 13).toFixed(2)}">${esc(short(l.digest))} ${esc(formatSize(l.unpackedBytes))}</text>`);
    }
    parts.push('</g>');
  }
  return `<svg id="treemap" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${TREEMAP.w} ${TREEMAP.h}" width="${TREEMAP.w}" height="${TREEMAP.h}" role="img" aria-label="treemap of store bytes">${parts.join('')}</svg>`;
}

function clip(s: string, chars: number): string {
  const n = Math.max(4, Math.floor(chars));
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

function barsSvg(r: ReportResult): string {
  const max = Math.max(1, ...r.images.map((i) => Math.max(i.compressedBytes, i.unpackedBytes)));
  const rowH = 34;
  const labelW = 300;
  const barW = 480;
  const parts: string[] = [];
  r.images.forEach((image, i) => {
    const y = i * rowH + 4;
    parts.push(`<text x="0" y="${y + 18}" class="bar-label">${esc(clip(image.reference, 42))}</text>`);
    const wc = (image.compressedBytes / max) * barW;
    const wu = (image.unpackedBytes / max) * barW;
    parts.push(`<rect class="bar bar-compressed" x="${labelW}" y="${y}" width="${wc.toFixed(2)}" height="12" fill="#f28e2b"><title>compressed ${esc(formatSize(image.compressedBytes))}</title></rect>`);
    parts.push(`<rect class="bar bar-unpacked" x="${labelW}" y="${y + 14}" width="${wu.toFixed(2)}" height="12" fill="#4e79a7"><title>unpacked ${esc(formatSize(image.unpackedBytes))}</title></rect>`);
    parts.push(`<text x="${labelW + Math.max(wc, wu) + 6}" y="${y + 18}" class="bar-value">${esc(formatSize(image.compressedBytes))} / ${esc(formatSize(image.unpackedBytes))}</text>`);
  });
  const h = r.images.length * rowH + 8;
  return `<svg id="bars" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 960 ${h}" width="960" height="${h}" role="img" aria-label="compressed and unpacked bytes per image">${parts.join('')}</svg>`;
}

function htmlTable(headers: string[], rows: string[][], numeric: boolean[] = []): string {
  const th = headers.map((h, i) => `<th${numeric[i] ? ' class="num"' : ''}>${esc(h)}</th>`).join('');
  const trs = rows.map((r) => `<tr>${r.map((c, i) => `<td${numeric[i] ? ' class="num"' : ''}>${esc(c)}</td>`).join('')}</tr>`).join('\n');
  return `<table><thead><tr>${th}</tr></thead><tbody>${trs}</tbody></table>`;
}

const CSS = `
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#555}.cards{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 14px;min-width:150px}
.card b{display:block;font-size:18px}.fits{color:#1a7f37}.over{color:#c62828}
table{border-collapse:collapse;background:#fff;margin:4px 0 12px}th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0}td.num,th.num{text-align:right;white-space:nowrap}
svg text{font:11px system-ui,sans-serif}.tm-label{font-weight:600}.tm-text{fill:#fff;pointer-events:none}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}
#detail{min-height:1.4em;color:#333;font-family:monospace;white-space:pre}
rect.tm-layer:hover{opacity:.8}
`;

const JS = `
(function(){
  var detail=document.getElementById('detail');
  var rects=document.querySelectorAll('rect.tm-layer');
  for(var i=0;i<rects.length;i++){
    rects[i].addEventListener('mouseenter',function(e){var t=e.target.querySelector('title');detail.textContent=t?t.textContent.replace(/\\n/g,'  '):'';});
  }
  document.body.setAttribute('data-layers-drawn',String(rects.length));
})();
`;

export function renderReportHtml(r: ReportResult): string {
  const t = r.totals;
  const card = (label: string, value: string, cls = '') => `<div class="card"><span>${esc(label)}</span><b class="${cls}">${esc(value)}</b></div>`;
  const budget = r.budget
    ? card('budget', r.budget.fits ? `fits, ${formatSize(r.budget.headroomBytes)} left` : `over by ${formatSize(r.budget.overBytes)}`, r.budget.fits ? 'fits' : 'over')
    : '';
  const legend = `<div class="legend"><span style="background:${SHARED_COLOR}"></span>shared between images${r.images
    .map((im, i) => `<span style="background:${PALETTE[i % PALETTE.length]}"></span>${esc(im.reference)}`)
    .join('')}</div>`;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>ctrbake report</title><style>${CSS}</style></head>
<body>
<h1>ctrbake report</h1>
<div class="meta">${esc(r.source.path)} (${esc(r.source.kind)}${r.mode ? `, ${esc(r.mode)} mode` : ''}) · ${esc(formatPlatform(r.platform))} · block size ${r.blockSize} · layout ${esc(r.layout)}</div>
<div class="cards">
${card('images / layers', `${t.images} / ${t.layers}`)}${card('compressed (download)', formatSize(t.compressedBytes))}${card('unpacked (store)', formatSize(t.unpackedBytes))}${card('sharing saves', formatSize(t.sharingSavesUnpackedBytes))}${card('duplicate files waste', formatSize(t.duplicateWastedBytes))}${card(`first boot (${r.layout})`, formatSize(t.firstBootBytes))}${t.squashfsBytes ? card('SquashFS', formatSize(t.squashfsBytes)) : ''}${budget}
</div>
<h2>Store bytes by image and layer</h2>
${legend}
${treemapSvg(r)}
<div id="detail"></div>
<h2>Compressed against unpacked, per image</h2>
<div class="legend"><span style="background:#f28e2b"></span>compressed<span style="background:#4e79a7"></span>unpacked</div>
${barsSvg(r)}
<h2>Images</h2>
${htmlTable(
  ['image', 'digest', 'compressed', 'unpacked', 'unique unpacked', 'layers'],
  r.images.map((i) => [i.reference, short(i.digest), formatSize(i.compressedBytes), formatSize(i.unpackedBytes), formatSize(i.uniqueUnpackedBytes), String(i.layers.length)]),
  [false, false, true, true, true, true],
)}
<h2>Layers</h2>
${htmlTable(
  ['layer', 'compressed', 'unpacked', 'files', 'images'],
  r.layers.map((l) => [short(l.digest), formatSize(l.compressedBytes), formatSize(l.unpackedBytes), String(l.files), l.images.join(', ')]),
  [false, true, true, true, false],
)}
<h2>Duplicate files across layers</h2>
<p>${t.duplicateGroups} group(s); ${esc(formatSize(t.duplicateWastedBytes))} stored more than once.</p>
${htmlTable(
  ['content sha256', 'size', 'wasted', 'where'],
  r.duplicates.slice(0, 100).map((d) => [d.sha256.slice(0, 16), formatSize(d.size), formatSize(d.wastedBytes), d.occurrences.map((o) => `${short(o.layer)}:/${o.path}`).join('  ')]),
  [false, true, true, false],
)}
<h2>First boot (${esc(r.layout)}): ${esc(formatSize(r.firstBoot.writtenBytes))} written to the data partition, ${esc(formatSize(r.firstBoot.totalBytes))} held at the peak</h2>
${htmlTable(['item', 'partition', 'kind', 'bytes', 'note'], r.firstBoot.items.map((i) => [i.name, i.partition, i.kind, formatSize(i.bytes), i.note]), [false, false, false, true, false])}
${r.squashfs.length ? `<h2>SquashFS</h2>${htmlTable(['file', 'bytes'], r.squashfs.map((q) => [q.path, String(q.bytes)]), [false, true])}` : ''}
${r.budget ? `<h2>Budget</h2><p class="${r.budget.fits ? 'fits' : 'over'}">${r.budget.fits ? 'Fits' : 'Does not fit'}: needs ${esc(formatSize(r.budget.needBytes))}, ${esc(describeBudget(r.budget))}.</p>` : ''}
<script>${JS}</script>
</body></html>
`;
}
