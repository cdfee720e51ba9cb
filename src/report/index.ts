/** The report stage's public API (re-exported by src/index.ts). */
export { DEFAULT_BLOCK_SIZE as DEFAULT_FS_BLOCK_SIZE } from '../util/fs-block-size.js';
export { report, resolveReportOptions, ReportDoesNotFitError, type ResolvedReportConfig, type ReportOptions, type ReportResult, type ImageReport, type LayerReport, type DuplicateGroup, type ReportTotals } from './report.js';
export { diffImages, type DiffOptions, type DiffResult, type ImageDiff } from './diff.js';
export { writeLayersFile, layersFileFromReport } from './layers-file.js';
export { readLayersFile, LAYERS_FILE, type LayersFile, type LayersFileImage, type LayersFileLayer } from '../formats/layers.js';
export { resolveBudget, judgeBudget, type BudgetOptions, type BudgetVerdict, type ResolvedBudget } from './budget.js';
export { parseSize, parsePercent, formatSize } from './size.js';
export { LAYOUTS, type Layout, type FirstBootModel } from './layout-model.js';
export { scanLayerTar, type LayerScan } from './scan-layer.js';
export { renderReportText, renderDiffText } from './render-text.js';
export { renderReportHtml } from './render-html.js';
export { checkBakeBudget, type BakeBudgetOptions } from './bake-budget.js';
