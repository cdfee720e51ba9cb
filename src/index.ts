/** The public library API. Every CLI command is a thin shell over a function exported here. */
export * from './errors.js';
export { VERSION } from './version.js';
export type { Reporter, ProgressEvent } from './util/reporter.js';
export { silentReporter } from './util/reporter.js';
export * from './formats/index.js';
export * from './fetch/image-archive.js';
export * from './fetch/index.js';
export * from './lock/index.js';
export * from './registry/index.js';
export * from './engine/index.js';
export * from './bake/index.js';
export { verifyStore, type VerifyStoreOptions, type VerifyStoreResult } from './bake/verify-store.js';
export * from './report/index.js';
// Not in report/index.ts: bake reads that module, and writeReport is the report command's alone.
export { writeReport, renderReport, REPORT_FORMATS, type ReportFormat, type WriteReportOptions } from './report/write-report.js';
export * from './loader/index.js';
export * from './squashfs/index.js';
export * from './standalone/index.js';
