/**
 * Every trace under test/ground-truth/ was answered by a real kernel (see README.md there);
 * the model must give the same answer to every request.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROFILES } from '../../model/profiles.js';
import { fileLines } from '../../trace/lines.js';
import { formatReplay, replay } from '../../trace/replay.js';
import { readTrace } from '../../trace/trace.js';
import { UNDER_MUTATION } from '../mutation/mode.js';

const DIR = 'test/ground-truth';
const traces = readdirSync(DIR).filter((f) => /\.jsonl(\.gz)?$/.test(f));
/** Under mutation, the first lines of each trace (the random one has 123,721); else all. */
const MAX_LINES = UNDER_MUTATION ? 15_000 : Infinity;

async function* firstLines(lines: AsyncIterable<string>, max: number): AsyncIterable<string> {
  let n = 0;
  for await (const line of lines) {
    if (n++ >= max) return;
    yield line;
  }
}

describe('ground truth recorded from Linux 6.18 /dev/kvm', () => {
  it('has recorded traces', () => {
    expect(traces).toContain('kernel-handpicked.jsonl');
  });
  for (const name of traces) {
    it(`[MS-VAL-01][MS-VAL-02][MS-VAL-07][MS-VAL-11][MS-DEL-01][MS-OVL-01][MS-X86-01][MS-MOD-03][MS-DLG-04] ${name} replays through the model with zero mismatches`, async () => {
      const path = join(DIR, name);
      const summary = await replay(readTrace(firstLines(fileLines(path), MAX_LINES), path), { profile: PROFILES['x86_64-nosmm']! });
      expect(summary.steps).toBeGreaterThan(100);
      expect(summary.mismatches, formatReplay(summary, false)).toBe(0);
    });
  }
});
