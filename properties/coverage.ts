/**
 * Rule coverage: how often each spec rule fired during a check.
 *
 * Counts come from the model (`Step.fired` of every request), from the lookups the suite ran
 * and saw agree (MS-LKP-*), and from every run of checkInvariants (MS-INV-*). The conformance
 * gate fails when a rule of spec/rules.ts was never hit, unless it is listed in
 * COVERAGE_EXEMPT with the reason it cannot be hit by requests.
 */
import { RULE_IDS, RULES, isRuleId, type RuleId } from '../spec/rules.js';
import type { Profile } from '../model/profiles.js';
import { VM_TYPES, acceptedVmTypes } from '../model/vm-types.js';

/**
 * Rules that no request sequence can reach, each with why and where it is covered instead.
 * Keep this list minimal and honest: every entry weakens the gate.
 */
export const COVERAGE_EXEMPT: Readonly<Partial<Record<RuleId, string>>> = {
  'MS-CRT-01':
    'unreachable by requests: at most 2 x 32767 slots, each below 2^31 pages (internal slots below 2^52), cannot overflow the u64 page count; ' +
    'covered by the example test "[MS-CRT-01] ..." in properties/conformance.test.ts on a crafted state',
};

/**
 * Rules the sequential suite cannot exercise: readers running while a request publishes
 * (spec/45-atomicity.md; one command runs at a time here, the scheduled reader/writer runs of
 * properties/concurrency/ cover them), and the ENOMEM a kernel gives when it cannot allocate
 * (spec/27). The gate of this suite does not count them as missing, and the table says where
 * they are covered.
 */
export const COVERED_ELSEWHERE: Readonly<Partial<Record<RuleId, string>>> = {
  ...Object.fromEntries(
    RULE_IDS.filter((r) => r.startsWith('MS-ATM-')).map((r) => [
      r,
      'concurrent readers: properties/concurrency/ (scheduled SRCU readers against a stepped writer)',
    ]),
  ),
  // An in-process implementation has no allocation that fails; only a SUT's answer takes this branch.
  'MS-RES-01': 'SUT answers only: test/rules/resources.test.ts, replay and check --sut against a SUT short of memory',
  'MS-RES-02': 'SUT answers only: test/rules/resources.test.ts, replay and check --sut against a SUT short of memory',
};

/**
 * Rules no request can reach under `p` because the profile switches the check off or another
 * check always decides first (spec/60-profiles.md).
 */
export function unreachableUnder(p: Profile): Partial<Record<RuleId, string>> {
  const out: Partial<Record<RuleId, string>> = {};
  // VAL-01 exists only where the v1 ioctl masks its flags; where it does, VAL-03 can only catch READONLY.
  if (!p.v1FlagsMask) out['MS-VAL-01'] = 'this profile has no v1 flag mask';
  if (p.v1FlagsMask && p.readonlyMem) out['MS-VAL-03'] = 'the v1 flag mask (MS-VAL-01) rejects every flag this check would';
  if (p.maxGfn === null) {
    out['MS-X86-01'] = 'this profile has no max gfn';
    out['MS-GEN-05'] = 'this profile has no max gfn, the only architecture check after the INVALID publish';
  }
  if (!p.nrMemslotPagesCheck) out['MS-CRT-01'] = 'this profile has no nr_memslot_pages check';
  return { ...out, ...memoryApiUnreachableUnder(p), ...ringUnreachableUnder(p) };
}

/** The dirty-ring rules of spec/25 no request can reach under `p`. */
function ringUnreachableUnder(p: Profile): Partial<Record<RuleId, string>> {
  const out: Partial<Record<RuleId, string>> = {};
  if (p.dirtyRingMaxBytes !== 0 && p.dirtyRingAcqRel) out['MS-RNG-01'] = 'this profile offers both ring caps';
  if (p.dirtyRingMaxBytes === 0) {
    const why = 'this profile has no dirty rings (MS-RNG-01 decides every enable)';
    const rules = [
      'MS-RNG-02',
      'MS-RNG-03',
      'MS-RNG-04',
      'MS-RNG-05',
      'MS-RNG-06',
      'MS-RNG-07',
      'MS-RNG-08',
      'MS-RNG-09',
      'MS-RNG-10',
      'MS-RNG-11',
      'MS-RNG-14',
      'MS-DLG-09',
      'MS-DLG-10',
      'MS-CLR-06',
    ] as const;
    for (const r of rules) out[r] = why;
  }
  return out;
}

/** The chapter-28 rules no request can reach under `p` (spec/28: which kernel line and VM types offer what). */
function memoryApiUnreachableUnder(p: Profile): Partial<Record<RuleId, string>> {
  const out: Partial<Record<RuleId, string>> = {};
  const types = VM_TYPES.filter((_, t) => (acceptedVmTypes(p) >>> t) & 1);
  if (p.userMemory2) out['MS-V2-01'] = 'this profile has KVM_SET_USER_MEMORY_REGION2';
  if (p.guestMemfd) out['MS-GMF-01'] = 'this profile has KVM_CREATE_GUEST_MEMFD';
  if (p.memoryAttributes) out['MS-ATR-01'] = 'this profile has KVM_SET_MEMORY_ATTRIBUTES';
  const noAttrs = 'this profile has no KVM_SET_MEMORY_ATTRIBUTES (MS-ATR-01 decides)';
  if (!p.memoryAttributes) for (const r of ['MS-ATR-02', 'MS-ATR-03', 'MS-ATR-04', 'MS-ATR-05', 'MS-ATR-06'] as const) out[r] = noAttrs;
  if (!p.guestMemfd)
    for (const r of ['MS-GMF-02', 'MS-GMF-03', 'MS-GMF-04'] as const) out[r] = 'this profile has no KVM_CREATE_GUEST_MEMFD (MS-GMF-01 decides)';
  if (!p.userMemory2) out['MS-V2-02'] = 'this profile has no KVM_SET_USER_MEMORY_REGION2 (MS-V2-01 decides)';
  // A guest_memfd slot needs v2, guest_memfd, and a VM type that takes one (MS-GMS-01).
  const gmemSlots = p.userMemory2 && p.guestMemfd && (p.guestMemfdSlots === 'all' || types.some((t) => t.privateMem));
  if (!gmemSlots) {
    const why =
      !p.userMemory2 || !p.guestMemfd ? 'this profile has no guest_memfd slots' : 'no VM type of this profile takes guest_memfd slots (MS-GMS-01 decides)';
    const rules = [
      'MS-GMS-02',
      'MS-GMS-03',
      'MS-GMS-04',
      'MS-GMS-05',
      'MS-GMS-06',
      'MS-GMB-01',
      'MS-GMB-02',
      'MS-GMB-03',
      'MS-GMB-04',
      'MS-GMB-05',
      'MS-GMB-06',
    ] as const;
    for (const r of rules) out[r] = why;
  }
  if (!p.userMemory2 || !p.guestMemfd || p.guestMemfdSlots === 'all' || types.every((t) => t.privateMem)) {
    out['MS-GMS-01'] = 'every VM type of this profile takes guest_memfd slots (or there are none)';
  }
  if (types.every((t) => t.gfnDirectBits === 0n)) out['MS-X86-02'] = 'no VM type of this profile has gfn_direct_bits (TDX only)';
  return out;
}

/** Per-rule hit counts. */
export class Coverage {
  private readonly counts = new Map<RuleId, number>();

  hit(rule: RuleId, n = 1): void {
    this.counts.set(rule, (this.counts.get(rule) ?? 0) + n);
  }

  hitAll(rules: Iterable<RuleId>): void {
    for (const r of rules) this.hit(r);
  }

  count(rule: RuleId): number {
    return this.counts.get(rule) ?? 0;
  }

  merge(other: Coverage | Readonly<Record<string, number>>): void {
    const entries = other instanceof Coverage ? other.counts.entries() : Object.entries(other);
    for (const [rule, n] of entries) if (isRuleId(rule)) this.hit(rule, n);
  }

  /** Rules hit at least once. */
  covered(): number {
    return RULE_IDS.filter((r) => this.count(r) > 0).length;
  }

  /** Rules never hit and not exempt, in registry order. */
  missing(): RuleId[] {
    return RULE_IDS.filter((r) => this.count(r) === 0 && COVERAGE_EXEMPT[r] === undefined && COVERED_ELSEWHERE[r] === undefined);
  }

  /** Plain data (for worker messages and JSON reports). */
  toJSON(): Record<string, number> {
    return Object.fromEntries(RULE_IDS.map((r) => [r, this.count(r)]));
  }

  static fromJSON(data: Readonly<Record<string, number>>): Coverage {
    const c = new Coverage();
    c.merge(data);
    return c;
  }
}

/** The coverage table: rule, count, one-line text; exempt rules are marked. */
export function formatCoverageTable(c: Coverage, profile?: Profile): string {
  const unreachable = profile === undefined ? {} : unreachableUnder(profile);
  const width = Math.max(...RULE_IDS.map((r) => String(c.count(r)).length), 5);
  const lines = [`${'rule'.padEnd(10)} ${'count'.padStart(width)}  text`];
  for (const r of RULE_IDS) {
    const n = c.count(r);
    const mark =
      n > 0
        ? ''
        : COVERAGE_EXEMPT[r] !== undefined
          ? '  (exempt: see properties/coverage.ts)'
          : COVERED_ELSEWHERE[r] !== undefined
            ? `  (${COVERED_ELSEWHERE[r]})`
            : unreachable[r] !== undefined
              ? `  (unreachable under ${profile?.name}: ${unreachable[r]})`
              : '  <- NEVER HIT';
    lines.push(`${r.padEnd(10)} ${String(n).padStart(width)}  ${RULES[r]}${mark}`);
  }
  const elsewhere = RULE_IDS.filter((r) => c.count(r) === 0 && COVERED_ELSEWHERE[r] !== undefined).length;
  const exempt = RULE_IDS.filter((r) => c.count(r) === 0 && COVERAGE_EXEMPT[r] !== undefined).length;
  const missing = c.missing().filter((r) => unreachable[r] === undefined).length;
  const profileNote =
    profile === undefined
      ? ''
      : `; ${RULE_IDS.filter((r) => c.count(r) === 0 && unreachable[r] !== undefined && COVERAGE_EXEMPT[r] === undefined).length} unreachable under ${profile.name}`;
  lines.push(`${c.covered()}/${RULE_IDS.length} rules hit; ${missing} missing; ${exempt} exempt; ${elsewhere} covered by another suite${profileNote}`);
  return lines.join('\n');
}
