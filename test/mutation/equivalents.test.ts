/**
 * Every mutant accepted as equivalent is marked in the code with a reason and listed in
 * docs/mutation.md with the same reason, so that an ignored mutant is never silent.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const MARK = /\/\/ Stryker disable (next-line|line) ([A-Za-z,]+|all)(?:: (.*))?$/;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.test.ts'))
    .map((e) => join(e.parentPath, e.name));
}

const marks = ['model', 'impl'].flatMap(sources).flatMap((file) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .flatMap((line, i) => {
      const m = MARK.exec(line.trim());
      return m === null ? [] : [{ where: `${file}:${i + 1}`, file, mutators: m[2]!, reason: m[3] ?? '' }];
    }),
);

describe('equivalent mutants', () => {
  it('there are marks to check (the scan works)', () => {
    expect(marks.length).toBeGreaterThan(10);
  });

  it('each Stryker disable comment in model/ and impl/ has a reason, and docs/mutation.md lists it', () => {
    const doc = readFileSync('docs/mutation.md', 'utf8');
    for (const m of marks) {
      expect(m.reason.split(' ').length, `${m.where}: a reason of a few words`).toBeGreaterThanOrEqual(3);
      expect(doc, `${m.where}: docs/mutation.md lists "${m.reason}" for ${m.file}`).toContain(`| \`${m.file}\` | ${m.mutators} | ${m.reason} |`);
    }
  });
});
