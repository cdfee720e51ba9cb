/**
 * Reads the Markdown docs the way the docs test needs them: fenced code blocks with their
 * language, line and whether they are marked illustrative; relative links; heading anchors.
 *
 * The convention (README.md "Documentation", and the header of docs.test.ts):
 * - every fence names its language; ```sh / ```bash / ```shell blocks are commands a user
 *   is told to run, and the docs test runs them;
 * - a shell block that cannot run here (Docker Hub, a Yocto or Buildroot tree, credentials)
 *   is preceded by the line `<!-- illustrative: why -->`, and the docs test does not run it;
 * - synopses, outputs and file layouts are ```text.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

export const SHELL_LANGUAGES = new Set(['sh', 'bash', 'shell']);
const ILLUSTRATIVE = /^<!--\s*illustrative:\s*\S.*-->$/;

export interface CodeBlock {
  /** Path relative to the checkout, e.g. "docs/lock.md". */
  doc: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** The info string's first word; '' when the fence has none. */
  language: string;
  body: string;
  /** Preceded by `<!-- illustrative: why -->`. */
  illustrative: boolean;
}

export interface DocLink {
  doc: string;
  line: number;
  target: string;
}

export const ROOT = resolve(import.meta.dirname, '../..');

/** README.md and every docs/*.md, relative to the checkout. */
export function listDocs(): string[] {
  const docs = readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`);
  return ['README.md', ...docs];
}

export function readBlocks(doc: string): CodeBlock[] {
  const lines = readFileSync(join(ROOT, doc), 'utf8').split('\n');
  const blocks: CodeBlock[] = [];
  let open: { line: number; fence: string; language: string; illustrative: boolean; body: string[] } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i]!;
    if (!open) {
      const m = /^(`{3,}|~{3,})\s*([^\s`]*)/.exec(text);
      if (!m) continue;
      let prev = i - 1;
      while (prev >= 0 && lines[prev]!.trim() === '') prev--;
      const illustrative = prev >= 0 && ILLUSTRATIVE.test(lines[prev]!.trim());
      open = { line: i + 1, fence: m[1]!, language: m[2]!.toLowerCase(), illustrative, body: [] };
    } else if (text.trim().startsWith(open.fence) && text.trim().replace(/[`~]/g, '') === '') {
      blocks.push({ doc, line: open.line, language: open.language, body: open.body.join('\n'), illustrative: open.illustrative });
      open = undefined;
    } else {
      open.body.push(text);
    }
  }
  if (open) throw new Error(`${doc}:${open.line}: code fence never closed`);
  return blocks;
}

/** Markdown lines outside fenced code blocks: where links and headings live. */
function proseLines(doc: string): { line: number; text: string }[] {
  const lines = readFileSync(join(ROOT, doc), 'utf8').split('\n');
  const out: { line: number; text: string }[] = [];
  let fence: string | undefined;
  lines.forEach((text, i) => {
    const m = /^(`{3,}|~{3,})/.exec(text.trim());
    if (m) {
      if (!fence) fence = m[1];
      else if (text.trim().startsWith(fence)) fence = undefined;
      return;
    }
    if (!fence) out.push({ line: i + 1, text });
  });
  return out;
}

/** Links `[text](target)` that are not URLs with a scheme. */
export function readRelativeLinks(doc: string): DocLink[] {
  const links: DocLink[] = [];
  for (const { line, text } of proseLines(doc)) {
    // A link inside inline code is an example, not a link.
    for (const m of text.replace(/`[^`]*`/g, '').matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      const target = m[1]!;
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
      links.push({ doc, line, target });
    }
  }
  return links;
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, -N for repeats. */
export function headingAnchors(doc: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const { text } of proseLines(doc)) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(text);
    if (!m) continue;
    const base = m[1]!
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** Why a relative link does not resolve, or undefined when it does. */
export function brokenLink(link: DocLink): string | undefined {
  const [path, anchor] = link.target.split('#', 2) as [string, string | undefined];
  const file = path === '' ? join(ROOT, link.doc) : resolve(dirname(join(ROOT, link.doc)), decodeURI(path));
  if (!existsSync(file)) return `${relative(ROOT, file)} does not exist`;
  if (anchor !== undefined && file.endsWith('.md') && !headingAnchors(relative(ROOT, file)).has(anchor)) {
    return `${relative(ROOT, file)} has no heading with anchor #${anchor}`;
  }
  return undefined;
}
