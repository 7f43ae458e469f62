/** What `check` prints, for an implementation or a SUT: the coverage table, then the verdict. */
import type { Profile } from '../model/profiles.js';
import { Coverage, formatCoverageTable } from '../properties/coverage.js';
import type { CheckResult } from '../properties/run-check.js';
import { resourceNote } from '../trace/replay.js';

/** The coverage table, then `0 disagreements` or the counterexample and its files; the exit status. */
export function printCheck(results: readonly CheckResult[], profile: Profile, where: string, seeds: string): number {
  const coverage = new Coverage();
  for (const r of results) coverage.merge(r.coverage);
  const totalRuns = results.reduce((a, r) => a + r.runs, 0);
  const totalSteps = results.reduce((a, r) => a + r.steps, 0);
  const failed = results.filter((r): r is Extract<CheckResult, { ok: false }> => !r.ok);
  const resource = resourceNote(results.reduce((a, r) => a + r.resourceSteps, 0));

  process.stdout.write(`${formatCoverageTable(coverage, profile)}\n\n`);
  const first = failed[0];
  if (first === undefined) {
    process.stdout.write(`check: ${where}: ${totalRuns} runs, ${totalSteps} steps, 0 disagreements (${seeds})${resource}\n`);
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
    `check: ${where}: ${totalRuns} runs, ${totalSteps} steps, ${failed.length} disagreement${failed.length === 1 ? '' : 's'} (${seeds}): counterexample of ${cx.steps.length} steps\n`,
  );
  return 1;
}
