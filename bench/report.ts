/**
 * Records, the figures the project must reach (PASS/MISS), and the terminal table.
 */
import { SCENARIOS, SCENARIO_IDS, type ScenarioId } from './scenarios.js';
import { TARGET_NAMES, type TargetName } from './targets.js';

export type OracleScenarioId =
  | 'oracle-replay'
  | 'oracle-check'
  | 'oracle-protocol'
  | 'oracle-selftest'
  | 'oracle-cli-replay'
  | 'oracle-read-parse'
  | 'oracle-check-model'
  | 'oracle-check-impl';
export const ORACLE_SCENARIOS: readonly OracleScenarioId[] = [
  'oracle-replay',
  'oracle-check',
  'oracle-protocol',
  'oracle-selftest',
  'oracle-cli-replay',
  'oracle-read-parse',
  'oracle-check-model',
  'oracle-check-impl',
];

/**
 * One measurement. Times are nanoseconds per operation (`unit`); for the data-structure
 * scenarios `n` is the slot count, for the oracle scenarios the steps in one timed run.
 */
export interface BenchRecord {
  readonly scenario: ScenarioId | OracleScenarioId;
  readonly implementation: TargetName;
  readonly n: number;
  readonly unit: 'ns/op' | 'ns/step';
  /** What timed the samples: process CPU time or the wall clock (bench/measure.ts). */
  readonly clock: 'cpu' | 'wall';
  /** What one operation is. */
  readonly op: string;
  readonly median: number;
  readonly p25: number;
  readonly p75: number;
  /** Median absolute deviation of the per-sample ns/op (unscaled). */
  readonly mad: number;
  readonly min: number;
  readonly samples: number;
  /** Operations per sample in the first round (each round calibrates its own batch). */
  readonly opsPerSample: number;
  /** 1e9 / median. */
  readonly opsPerSecond: number;
  readonly extra?: Readonly<Record<string, number>>;
}

export interface Skipped {
  readonly scenario: string;
  readonly implementation: TargetName;
  readonly n: number;
  readonly reason: string;
}

export interface Gate {
  readonly id: string;
  readonly status: 'PASS' | 'MISS' | 'SKIP';
  readonly text: string;
  /** The measured ratio, when both sides were measured. */
  readonly ratio: number | null;
  readonly threshold: number;
}

function find(records: readonly BenchRecord[], scenario: string, impl: TargetName, n: number): BenchRecord | undefined {
  return records.find((r) => r.scenario === scenario && r.implementation === impl && r.n === n);
}

/** Cost per operation used by the flatness figure: per slot touched for the 2 MiB unmap. */
function flatCost(r: BenchRecord): number {
  const per = r.extra?.['slotsPerOp'];
  return r.scenario === 'unmap-2m' && per !== undefined && per > 0 ? r.median / per : r.median;
}

const fmtRatio = (x: number): string => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

/** The figures of issue #7, as ratios within this run. */
export function gates(records: readonly BenchRecord[], big = 32764, mid = 509): Gate[] {
  const out: Gate[] = [];
  for (const s of SCENARIO_IDS) {
    const a = find(records, s, 'scalable', mid);
    const b = find(records, s, 'scalable', big);
    const id = `flat-${s}`;
    const what = s === 'unmap-2m' ? `${SCENARIOS[s].title} (per slot touched)` : SCENARIOS[s].title;
    if (a === undefined || b === undefined) {
      out.push({ id, status: 'SKIP', ratio: null, threshold: 2, text: `scalable ${what}: cost/op at ${big} within 2x of ${mid} (not measured)` });
      continue;
    }
    const ratio = flatCost(b) / flatCost(a);
    let text = `scalable ${what}: cost/op at ${big} is ${fmtRatio(ratio)}x that at ${mid} (need <= 2x)`;
    if (s === 'unmap-2m') {
      const raw = b.median / a.median;
      const hits = `${(a.extra?.['slotsPerOp'] ?? 0).toFixed(1)} -> ${(b.extra?.['slotsPerOp'] ?? 0).toFixed(1)} slots per chunk`;
      text += `; per 2 MiB chunk ${fmtRatio(raw)}x (${hits}; kernel: 0.87 ms -> 34.8 ms per pass, 40x)`;
    }
    out.push({ id, status: ratio <= 2 ? 'PASS' : 'MISS', ratio, threshold: 2, text });
  }
  {
    const l = find(records, 'setup', 'legacy', big);
    const sc = find(records, 'setup', 'scalable', big);
    const text = `slot setup of ${big} slots: scalable vs legacy`;
    if (l === undefined || sc === undefined)
      out.push({ id: 'setup-speedup', status: 'SKIP', ratio: null, threshold: 20, text: `${text} >= 20x faster (not measured)` });
    else {
      const ratio = l.median / sc.median;
      out.push({
        id: 'setup-speedup',
        status: ratio >= 20 ? 'PASS' : 'MISS',
        ratio,
        threshold: 20,
        text: `${text}: ${fmtRatio(ratio)}x faster (need >= 20x; kernel 27x)`,
      });
    }
  }
  // The scalable design's other claim: never worse than the 5.10 array, at any size.
  for (const s of ['setup', 'map'] as const) {
    const id = `${s}-vs-legacy`;
    const pairs = [...new Set(records.filter((r) => r.scenario === s).map((r) => r.n))]
      .sort((x, y) => x - y)
      .flatMap((n) => {
        const l = find(records, s, 'legacy', n);
        const sc = find(records, s, 'scalable', n);
        return l !== undefined && sc !== undefined ? [{ n, ratio: l.median / sc.median }] : [];
      });
    const text = `scalable ${SCENARIOS[s].title} vs legacy`;
    if (pairs.length === 0) {
      out.push({ id, status: 'SKIP', ratio: null, threshold: 1, text: `${text}: at least as fast at every n (not measured)` });
      continue;
    }
    const worst = pairs.reduce((a, b) => (b.ratio < a.ratio ? b : a));
    const each = pairs.map((p) => `${p.n}: ${fmtRatio(p.ratio)}x`).join(', ');
    const unpaired = records.filter((r) => r.scenario === s && r.implementation === 'scalable' && !pairs.some((p) => p.n === r.n)).map((r) => r.n);
    const missing = unpaired.length > 0 ? `; legacy not measured at ${unpaired.join(', ')}` : '';
    const status = worst.ratio >= 1 ? 'PASS' : 'MISS';
    out.push({ id, status, ratio: worst.ratio, threshold: 1, text: `${text}: legacy/scalable ${each} (need >= 1x at every n${missing})` });
  }
  for (const s of ['move-active', 'move-inactive'] as const) {
    const l = find(records, s, 'legacy', big);
    const sc = find(records, s, 'scalable', big);
    const text = `${SCENARIOS[s].title} at ${big} slots: scalable vs legacy`;
    const id = `${s}-speedup`;
    if (l === undefined || sc === undefined) out.push({ id, status: 'SKIP', ratio: null, threshold: 10, text: `${text} >= 10x faster (not measured)` });
    else {
      const ratio = l.median / sc.median;
      out.push({ id, status: ratio >= 10 ? 'PASS' : 'MISS', ratio, threshold: 10, text: `${text}: ${fmtRatio(ratio)}x faster (need >= 10x; kernel ~18x)` });
    }
  }
  for (const s of SCENARIO_IDS) {
    const m = find(records, s, 'model', mid);
    const sc = find(records, s, 'scalable', mid);
    const id = `model-${s}`;
    const text = `model ${SCENARIOS[s].title} at ${mid} slots vs scalable`;
    if (m === undefined || sc === undefined) out.push({ id, status: 'SKIP', ratio: null, threshold: 100, text: `${text} within 100x (not measured)` });
    else {
      const ratio = m.median / sc.median;
      out.push({ id, status: ratio <= 100 ? 'PASS' : 'MISS', ratio, threshold: 100, text: `${text}: ${fmtRatio(ratio)}x slower (need <= 100x)` });
    }
  }
  out.push(...modelGates(records));
  return out;
}

/** The figures of issue 14: the one model judges at full scale, from the CLI, and in `check`. */
function modelGates(records: readonly BenchRecord[]): Gate[] {
  const out: Gate[] = [];
  const rec = (s: OracleScenarioId): BenchRecord | undefined => records.find((r) => r.scenario === s);
  {
    const r = rec('oracle-selftest');
    const slots = r?.extra?.['slots'];
    const text = 'model replay of the set_memory_region_test.c trace at 32764 slots';
    if (r === undefined || slots !== 32764) {
      out.push({ id: 'model-selftest', status: 'SKIP', ratio: null, threshold: 2, text: `${text}: at most 2 s of CPU (not measured at 32764 slots)` });
    } else {
      const s = (r.median * r.n) / 1e9;
      const cold = r.extra?.['coldMs'];
      const coldText = cold === undefined ? '' : `; the first, cold replay ${(cold / 1000).toFixed(2)} s`;
      out.push({
        id: 'model-selftest',
        status: s <= 2 ? 'PASS' : 'MISS',
        ratio: s,
        threshold: 2,
        text: `${text}: ${s.toFixed(2)} s of CPU for ${r.n} steps (need <= 2 s)${coldText}`,
      });
    }
  }
  {
    const c = rec('oracle-cli-replay');
    const b = rec('oracle-read-parse');
    const text = 'CLI replay of a small-state trace vs reading and JSON.parse of the same file';
    if (c === undefined || b === undefined)
      out.push({ id: 'cli-replay', status: 'SKIP', ratio: null, threshold: 1.5, text: `${text}: within 1.5x (not measured)` });
    else {
      const ratio = c.median / b.median;
      const ms = (x: BenchRecord): string => `${((x.median * x.n) / 1e6).toFixed(0)} ms`;
      out.push({
        id: 'cli-replay',
        status: ratio <= 1.5 ? 'PASS' : 'MISS',
        ratio,
        threshold: 1.5,
        text: `${text} (${c.n} lines): ${fmtRatio(ratio)}x (${ms(c)} vs ${ms(b)} of CPU; need <= 1.5x)${cliSplit(c, b)}`,
      });
    }
  }
  {
    const m = rec('oracle-check-model');
    const i = rec('oracle-check-impl');
    const text = 'check vs scalable: CPU time in the model vs in the implementation';
    if (m === undefined || i === undefined)
      out.push({ id: 'check-model-share', status: 'SKIP', ratio: null, threshold: 1, text: `${text}: at most 1x (not measured)` });
    else {
      const ratio = m.median / i.median;
      const ms = (x: BenchRecord): string => `${((x.median * x.n) / 1e6).toFixed(0)} ms`;
      const inv = m.extra?.['invariantsMs'];
      const invText = inv === undefined ? '' : `, of which ${inv.toFixed(0)} ms the invariant checks of the implementation's state`;
      out.push({
        id: 'check-model-share',
        status: ratio <= 1 ? 'PASS' : 'MISS',
        ratio,
        threshold: 1,
        text: `${text}: ${fmtRatio(ratio)}x (${ms(m)} vs ${ms(i)} over ${m.n} steps${invText}; need <= 1x)`,
      });
    }
  }
  return out;
}

/** A duration in ns, with a readable unit. */
export function fmtNs(ns: number): string {
  if (!Number.isFinite(ns)) return '-';
  if (ns < 1e3) return `${ns.toPrecision(3)} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toPrecision(3)} µs`;
  if (ns < 1e9) return `${(ns / 1e6).toPrecision(3)} ms`;
  return `${(ns / 1e9).toPrecision(3)} s`;
}

function cell(r: BenchRecord | undefined, skipped: boolean): string {
  if (r === undefined) return skipped ? 'skipped' : '-';
  const spread = r.median > 0 ? Math.round((100 * r.mad) / r.median) : 0;
  return `${fmtNs(r.median)} ±${spread}%`;
}

function pad(s: string, w: number, right = false): string {
  return right ? s.padStart(w) : s.padEnd(w);
}

/** The terminal table: one row per (scenario, n), one column per implementation. */
export function table(records: readonly BenchRecord[], skipped: readonly Skipped[], ns: readonly number[]): string {
  const head = ['scenario', 'n', ...TARGET_NAMES.map((t) => `${t} /op`), 'legacy/scal', 'model/scal'];
  const rows: string[][] = [];
  for (const s of SCENARIO_IDS) {
    for (const n of ns) {
      const by = (t: TargetName): BenchRecord | undefined => find(records, s, t, n);
      const isSkipped = (t: TargetName): boolean => skipped.some((k) => k.scenario === s && k.implementation === t && k.n === n);
      const sc = by('scalable');
      const ratio = (t: TargetName): string => {
        const r = by(t);
        return r !== undefined && sc !== undefined ? `${fmtRatio(r.median / sc.median)}x` : '-';
      };
      const extra = s === 'unmap-2m' && sc?.extra?.['slotsPerOp'] !== undefined ? ` (${sc.extra['slotsPerOp'].toFixed(0)} slots/op)` : '';
      rows.push([SCENARIOS[s].title + extra, String(n), ...TARGET_NAMES.map((t) => cell(by(t), isSkipped(t))), ratio('legacy'), ratio('model')]);
    }
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: readonly string[]): string => r.map((c, i) => pad(c, widths[i]!, i >= 1)).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** The oracle throughput lines. */
export function throughputTable(records: readonly BenchRecord[], how: ReadonlyMap<string, string>): string {
  const rows = ORACLE_SCENARIOS.map((s) => {
    const r = records.find((x) => x.scenario === s);
    if (r === undefined) return `${s.padEnd(16)} not measured`;
    const spread = r.median > 0 ? Math.round((100 * r.mad) / r.median) : 0;
    const rate = Math.round(r.opsPerSecond).toLocaleString('en-US');
    return `${s.padEnd(16)} ${rate.padStart(10)} steps/s   ${fmtNs(r.median).padStart(9)}/step ±${spread}%   ${how.get(s) ?? ''}`;
  });
  return rows.join('\n');
}

/** The CLI figure's main-thread CPU and wall times, where the run recorded them: not gated, a guide to where the time goes. */
function cliSplit(c: BenchRecord, b: BenchRecord): string {
  const pair = (k: string): readonly [number, number] | null => {
    const x = c.extra?.[k];
    const y = b.extra?.[k];
    return x === undefined || y === undefined || !Number.isFinite(x) || !Number.isFinite(y) ? null : [x, y];
  };
  const f = (k: string, unit: string): string => {
    const p = pair(k);
    return p === null ? 'not measured' : `${(p[0] / p[1]).toFixed(2)}x (${p[0].toFixed(0)} vs ${p[1].toFixed(0)} ${unit})`;
  };
  const parts = [`main thread alone ${f('mainThreadMs', 'ms')}`, `wall time ${f('wallMs', 'ms')}`];
  const fixed = pair('fixedMs');
  if (pair('perLineNs') !== null && fixed !== null)
    parts.push(`per line beyond the first ${c.n} ${f('perLineNs', 'ns')}, fixed cost ${fixed[0].toFixed(0)} vs ${fixed[1].toFixed(0)} ms`);
  return pair('mainThreadMs') === null && pair('wallMs') === null && fixed === null ? '' : `; ${parts.join(', ')}`;
}
