/** The CLI-replay figure of gates(): its verdict from the CPU medians, and the split it adds to its line. */
import { describe, expect, it } from 'vitest';
import { gates, type BenchRecord } from './report.js';

function record(scenario: 'oracle-cli-replay' | 'oracle-read-parse', msTotal: number, extra?: Record<string, number>): BenchRecord {
  const n = 1000;
  const median = (msTotal * 1e6) / n;
  return {
    scenario,
    implementation: 'model',
    n,
    unit: 'ns/step',
    clock: 'cpu',
    op: 'one line',
    median,
    p25: median,
    p75: median,
    mad: 0,
    min: median,
    samples: 3,
    opsPerSample: n,
    opsPerSecond: 1e9 / median,
    ...(extra !== undefined ? { extra } : {}),
  };
}

const cliGate = (records: BenchRecord[]) => gates(records).find((g) => g.id === 'cli-replay')!;

describe('the CLI replay figure', () => {
  it('passes at 1.5x of the CPU time and misses above it, whatever the main thread and wall times say', () => {
    const base = record('oracle-read-parse', 200, { mainThreadMs: 180, wallMs: 200 });
    expect(cliGate([record('oracle-cli-replay', 300, { mainThreadMs: 200, wallMs: 210 }), base])).toMatchObject({ status: 'PASS', ratio: 1.5 });
    const miss = cliGate([record('oracle-cli-replay', 320, { mainThreadMs: 190, wallMs: 200 }), base]);
    expect(miss).toMatchObject({ status: 'MISS', ratio: 1.6 });
    expect(miss.text).toContain('main thread alone 1.06x (190 vs 180 ms), wall time 1.00x (200 vs 200 ms)');
  });

  it('splits each time into a fixed cost and a cost per line, when the long trace was measured', () => {
    const g = cliGate([
      record('oracle-cli-replay', 600, { mainThreadMs: 400, wallMs: 450, perLineNs: 1800, fixedMs: 366 }),
      record('oracle-read-parse', 300, { mainThreadMs: 250, wallMs: 300, perLineNs: 1600, fixedMs: 92 }),
    ]);
    expect(g).toMatchObject({ status: 'MISS', ratio: 2 });
    expect(g.text).toContain('per line beyond the first 1000 1.13x (1800 vs 1600 ns), fixed cost 366 vs 92 ms');
    // Without the split, nothing of it is said.
    expect(
      cliGate([record('oracle-cli-replay', 600, { mainThreadMs: 400, wallMs: 450 }), record('oracle-read-parse', 300, { mainThreadMs: 250, wallMs: 300 })])
        .text,
    ).not.toContain('per line');
  });

  it('says nothing of the split when a run did not record it', () => {
    const g = cliGate([record('oracle-cli-replay', 300), record('oracle-read-parse', 200)]);
    expect(g.text).not.toContain('main thread');
    expect(
      cliGate([record('oracle-cli-replay', 300, { mainThreadMs: NaN, wallMs: 300 }), record('oracle-read-parse', 200, { mainThreadMs: NaN, wallMs: 200 })])
        .text,
    ).toContain('main thread alone not measured, wall time 1.50x');
  });
});
