/**
 * What goes in OUT/layers.json (the format: formats/layers.ts), measured by `report`.
 */
import { dirname, join } from 'node:path';
import { LAYERS_FILE, writeLayers, type LayersFile } from '../formats/layers.js';
import { report, type ReportOptions, type ReportResult } from './report.js';

export function layersFileFromReport(result: ReportResult): LayersFile {
  const byDigest = new Map(result.layers.map((l) => [l.digest, l]));
  return {
    layersVersion: 1,
    platform: result.platform,
    blockSize: result.blockSize,
    images: result.images.map((i) => ({
      reference: i.reference,
      digest: i.digest,
      imageId: i.imageId,
      configSize: i.configBytes,
      compressedSize: i.compressedBytes,
      unpackedSize: i.unpackedBytes,
      layers: i.layers.map((d) => {
        const l = byDigest.get(d)!;
        return { digest: l.digest, diffId: l.diffId ?? null, mediaType: l.mediaType, size: l.compressedBytes, unpackedSize: l.unpackedBytes };
      }),
    })),
  };
}

/**
 * Measures a bake (manifest + cache) and writes OUT/layers.json next to its manifest.json.
 * Bake or a build recipe calls this after the bake; the loader installs the file with the payload.
 */
export async function writeLayersFile(options: Pick<ReportOptions, 'manifestPath' | 'cacheDir' | 'blockSize' | 'reporter' | 'signal'> & { manifestPath: string }): Promise<{ path: string; layers: LayersFile }> {
  const result = await report({ ...options });
  const layers = layersFileFromReport(result);
  const path = join(dirname(options.manifestPath), LAYERS_FILE);
  await writeLayers(path, layers);
  return { path, layers };
}
