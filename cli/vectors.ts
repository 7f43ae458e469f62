/**
 * `memslot-oracle vectors --out FILE [--profile P] [--seed S] [--count N]`: conformance
 * vectors, a trace whose every request carries the model's answer as `expect`, drawn with the
 * suite's generators until every rule a trace can express has decided some request. For
 * implementations that cannot be driven interactively: replay it in any language by issuing
 * each request and comparing the answer with `expect` (spec/70-traces.md).
 */
import { createWriteStream } from 'node:fs';
import { parseArgs } from 'node:util';
import * as model from '../model/index.js';
import { RULES, RULE_IDS, type RuleId } from '../spec/rules.js';
import { stepBox, walkRequests, walks } from '../properties/sequences.js';
import { ringPrefix } from '../properties/commands/dirty-ring.js';
import { unreachableUnder } from '../properties/coverage.js';
import { modelStep, requestDefect } from '../trace/execute.js';
import { resolveProfile } from './profile-arg.js';
import { formatProfileLine, formatTraceLine } from '../trace/trace.js';
import { intOption } from './options.js';
import { UsageError } from './usage.js';

/** Rules no request of a trace can decide, and why. */
export const NOT_IN_TRACES: Readonly<Partial<Record<RuleId, string>>> = {
  'MS-CRT-01': 'unreachable by requests on x86-64 (see the rule)',
  'MS-LKP-03': 'the approx lookup has no protocol request',
  'MS-LKP-04': 'gfn-range iteration has no protocol request',
  'MS-LKP-06': 'the vCPU view has no protocol request',
  'MS-LKP-07': 'the vCPU cache has no protocol request',
  'MS-LKP-08': 'visibility has no protocol request',
  'MS-LKP-09': 'gfn to hva has no protocol request',
  'MS-LKP-10': 'gfn to hva has no protocol request',
  'MS-LKP-11': 'gfn to hva has no protocol request',
  'MS-LKP-01': 'id lookup has no protocol request (get_slots shows the effect)',
  'MS-RES-01': 'ENOMEM is an answer a kernel may give, never one a vector can demand (replay accepts it where the rule allows)',
  'MS-RES-02': 'follows MS-RES-01',
};

/** Why no request can decide `id` under `profile`, or undefined when one can. */
export function notInTraces(profile: model.Profile, id: RuleId): string | undefined {
  if (id === 'MS-VAL-03' && profile.v1FlagsMask && profile.readonlyMem) {
    return 'unreachable under this profile: MS-VAL-01 rejects every flag it could';
  }
  if (id === 'MS-VAL-01' && !profile.v1FlagsMask) return 'not in this profile (v1_flags_mask false)';
  if ((id === 'MS-X86-01' || id === 'MS-GEN-05') && profile.maxGfn === null) return 'not in this profile (max_gfn null)';
  return NOT_IN_TRACES[id] ?? unreachableUnder(profile)[id];
}

export interface VectorsResult {
  readonly profile: model.Profile;
  readonly lines: number;
  readonly counts: ReadonlyMap<RuleId, number>;
  readonly missing: readonly RuleId[];
}

/** Rounds of `count` more sequences (seeds seed+1, seed+2, ...) drawn while a rule is still missing. */
export const EXTRA_ROUNDS = 8;

/**
 * Writes vectors through `write`; deterministic for (profile, seed, count). `count` sequences
 * are drawn; while a rule a trace can express is still missing, up to EXTRA_ROUNDS rounds of
 * `count` more follow (seed + 1, seed + 2, ...), so a rare rule does not hang on one seed.
 */
export function makeVectors(profile: model.Profile, seed: number, count: number, write: (line: string) => void): VectorsResult {
  const counts = new Map<RuleId, number>();
  const hit = (r: RuleId): void => {
    counts.set(r, (counts.get(r) ?? 0) + 1);
  };
  let lines = 0;
  const emit = (l: string): void => {
    lines++;
    write(l);
  };
  emit(formatProfileLine(profile));
  const missingNow = (): RuleId[] => RULE_IDS.filter((id) => !counts.has(id) && notInTraces(profile, id) === undefined && !id.startsWith('MS-ATM-'));
  for (let round = 0; round <= EXTRA_ROUNDS && (round === 0 || missingNow().length > 0); round++) {
    const base = { seed: seed + round, maxCommands: 60, maxBulk: 16, size: 'large' } as const;
    // Besides: sequences from a ring at its soft limit (MS-RNG-08 needs 192 pushes first), with
    // the ring's traffic weighed up, where the kernel has rings.
    const ringWalks =
      profile.dirtyRingMaxBytes === 0
        ? []
        : walks(profile, { ...base, count: Math.ceil(count / 6), prefix: ringPrefix('DIRTY_LOG_RING', 192), focus: 'dirty-rings' });
    for (const { box, ops } of [...walks(profile, { ...base, count }), ...ringWalks]) {
      emit(formatTraceLine({ op: 'reset' }, { kind: 'ok' }));
      hit('MS-GEN-01');
      for (const { requests, exact } of walkRequests(box, ops)) {
        // Not exact, or a lookup of an address space the current VM lacks (its type has one, MS-VM-02).
        if (!exact || requests.some((r) => requestDefect(box.vm, r) !== null)) continue;
        for (const r of requests) {
          const m = stepBox(box, r);
          for (const f of m.fired) hit(f);
          emit(formatTraceLine(r, m.answer));
        }
        // The state after each change, so that a replaying implementation is checked beyond its answers.
        const reads = [
          'get_dirty_log',
          'gfn_to_memslot',
          'hva_to_memslots',
          'check_extension',
          'set_memory_attributes',
          'harvest_dirty_ring',
          'reset_dirty_rings',
        ];
        if (requests.some((r) => !reads.includes(r.op))) {
          for (let asId = 0; asId < box.vm.profile.addressSpaces; asId++) {
            for (const r of [{ op: 'get_generation', asId } as const, { op: 'get_slots', asId } as const])
              emit(formatTraceLine(r, modelStep(box.vm, r).answer));
          }
        }
      }
      // Invariants hold on every state the vectors pass through: they are the spec too.
      model.checkInvariants(box.vm.profile, model.observableState(box.vm));
      for (const id of RULE_IDS) if (id.startsWith('MS-INV-')) hit(id);
    }
  }
  return { lines, counts, missing: missingNow(), profile };
}

export function vectorsTable(r: VectorsResult): string {
  const rows = RULE_IDS.map((id) => {
    const n = r.counts.get(id) ?? 0;
    const why = notInTraces(r.profile, id);
    const note = n > 0 ? '' : id.startsWith('MS-ATM-') ? '  (concurrency: not expressible in a trace)' : why !== undefined ? `  (${why})` : '  MISSING';
    return `${id}  ${String(n).padStart(7)}  ${RULES[id]}${note}`;
  });
  return `rule       requests  text\n${rows.join('\n')}\n`;
}

export async function vectorsCli(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { out: { type: 'string' }, profile: { type: 'string' }, seed: { type: 'string' }, count: { type: 'string' } },
  });
  if (values.out === undefined) throw new UsageError('vectors needs --out FILE');
  const profile = resolveProfile(values.profile);
  const seed = intOption('seed', values.seed, 1);
  const count = intOption('count', values.count, 300);
  const out = createWriteStream(values.out);
  const r = makeVectors(profile, seed, count, (l) => out.write(`${l}\n`));
  await new Promise<void>((resolve) => out.end(resolve));
  process.stderr.write(vectorsTable(r));
  process.stdout.write(
    `vectors: ${r.lines} lines under ${profile.name} (seed ${seed}, ${count} sequences) written to ${values.out} (more when a rule was still missing, up to ${EXTRA_ROUNDS} more rounds); ${r.missing.length === 0 ? 'every rule a trace can express is hit' : `rules never hit: ${r.missing.join(', ')}`}\n`,
  );
  return r.missing.length === 0 ? 0 : 1;
}
