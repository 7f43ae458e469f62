/**
 * A recorded trace judged on both sides at once: the kernel's answers against the model
 * (replay), the caller's requests against the VMM checks (chapter 90), and how many of the
 * spec's rules decided its answers (its coverage). What `record -- CMD` prints after a
 * recording, and what the VMM ground-truth test asserts.
 */
import type * as model from '../model/index.js';
import { RULE_IDS, type RuleId } from '../spec/rules.js';
import { formatReplay, replay, type ReplaySummary } from '../trace/replay.js';
import type { TraceLine } from '../trace/trace.js';
import { formatLint, VmmLinter, type Finding } from './vmm-lint.js';

export interface TraceReport {
  readonly replay: ReplaySummary;
  readonly findings: readonly Finding[];
  /** The rules that decided at least one answer, most used first. */
  readonly rules: readonly (readonly [RuleId, number])[];
}

export async function reportTrace(lines: AsyncIterable<TraceLine>, profile: model.Profile): Promise<TraceReport> {
  const linter = new VmmLinter(profile);
  const summary = await replay(lines, { profile, onStep: (s) => linter.step(s), onReset: async (p) => linter.reset(p) });
  const rules = [...summary.ruleCounts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  return { replay: summary, findings: linter.finish(), rules };
}

/** `coverage: N of M rules exercised (MS-CRT-02 x35, ...)`. */
export function coverageLine(r: TraceReport): string {
  const list = r.rules.map(([id, n]) => `${id} x${n}`).join(', ');
  return `coverage: ${r.rules.length} of ${RULE_IDS.length} rules exercised${list === '' ? '' : ` (${list})`}`;
}

/** The replay summary, the coverage line and the VMM checks' report. */
export function formatTraceReport(r: TraceReport, lintLimit = 20): string {
  return `${formatReplay(r.replay, false)}\n${coverageLine(r)}\n${formatLint(r.findings, lintLimit)}`;
}
