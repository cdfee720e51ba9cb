/** The loader stage's public API: device-side payload, scripts, units and engine configs. */
export { generateLoader, type LoaderResult } from './generate.js';
export { LOADER_INITS, LOADER_LAYOUTS, checkLayoutFits, resolveLoaderOptions, type LoaderInit, type LoaderLayout, type LoaderOptions, type ResolvedLoaderConfig } from './options.js';
export { chainIds, imagesList, podmanLayerIds } from './payload.js';
export { escapeSystemdPath, mountUnitName } from './systemd.js';
