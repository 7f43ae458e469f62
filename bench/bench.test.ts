/**
 * `npm run bench` runs and writes what it documents: the smoke configuration (n = 10 and 64,
 * millisecond budgets) of the compiled benchmark, spawned as `npm run bench` spawns it. No
 * timing is asserted: the machine is shared, and the figures are the benchmark's business.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ORACLE_SCENARIOS } from './report.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAIN = join(ROOT, 'dist', 'bench', 'main.js');
const SCENARIOS = ['setup', 'map', 'unmap', 'unmap-2m', 'move-active', 'move-inactive', 'rw'];
// The oracle scenarios the report knows: each must appear in the smoke run's output.
const ORACLE = ORACLE_SCENARIOS;
const IMPLS = ['model', 'legacy', 'scalable'];

/** A minimal XML well-formedness check: one root, balanced tags, no stray markup characters. */
function xmlProblems(text: string): string[] {
  const problems: string[] = [];
  const body = text.replace(/^<\?xml[^?]*\?>\s*/, '');
  const stack: string[] = [];
  let roots = 0;
  let last = 0;
  const tag = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>/g;
  for (let m = tag.exec(body); m !== null; m = tag.exec(body)) {
    const between = body.slice(last, m.index);
    if (/[<>]/.test(between)) problems.push(`stray markup before offset ${m.index}: ${JSON.stringify(between.slice(0, 60))}`);
    if (/&(?!(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/.test(between)) problems.push(`bare & in text near offset ${m.index}`);
    last = m.index + m[0].length;
    const [, closing, name, , selfClosing] = m;
    if (closing === '/') {
      const open = stack.pop();
      if (open !== name) problems.push(`</${name}> closes <${open ?? 'nothing'}>`);
    } else if (selfClosing !== '/') {
      if (stack.length === 0) roots++;
      stack.push(name!);
    } else if (stack.length === 0) {
      roots++;
    }
  }
  if (body.slice(last).trim() !== '') problems.push('text after the root element');
  if (stack.length > 0) problems.push(`unclosed: ${stack.join(', ')}`);
  if (roots !== 1) problems.push(`${roots} root elements`);
  return problems;
}

describe('npm run bench', () => {
  const dir = mkdtempSync(join(tmpdir(), 'memslot-bench-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs the smoke set and writes the documented JSON records and a well-formed SVG plot', () => {
    expect(existsSync(MAIN), `${MAIN} is missing: run \`npm run build\` first (npm test does)`).toBe(true);
    const json = join(dir, 'smoke.json');
    const r = spawnSync(process.execPath, [MAIN, '--smoke', '--json', json], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, `exit ${r.status}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`).toBe(0);
    expect(r.stdout).toContain('Cost per operation');
    expect(r.stdout).toMatch(/^(PASS|MISS|SKIP) /m);

    const out = JSON.parse(readFileSync(json, 'utf8')) as {
      meta: Record<string, unknown>;
      records: Record<string, unknown>[];
      skipped: unknown[];
      gates: { id: string; status: string; text: string; ratio: number | null; threshold: number }[];
      errors: unknown[];
    };
    expect(out.errors).toEqual([]);
    expect(out.meta).toMatchObject({ config: 'smoke', node: process.version });
    expect(typeof out.meta['date']).toBe('string');
    expect(typeof out.meta['library']).toBe('string');

    for (const rec of out.records) {
      expect(Object.keys(rec).sort()).toEqual(
        expect.arrayContaining([
          'clock',
          'implementation',
          'mad',
          'median',
          'min',
          'n',
          'op',
          'opsPerSample',
          'opsPerSecond',
          'p25',
          'p75',
          'samples',
          'scenario',
          'unit',
        ]),
      );
      expect([...SCENARIOS, ...ORACLE]).toContain(rec['scenario']);
      expect(IMPLS).toContain(rec['implementation']);
      expect(['ns/op', 'ns/step']).toContain(rec['unit']);
      expect(['cpu', 'wall']).toContain(rec['clock']);
      expect(Number.isInteger(rec['n']) && (rec['n'] as number) > 0).toBe(true);
      for (const k of ['median', 'p25', 'p75', 'mad', 'min', 'opsPerSecond']) {
        expect(Number.isFinite(rec[k]) && (rec[k] as number) >= 0, `${k} of ${JSON.stringify(rec)}`).toBe(true);
      }
      const [p25, median, p75] = [rec['p25'], rec['median'], rec['p75']] as number[];
      expect(p25! <= median! && median! <= p75!).toBe(true);
      expect(rec['samples'] as number).toBeGreaterThanOrEqual(1);
      expect(rec['opsPerSample'] as number).toBeGreaterThanOrEqual(1);
    }
    // One record per (scenario, implementation, n) of the data-structure scenarios...
    for (const s of SCENARIOS) {
      for (const impl of IMPLS) {
        for (const n of [10, 64]) {
          expect(
            out.records.filter((x) => x['scenario'] === s && x['implementation'] === impl && x['n'] === n),
            `${s} ${impl} ${n}`,
          ).toHaveLength(1);
        }
      }
    }
    // ...and one per oracle throughput.
    for (const s of ORACLE)
      expect(
        out.records.filter((x) => x['scenario'] === s),
        s,
      ).toHaveLength(1);
    const unmap2m = out.records.find((x) => x['scenario'] === 'unmap-2m');
    expect((unmap2m?.['extra'] as Record<string, number> | undefined)?.['slotsPerOp']).toBeGreaterThan(0);

    // The smoke set has no 509 or 32764 slots, so every figure is reported as not measured.
    expect(out.gates.length).toBeGreaterThan(0);
    for (const g of out.gates) expect(['PASS', 'MISS', 'SKIP']).toContain(g.status);

    const svg = readFileSync(join(dir, 'smoke.svg'), 'utf8');
    expect(xmlProblems(svg)).toEqual([]);
    expect(svg).toMatch(/<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^>]* viewBox="/);
    expect(svg).toContain('slots n (log scale)');
    expect(svg).toContain('time per operation (log scale)');
    for (const impl of IMPLS) expect(svg).toContain(impl);
  });

  it('rejects bad usage with exit status 2', () => {
    expect(existsSync(MAIN)).toBe(true);
    const r = spawnSync(process.execPath, [MAIN, '--only', 'nonsense'], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('unknown scenario "nonsense"');
  });
});
