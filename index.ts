/**
 * memslot-oracle as a library: the model (the spec, executed), the profiles, the trace reader
 * and writer, the implementations, and the stateful check for any implementation.
 */
export * from './model/index.js';
export { RULES, RULE_IDS, isRuleId, type RuleId } from './spec/rules.js';
export type { MemslotImpl, AsyncMemslotImpl, ImplFactory, ConcurrentMemslotImpl, MemslotsReader, SyncPoint, WriterSteps } from './impl/interface.js';
export { IMPLEMENTATIONS, createScalableImpl, createLegacyImpl, ScalableMemslots, LegacyMemslots } from './impl/index.js';
export {
  parseTraceLine,
  readTrace,
  formatTraceLine,
  formatProfileLine,
  requestText,
  answerText,
  InputError,
  type Request,
  type Answer,
  type TraceLine,
} from './trace/trace.js';
export { modelStep, implStep } from './trace/execute.js';
export { replay, formatReplay, type ReplaySummary, type Mismatch } from './trace/replay.js';
export { checkImplementation, type CheckImplementationOptions } from './properties/check-implementation.js';
export { runCheck, type CheckResult, type CheckOptions } from './properties/run-check.js';
export { implTarget, sutTarget, type Target, type TargetState, type TargetSetOutcome } from './properties/target.js';
export type { Counterexample, TargetFactory } from './properties/report.js';
export { SutClient } from './sut/protocol.js';
