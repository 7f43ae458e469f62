/**
 * The VMM checks of spec/90-vmm-checks.md: rules for the caller's side, over a stream of
 * requests and the model's answers to them.
 *
 * The checks read what a request did from the model's states before and after it (which slot
 * exists where), not from the request's kind, so request kinds added to trace/ and model/ are
 * judged without change here: a request that carries a `region` (the arguments of a set-region
 * ioctl) is a set-region request, one that carries a `slot` and no region reads that slot (a
 * dirty log), and any other request either leaves the VM as it was or changes it.
 *
 * Results are values: a VmmLinter collects Findings and never throws on what a VMM sent.
 */
import { VMM_CHECKS, type VmmCheckId } from '../spec/rules.js';
import * as model from '../model/index.js';
import { hex, PAGE_SHIFT, type MemoryRegion, type Memslot } from '../model/types.js';
import { judge, modelStep, requestDefect } from '../trace/execute.js';
import { InputError, answerText, requestText, type Answer, type Request, type TraceLine } from '../trace/trace.js';

/** A half-open gfn range `[start, end)` of one address space. */
export interface GfnRange {
  readonly asId: number;
  readonly start: bigint;
  readonly end: bigint;
}

/** A request of the trace that a finding involves, with the model's answer and what it did there. */
export interface Involved {
  readonly line: number;
  readonly request: Request;
  readonly answer: Answer;
  readonly role: string;
}

export interface Finding {
  readonly check: VmmCheckId;
  /** The requests involved, in trace order. */
  readonly involved: readonly Involved[];
  /** The gfns involved. */
  readonly gfns: readonly GfnRange[];
  readonly message: string;
}

/** One request as the model answered it. */
export interface LintStep {
  readonly line: number;
  readonly request: Request;
  readonly before: model.VmState;
  readonly after: model.VmState;
  readonly answer: Answer;
}

/** The set-region arguments a request carries, or null (set_user_memory_region and its kin). */
export function regionOf(r: Request): MemoryRegion | null {
  const region = (r as { readonly region?: MemoryRegion }).region;
  return region !== undefined && typeof region.slot === 'number' ? region : null;
}

/** The slot (`as_id << 16 | id`) a request without a region names, or null (get_dirty_log and its kin). */
function slotRead(r: Request): number | null {
  const slot = (r as { readonly slot?: unknown }).slot;
  return regionOf(r) === null && typeof slot === 'number' ? slot : null;
}

/** The slot `as_id << 16 | id` in `vm`, or undefined (also for an address space the profile lacks). */
function slotIn(vm: model.VmState, slot: number): Memslot | undefined {
  const asId = slot >>> 16;
  return asId < vm.spaces.length ? model.findSlot(vm, asId, slot & 0xffff) : undefined;
}

const endOf = (s: Memslot): bigint => s.baseGfn + s.npages;
const max = (a: bigint, b: bigint): bigint => (a > b ? a : b);
const min = (a: bigint, b: bigint): bigint => (a < b ? a : b);

/** Errnos a retry may not get again: the kernel's resource branch (MS-RES-01) and interruptions. */
const TRANSIENT = new Set(['ENOMEM', 'EINTR', 'EAGAIN']);

/** Gfns a request of the run under way unmapped, not mapped since; `hva` is the host address of `start`. */
interface Hole extends GfnRange {
  readonly hva: bigint;
  readonly unmap: Involved;
}

/** The run of consecutive set-region requests under way (VMM-WIN-01). */
interface Run {
  readonly holes: Hole[];
}

interface Freed {
  readonly del: Involved;
  readonly gfns: GfnRange;
}

/** One address space's ids (VMM-IDS-01). */
interface Ids {
  readonly used: Set<number>;
  /** Deleted and not created again since; the ids no fresh id has climbed past yet are in `waiting`. */
  readonly freed: Map<number, Freed>;
  readonly waiting: Set<number>;
  /** Freed ids a fresh higher id was created after: id -> the first such create. */
  readonly leaked: Map<number, Involved>;
  highest: number;
  lastFresh: Involved | null;
}

interface Rejection {
  readonly inv: Involved;
  readonly state: model.VmState;
}

export class VmmLinter {
  readonly #findings: Finding[] = [];
  #profile: model.Profile;
  #run: Run | null = null;
  #ids: Ids[] = [];
  /** Rejected requests (by their text) since the VM last changed (VMM-REJ-01). */
  readonly #rejected = new Map<string, Rejection>();
  /** Slots (`as_id << 16 | id`) whose create was rejected and not attempted again (VMM-REJ-02). */
  readonly #failedCreate = new Map<number, Involved>();
  /** Slots whose delete was rejected, the slot still there (VMM-REJ-02). */
  readonly #failedDelete = new Map<number, Involved>();

  constructor(profile: model.Profile) {
    this.#profile = profile;
    this.#startVm(profile);
  }

  /** A fresh VM under `profile` (a trace's start or profile line): what the last one left is judged first. */
  reset(profile: model.Profile): void {
    this.#endVm();
    this.#profile = profile;
    this.#startVm(profile);
  }

  step(s: LintStep): void {
    const region = regionOf(s.request);
    // A reset the kernel refused (a vm_type it lacks) keeps the VM: it is then a request that changes nothing.
    if (s.request.op === 'reset' && s.answer.kind === 'ok') {
      this.#endVm();
      this.#profile = s.after.profile;
      this.#startVm(s.after.profile);
      return;
    }
    const inv = (role: string): Involved => ({ line: s.line, request: s.request, answer: s.answer, role });
    this.#retried(s, inv);
    if (region !== null) {
      this.#pastLimit(s, region, inv);
      this.#asIfSucceeded(s, region, inv);
      this.#internal(s, region, inv);
      this.#trackIds(s, region, inv);
      this.#trackRun(s, region, inv);
    } else {
      const read = slotRead(s.request);
      if (read !== null) this.#readNeverCreated(s, read, inv);
      // A request that leaves the VM as it was (a dirty-log read, a lookup) neither joins nor ends a run.
      if (s.after !== s.before) this.#endRun();
    }
  }

  /** Judges what is still open (the run under way, the ids of the VM) and returns every finding. */
  finish(): readonly Finding[] {
    this.#endVm();
    this.#startVm(this.#profile);
    return this.#findings;
  }

  /** The findings so far (a run or a VM still open is judged only when it ends). */
  findings(): readonly Finding[] {
    return this.#findings;
  }

  #add(check: VmmCheckId, involved: Involved[], gfns: GfnRange[], message: string): void {
    this.#findings.push({ check, involved: involved.sort((a, b) => a.line - b.line), gfns, message });
  }

  #startVm(profile: model.Profile): void {
    this.#run = null;
    this.#ids = Array.from({ length: profile.addressSpaces }, () => ({
      used: new Set<number>(),
      freed: new Map<number, Freed>(),
      waiting: new Set<number>(),
      leaked: new Map<number, Involved>(),
      highest: -1,
      lastFresh: null,
    }));
    this.#rejected.clear();
    this.#failedCreate.clear();
    this.#failedDelete.clear();
  }

  #endVm(): void {
    this.#endRun();
    this.#judgeLeaks();
  }

  // [VMM-WIN-01] ------------------------------------------------------------------------------

  #trackRun(s: LintStep, region: MemoryRegion, inv: (role: string) => Involved): void {
    if (this.#run === null) this.#run = { holes: [] };
    const run = this.#run;
    const old = slotIn(s.before, region.slot);
    const neu = slotIn(s.after, region.slot);
    // Mapped again: the part of a hole the new slot covers at the same host address is a window.
    // Its memory mapped at other gfns is a relocation, other memory at its gfns a replacement:
    // either way the VMM meant the gfns to go, and that part of the hole is closed without a finding.
    if (neu !== undefined && (old === undefined || old.baseGfn !== neu.baseGfn) && run.holes.length > 0) {
      const left: Hole[] = [];
      const windows = new Map<number, { unmap: Involved; gfns: GfnRange[] }>();
      const nDelta = neu.userspaceAddr - (neu.baseGfn << PAGE_SHIFT);
      for (const h of run.holes) {
        const hDelta = h.hva - (h.start << PAGE_SHIFT);
        // The hole's gfns this request settles: those it maps, and those whose memory it maps at other gfns.
        const gfnA = max(h.start, neu.baseGfn);
        const gfnB = h.asId === neu.asId ? min(h.end, endOf(neu)) : gfnA;
        let rest: Hole[] = cut(h, gfnA, gfnB);
        if (hDelta !== nDelta) {
          const hvaA = max(h.start, (neu.userspaceAddr - hDelta) >> PAGE_SHIFT);
          const hvaB = min(h.end, (neu.userspaceAddr + (neu.npages << PAGE_SHIFT) - hDelta) >> PAGE_SHIFT);
          rest = rest.flatMap((p) => cut(p, hvaA, hvaB));
        } else if (gfnA < gfnB) {
          const w = windows.get(h.unmap.line) ?? { unmap: h.unmap, gfns: [] };
          const prev = w.gfns[w.gfns.length - 1];
          if (prev !== undefined && prev.end === gfnA) w.gfns[w.gfns.length - 1] = { ...prev, end: gfnB };
          else w.gfns.push({ asId: h.asId, start: gfnA, end: gfnB });
          windows.set(h.unmap.line, w);
        }
        left.push(...rest);
      }
      run.holes.splice(0, run.holes.length, ...left);
      for (const w of windows.values()) {
        const pages = w.gfns.reduce((n, r) => n + (r.end - r.start), 0n);
        this.#add(
          'VMM-WIN-01',
          [w.unmap, inv('maps them again')],
          w.gfns,
          `${pages} page(s) unmapped by line ${w.unmap.line} are mapped again at the same host address by line ${s.line}, ` +
            'with only set-region requests (and requests that change nothing) between: in that window a vCPU touching them exits to userspace with no memslot (MMIO). ' +
            'Change the slot in one request (a MOVE, a flags change), or pause the vCPUs around the update.',
        );
      }
    }
    // Unmapped: the gfns the old slot covered and the new one does not.
    if (old !== undefined && (neu === undefined || neu.baseGfn !== old.baseGfn || neu.npages !== old.npages)) {
      const pieces: [bigint, bigint][] =
        neu === undefined
          ? [[old.baseGfn, endOf(old)]]
          : [
              [old.baseGfn, neu.baseGfn < endOf(old) ? neu.baseGfn : endOf(old)],
              [endOf(neu) > old.baseGfn ? endOf(neu) : old.baseGfn, endOf(old)],
            ];
      const unmap = inv(neu === undefined ? 'unmaps (deletes)' : 'unmaps (moves away)');
      for (const [start, end] of pieces) {
        if (start < end) run.holes.push({ asId: old.asId, start, end, hva: old.userspaceAddr + ((start - old.baseGfn) << PAGE_SHIFT), unmap });
      }
    }
  }

  #endRun(): void {
    this.#run = null;
  }

  // [VMM-IDS-01] ------------------------------------------------------------------------------

  #trackIds(s: LintStep, region: MemoryRegion, inv: (role: string) => Involved): void {
    const asId = region.slot >>> 16;
    const id = region.slot & 0xffff;
    const ids = this.#ids[asId];
    if (ids === undefined || id >= s.before.profile.userMemSlots) return;
    const old = slotIn(s.before, region.slot);
    const neu = slotIn(s.after, region.slot);
    if (old !== undefined && neu === undefined) {
      ids.freed.set(id, { del: inv('deletes'), gfns: { asId, start: old.baseGfn, end: endOf(old) } });
      ids.waiting.add(id);
    } else if (old === undefined && neu !== undefined) {
      // Created again: reused, so not leaked.
      ids.freed.delete(id);
      ids.waiting.delete(id);
      ids.leaked.delete(id);
      if (!ids.used.has(id)) {
        ids.used.add(id);
        const fresh = inv('creates a fresh id');
        if (id > ids.highest) ids.highest = id;
        ids.lastFresh = fresh;
        for (const w of ids.waiting) {
          if (w < id) {
            ids.waiting.delete(w);
            ids.leaked.set(w, fresh);
          }
        }
      }
    }
  }

  #judgeLeaks(): void {
    const limit = this.#profile.userMemSlots;
    this.#ids.forEach((ids, asId) => {
      if (ids.leaked.size === 0) return;
      const leaked = [...ids.leaked.keys()].sort((a, b) => a - b);
      const shown = leaked.slice(0, 5);
      const involved: Involved[] = [];
      for (const id of shown) involved.push(ids.freed.get(id)!.del);
      const firstClimb = ids.leaked.get(leaked[0]!)!;
      involved.push(firstClimb);
      if (ids.lastFresh !== null && ids.lastFresh.line !== firstClimb.line) involved.push(ids.lastFresh);
      const left = limit - 1 - ids.highest;
      this.#add(
        'VMM-IDS-01',
        involved,
        shown.map((id) => ids.freed.get(id)!.gfns),
        `address space ${asId}: ${leaked.length} id(s) deleted and never created again (${shown.join(', ')}${leaked.length > shown.length ? ', ...' : ''}) ` +
          `while fresh ids climbed past them to ${ids.highest}; ${left} fresh id(s) are left below KVM_USER_MEM_SLOTS (${limit}): ` +
          'an allocator that never returns deleted ids runs out with most ids free. Reuse deleted ids (the lowest free one, as QEMU does).',
      );
    });
  }

  // [VMM-IDS-02] ------------------------------------------------------------------------------

  #pastLimit(s: LintStep, region: MemoryRegion, inv: (role: string) => Involved): void {
    const p = s.before.profile;
    const asId = region.slot >>> 16;
    const id = region.slot & 0xffff;
    const gfns =
      region.memorySize === 0n ? [] : [{ asId, start: region.guestPhysAddr >> PAGE_SHIFT, end: (region.guestPhysAddr + region.memorySize) >> PAGE_SHIFT }];
    if (id >= p.userMemSlots) {
      this.#add(
        'VMM-IDS-02',
        [inv('names an id past the limit')],
        gfns,
        `id ${id} is at or past KVM_USER_MEM_SLOTS (${p.userMemSlots}, profile ${p.name}; KVM_CAP_NR_MEMSLOTS): the kernel answers ${answerText(s.answer)}. ` +
          'Ask KVM_CAP_NR_MEMSLOTS and allocate below it.',
      );
    } else if (asId >= p.addressSpaces) {
      this.#add(
        'VMM-IDS-02',
        [inv('names an address space past the limit')],
        gfns,
        `address space ${asId} (slot >> 16) is past the ${p.addressSpaces} of profile ${p.name} (KVM_CAP_MULTI_ADDRESS_SPACE): the kernel answers ${answerText(s.answer)}.`,
      );
    }
  }

  // [VMM-REJ-01] ------------------------------------------------------------------------------

  #retried(s: LintStep, inv: (role: string) => Involved): void {
    const rejected = s.answer.kind === 'errno' && !TRANSIENT.has(s.answer.errno);
    const key = rejected ? requestText(s.request) : '';
    const prior = rejected ? this.#rejected.get(key) : undefined;
    if (prior !== undefined && prior.state === s.before) {
      const region = regionOf(s.request);
      this.#add(
        'VMM-REJ-01',
        [prior.inv, inv('issues it again unchanged')],
        region === null || region.memorySize === 0n
          ? []
          : [{ asId: region.slot >>> 16, start: region.guestPhysAddr >> PAGE_SHIFT, end: (region.guestPhysAddr + region.memorySize) >> PAGE_SHIFT }],
        `line ${s.line} repeats line ${prior.inv.line}, which the kernel rejected with ${answerText(prior.inv.answer)}, and nothing in the VM changed in between: ` +
          'the kernel must answer the same (its checks depend on the request and the VM only). Read the errno and fix the request, or change what it conflicts with first.',
      );
    }
    if (s.after !== s.before) this.#rejected.clear();
    if (rejected && (prior === undefined || prior.state !== s.before)) this.#rejected.set(key, { inv: inv('rejected'), state: s.after });
  }

  // [VMM-REJ-02] ------------------------------------------------------------------------------

  #asIfSucceeded(s: LintStep, region: MemoryRegion, inv: (role: string) => Involved): void {
    const key = region.slot;
    const old = slotIn(s.before, key);
    const failed = s.answer.kind === 'errno';
    if (region.memorySize === 0n) {
      const create = this.#failedCreate.get(key);
      if (create !== undefined && old === undefined) {
        this.#failedCreate.delete(key);
        this.#add(
          'VMM-REJ-02',
          [create, inv('deletes the slot never created')],
          [regionGfns(create)],
          `line ${s.line} deletes slot ${key} (as_id ${key >>> 16}, id ${key & 0xffff}) as if line ${create.line} had created it, but the kernel rejected that create with ${answerText(create.answer)}: ` +
            "the VMM's table of slots disagrees with the kernel's from there on. Check every set-region answer before recording the slot.",
        );
      }
      if (failed && old !== undefined) this.#failedDelete.set(key, inv('rejected delete'));
      if (!failed) this.#failedDelete.delete(key);
      return;
    }
    const del = this.#failedDelete.get(key);
    if (del !== undefined && old !== undefined) {
      this.#failedDelete.delete(key);
      this.#add(
        'VMM-REJ-02',
        [del, inv('creates as if the id were free')],
        [{ asId: old.asId, start: old.baseGfn, end: endOf(old) }, regionGfns(inv(''))],
        `line ${s.line} sets up slot ${key} (as_id ${key >>> 16}, id ${key & 0xffff}) as if it were free, but the delete at line ${del.line} was rejected with ${answerText(del.answer)} ` +
          `and the old slot (gfns ${hex(old.baseGfn)}-${hex(endOf(old) - 1n)}) is still there: the kernel takes this request as a change of that slot (${answerText(s.answer)}).`,
      );
    }
    this.#failedCreate.delete(key);
    if (failed && old === undefined) this.#failedCreate.set(key, inv('rejected create'));
  }

  #readNeverCreated(s: LintStep, slot: number, inv: (role: string) => Involved): void {
    const create = this.#failedCreate.get(slot);
    if (create === undefined || slotIn(s.before, slot) !== undefined) return;
    this.#failedCreate.delete(slot);
    this.#add(
      'VMM-REJ-02',
      [create, inv('uses the slot never created')],
      [regionGfns(create)],
      `line ${s.line} uses slot ${slot} (as_id ${slot >>> 16}, id ${slot & 0xffff}) as if line ${create.line} had created it, but the kernel rejected that create with ${answerText(create.answer)}.`,
    );
  }

  // [VMM-X86-01] ------------------------------------------------------------------------------

  #internal(s: LintStep, region: MemoryRegion, inv: (role: string) => Involved): void {
    if (region.memorySize === 0n) return;
    if (!(s.answer.kind === 'ret' || (s.answer.kind === 'errno' && s.answer.errno === 'EEXIST'))) return;
    const old = slotIn(s.before, region.slot);
    const start = region.guestPhysAddr >> PAGE_SHIFT;
    if (old !== undefined && old.baseGfn === start) return; // neither a create nor a move
    const asId = region.slot >>> 16;
    const end = start + (region.memorySize >> PAGE_SHIFT);
    for (const x of internalRegions(s.before, asId < s.before.spaces.length ? asId : 0)) {
      const a = x.start > start ? x.start : start;
      const b = x.end < end ? x.end : end;
      if (a >= b) continue;
      this.#add(
        'VMM-X86-01',
        [inv(old === undefined ? 'creates over an internal slot' : 'moves over an internal slot')],
        [{ asId, start: a, end: b }],
        `gpa ${hex(a << PAGE_SHIFT)}-${hex((b << PAGE_SHIFT) - 1n)} is the kernel's ${x.name} (${x.where}; spec/26): ` +
          (x.present
            ? `it exists in this VM, so the kernel answers ${answerText(s.answer)} (MS-OVL-01).`
            : `where the kernel creates it (Intel VMX${x.name === 'APIC access page' ? ' with an in-kernel LAPIC' : ''}) the request or the kernel's own create fails with EEXIST` +
              (x.name === 'APIC access page' ? ", as Hyperlight's scratch slot did (issue 1389)" : '') +
              (x.name === 'identity map'
                ? '. Leave the page out of the slot, or move the identity map first (KVM_SET_IDENTITY_MAP_ADDR).'
                : '. Leave the page out of the slot.')),
      );
    }
  }
}

/** What is left of hole `h` once gfns `[a, b)` are taken out of it. */
function cut(h: Hole, a: bigint, b: bigint): Hole[] {
  if (a >= b || b <= h.start || a >= h.end) return [h];
  const out: Hole[] = [];
  if (h.start < a) out.push({ ...h, end: a });
  if (b < h.end) out.push({ ...h, start: b, hva: h.hva + ((b - h.start) << PAGE_SHIFT) });
  return out;
}

function regionGfns(inv: Involved): GfnRange {
  const r = regionOf(inv.request)!;
  return { asId: r.slot >>> 16, start: r.guestPhysAddr >> PAGE_SHIFT, end: (r.guestPhysAddr + r.memorySize) >> PAGE_SHIFT };
}

/** Where the x86 internal slots are (spec/26): as the VM holds them, else where the kernel puts them by default. */
function internalRegions(vm: model.VmState, asId: number): { name: string; where: string; start: bigint; end: bigint; present: boolean }[] {
  const ids = model.internalSlotIds(vm);
  const L = model.INTERNAL_SLOT_LAYOUT;
  const one = (
    name: string,
    id: number,
    dflt: bigint | null,
    dfltWhere: string,
  ): { name: string; where: string; start: bigint; end: bigint; present: boolean }[] => {
    const s = model.findSlot(vm, asId, id);
    if (s !== undefined) return [{ name, where: `internal slot id ${id}`, start: s.baseGfn, end: endOf(s), present: true }];
    if (dflt === null) return [];
    const g = dflt >> PAGE_SHIFT;
    return [{ name, where: dfltWhere, start: g, end: g + 1n, present: false }];
  };
  return [
    ...one('APIC access page', ids.apicAccessPage, L.apicAccessPageGpa, 'one page at APIC_DEFAULT_PHYS_BASE 0xfee00000'),
    // The TSS has no default address: only KVM_SET_TSS_ADDR places it (a trace shows it as set_internal_memslot).
    ...one('TSS', ids.tss, null, ''),
    ...one('identity map', ids.identityMap, L.identityMapGpa, 'one page at 0xfffbc000 unless KVM_SET_IDENTITY_MAP_ADDR moved it'),
  ];
}

export interface LintReport {
  readonly steps: number;
  readonly findings: readonly Finding[];
}

/**
 * Lints parsed trace lines: each request through the model (following the trace's ENOMEM
 * where MS-RES-01 allows it, as replay does), each step to a VmmLinter. Throws InputError on a
 * defect of the input, as replay does.
 */
export async function lintTrace(lines: AsyncIterable<TraceLine> | Iterable<TraceLine>, profile: model.Profile): Promise<LintReport> {
  const linter = new VmmLinter(profile);
  let vm = model.createVm(profile);
  let steps = 0;
  for await (const t of lines) {
    if (t.kind === 'profile') {
      vm = model.createVm(t.profile);
      linter.reset(t.profile);
      continue;
    }
    const defect = requestDefect(vm, t.request);
    if (defect !== null) throw new InputError(t.line, defect.field, defect.message);
    const m = judge(vm, t.request, modelStep(vm, t.request), t.expect).step;
    linter.step({ line: t.line, request: t.request, before: vm, after: m.state, answer: m.answer });
    vm = m.state;
    steps++;
  }
  return { steps, findings: linter.finish() };
}

const gfnText = (g: GfnRange): string => `as ${g.asId} ${hex(g.start)}-${hex(g.end - 1n)}`;

/** The report: a summary line (counts by check), then each finding with its lines, requests and gfns. */
export function formatLint(findings: readonly Finding[], limit = 20): string {
  const counts = new Map<VmmCheckId, number>();
  for (const f of findings) counts.set(f.check, (counts.get(f.check) ?? 0) + 1);
  const by = [...counts].map(([id, n]) => `${id} x${n}`).join(', ');
  const out = [`VMM checks: ${findings.length} finding${findings.length === 1 ? '' : 's'}${by === '' ? '' : ` (${by})`}`];
  for (const f of findings.slice(0, limit)) {
    out.push('', `[${f.check}] ${VMM_CHECKS[f.check]}`, `  ${f.message}`);
    for (const i of f.involved) out.push(`  line ${i.line}: ${requestText(i.request)} -> ${answerText(i.answer)}   (${i.role})`);
    if (f.gfns.length > 0) out.push(`  gfns: ${f.gfns.map(gfnText).join(', ')}`);
  }
  if (findings.length > limit) out.push('', `(${findings.length - limit} more findings not shown)`);
  return out.join('\n');
}
