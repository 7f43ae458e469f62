/**
 * Real QEMU on real KVM (README.md here says how these were recorded): every trace replays
 * through the model with zero mismatches; its coverage line and VMM-check findings are printed
 * and asserted as recorded, so a change in the model, the checks or the traces shows.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { PROFILES } from '../../../model/profiles.js';
import { fileLines } from '../../../trace/lines.js';
import { formatReplay } from '../../../trace/replay.js';
import { readTrace } from '../../../trace/trace.js';
import { coverageLine, reportTrace } from '../../../lint/trace-report.js';
import type { VmmCheckId } from '../../../spec/rules.js';

const DIR = 'test/ground-truth/vmm';

interface Expected {
  readonly steps: number;
  /** Rules that decided answers, with their counts. */
  readonly rules: Readonly<Record<string, number>>;
  readonly findings: Readonly<Partial<Record<VmmCheckId, number>>>;
  /** Lines of the side log (what the trace cannot hold). */
  readonly extra: number;
}

const CAPS = { 'MS-CAP-01': 1, 'MS-CAP-02': 1, 'MS-CAP-03': 1, 'MS-CAP-04': 1, 'MS-CAP-05': 1, 'MS-MAN-03': 1 };
/** Per scenario, as recorded on both 6.1 and 7.3 (QEMU 7.2 asks the same of both). */
const SCENARIOS: Readonly<Record<string, Expected>> = {
  boot: { steps: 65, rules: { 'MS-CRT-02': 35, 'MS-DEL-02': 23, ...CAPS }, findings: { 'VMM-WIN-01': 30 }, extra: 70 },
  dimm: { steps: 67, rules: { 'MS-CRT-02': 37, 'MS-DEL-02': 23, ...CAPS }, findings: { 'VMM-WIN-01': 30 }, extra: 70 },
  'virtio-mem': { steps: 67, rules: { 'MS-CRT-02': 37, 'MS-DEL-02': 23, ...CAPS }, findings: { 'VMM-WIN-01': 30 }, extra: 70 },
  migrate: {
    steps: 147,
    rules: { 'MS-DLG-05': 36, 'MS-CRT-02': 35, 'MS-FLG-01': 24, 'MS-DEL-02': 23, 'MS-CLR-05': 22, ...CAPS },
    findings: { 'VMM-WIN-01': 30 },
    extra: 74,
  },
  reboot: { steps: 109, rules: { 'MS-CRT-02': 57, 'MS-DEL-02': 45, ...CAPS }, findings: { 'VMM-WIN-01': 64 }, extra: 71 },
};
const KERNELS = ['6.1', '7.3'];

const traces = readdirSync(DIR)
  .filter((f) => /^qemu-.*\.jsonl\.gz$/.test(f) && !f.endsWith('.extra.jsonl.gz'))
  .sort();

describe('QEMU 7.2 on real KVM (Debian kernels under TCG, recorded with the LD_PRELOAD recorder)', () => {
  it('has every scenario on every kernel', () => {
    expect(traces).toEqual(
      Object.keys(SCENARIOS)
        .flatMap((s) => KERNELS.map((k) => `qemu-${s}-${k}.jsonl.gz`))
        .sort(),
    );
  });
  for (const name of traces) {
    const m = /^qemu-(.+)-(\d+\.\d+)\.jsonl\.gz$/.exec(name)!;
    const want = SCENARIOS[m[1]!]!;
    it(`[MS-CRT-02][MS-DEL-02][MS-DLG-05][MS-CLR-05][MS-FLG-01][VMM-WIN-01] ${name} replays with zero mismatches; coverage and VMM checks as recorded`, async () => {
      const path = join(DIR, name);
      // The first line is the guest kernel's profile (the driver's hello).
      const r = await reportTrace(readTrace(fileLines(path), path), PROFILES['x86_64-nosmm']!);
      const counts: Record<string, number> = {};
      for (const f of r.findings) counts[f.check] = (counts[f.check] ?? 0) + 1;
      const by = Object.entries(counts)
        .map(([id, n]) => `${id} x${n}`)
        .join(', ');
      process.stdout.write(
        `${name}: ${r.replay.steps} steps, ${r.replay.mismatches} mismatches\n  ${coverageLine(r)}\n  VMM checks: ${r.findings.length} findings (${by})\n`,
      );
      expect(r.replay.mismatches, formatReplay(r.replay, false)).toBe(0);
      expect(r.replay.steps).toBe(want.steps);
      expect(Object.fromEntries(r.rules)).toEqual(want.rules);
      expect(counts).toEqual(want.findings);
      const extra = gunzipSync(readFileSync(path.replace(/\.jsonl\.gz$/, '.extra.jsonl.gz')))
        .toString('utf8')
        .split('\n')
        .filter((l) => l !== '');
      expect(extra).toHaveLength(want.extra);
      for (const l of extra) expect(() => JSON.parse(l) as unknown).not.toThrow();
    });
  }
});
