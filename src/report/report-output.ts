/**
 * `report -o FILE`: the output guard (src/util/output.ts). A previous report is recognised
 * by how each format starts: text "ctrbake report: ", HTML its <title>, JSON its fields.
 */
import { open, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { checkOutput, type CheckedOutput } from '../util/output.js';
import { LAYERS_FILE } from '../formats/layers.js';

export async function isReportFile(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  let head: string;
  try {
    const buf = Buffer.alloc(512);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    head = buf.subarray(0, bytesRead).toString('utf8');
  } finally {
    await fh.close();
  }
  if (head.startsWith('ctrbake report: ')) return true;
  if (head.startsWith('<!DOCTYPE html>') && head.includes('<title>ctrbake report</title>')) return true;
  if (!head.startsWith('{')) return false;
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as { source?: { kind?: unknown }; totals?: unknown };
    return (parsed.source?.kind === 'manifest' || parsed.source?.kind === 'lock') && typeof parsed.totals === 'object';
  } catch {
    return false;
  }
}

export interface ReportInputs {
  manifestPath?: string;
  lockPath?: string;
  cacheDir?: string;
}

/** Before the report is computed: -o may replace only a previous report, never an input. */
export function checkReportOutput(path: string, inputs: ReportInputs): Promise<CheckedOutput> {
  return checkOutput({ path, flag: '-o', command: 'report', kind: 'file', signature: 'a report written by ctrbake report', isOurs: isReportFile }, [
    ...(inputs.manifestPath ? [{ path: inputs.manifestPath, what: 'manifest' }, { path: join(dirname(inputs.manifestPath), LAYERS_FILE), what: 'layers file' }] : []),
    ...(inputs.lockPath ? [{ path: inputs.lockPath, what: 'lock file' }] : []),
    ...(inputs.cacheDir ? [{ path: inputs.cacheDir, what: 'cache' }] : []),
  ]);
}
