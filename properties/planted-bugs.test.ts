/**
 * The suite has teeth: each planted bug (properties/planted-bugs.fixture.ts, wrappers around the
 * scalable implementation) is caught, shrunk to a short sequence, reported with its seed, path
 * and replayPath, and written as a trace that replays clean through the model.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IMPLEMENTATIONS } from '../impl/index.js';
import { withParams, type Profile } from '../model/index.js';
import { replay } from '../trace/replay.js';
import { readTrace } from '../trace/trace.js';
import { fileLines } from '../trace/lines.js';
import { PLANTED_BUGS } from './planted-bugs.fixture.js';
import { runCheck } from './run-check.js';

import { VERBOSE, runs, seed } from '../test/knobs.js';
import { startPrefix } from './conformance-plan.js';
const SEED = seed(20_260_826);
// 300: the command mix grew with the dirty rings, and a rare bug's sequence got rarer.
const RUNS = runs(300);

function profile(name: string): Profile {
  const p = withParams(name);
  if (p === null || typeof p === 'string') throw new Error(`no built-in profile ${name}`);
  return p;
}

describe('planted bugs are caught and shrunk', () => {
  for (const bug of PLANTED_BUGS) {
    for (const p of (bug.profiles ?? ['x86_64', 'linux-5.10-x86_64']).map(profile)) {
      it(`[${bug.rule}] planted bug "${bug.name}" under ${p.name}: caught, at most ${bug.maxSteps ?? 6} steps, seed and replayPath reported, trace replays through the model`, async () => {
        const outDir = mkdtempSync(join(tmpdir(), 'memslot-planted-'));
        const r = await runCheck({
          impl: bug.wrap(IMPLEMENTATIONS.scalable),
          profile: p,
          seed: SEED,
          runs: RUNS,
          maxSteps: 100,
          minimiseMs: 10_000,
          outDir,
          ...(bug.focus !== undefined ? { focus: bug.focus } : {}),
          // Without a prefix of its own a bug's runs start as the gate's memory API runs do.
          prefix: bug.prefix !== undefined ? bug.prefix() : startPrefix(p),
        });
        if (r.ok) expect.fail(`planted bug "${bug.name}" survived ${r.runs} runs (${r.steps} steps, seed ${r.seed})`);
        const cx = r.counterexample;
        if (VERBOSE)
          console.log(
            `planted bug "${bug.name}" under ${p.name} (${r.runs} runs, ${r.steps} steps, ${r.elapsedMs} ms; fast-check shrank to ${cx.fastCheckCommands.length} commands):\n${cx.steps.join('\n')}\n${cx.failure}\n`,
          );
        expect(cx.steps.length, cx.report).toBeGreaterThan(0);
        expect(cx.steps.length, cx.report).toBeLessThanOrEqual(bug.maxSteps ?? 6);
        expect(cx.steps.at(-1), cx.report).toContain('DISAGREES');
        expect(cx.report).toContain(`seed: ${r.seed}`);
        expect(cx.report).toContain(`path: "${cx.path}"`);
        expect(cx.replayPath).not.toBeNull();
        expect(cx.report).toContain(`replayPath: "${cx.replayPath}"`);
        // The trace file's expect fields are the model's answers: it replays clean through the model,
        // as `memslot-oracle replay` does.
        expect(cx.files).not.toBeNull();
        expect(readFileSync(cx.files!.trace, 'utf8')).toBe(cx.trace);
        expect(readFileSync(cx.files!.report, 'utf8')).toBe(cx.report);
        const summary = await replay(readTrace(fileLines(cx.files!.trace), cx.files!.trace), { profile: p });
        rmSync(outDir, { recursive: true, force: true });
        expect(summary.mismatches, cx.trace).toBe(0);
        expect(summary.steps).toBeGreaterThanOrEqual(cx.steps.length);
      });
    }
  }
});
