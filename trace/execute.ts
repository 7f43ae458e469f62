/**
 * Runs protocol requests through the model, and through an implementation, giving protocol
 * answers: the one place where a trace or protocol request meets the model. The stateful
 * suite's operations meet it in properties/harness.ts `execute()`, a second dispatch, which
 * asks the model more than a request's answer (the ENOMEM branch of MS-RES-01, the candidates
 * of an approximate lookup, the vCPU caches).
 */
import { match } from 'ts-pattern';
import type { RuleId } from '../spec/rules.js';
import * as model from '../model/index.js';
import type { CountOutcome, MemslotImpl } from '../impl/interface.js';
import { answersEqual, type Answer, type Request, type SlotInfo } from './trace.js';
import { PAGE_SHIFT, type DirtyLogOutcome, type Memslot, type SetOutcome } from '../model/types.js';

export interface ModelAnswer {
  readonly state: model.VmState;
  readonly answer: Answer;
  /** The rule that decided the answer, for requests the spec decides. */
  readonly rule: RuleId | null;
  readonly fired: readonly RuleId[];
}

export function outcomeAnswer(r: SetOutcome | DirtyLogOutcome): Answer {
  if (!r.ok) return { kind: 'errno', errno: r.errno };
  return 'bitmap' in r && r.bitmap !== undefined ? { kind: 'ret', bitmap: r.bitmap } : { kind: 'ret' };
}

export function slotInfo(s: Memslot): SlotInfo {
  return {
    slot: (s.asId << 16) | s.id,
    flags: s.flags,
    guestPhysAddr: s.baseGfn << PAGE_SHIFT,
    memorySize: s.npages << PAGE_SHIFT,
    userspaceAddr: s.userspaceAddr,
  };
}

/** Why a request cannot be asked of this VM at all (an input defect), or null. */
export function requestDefect(vm: model.VmState, r: Request): { field: string; message: string } | null {
  const profile = vm.profile;
  if (r.op === 'write' && r.asId < profile.addressSpaces && model.inInternalSlot(vm, r.asId, r.gpa)) {
    return { field: 'gpa', message: 'a guest write into an internal slot (the APIC page, TSS, identity map) is outside the spec' };
  }
  if (r.op === 'write' && r.asId < profile.addressSpaces && model.inUnknownRingSlot(vm, r.asId, r.gpa)) {
    return {
      field: 'gpa',
      message:
        'a write into a slot whose logging a FLAGS_ONLY switched on under KVM_DIRTY_LOG_INITIALLY_SET with a dirty ring: which pages push is outside the spec (MS-RNG-11)',
    };
  }
  if (r.op === 'get_dirty_log' && !model.dirtyLogExchangeable(vm, r.slot)) {
    return { field: 'slot', message: `the slot's dirty bitmap has a bit set past the ${model.MAX_EXCHANGED_BITS} an answer carries (spec/25)` };
  }
  if (r.op === 'set_user_memory_region2' && typeof r.region.guestMemfd === 'number' && r.region.guestMemfd >= vm.gmems.length) {
    return { field: 'guest_memfd', message: `handle ${r.region.guestMemfd} names no guest_memfd of this VM (it has ${vm.gmems.length})` };
  }
  if ('asId' in r && r.asId >= profile.addressSpaces) {
    return { field: 'as_id', message: `profile ${profile.name} has ${profile.addressSpaces} address space(s)` };
  }
  if (r.op === 'set_internal_memslot' && r.id < profile.userMemSlots) {
    return { field: 'id', message: `internal slot ids start at KVM_USER_MEM_SLOTS (${profile.userMemSlots})` };
  }
  if (r.op === 'set_internal_memslot' && r.memorySize > 0xffff_ffffn) {
    return { field: 'memory_size', message: '__x86_set_memory_region() takes a u32 size: at most 0xffffffff' };
  }
  return null;
}

/**
 * The model's step once an answer has been observed: its own answer, or, where the observed
 * answer is ENOMEM and MS-RES-01 allows it, the resource branch. `allows` says whether another
 * side's answer is one the kernel could give here.
 */
export interface Judged {
  readonly step: ModelAnswer;
  /** The observed answer took the resource branch (MS-RES-01). */
  readonly resource: boolean;
  readonly allows: (a: Answer) => boolean;
}

export function judge(vm: model.VmState, r: Request, m: ModelAnswer, observed: Answer | undefined): Judged {
  // Only an accepted set-region request has a resource branch.
  if ((r.op !== 'set_user_memory_region' && r.op !== 'set_user_memory_region2') || m.answer.kind !== 'ret') return new Verdict(m, false, m.answer, null);
  const noMem = new NoMemBranch(vm, r);
  const step = isNoMem(observed) ? noMem.step() : null;
  if (step === null) return new Verdict(m, false, m.answer, noMem);
  return new Verdict({ state: step.state, answer: outcomeAnswer(step.result), rule: step.result.rule, fired: step.fired }, true, m.answer, noMem);
}

function isNoMem(a: Answer | undefined): boolean {
  return a !== undefined && a.kind === 'errno' && a.errno === 'ENOMEM';
}

/**
 * The resource branch of one request, evaluated only when an answer is ENOMEM (and then once):
 * replay's hot path judges every accepted request, and evaluating it each time doubled the
 * model's work (--cpu-prof).
 */
class NoMemBranch {
  private evaluated: model.Step<model.SetResult> | null | undefined;
  constructor(
    private readonly vm: model.VmState,
    private readonly r: Extract<Request, { op: 'set_user_memory_region' | 'set_user_memory_region2' }>,
  ) {}
  step(): model.Step<model.SetResult> | null {
    if (this.evaluated === undefined) {
      this.evaluated =
        this.r.op === 'set_user_memory_region'
          ? model.setUserMemoryRegionNoMem(this.vm, this.r.region)
          : model.setUserMemoryRegion2NoMem(this.vm, this.r.region);
    }
    return this.evaluated;
  }
}

/** judge()'s answer (a class, not closures: it is built for every replayed step). */
class Verdict implements Judged {
  constructor(
    readonly step: ModelAnswer,
    readonly resource: boolean,
    private readonly own: Answer,
    private readonly noMem: NoMemBranch | null,
  ) {}
  allows(a: Answer): boolean {
    return answersEqual(a, this.own) || (this.noMem !== null && isNoMem(a) && this.noMem.step() !== null);
  }
}

/** A model step as the protocol answers it. */
function stepAnswer(s: model.Step<model.SetResult | model.IoctlResult>): ModelAnswer {
  return { state: s.state, answer: outcomeAnswer(s.result), rule: s.result.rule, fired: s.fired };
}

/** A lookup's answer: the state unchanged, no deciding rule. */
function plain(vm: model.VmState, answer: Answer, fired: readonly RuleId[]): ModelAnswer {
  return { state: vm, answer, rule: null, fired };
}

// The rules of the lookups, shared by every step (a step's `fired` is read, never changed).
const NO_RULES: readonly RuleId[] = [];
const LKP_02: readonly RuleId[] = ['MS-LKP-02'];
const LKP_05: readonly RuleId[] = ['MS-LKP-05'];

/** The model's answer to one request. The caller has checked requestDefect(). */
export function modelStep(vm: model.VmState, r: Request): ModelAnswer {
  // A switch rather than ts-pattern: this runs once per replayed step, and match() cost a
  // third of replay's time (measured with --cpu-prof).
  switch (r.op) {
    case 'reset': {
      if (r.vmType === undefined) return { state: model.createVm(vm.kernel), answer: { kind: 'ok' }, rule: null, fired: ['MS-GEN-01'] };
      const s = model.createVmOfType(vm, r.vmType);
      return { ...stepAnswer(s), answer: s.result.ok ? { kind: 'ok' } : { kind: 'errno', errno: s.result.errno } };
    }
    case 'set_user_memory_region':
      return stepAnswer(model.setUserMemoryRegion(vm, r.region));
    case 'set_user_memory_region2':
      return stepAnswer(model.setUserMemoryRegion2(vm, r.region));
    case 'create_guest_memfd':
      return stepAnswer(model.createGuestMemfd(vm, r.size, r.flags));
    case 'set_memory_attributes':
      return stepAnswer(model.setMemoryAttributes(vm, r.address, r.size, r.attributes, r.flags));
    case 'check_extension': {
      const c = model.checkExtension(vm, r.cap, r.fd);
      return { state: vm, answer: { kind: 'value', value: c.value }, rule: c.rule, fired: [c.rule] };
    }
    case 'clear_dirty_log':
      return stepAnswer(model.clearDirtyLog(vm, r.clear));
    case 'enable_cap':
      return stepAnswer(model.enableCap(vm, r.cap, r.args0, r.flags));
    case 'write': {
      const w = model.guestWrite(vm, r.asId, r.gpa);
      return { state: w.state, answer: writeAnswer(w.result.outcome), rule: w.result.rule, fired: w.fired };
    }
    case 'harvest_dirty_ring': {
      const h = model.harvestDirtyRing(vm);
      return { state: h.state, answer: { kind: 'entries', entries: h.entries }, rule: h.rule, fired: [h.rule] };
    }
    case 'reset_dirty_rings': {
      const s = model.resetDirtyRings(vm);
      return { state: s.state, answer: countAnswer(s.result), rule: s.result.rule, fired: s.fired };
    }
    case 'get_dirty_log':
      return stepAnswer(model.getDirtyLog(vm, r.slot));
    case 'set_internal_memslot':
      return stepAnswer(model.setInternalMemslot(vm, r.id, r.guestPhysAddr, r.memorySize, r.userspaceAddr));
    case 'get_slots':
      return plain(vm, { kind: 'slots', slots: model.memslots(vm, r.asId).map(slotInfo) }, NO_RULES);
    case 'get_generation':
      return plain(vm, { kind: 'generation', generation: model.space(vm, r.asId).generation }, NO_RULES);
    case 'gfn_to_memslot': {
      const s = model.gfnToMemslot(vm, r.asId, r.gfn);
      return plain(vm, { kind: 'slot', slot: s === null ? null : (s.asId << 16) | s.id }, LKP_02);
    }
    case 'hva_to_memslots': {
      const hits = model.hvaRangeMemslots(vm, r.start, r.end).map((x) => ({ slot: (x.asId << 16) | x.id, gfnStart: x.gfnStart, gfnEnd: x.gfnEnd }));
      return plain(vm, { kind: 'hva_hits', hits }, LKP_05);
    }
    default:
      return unreachable(r);
  }
}

export function writeAnswer(o: model.WriteOutcome): Answer {
  return o === 'ret' ? { kind: 'ret' } : o === 'mmio' ? { kind: 'mmio' } : { kind: 'dirty_ring_full' };
}

export function countAnswer(o: CountOutcome): Answer {
  return o.ok ? { kind: 'count', count: o.count } : { kind: 'errno', errno: o.errno };
}

function unreachable(x: never): never {
  throw new Error(`unknown request ${JSON.stringify(x)}`);
}

/** An implementation's answer to one request. */
export function implStep(impl: MemslotImpl, r: Request): Answer {
  return match(r)
    .with({ op: 'reset' }, ({ vmType }): Answer => {
      const o = impl.reset(vmType);
      return o.ok ? { kind: 'ok' } : { kind: 'errno', errno: o.errno };
    })
    .with({ op: 'set_user_memory_region' }, ({ region }) => outcomeAnswer(impl.setUserMemoryRegion(region)))
    .with({ op: 'set_user_memory_region2' }, ({ region }) => outcomeAnswer(impl.setUserMemoryRegion2(region)))
    .with({ op: 'create_guest_memfd' }, ({ size, flags }) => outcomeAnswer(impl.createGuestMemfd(size, flags)))
    .with({ op: 'set_memory_attributes' }, (x) => outcomeAnswer(impl.setMemoryAttributes(x.address, x.size, x.attributes, x.flags)))
    .with({ op: 'check_extension' }, ({ cap, fd }): Answer => ({ kind: 'value', value: impl.checkExtension(cap, fd) }))
    .with({ op: 'clear_dirty_log' }, ({ clear }) => outcomeAnswer(impl.clearDirtyLog(clear)))
    .with({ op: 'enable_cap' }, ({ cap, args0, flags }) => outcomeAnswer(impl.enableCap(cap, args0, flags)))
    .with({ op: 'write' }, ({ asId, gpa }): Answer => writeAnswer(impl.guestWrite(asId, gpa)))
    .with({ op: 'harvest_dirty_ring' }, (): Answer => ({ kind: 'entries', entries: impl.harvestDirtyRing() }))
    .with({ op: 'reset_dirty_rings' }, (): Answer => countAnswer(impl.resetDirtyRings()))
    .with({ op: 'get_dirty_log' }, ({ slot }) => outcomeAnswer(impl.getDirtyLog(slot)))
    .with({ op: 'set_internal_memslot' }, (x) => outcomeAnswer(impl.setInternalMemslot(x.id, x.guestPhysAddr, x.memorySize, x.userspaceAddr)))
    .with({ op: 'get_slots' }, ({ asId }): Answer => ({ kind: 'slots', slots: impl.slots(asId).map(slotInfo) }))
    .with({ op: 'get_generation' }, ({ asId }): Answer => ({ kind: 'generation', generation: impl.generation(asId) }))
    .with({ op: 'gfn_to_memslot' }, ({ asId, gfn }): Answer => {
      const s = impl.gfnToMemslot(asId, gfn);
      return { kind: 'slot', slot: s === null ? null : (s.asId << 16) | s.id };
    })
    .with({ op: 'hva_to_memslots' }, ({ start, end }): Answer => ({
      kind: 'hva_hits',
      hits: impl.hvaRangeMemslots(start, end).map((x) => ({ slot: (x.asId << 16) | x.id, gfnStart: x.gfnStart, gfnEnd: x.gfnEnd })),
    }))
    .exhaustive();
}
