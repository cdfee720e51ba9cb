/**
 * tar-split metadata, the JSON-lines format of github.com/vbatts/tar-split that dockerd
 * keeps per layer (`layerdb/sha256/<chain id>/tar-split.json.gz`) so `docker save` and
 * `docker push` can rebuild the layer's exact uncompressed tar from the unpacked files.
 *
 * One JSON object per line, in stream order, `position` counting from 0:
 *   {"type":2,"payload":"<base64 raw bytes>","position":N}   a segment: header blocks,
 *       PAX/GNU meta entries, the previous file's padding, the end-of-archive blocks
 *   {"type":1,"name":"<tar name>","size":S,"payload":"<base64 crc64>","position":N}   a file
 *       entry (every entry, dirs too); payload is null and size omitted when size is 0
 * What differs between the engines (read from moby's vendored tar-split):
 *   - 20.10 (tar-split 0.11.1): a last segment with whatever follows the end-of-archive
 *     blocks, written even when empty ("payload":"").
 *   - 26+ (tar-split 0.11.5+): that last segment only when non-empty (1 MiB chunks).
 * Both write a name that is not valid UTF-8 as `name_raw` (base64 of its bytes; Entry.SetName):
 * checked against dockerd 20.10 by the random oracle (test/integration/builder-oracle-random.test.ts).
 * The packer refuses a second file entry whose cleaned name was seen: so does the engine
 * (a layer with duplicate paths fails to load).
 */
import { posix } from 'node:path';
import { InputError } from '../errors.js';
import { Crc64 } from './crc64.js';

export type TarSplitFlavour = 'tar-split-0.11.1' | 'tar-split-0.11.5';

/** The engine versions the builder knows, and the tar-split each writes. */
export function tarSplitFlavourFor(engineVersion: string): TarSplitFlavour {
  const major = Number(/^(\d+)\./.exec(engineVersion)?.[1]);
  if (!Number.isFinite(major)) throw new InputError('E_BUILDER_ENGINE_VERSION', `engine version ${JSON.stringify(engineVersion)} is not MAJOR.MINOR: use e.g. --engine-version 20.10`);
  return major >= 26 ? 'tar-split-0.11.5' : 'tar-split-0.11.1';
}

const FILE_TYPE = 1;
const SEGMENT_TYPE = 2;

/** Go's filepath.Clean for the names tar-split compares. */
export function goClean(name: string): string {
  if (name === '') return '.';
  const normalized = posix.normalize(name);
  return normalized.length > 1 && normalized.endsWith('/') ? normalized.slice(0, -1) : normalized;
}

function isValidUtf8(bytes: Buffer): boolean {
  return Buffer.from(bytes.toString('utf8'), 'utf8').equals(bytes);
}

/** A string value as Go's encoding/json writes it (HTML-safe escaping, invalid UTF-8 as U+FFFD). */
export function goJsonString(bytes: Buffer): string {
  const text = bytes.toString('utf8');
  let out = '"';
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || ch === '<' || ch === '>' || ch === '&' || code === 0x2028 || code === 0x2029) {
      out += `\\u${code.toString(16).padStart(4, '0')}`;
    } else out += ch;
  }
  return `${out}"`;
}

export class TarSplitPacker {
  private position = 0;
  private readonly seen = new Set<string>();
  private readonly lines: string[] = [];

  constructor(private readonly flavour: TarSplitFlavour) {}

  segment(payload: Buffer): void {
    this.lines.push(`{"type":${SEGMENT_TYPE},"payload":"${payload.toString('base64')}","position":${this.position++}}\n`);
  }

  /** A file entry; `name` is the tar name as a binary string, `crc` undefined when size is 0. */
  file(name: string, size: number, crc: Buffer | undefined): void {
    const raw = Buffer.from(name, 'latin1');
    // Go compares the bytes of the name: the binary string keeps them.
    const clean = goClean(name);
    if (this.seen.has(clean)) {
      throw new InputError('E_LAYER_DUPLICATE', `the layer holds ${JSON.stringify(raw.toString('utf8'))} twice; docker refuses such a layer ("duplicates of file paths not supported"): rebuild the image without duplicate entries`);
    }
    this.seen.add(clean);
    const nameField = isValidUtf8(raw) ? `"name":${goJsonString(raw)}` : `"name_raw":"${raw.toString('base64')}"`;
    const nameOut = raw.length === 0 ? '' : `${nameField},`;
    const sizeOut = size > 0 ? `"size":${size},` : '';
    const payload = crc === undefined ? 'null' : `"${crc.toString('base64')}"`;
    this.lines.push(`{"type":${FILE_TYPE},${nameOut}${sizeOut}"payload":${payload},"position":${this.position++}}\n`);
  }

  /** What follows the end-of-archive blocks (the engines differ here). */
  trailer(rest: Buffer): void {
    if (this.flavour === 'tar-split-0.11.1') {
      this.segment(rest);
      return;
    }
    for (let at = 0; at < rest.length; at += 1024 * 1024) this.segment(rest.subarray(at, at + 1024 * 1024));
  }

  toBuffer(): Buffer {
    return Buffer.from(this.lines.join(''), 'utf8');
  }
}

export interface TarSplitEntry {
  type: number;
  name?: string;
  name_raw?: string;
  size?: number;
  payload: string | null;
  position: number;
}

export function parseTarSplit(text: string): TarSplitEntry[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as TarSplitEntry);
}

/** The tar name of a file entry as a binary string. */
export function tarSplitName(entry: TarSplitEntry): string {
  if (entry.name_raw) return Buffer.from(entry.name_raw, 'base64').toString('latin1');
  return Buffer.from(entry.name ?? '', 'utf8').toString('latin1');
}

/**
 * Rebuilds the tar stream as `docker save` does: segments as they are, each file's content
 * from `readFile` (its tar name), checked against size and crc64.
 */
export async function* reassembleTarSplit(
  entries: readonly TarSplitEntry[],
  readFile: (name: string) => Promise<Buffer>,
): AsyncGenerator<Buffer> {
  for (const entry of entries) {
    if (entry.type === SEGMENT_TYPE) {
      yield Buffer.from(entry.payload ?? '', 'base64');
      continue;
    }
    if (!entry.size) continue;
    const name = tarSplitName(entry);
    const content = await readFile(name);
    const crc = new Crc64().update(content).digest().toString('base64');
    if (content.length !== entry.size || crc !== entry.payload) {
      throw new InputError('E_TAR_SPLIT_MISMATCH', `tar-split entry ${JSON.stringify(entry.name)}: the file has ${content.length} bytes (crc64 ${crc}), tar-split says ${entry.size} (${entry.payload})`);
    }
    yield content;
  }
}
