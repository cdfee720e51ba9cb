/**
 * The docs test: README.md and docs/*.md say only what is true and can be followed literally.
 *
 * The convention every doc follows (checked here):
 * - Every fenced block names its language. ```sh (or bash, shell) blocks are commands a user is
 *   told to run; ```text holds synopses, outputs and file layouts; json, ts, bitbake, ini and
 *   dockerfile are what they say.
 * - A shell block that cannot run on a test machine (Docker Hub, a Yocto or Buildroot tree,
 *   credentials of a private registry) is preceded by `<!-- illustrative: why -->` and is not run.
 * - A shell block that another test or CI runs is preceded by `<!-- run by: FILE[, FILE] -->`;
 *   every command line of the block must appear in one of those files.
 * - Every other shell block is run here: the blocks of one doc in order, in one fresh temp
 *   directory, each by `bash` with `set -euo pipefail`, with this checkout's `ctrbake`
 *   (bin/ctrbake.js, running dist/: `npm run build` first) first on PATH and HOME a temp dir.
 *   One placeholder is substituted: `127.0.0.1:5000`, the local plain-HTTP registry of the
 *   examples, becomes a docker-registry this test serves on 127.0.0.1 and a free port,
 *   holding product/app:1.4, product/agent:2.0 and product/db:9.1 (./docs-images.ts).
 *   A failure names the doc, the block's line, the block and its output.
 *
 * Also checked: every relative link and anchor resolves (and every docs/*.md path the CLI, its
 * help, the classes and scripts name); every ```ts block type-checks against the public API
 * (`from 'ctrbake'` is src/index.ts; names a caller already has are declared, TS_EXAMPLE_CONTEXT);
 * no example.org/.com/.net URL is given
 * as something to clone or fetch outside an illustrative block.
 */
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type TestRegistry } from '../../devkit/registry.js';
import { brokenLink, listDocs, readBlocks, readRelativeLinks, ROOT, SHELL_LANGUAGES, type CodeBlock } from './docs-blocks.js';
import { pushDocImages } from './docs-images.js';

const DOCS = listDocs();
const PLACEHOLDER_REGISTRY = '127.0.0.1:5000';
const RUN_BY = /^<!--\s*run by:\s*(.+?)\s*-->$/;
const OUTPUT_TAIL = 12000;

function isShell(b: CodeBlock): boolean {
  return SHELL_LANGUAGES.has(b.language);
}

/** The `run by:` files of a block, or undefined when it has none. */
function runBy(b: CodeBlock): string[] | undefined {
  const lines = readFileSync(join(ROOT, b.doc), 'utf8').split('\n');
  let prev = b.line - 2;
  while (prev >= 0 && lines[prev]!.trim() === '') prev--;
  const m = prev >= 0 ? RUN_BY.exec(lines[prev]!.trim()) : null;
  return m ? m[1]!.split(',').map((f) => f.trim()) : undefined;
}

function runnable(b: CodeBlock): boolean {
  return isShell(b) && !b.illustrative && runBy(b) === undefined;
}

/** Command lines of a shell block: comments and trailing comments dropped. */
function commandLines(body: string): string[] {
  return body
    .split('\n')
    .map((l) => l.replace(/(^|\s)#.*$/, '').trim())
    .filter((l) => l !== '');
}

const allBlocks = DOCS.flatMap((doc) => readBlocks(doc));
const docsWithRunnable = DOCS.filter((doc) => allBlocks.some((b) => b.doc === doc && runnable(b)));

describe('docs: structure', () => {
  it.each(DOCS)('%s: every fenced block names its language', (doc) => {
    const bare = readBlocks(doc).filter((b) => b.language === '');
    expect(bare.map((b) => `${doc}:${b.line}`), 'fence these as ```text (or sh, json, ...)').toEqual([]);
  });

  it('every relative link in README.md and docs/*.md resolves to a file and heading', () => {
    const broken = DOCS.flatMap((doc) => readRelativeLinks(doc))
      .map((l) => ({ l, why: brokenLink(l) }))
      .filter((x) => x.why !== undefined)
      .map(({ l, why }) => `${l.doc}:${l.line}: (${l.target}) ${why}`);
    expect(broken).toEqual([]);
  });

  it('every docs/*.md path named by the CLI, its help, the classes, templates and scripts exists, with its anchor', async () => {
    const named: string[] = [];
    const help = await execa('node', [join(ROOT, 'bin', 'ctrbake.js'), '--help'], { reject: false, all: true });
    const sources: { where: string; text: string }[] = [{ where: 'ctrbake --help', text: help.all ?? '' }];
    for (const dir of ['src', 'bbclass', 'templates', 'scripts', 'bin', 'conf', 'recipes-examples']) {
      const files = (await execa('git', ['ls-files', dir], { cwd: ROOT })).stdout.split('\n').filter((f) => f !== '');
      for (const f of files) sources.push({ where: f, text: readFileSync(join(ROOT, f), 'utf8') });
    }
    for (const { where, text } of sources) {
      for (const m of text.matchAll(/\bdocs\/[A-Za-z0-9_-]+\.md(?:#[a-z0-9_-]+)?/g)) {
        const why = brokenLink({ doc: 'README.md', line: 0, target: m[0] });
        if (why) named.push(`${where}: ${m[0]}: ${why}`);
      }
    }
    expect([...new Set(named)]).toEqual([]);
  });

  it('no example.org/.com/.net URL is given to clone or fetch outside an illustrative block', () => {
    const url = /\b(?:https?|git|ssh|ftp):\/\/[^\s)`"']*\bexample\.(org|com|net)\b/i;
    const found: string[] = [];
    for (const doc of DOCS) {
      const lines = readFileSync(join(ROOT, doc), 'utf8').split('\n');
      const inBlock = new Map<number, CodeBlock>();
      for (const b of readBlocks(doc)) for (let n = b.line; n <= b.line + b.body.split('\n').length + 1; n++) inBlock.set(n, b);
      lines.forEach((text, i) => {
        const b = inBlock.get(i + 1);
        // Configuration and output blocks (bitbake, text) show values to replace; prose and shell do not.
        if (b && (!isShell(b) || b.illustrative)) return;
        if (url.test(text)) found.push(`${doc}:${i + 1}: ${text.trim()}`);
      });
    }
    expect(found).toEqual([]);
  });

  it('shell blocks marked "run by" are run by the files they name', () => {
    const problems: string[] = [];
    for (const b of allBlocks.filter(isShell)) {
      const files = runBy(b);
      if (!files) continue;
      const texts = files.map((f) => (existsSync(join(ROOT, f)) ? readFileSync(join(ROOT, f), 'utf8') : undefined));
      files.forEach((f, i) => {
        if (texts[i] === undefined) problems.push(`${b.doc}:${b.line}: ${f} does not exist`);
      });
      for (const cmd of commandLines(b.body)) {
        if (!texts.some((t) => t?.includes(cmd))) problems.push(`${b.doc}:${b.line}: "${cmd}" is not in ${files.join(', ')}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('the docs have shell blocks to run (the extraction works)', () => {
    expect(docsWithRunnable).toContain('README.md');
    expect(docsWithRunnable).toContain('docs/lock.md');
  });
});

/**
 * Names the docs' TypeScript examples use without defining them: what a caller already has.
 * An example using another undefined name fails to type-check, as it would for a reader.
 */
const TS_EXAMPLE_CONTEXT: Record<string, string> = {
  cacheDir: 'string',
  lockPath: 'string',
  lock: "import('ctrbake').LockFile",
  diffIds: 'string[]',
  signal: 'AbortSignal',
  reporter: "import('ctrbake').Reporter",
};

/** `declare const` lines for the context names a block uses and does not declare itself. */
function tsContext(body: string): string {
  return Object.entries(TS_EXAMPLE_CONTEXT)
    .filter(([name]) => new RegExp(`\\b${name}\\b`).test(body))
    .filter(([name]) => !new RegExp(`\\b(?:const|let|var)\\s+(?:\\{[^}]*\\b${name}\\b[^}]*\\}|${name}\\b)`).test(body))
    .map(([name, type]) => `declare const ${name}: ${type};`)
    .join('\n');
}

describe('docs: TypeScript examples', () => {
  it('every ```ts block type-checks against the public API (import from "ctrbake" = src/index.ts)', async () => {
    const blocks = allBlocks.filter((b) => b.language === 'ts');
    expect(blocks.length).toBeGreaterThan(0);
    // Under the checkout (its /tmp/ is git-ignored) so that @types/node resolves.
    const tmpRoot = join(ROOT, 'tmp');
    const createdTmpRoot = !existsSync(tmpRoot);
    await mkdir(tmpRoot, { recursive: true });
    const dir = await mkdtemp(join(tmpRoot, 'docs-ts-'));
    try {
      const names = new Map<string, CodeBlock>();
      for (const b of blocks) {
        const name = `${b.doc.replace(/[/.]/g, '_')}_${b.line}.mts`;
        names.set(name, b);
        const api = join(ROOT, 'src', 'index.js');
        const text = `${tsContext(b.body)}\n${b.body}\nexport {};\n`;
        await writeFile(join(dir, name), text.replace(/(from |import\()'ctrbake'/g, `$1'${api}'`));
      }
      await writeFile(
        join(dir, 'tsconfig.json'),
        JSON.stringify({ extends: join(ROOT, 'tsconfig.json'), compilerOptions: { noEmit: true, rootDir: ROOT }, include: [join(dir, '*.mts')] }),
      );
      const r = await execa('npx', ['tsc', '-p', join(dir, 'tsconfig.json')], { cwd: ROOT, reject: false, all: true });
      // Name the doc and line of each error instead of the temp file.
      const report = (r.all ?? '').replace(/[^\s]*?([A-Za-z_-]+_md_(\d+)\.mts)\((\d+),\d+\)/g, (_m, file: string) => {
        const b = names.get(file);
        return b ? `${b.doc}:${b.line} (ts block)` : file;
      });
      expect(report).toBe('');
      expect(r.exitCode).toBe(0);
    } finally {
      await rm(createdTmpRoot ? tmpRoot : dir, { recursive: true, force: true });
    }
  });
});

describe('docs: every shell block runs as written', () => {
  let registry: TestRegistry;
  let work: string;
  let binDir: string;

  beforeAll(async () => {
    const cli = join(ROOT, 'dist', 'cli', 'main.js');
    if (!existsSync(cli)) throw new Error(`${cli} missing: run npm run build first`);
    registry = await startRegistry();
    await pushDocImages(registry);
    work = await mkdtemp(join(tmpdir(), 'ctrbake-docs-'));
    binDir = join(work, 'bin');
    await mkdir(binDir);
    await symlink(join(ROOT, 'bin', 'ctrbake.js'), join(binDir, 'ctrbake'));
  });

  afterAll(async () => {
    await registry?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it.each(docsWithRunnable)(
    '%s',
    async (doc) => {
      const dir = join(work, doc.replace(/[/.]/g, '_'));
      const home = join(dir, '.home');
      await mkdir(home, { recursive: true });
      const env = { PATH: `${binDir}:${process.env.PATH ?? '/usr/bin:/bin'}`, HOME: home };
      for (const block of readBlocks(doc).filter(runnable)) {
        const script = join(dir, `.block-${block.line}.sh`);
        const body = block.body.split(PLACEHOLDER_REGISTRY).join(registry.host);
        await writeFile(script, `set -euo pipefail\n${body}\n`);
        await chmod(script, 0o644);
        const r = await execa('bash', [script], { cwd: dir, env, reject: false, all: true, timeout: 600_000 });
        if (r.exitCode !== 0) {
          const output = (r.all ?? '').slice(-OUTPUT_TAIL);
          throw new Error(`${doc}:${block.line}: the shell block exited ${r.exitCode ?? r.signal}\n--- block ---\n${block.body}\n--- output ---\n${output}`);
        }
      }
    },
    1_200_000,
  );
});
