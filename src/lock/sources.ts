import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { CtrbakeError, InputError } from '../errors.js';
import { parseReference } from '../registry/reference.js';

/**
 * Where the image list comes from: REF arguments, an images file (one reference per line,
 * `#` comments, blank lines ignored) and a compose file (every `services.*.image`).
 */

export interface ImageSource {
  /** The reference as written. */
  text: string;
  /** Where it was written, for error messages: "argument", "images.txt:3", "compose.yaml services.web". */
  origin: string;
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unknown error';
    throw new InputError('E_INPUT_UNREADABLE', `cannot read the ${what} ${path} (${code}): check the path`, { cause: error, details: { path } });
  }
}

export function parseImagesList(text: string, path: string): ImageSource[] {
  const sources: ImageSource[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const hash = raw.indexOf('#');
    const line = (hash === -1 ? raw : raw.slice(0, hash)).trim();
    if (line !== '') sources.push({ text: line, origin: `${path}:${i + 1}` });
  });
  return sources;
}

export async function readImagesFile(path: string): Promise<ImageSource[]> {
  return parseImagesList(await readText(path, 'images file'), path);
}

export function parseComposeImages(text: string, path: string): ImageSource[] {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (error) {
    throw new InputError('E_COMPOSE_INVALID', `the compose file ${path} is not valid YAML: ${(error as Error).message.split('\n')[0]}`, { cause: error, details: { path } });
  }
  const services = (doc as { services?: unknown } | null)?.services;
  if (typeof services !== 'object' || services === null || Array.isArray(services)) {
    throw new InputError('E_COMPOSE_INVALID', `the compose file ${path} has no "services" mapping`, { details: { path } });
  }
  const sources: ImageSource[] = [];
  for (const [name, service] of Object.entries(services as Record<string, unknown>)) {
    const image = (service as { image?: unknown } | null)?.image;
    if (image === undefined || image === null) continue;
    if (typeof image !== 'string') throw new InputError('E_COMPOSE_INVALID', `${path}: services.${name}.image is not a string`, { details: { path } });
    if (image.includes('$')) {
      throw new InputError('E_BAD_REFERENCE', `${path}: services.${name}.image ${JSON.stringify(image)} uses variable interpolation, which ctrbake does not expand; write the reference out`, {
        details: { path },
      });
    }
    sources.push({ text: image, origin: `${path} services.${name}` });
  }
  return sources;
}

export async function readComposeFile(path: string): Promise<ImageSource[]> {
  return parseComposeImages(await readText(path, 'compose file'), path);
}

/**
 * Parses every source; bad references from files are InputErrors that name file and line,
 * those from arguments ConfigErrors (usage, exit 2).
 */
export function parseSources(sources: readonly ImageSource[]) {
  return sources.map((s) => {
    try {
      return { ...s, ref: parseReference(s.text) };
    } catch (error) {
      if (s.origin === 'argument' || !(error instanceof CtrbakeError)) throw error;
      throw new InputError(error.code, `${s.origin}: ${error.message}`, { cause: error, details: { origin: s.origin } });
    }
  });
}
