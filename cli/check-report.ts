/** What `check` prints, for an implementation or a SUT: the coverage table, then the verdict. */
import type { Profile } from '../model/profiles.js';
import { Coverage, formatCoverageTable } from '../properties/coverage.js';
import type { CheckResult } from '../properties/run-check.js';
import { resourceNote } from '../trace/replay.js';

const count = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`;

/**
 * The coverage table, then `0 disagreements` or the counterexample and its files; the exit
 * status. A check that made no run (a `--path` that names no run of its seed, a shard given no
 * runs) proved nothing: that is an error (2), not a pass.
 */
export function printCheck(results: readonly CheckResult[], profile: Profile, where: string, seeds: string): number {
  const coverage = new Coverage();
  for (const r of results) coverage.merge(r.coverage);
  const totalRuns = results.reduce((a, r) => a + r.runs, 0);
  const totalSteps = results.reduce((a, r) => a + r.steps, 0);
  const failed = results.filter((r): r is Extract<CheckResult, { ok: false }> => !r.ok);
  const resource = resourceNote(results.reduce((a, r) => a + r.resourceSteps, 0));

  if (totalRuns === 0) {
    process.stderr.write(`memslot-oracle: check: ${where}: no run was made (${seeds}), so nothing was checked; a --path must name a run of its seed\n`);
    return 2;
  }
  process.stdout.write(`${formatCoverageTable(coverage, profile)}\n\n`);
  const first = failed[0];
  if (first === undefined) {
    process.stdout.write(`check: ${where}: ${count(totalRuns, 'run')}, ${count(totalSteps, 'step')}, 0 disagreements (${seeds})${resource}\n`);
    return 0;
  }
  const cx = first.counterexample;
  process.stdout.write(`Counterexample (seed ${cx.seed}, path "${cx.path}"${cx.replayPath === null ? '' : `, replayPath "${cx.replayPath}"`}):\n`);
  for (const s of cx.steps) process.stdout.write(`  ${s}\n`);
  process.stdout.write(`  ${cx.failure}\n\n`);
  if (cx.files !== null) {
    process.stdout.write(
      `report: ${cx.files.report}\ntrace:  ${cx.files.trace}  (memslot-oracle replay ${cx.files.trace} replays it through the model)\nC:      ${cx.files.c}  (the same ioctls against /dev/kvm)\n`,
    );
  }
  process.stdout.write(
    `check: ${where}: ${count(totalRuns, 'run')}, ${count(totalSteps, 'step')}, ${count(failed.length, 'disagreement')} (${seeds}): counterexample of ${count(cx.steps.length, 'step')}\n`,
  );
  return 1;
}
