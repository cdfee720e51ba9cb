/**
 * One case file (normalize-cases.json), two languages: the CLI's reference and platform
 * normalization and the BitBake classes' (python3, as BitBake runs it) give the same text
 * for every case, and refuse the same inputs. The class builds SRC_URI at parse time, where
 * running node per recipe would be slow and node may not be there yet: so the Python keeps
 * its own code, held to the CLI's by these cases.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatPlatform } from '../../../src/formats/index.js';
import { parsePlatform } from '../../../src/registry/platform.js';
import { formatReference, parseReference } from '../../../src/registry/reference.js';
import { python } from '../../integration/bitbake-shell.js';

type Case = [input: string, expected: string | null];
const CASES_FILE = new URL('./normalize-cases.json', import.meta.url);
const cases = JSON.parse(readFileSync(CASES_FILE, 'utf8')) as { references: Case[]; platforms: Case[] };

/** Every case through Python in one run: the normalized text, or null when it raised ValueError. */
const py = JSON.parse(
  python(`
import json
from ctrbake_bb import imagearchive
cases = json.load(open(${JSON.stringify(CASES_FILE.pathname)}))
def run(fn, value):
    try:
        return fn(value)
    except ValueError:
        return None
print(json.dumps({
    "references": [run(imagearchive.normalize_reference, c[0]) for c in cases["references"]],
    "platforms": [run(imagearchive.normalize_platform, c[0]) for c in cases["platforms"]],
}))`),
) as { references: (string | null)[]; platforms: (string | null)[] };

function cli(fn: () => string): string | null {
  try {
    return fn();
  } catch (error) {
    expect(error).toMatchObject({ code: expect.stringMatching(/^E_BAD_(REFERENCE|PLATFORM)$/) });
    return null;
  }
}

describe('the CLI and the BitBake classes normalize alike', () => {
  it.each(cases.references.map((c, i) => [...c, i] as const))('reference %j -> %j', (input, expected, i) => {
    expect(cli(() => formatReference(parseReference(input)))).toBe(expected);
    expect(py.references[i]).toBe(expected);
  });

  it.each(cases.platforms.map((c, i) => [...c, i] as const))('platform %j -> %j', (input, expected, i) => {
    expect(cli(() => formatPlatform(parsePlatform(input)))).toBe(expected);
    expect(py.platforms[i]).toBe(expected);
  });
});
