/**
 * Keeps the chain spec → registry → model → tests honest (style guide §20):
 *
 * - the `**[MS-…]` rule headings of spec/*.md are exactly the keys of RULES (spec/rules.ts),
 *   each defined once, each with a `*Kernel:*` line in its paragraph;
 * - every rule is cited by the model (a `[MS-…]` comment or a quoted `'MS-…'`);
 * - every rule starts the title of at least one test (TEST_DIRS: every folder that holds tests);
 * - nothing cites an ID the spec lacks;
 * - the model's guards run in the spec's check order.
 *
 * Failures list the offending IDs with file:line.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { RULES, VMM_CHECKS } from '../spec/rules.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ID = /MS-[A-Z0-9]+-\d\d(?!\d)/g;
const RULE_KEYS = new Set(Object.keys(RULES));
/** Every folder that holds `*.test.ts` files; a test beside its subject counts wherever it sits. */
const TEST_DIRS = ['test', 'spec', 'model', 'impl', 'trace', 'lint', 'sut', 'properties', 'cli', 'bench', 'kernel-matrix'] as const;

/** Every file under `dir` (relative to the repo root) whose name passes `keep`, skipping build output. */
function files(dir: string, keep: (name: string) => boolean): string[] {
  const out: string[] = [];
  const walk = (abs: string): void => {
    let entries;
    try {
      entries = readdirSync(abs, { withFileTypes: true });
    } catch {
      return; // a folder another engineer has not created yet
    }
    for (const e of entries) {
      if (e.name === 'node_modules' || e.name === 'dist' || e.name.startsWith('.')) continue;
      const p = join(abs, e.name);
      if (e.isDirectory()) walk(p);
      else if (keep(e.name)) out.push(relative(ROOT, p));
    }
  };
  walk(join(ROOT, dir));
  return out.sort();
}

function read(rel: string): string {
  return readFileSync(join(ROOT, rel), 'utf8');
}

/** 1-based line of character offset `i` in `text`. */
function lineOf(text: string, i: number): number {
  return text.slice(0, i).split('\n').length;
}

interface Heading {
  readonly id: string;
  readonly where: string;
  /** The heading's paragraph: from the heading line to the next blank line. */
  readonly paragraph: string;
}

/** The `**[MS-…]` rule headings of spec/*.md, in file order. */
function specHeadings(): Heading[] {
  const out: Heading[] = [];
  for (const f of files('spec', (n) => n.endsWith('.md'))) {
    const lines = read(f).split('\n');
    lines.forEach((line, i) => {
      const m = /^\*\*\[(MS-[A-Z0-9]+-\d\d)\]/.exec(line);
      if (m === null) return;
      let end = i;
      while (end + 1 < lines.length && (lines[end + 1] ?? '').trim() !== '' && !/^\*\*\[MS-/.test(lines[end + 1] ?? '')) end++;
      out.push({ id: m[1]!, where: `${f}:${i + 1}`, paragraph: lines.slice(i, end + 1).join('\n') });
    });
  }
  return out;
}

/**
 * it() and test() calls with their title (group 2), modifiers included: `.skipIf(cond)` and
 * `.runIf(cond)` with one level of parentheses in `cond`, as the scale tests use.
 */
function testTitle(): RegExp {
  return /\b(?:it|test)(?:\.(?:only|concurrent|sequential|fails|(?:skipIf|runIf)\((?:[^()]|\([^()]*\))*\)))*\s*\(\s*(['"`])((?:\\.|(?!\1)[^\\])*)\1/g;
}

/** The leading `[MS-…][MS-…]` IDs of each it()/test() title in `*.test.ts` files. */
function testTitleCitations(): Map<string, string[]> {
  const cited = new Map<string, string[]>();
  const title = testTitle();
  for (const dir of TEST_DIRS) {
    for (const f of files(dir, (n) => n.endsWith('.test.ts'))) {
      const text = read(f);
      for (const m of text.matchAll(title)) {
        const lead = /^\s*((?:\[MS-[A-Z0-9]+-\d\d\]\s*)+)/.exec(m[2] ?? '');
        if (lead === null) continue;
        for (const id of lead[1]!.match(ID) ?? []) {
          const list = cited.get(id) ?? [];
          list.push(`${f}:${lineOf(text, m.index)}`);
          cited.set(id, list);
        }
      }
    }
  }
  return cited;
}

/** IDs cited by `[MS-…]` or a quoted 'MS-…' / "MS-…" in the model (tests excluded). */
function modelCitations(): Set<string> {
  const cited = new Set<string>();
  for (const f of files('model', (n) => n.endsWith('.ts') && !n.endsWith('.test.ts'))) {
    for (const m of read(f).matchAll(/\[(MS-[A-Z0-9]+-\d\d)\]|['"](MS-[A-Z0-9]+-\d\d)['"]/g)) cited.add((m[1] ?? m[2])!);
  }
  return cited;
}

const headings = specHeadings();
const specIds = new Set(headings.map((h) => h.id));

describe('traceability: spec, registry, model and tests agree', () => {
  it('the spec defines rules at all (parser sanity)', () => {
    expect(headings.length).toBeGreaterThan(50);
    expect(specIds.has('MS-VAL-01')).toBe(true);
  });

  it('no rule ID is defined twice in spec/*.md', () => {
    const where = new Map<string, string[]>();
    for (const h of headings) where.set(h.id, [...(where.get(h.id) ?? []), h.where]);
    const twice = [...where].filter(([, w]) => w.length > 1).map(([id, w]) => `${id} at ${w.join(', ')}`);
    expect(twice, `rule IDs defined more than once:\n${twice.join('\n')}`).toEqual([]);
  });

  it('the rule headings of spec/*.md are exactly the keys of RULES in spec/rules.ts', () => {
    const notInRules = headings.filter((h) => !RULE_KEYS.has(h.id)).map((h) => `${h.id} (${h.where})`);
    const notInSpec = [...RULE_KEYS].filter((id) => !specIds.has(id));
    expect(notInRules, `in spec/*.md but not in RULES:\n${notInRules.join('\n')}`).toEqual([]);
    expect(notInSpec, `in RULES but no **[ID]** heading in spec/*.md:\n${notInSpec.join('\n')}`).toEqual([]);
  });

  it('every rule paragraph has a *Kernel:* line', () => {
    const missing = headings.filter((h) => !/^\*Kernel:\*/m.test(h.paragraph)).map((h) => `${h.id} (${h.where})`);
    expect(missing, `rules without a *Kernel:* line:\n${missing.join('\n')}`).toEqual([]);
  });

  it('every rule is cited by the model (model/*.ts, a [MS-…] comment or a quoted rule ID)', () => {
    const cited = modelCitations();
    const uncited = [...RULE_KEYS].filter((id) => !cited.has(id));
    expect(uncited, `rules the model never cites:\n${uncited.join('\n')}`).toEqual([]);
  });

  it(`every rule starts the title of at least one test (${TEST_DIRS.join('/, ')}/)`, () => {
    const cited = testTitleCitations();
    const untested = [...RULE_KEYS].filter((id) => !cited.has(id));
    expect(untested, `rules no test title starts with:\n${untested.join('\n')}`).toEqual([]);
  });

  it('no source or test file cites a rule ID that the spec lacks', () => {
    const unknown: string[] = [];
    const sources = [...TEST_DIRS.flatMap((d) => files(d, (n) => n.endsWith('.ts'))), ...files('spec', (n) => n.endsWith('.md'))];
    for (const f of sources) {
      const text = read(f);
      for (const m of text.matchAll(ID)) if (!RULE_KEYS.has(m[0])) unknown.push(`${m[0]} (${f}:${lineOf(text, m.index)})`);
    }
    expect(unknown, `cited IDs that are not rules:\n${unknown.join('\n')}`).toEqual([]);
  });

  // The check order is part of the semantics (the first failing rule decides the errno): the
  // model's failure guards must appear in the order their rules are listed in the chapter.
  it.each([
    ['model/set-memory-region.ts', 'spec/20-set-memory-region.md'],
    ['model/dirty-log.ts model/dirty-ring.ts', 'spec/25-dirty-log.md'],
  ])('%s cites its failure rules in the check order of %s', (modelFiles, chapter) => {
    const failing = (id: string) => RULE_KEYS.has(id) && / fails with /.test(RULES[id as keyof typeof RULES]);
    const specOrder = headings.filter((h) => h.where.startsWith(`${chapter}:`) && failing(h.id)).map((h) => h.id);
    const modelOrder: string[] = [];
    const modelFile = modelFiles.split(' ');
    for (const line of modelFile.map(read).join('\n').split('\n')) {
      if (!/^\s*\/\/\s*\[MS-/.test(line)) continue;
      for (const id of line.match(ID) ?? []) if (specOrder.includes(id) && !modelOrder.includes(id)) modelOrder.push(id);
    }
    expect(modelOrder, `first // [ID] guard comments in ${modelFile} vs rule order in ${chapter}`).toEqual(specOrder);
  });
});

// The VMM checks (spec/90-vmm-checks.md) are rules of the caller's side: the same chain, with
// lint/ in the model's place (they are cited where they are checked, not by the model).
describe('traceability: VMM checks, their registry, lint/ and tests agree', () => {
  const VMM_ID = /VMM-[A-Z0-9]+-\d\d(?!\d)/g;
  const keys = new Set(Object.keys(VMM_CHECKS));
  const vmmHeadings: Heading[] = [];
  for (const f of files('spec', (n) => n.endsWith('.md'))) {
    const lines = read(f).split('\n');
    lines.forEach((line, i) => {
      const m = /^\*\*\[(VMM-[A-Z0-9]+-\d\d)\]/.exec(line);
      if (m === null) return;
      let end = i;
      while (end + 1 < lines.length && (lines[end + 1] ?? '').trim() !== '' && !/^\*\*\[VMM-/.test(lines[end + 1] ?? '')) end++;
      vmmHeadings.push({ id: m[1]!, where: `${f}:${i + 1}`, paragraph: lines.slice(i, end + 1).join('\n') });
    });
  }

  it('the **[VMM-…]** headings of spec/*.md are exactly the keys of VMM_CHECKS, each defined once, each with a *Kernel:* line', () => {
    expect(vmmHeadings.length).toBeGreaterThan(5);
    const ids = vmmHeadings.map((h) => h.id);
    expect(
      ids.filter((id, i) => ids.indexOf(id) !== i),
      'VMM checks defined twice',
    ).toEqual([]);
    expect([...new Set(ids)].sort()).toEqual([...keys].sort());
    expect(vmmHeadings.filter((h) => !/^\*Kernel:\*/m.test(h.paragraph)).map((h) => h.where)).toEqual([]);
  });

  it('every VMM check is cited by lint/ (a [VMM-…] comment or a quoted ID) and starts the title of a test', () => {
    const cited = new Set<string>();
    for (const f of files('lint', (n) => n.endsWith('.ts') && !n.endsWith('.test.ts'))) {
      for (const m of read(f).matchAll(/\[(VMM-[A-Z0-9]+-\d\d)\]|['"](VMM-[A-Z0-9]+-\d\d)['"]/g)) cited.add((m[1] ?? m[2])!);
    }
    expect(
      [...keys].filter((id) => !cited.has(id)),
      'VMM checks lint/ never cites',
    ).toEqual([]);
    const titled = new Set<string>();
    const title = testTitle();
    for (const dir of TEST_DIRS) {
      for (const f of files(dir, (n) => n.endsWith('.test.ts'))) {
        for (const m of read(f).matchAll(title)) {
          const lead = /^\s*((?:\[VMM-[A-Z0-9]+-\d\d\]\s*)+)/.exec(m[2] ?? '');
          for (const id of lead?.[1]!.match(VMM_ID) ?? []) titled.add(id);
        }
      }
    }
    expect(
      [...keys].filter((id) => !titled.has(id)),
      'VMM checks no test title starts with',
    ).toEqual([]);
  });

  it('no source, test or spec file cites a VMM check ID that spec/90 lacks', () => {
    const unknown: string[] = [];
    const sources = [...TEST_DIRS.flatMap((d) => files(d, (n) => n.endsWith('.ts'))), ...files('spec', (n) => n.endsWith('.md')), 'README.md'];
    for (const f of sources) {
      const text = read(f);
      for (const m of text.matchAll(VMM_ID)) if (!keys.has(m[0])) unknown.push(`${m[0]} (${f}:${lineOf(text, m.index)})`);
    }
    expect(unknown, `cited IDs that are not VMM checks:\n${unknown.join('\n')}`).toEqual([]);
  });
});
