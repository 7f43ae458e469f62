/**
 * Both implementations against real kernels directly: the dirty-bits and dirty-ring recordings
 * (test/ground-truth/kernel-matrix/NAME[-npt0].dirty[-random].jsonl.gz, 5.10 to 7.3) sent request
 * by request to the scalable and the legacy design, each answer compared with the kernel's.
 * The model is checked against the same files in test/kernel-matrix/replay.test.ts; this one
 * needs no model in between.
 */
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { IMPLEMENTATIONS } from '../../impl/index.js';
import type { MemslotImpl } from '../../impl/interface.js';
import { implStep } from '../../trace/execute.js';
import { fileLines } from '../../trace/lines.js';
import { answerText, answersEqual, readTrace, requestText } from '../../trace/trace.js';

const DIR = fileURLToPath(new URL('./kernel-matrix/', import.meta.url));
const files = readdirSync(DIR)
  .filter((f) => /\.dirty(-random)?\.jsonl\.gz$/.test(f))
  .sort();

/** Every request of `file` through a fresh `name` implementation: the first disagreement, and the count of answers compared. */
async function run(file: string, name: 'scalable' | 'legacy'): Promise<{ compared: number; ops: Set<string>; first: string | null }> {
  let impl: MemslotImpl | null = null;
  let compared = 0;
  const ops = new Set<string>();
  for await (const t of readTrace(fileLines(`${DIR}${file}`), file)) {
    if (t.kind === 'profile') {
      impl = IMPLEMENTATIONS[name](t.profile);
      continue;
    }
    if (impl === null) return { compared, ops, first: `line ${t.line}: a request before the profile line` };
    const got = implStep(impl, t.request);
    if (t.expect === undefined) continue;
    compared++;
    ops.add(t.request.op);
    if (!answersEqual(got, t.expect))
      return { compared, ops, first: `line ${t.line}: ${requestText(t.request)}: kernel ${answerText(t.expect)}, ${name} ${answerText(got)}` };
  }
  return { compared, ops, first: null };
}

describe('the implementations answer as the kernels did (dirty bits and dirty rings)', () => {
  it('has the recordings of five kernels, each with a random companion', () => {
    expect(files.filter((f) => f.endsWith('.dirty.jsonl.gz')).length).toBeGreaterThanOrEqual(5);
    expect(files.filter((f) => f.endsWith('.dirty-random.jsonl.gz')).length).toBeGreaterThanOrEqual(5);
  });
  for (const name of ['scalable', 'legacy'] as const) {
    it.each(files)(`[MS-RNG-09][MS-RNG-14][MS-WR-03] ${name} answers every request of %s as the kernel did`, async (file) => {
      const r = await run(file, name);
      expect(r.first).toBeNull();
      expect(r.compared).toBeGreaterThan(200);
      // The ring part is there on every kernel that has rings (5.10 answers its requests too).
      for (const op of ['write', 'get_dirty_log', 'clear_dirty_log', 'enable_cap', 'reset_dirty_rings']) expect(r.ops).toContain(op);
    });
  }
});
