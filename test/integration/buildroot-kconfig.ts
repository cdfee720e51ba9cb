/**
 * A structural check of a Kconfig file (Buildroot's Config.in dialect), as far as it can go
 * without Buildroot's kconfig: the statements and attributes it knows, balanced blocks, one
 * type per symbol, quoted string defaults, help text indented below `help`, choice members
 * that are bool, and every symbol an expression names defined here or in a given list.
 */

export interface KconfigSymbol {
  name: string;
  type?: 'bool' | 'string' | 'int' | 'hex' | 'tristate';
  prompt?: string;
  defaults: string[];
  inChoice: boolean;
  line: number;
}

export interface KconfigCheck {
  symbols: Map<string, KconfigSymbol>;
  /** Every symbol named in depends/default-if/select/if expressions. */
  referenced: Set<string>;
  problems: string[];
}

const BLOCKS: Record<string, string> = { menu: 'endmenu', choice: 'endchoice', if: 'endif' };
const TYPES = new Set(['bool', 'string', 'int', 'hex', 'tristate']);
const QUOTED = /^"(?:[^"\\]|\\.)*"$/;

function symbolsOf(expr: string): string[] {
  return [...expr.replace(/"(?:[^"\\]|\\.)*"/g, '').matchAll(/\b[A-Z][A-Z0-9_]*\b/g)].map((m) => m[0]).filter((s) => s !== 'y' && s !== 'n');
}

export function checkKconfig(text: string): KconfigCheck {
  const symbols = new Map<string, KconfigSymbol>();
  const referenced = new Set<string>();
  const problems: string[] = [];
  const stack: Array<{ kind: string; line: number }> = [];
  let current: KconfigSymbol | undefined;
  let helpIndent: number | undefined;
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const n = i + 1;
    if (helpIndent !== undefined) {
      if (raw.trim() === '') return;
      const indent = /^[\t ]*/.exec(raw)![0].replace(/\t/g, '        ').length;
      if (indent > helpIndent) return;
      helpIndent = undefined;
    }
    if (raw.trim() === '' || raw.trim().startsWith('#')) return;
    if (/ +$/.test(raw)) problems.push(`line ${n}: trailing spaces`);
    const top = !/^\s/.test(raw);
    const line = raw.trim();
    const [word, ...restWords] = line.split(/\s+/);
    const rest = restWords.join(' ');
    if (top) {
      current = undefined;
      if (word === 'config' || word === 'menuconfig') {
        if (!/^[A-Za-z0-9_]+$/.test(rest)) problems.push(`line ${n}: bad symbol name ${JSON.stringify(rest)}`);
        if (symbols.has(rest)) problems.push(`line ${n}: ${rest} defined twice`);
        current = { name: rest, defaults: [], inChoice: stack.some((b) => b.kind === 'choice'), line: n };
        symbols.set(rest, current);
      } else if (word === 'menu' || word === 'comment' || word === 'source' || word === 'mainmenu') {
        if (!QUOTED.test(rest)) problems.push(`line ${n}: ${word} needs a quoted string`);
        if (word === 'menu') stack.push({ kind: 'menu', line: n });
      } else if (word === 'choice') {
        if (rest !== '') problems.push(`line ${n}: choice takes no argument here`);
        stack.push({ kind: 'choice', line: n });
      } else if (word === 'if') {
        for (const s of symbolsOf(rest)) referenced.add(s);
        stack.push({ kind: 'if', line: n });
      } else if (word === 'endmenu' || word === 'endchoice' || word === 'endif') {
        const open = stack.pop();
        if (!open || BLOCKS[open.kind] !== word) problems.push(`line ${n}: ${word} does not close ${open ? `${open.kind} of line ${open.line}` : 'anything'}`);
      } else {
        problems.push(`line ${n}: unknown statement ${JSON.stringify(word)}`);
      }
      return;
    }
    if (!raw.startsWith('\t')) problems.push(`line ${n}: attributes are indented with a tab`);
    const inChoiceHeader = !current && stack[stack.length - 1]?.kind === 'choice';
    if (!current && !inChoiceHeader && !(word === 'depends' || word === 'help')) {
      problems.push(`line ${n}: attribute ${JSON.stringify(word)} outside a config or choice`);
      return;
    }
    if (TYPES.has(word!)) {
      if (!current) return void problems.push(`line ${n}: a type outside a config`);
      if (current.type) problems.push(`line ${n}: ${current.name} has a second type`);
      current.type = word as KconfigSymbol['type'];
      if (rest !== '') {
        if (!QUOTED.test(rest)) problems.push(`line ${n}: the prompt of ${current.name} is not a quoted string`);
        current.prompt = rest;
      }
    } else if (word === 'prompt') {
      if (!QUOTED.test(rest)) problems.push(`line ${n}: prompt needs a quoted string`);
    } else if (word === 'default') {
      const m = /^("(?:[^"\\]|\\.)*"|\S+)(?:\s+if\s+(.+))?$/.exec(rest);
      if (!m) return void problems.push(`line ${n}: bad default ${JSON.stringify(rest)}`);
      if (m[2]) for (const s of symbolsOf(m[2])) referenced.add(s);
      if (current) current.defaults.push(m[1]!);
      else for (const s of symbolsOf(m[1]!)) referenced.add(s);
    } else if (line.startsWith('depends on ')) {
      for (const s of symbolsOf(line.slice('depends on '.length))) referenced.add(s);
    } else if (word === 'select' || word === 'imply') {
      for (const s of symbolsOf(rest)) referenced.add(s);
    } else if (word === 'range') {
      // numbers or symbols
    } else if (word === 'help' && rest === '') {
      helpIndent = /^[\t ]*/.exec(raw)![0].replace(/\t/g, '        ').length;
      const next = lines.slice(i + 1).find((l) => l.trim() !== '');
      const nextIndent = next ? /^[\t ]*/.exec(next)![0].replace(/\t/g, '        ').length : 0;
      if (nextIndent <= helpIndent) problems.push(`line ${n}: help without indented text below it`);
    } else {
      problems.push(`line ${n}: unknown attribute ${JSON.stringify(word)}`);
    }
  });
  for (const open of stack) problems.push(`line ${open.line}: ${open.kind} is never closed`);
  for (const s of symbols.values()) {
    if (!s.type) problems.push(`line ${s.line}: ${s.name} has no type`);
    if (s.inChoice && s.type !== 'bool') problems.push(`line ${s.line}: ${s.name} is a choice member and not bool`);
    for (const d of s.defaults) {
      if (s.type === 'string' && !QUOTED.test(d)) problems.push(`line ${s.line}: ${s.name}: string default ${d} is not quoted`);
      if (s.type === 'bool' && !['y', 'n'].includes(d)) for (const sym of symbolsOf(d)) referenced.add(sym);
    }
  }
  return { symbols, referenced, problems };
}
