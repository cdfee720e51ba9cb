/**
 * Layers measured from OUT/store.tar (store mode), for a report without the fetch cache: one
 * pass over the store tar; each layer directory (docker `overlay2/<id>/diff/`, podman
 * `overlay/<id>/diff/`) feeds its own LayerScanner, and the store's own metadata maps layer
 * dirs to diff_ids (docker `image/overlay2/layerdb/sha256/<chain>/{cache-id,diff}`, podman
 * `overlay-layers/layers.json`). vfs stores keep each layer merged with its parents: not
 * measurable per layer, so they need the cache.
 */
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { TarInput } from '../formats/tar/index.js';
import type { ReportInput } from './input.js';
import { hashEntryData, LayerScanner, normalizeName, type LayerScan } from './scan-layer.js';

export const STORE_TAR = 'store.tar';

const LAYER_DIR = /^(?:overlay2|overlay)\/([^/]+)\/diff(?:\/(.*))?$/;
const DOCKER_META = /^image\/overlay2\/layerdb\/sha256\/([0-9a-f]{64})\/(cache-id|diff)$/;
/** The engines' own tar-split files: their size is what a device copies (split) or writes. */
const DOCKER_TAR_SPLIT = /^image\/overlay2\/layerdb\/sha256\/([0-9a-f]{64})\/tar-split\.json\.gz$/;
const PODMAN_TAR_SPLIT = /^overlay-layers\/([0-9a-f]{64})\.tar-split\.gz$/;
const DOCKER_CONFIG = /^image\/overlay2\/imagedb\/content\/sha256\/([0-9a-f]{64})$/;
const PODMAN_LAYERS = 'overlay-layers/layers.json';
const MAX_META = 16 * 1024 * 1024;

export interface StoreLayers {
  /** Layer scans by diff_id. */
  scans: Map<string, LayerScan>;
  /** Config sizes by config digest (docker imagedb). */
  configSizes: Map<string, number>;
}

/** The store's layers; undefined when there is no store.tar or its driver is not overlay. */
export async function scanStoreLayers(input: ReportInput, blockSize: number): Promise<StoreLayers | undefined> {
  if (input.mode !== 'store' || !input.outDir || !input.outputs.some((o) => o.path === STORE_TAR)) return undefined;
  if (input.storageDriver !== 'overlay2' && input.storageDriver !== 'overlay') return undefined;
  const scanners = new Map<string, LayerScanner>();
  const chains = new Map<string, { cacheId?: string; diff?: string; tarSplit?: number }>();
  const podmanTarSplit = new Map<string, number>();
  let podmanLayers: Array<{ id?: string; 'diff-digest'?: string }> = [];
  const configSizes = new Map<string, number>();
  const reader = new TarInput(createReadStream(join(input.outDir, STORE_TAR), { highWaterMark: 1024 * 1024 }));
  const readText = async (size: number): Promise<string> => {
    if (size > MAX_META) {
      await reader.skipData();
      return '';
    }
    const parts: Buffer[] = [];
    for await (const c of reader.data()) parts.push(Buffer.from(c));
    return Buffer.concat(parts).toString('utf8');
  };
  try {
    for (let entry = await reader.next(); entry; entry = await reader.next()) {
      const name = normalizeName(entry.name);
      const layer = LAYER_DIR.exec(name);
      if (layer) {
        const id = layer[1]!;
        let scanner = scanners.get(id);
        if (!scanner) scanners.set(id, (scanner = new LayerScanner()));
        const rel = layer[2] ?? '';
        if (entry.type === 'file' && entry.size > 0) scanner.add(rel, entry, await hashEntryData(reader));
        else {
          await reader.skipData();
          scanner.add(rel, entry);
        }
        continue;
      }
      const dockerTarSplit = DOCKER_TAR_SPLIT.exec(name);
      if (dockerTarSplit && entry.type === 'file') chains.set(dockerTarSplit[1]!, { ...chains.get(dockerTarSplit[1]!), tarSplit: entry.size });
      const podmanSplit = PODMAN_TAR_SPLIT.exec(name);
      if (podmanSplit && entry.type === 'file') podmanTarSplit.set(podmanSplit[1]!, entry.size);
      const config = DOCKER_CONFIG.exec(name);
      if (config && entry.type === 'file') configSizes.set(`sha256:${config[1]}`, entry.size);
      const meta = DOCKER_META.exec(name);
      if (meta && entry.type === 'file') {
        const chain = chains.get(meta[1]!) ?? {};
        const text = (await readText(entry.size)).trim();
        if (meta[2] === 'cache-id') chain.cacheId = text;
        else chain.diff = text;
        chains.set(meta[1]!, chain);
        continue;
      }
      if (name === PODMAN_LAYERS && entry.type === 'file') {
        try {
          podmanLayers = JSON.parse(await readText(entry.size)) as typeof podmanLayers;
        } catch {
          podmanLayers = [];
        }
        continue;
      }
      await reader.skipData();
    }
  } finally {
    await reader.close();
  }
  const idToDiff = new Map<string, string>();
  const tarSplitOf = new Map<string, number>(podmanTarSplit);
  for (const c of chains.values()) {
    if (c.cacheId && c.diff) idToDiff.set(c.cacheId, c.diff);
    if (c.cacheId && c.tarSplit !== undefined) tarSplitOf.set(c.cacheId, c.tarSplit);
  }
  for (const l of Array.isArray(podmanLayers) ? podmanLayers : []) if (l.id && l['diff-digest']) idToDiff.set(l.id, l['diff-digest']);
  const scans = new Map<string, LayerScan>();
  for (const [id, scanner] of scanners) {
    const diffId = idToDiff.get(id);
    const tarSplitBytes = tarSplitOf.get(id);
    if (diffId) scans.set(diffId, { ...scanner.finish(blockSize), ...(tarSplitBytes !== undefined ? { tarSplitBytes, tarSplitExact: true } : {}) });
  }
  return { scans, configSizes };
}
