/**
 * What the runner checks: one interface for an implementation in process (sync or async) and
 * for a system under test over the protocol (a child process, or the kernel).
 *
 * A target offers the requests of the spec and whatever lookups and state it can show; the
 * runner calls every one it offers and compares each answer with the model. A lookup it does
 * not offer is left out of its runs (the protocol has no approx lookup, for one), and a state it
 * cannot show is not compared.
 */
import type { AsyncMemslotImpl, CountOutcome, MemslotImpl } from '../impl/interface.js';
import type {
  CapFd,
  CapName,
  ClearDirtyLog,
  ChangeKind,
  DirtyLogOutcome,
  Errno,
  Gfn,
  Gpa,
  Hva,
  HvaRangeHit,
  HvaResult,
  IoctlOutcome,
  MemoryRegion,
  MemoryRegion2,
  Memslot,
  Profile,
  EnableCapName,
  RingEntry,
  WriteOutcome,
} from '../model/index.js';
import { PAGE_SHIFT } from '../model/index.js';
import type { SutClient } from '../sut/protocol.js';
import type { Offers } from './arbitraries.js';
import type { Answer, Request, SlotInfo } from '../trace/trace.js';

export type Awaitable<T> = T | Promise<T>;

/** A set-memory-region answer; a target over the protocol knows only success, not the change kind. */
export type TargetSetOutcome = { readonly ok: true; readonly change?: ChangeKind } | { readonly ok: false; readonly errno: Errno };

/** A slot a protocol lookup names: its address space and id, nothing else. */
export interface SlotRef {
  readonly asId: number;
  readonly id: number;
}

/** What a target shows of its state: per address space its slots and generation (each may be unknown). */
export interface TargetState {
  readonly spaces: readonly { readonly asId: number; readonly generation: bigint | null; readonly slots: readonly Memslot[] | null }[];
  readonly nrMemslotPages: bigint | null;
  /** Whether `dirtyBitmap` of its slots means anything (the protocol does not carry it). */
  readonly bitmaps: boolean;
}

export interface Target {
  readonly name: string;
  /** A fresh VM of type 0. */
  reset(): Awaitable<unknown>;
  setUserMemoryRegion(mem: MemoryRegion): Awaitable<TargetSetOutcome>;
  getDirtyLog(slot: number): Awaitable<DirtyLogOutcome>;
  // The 6.8+ memory API (spec/28); a SUT offers what its hello lists.
  /** A fresh VM of `vmType`, or the errno and the old VM. */
  createVm?(vmType: number): Awaitable<IoctlOutcome>;
  setUserMemoryRegion2?(mem: MemoryRegion2): Awaitable<TargetSetOutcome>;
  createGuestMemfd?(size: bigint, flags: bigint): Awaitable<IoctlOutcome>;
  setMemoryAttributes?(address: bigint, size: bigint, attributes: bigint, flags: bigint): Awaitable<IoctlOutcome>;
  checkExtension?(cap: CapName, fd: CapFd): Awaitable<number>;
  // Dirty bits (spec/25); a SUT offers them when its hello lists write / clear_dirty_log / enable_cap.
  /** vCPU 0's guest write. */
  guestWrite?(asId: number, gpa: Gpa): Awaitable<WriteOutcome>;
  clearDirtyLog?(c: ClearDirtyLog): Awaitable<IoctlOutcome>;
  enableCap?(cap: EnableCapName, args0: bigint, flags: number): Awaitable<IoctlOutcome>;
  // Dirty rings (spec/25), when hello lists harvest_dirty_ring / reset_dirty_rings.
  harvestDirtyRing?(): Awaitable<RingEntry[]>;
  resetDirtyRings?(): Awaitable<CountOutcome>;
  setInternalMemslot?(id: number, gpa: Gpa, size: bigint, hva: Hva): Awaitable<TargetSetOutcome>;
  idToMemslot?(asId: number, id: number): Awaitable<Memslot | null>;
  gfnToMemslot?(asId: number, gfn: Gfn): Awaitable<Memslot | SlotRef | null>;
  gfnToMemslotApprox?(asId: number, gfn: Gfn): Awaitable<Memslot | null>;
  gfnRangeMemslots?(asId: number, start: Gfn, end: Gfn): Awaitable<Memslot[]>;
  hvaRangeMemslots?(start: Hva, end: Hva): Awaitable<HvaRangeHit[]>;
  vcpuGfnToMemslot?(vcpu: number, inSmm: boolean, gfn: Gfn): Awaitable<Memslot | null>;
  isVisibleGfn?(asId: number, gfn: Gfn): Awaitable<boolean>;
  gfnToHva?(asId: number, gfn: Gfn, write: boolean): Awaitable<HvaResult>;
  /** Its state after a step, or what it can show of it. */
  observe?(profile: Profile): Awaitable<TargetState>;
  /**
   * When to observe: after every step (in process, where it is cheap and also catches a lookup
   * that corrupts the state), or after the steps that change the VM (over the protocol, where
   * each observation costs 2N round trips).
   */
  readonly observeAfter: 'every-step' | 'changes';
  /**
   * Whether an allocation can fail: then ENOMEM is accepted where MS-RES-01 allows it and the
   * model follows it. Never for an implementation in process.
   */
  readonly mayFailAllocation: boolean;
  /** Creates and moves the model would accept above this many pages are not sent (a kernel allocates per page). */
  readonly maxPages: bigint | null;
}

/** Which optional requests the target offers: their commands are generated only for those. */
export function targetOffers(t: Target): Offers {
  return {
    createVm: t.createVm !== undefined,
    region2: t.setUserMemoryRegion2 !== undefined,
    guestMemfd: t.createGuestMemfd !== undefined,
    attributes: t.setMemoryAttributes !== undefined,
    capabilities: t.checkExtension !== undefined,
    write: t.guestWrite !== undefined,
    dirtyRings: t.enableCap !== undefined && t.harvestDirtyRing !== undefined && t.resetDirtyRings !== undefined,
  };
}

/** An implementation in process, sync or async: everything it offers, its whole state included. */
export function implTarget(impl: MemslotImpl | AsyncMemslotImpl): Target {
  return {
    name: impl.name,
    reset: () => impl.reset(),
    createVm: (t) => impl.reset(t),
    setUserMemoryRegion: (m) => impl.setUserMemoryRegion(m),
    setUserMemoryRegion2: (m) => impl.setUserMemoryRegion2(m),
    createGuestMemfd: (size, flags) => impl.createGuestMemfd(size, flags),
    setMemoryAttributes: (a, s, at, f) => impl.setMemoryAttributes(a, s, at, f),
    checkExtension: (c, fd) => impl.checkExtension(c, fd),
    guestWrite: (a, g) => impl.guestWrite(a, g),
    clearDirtyLog: (c) => impl.clearDirtyLog(c),
    enableCap: (c, a, f) => impl.enableCap(c, a, f),
    harvestDirtyRing: () => impl.harvestDirtyRing(),
    resetDirtyRings: () => impl.resetDirtyRings(),
    getDirtyLog: (s) => impl.getDirtyLog(s),
    setInternalMemslot: (id, gpa, size, hva) => impl.setInternalMemslot(id, gpa, size, hva),
    idToMemslot: (a, id) => impl.idToMemslot(a, id),
    gfnToMemslot: (a, g) => impl.gfnToMemslot(a, g),
    gfnToMemslotApprox: (a, g) => impl.gfnToMemslotApprox(a, g),
    gfnRangeMemslots: (a, s, e) => impl.gfnRangeMemslots(a, s, e),
    hvaRangeMemslots: (s, e) => impl.hvaRangeMemslots(s, e),
    vcpuGfnToMemslot: (v, smm, g) => impl.vcpuGfnToMemslot(v, smm, g),
    isVisibleGfn: (a, g) => impl.isVisibleGfn(a, g),
    gfnToHva: (a, g, w) => impl.gfnToHva(a, g, w),
    observe: async (profile) => {
      const spaces = [];
      for (let asId = 0; asId < profile.addressSpaces; asId++) spaces.push({ asId, generation: await impl.generation(asId), slots: await impl.slots(asId) });
      return { spaces, nrMemslotPages: await impl.nrMemslotPages(), bitmaps: true };
    },
    observeAfter: 'every-step',
    mayFailAllocation: false,
    maxPages: null,
  };
}

function slotOf(info: SlotInfo): Memslot {
  return {
    asId: info.slot >>> 16,
    id: info.slot & 0xffff,
    baseGfn: info.guestPhysAddr >> PAGE_SHIFT,
    npages: info.memorySize >> PAGE_SHIFT,
    flags: info.flags,
    userspaceAddr: info.userspaceAddr,
    dirtyBitmap: null,
    // The protocol does not carry the binding (spec/80); `bitmapsShown` false says so too.
    gmem: null,
  };
}

function unexpected(r: Request, a: Answer): never {
  throw new TypeError(`the answer ${JSON.stringify(a.kind)} to ${r.op} passed the protocol check but has the wrong shape`);
}

/** Sends one request and returns an answer the protocol client has already checked for its op. */
function outcome(a: Answer, r: Request): TargetSetOutcome & DirtyLogOutcome {
  if (a.kind === 'ret') return { ok: true };
  if (a.kind === 'errno') return { ok: false, errno: a.errno };
  return unexpected(r, a);
}

/**
 * A SUT over the protocol: the requests it lists in its hello, nothing more. Its slots carry no
 * bitmap identity and no page count, so those are not compared.
 */
export function sutTarget(sut: SutClient, opts: { readonly maxPages: bigint | null }): Target {
  const ask = async (r: Request): Promise<Answer> => sut.request(r);
  const has = (op: Request['op']): boolean => sut.supports(op);
  const target: Target = {
    name: sut.description,
    reset: async () => {
      await ask({ op: 'reset' });
    },
    setUserMemoryRegion: async (region) => {
      const r: Request = { op: 'set_user_memory_region', region };
      return outcome(await ask(r), r);
    },
    getDirtyLog: async (slot) => {
      const r: Request = { op: 'get_dirty_log', slot };
      return outcome(await ask(r), r);
    },
    observeAfter: 'changes',
    mayFailAllocation: true,
    maxPages: opts.maxPages,
  };
  const extra: Partial<Target> = {};
  if (sut.supportsResetVmType) {
    extra.createVm = async (vmType) => {
      const r: Request = { op: 'reset', vmType };
      const a = await ask(r);
      return a.kind === 'ok' ? { ok: true } : outcome(a, r);
    };
  }
  if (has('set_user_memory_region2')) {
    extra.setUserMemoryRegion2 = async (region) => {
      const r: Request = { op: 'set_user_memory_region2', region };
      return outcome(await ask(r), r);
    };
  }
  if (has('create_guest_memfd')) {
    extra.createGuestMemfd = async (size, flags) => {
      const r: Request = { op: 'create_guest_memfd', size, flags };
      return outcome(await ask(r), r);
    };
  }
  if (has('set_memory_attributes')) {
    extra.setMemoryAttributes = async (address, size, attributes, flags) => {
      const r: Request = { op: 'set_memory_attributes', address, size, attributes, flags };
      return outcome(await ask(r), r);
    };
  }
  if (has('check_extension')) {
    extra.checkExtension = async (cap, fd) => {
      const r: Request = { op: 'check_extension', cap, fd };
      const a = await ask(r);
      if (a.kind !== 'value') return unexpected(r, a);
      return a.value;
    };
  }
  if (has('write')) {
    extra.guestWrite = async (asId, gpa) => {
      const r: Request = { op: 'write', asId, gpa };
      const a = await ask(r);
      if (a.kind !== 'ret' && a.kind !== 'mmio' && a.kind !== 'dirty_ring_full') return unexpected(r, a);
      return a.kind;
    };
  }
  if (has('harvest_dirty_ring')) {
    extra.harvestDirtyRing = async () => {
      const r: Request = { op: 'harvest_dirty_ring' };
      const a = await ask(r);
      if (a.kind !== 'entries') return unexpected(r, a);
      return [...a.entries];
    };
  }
  if (has('reset_dirty_rings')) {
    extra.resetDirtyRings = async () => {
      const r: Request = { op: 'reset_dirty_rings' };
      const a = await ask(r);
      if (a.kind === 'count') return { ok: true, count: a.count };
      if (a.kind === 'errno') return { ok: false, errno: a.errno };
      return unexpected(r, a);
    };
  }
  if (has('clear_dirty_log')) {
    extra.clearDirtyLog = async (clear) => {
      const r: Request = { op: 'clear_dirty_log', clear };
      return outcome(await ask(r), r);
    };
  }
  if (has('enable_cap')) {
    extra.enableCap = async (cap, args0, flags) => {
      const r: Request = { op: 'enable_cap', cap, args0, flags };
      return outcome(await ask(r), r);
    };
  }
  if (has('set_internal_memslot')) {
    extra.setInternalMemslot = async (id, guestPhysAddr, memorySize, userspaceAddr) => {
      const r: Request = { op: 'set_internal_memslot', id, guestPhysAddr, memorySize, userspaceAddr };
      return outcome(await ask(r), r);
    };
  }
  if (has('gfn_to_memslot')) {
    extra.gfnToMemslot = async (asId, gfn) => {
      const r: Request = { op: 'gfn_to_memslot', asId, gfn };
      const a = await ask(r);
      if (a.kind !== 'slot') return unexpected(r, a);
      return a.slot === null ? null : { asId: a.slot >>> 16, id: a.slot & 0xffff };
    };
  }
  if (has('hva_to_memslots')) {
    extra.hvaRangeMemslots = async (start, end) => {
      const r: Request = { op: 'hva_to_memslots', start, end };
      const a = await ask(r);
      if (a.kind !== 'hva_hits') return unexpected(r, a);
      return a.hits.map((h) => ({ asId: h.slot >>> 16, id: h.slot & 0xffff, gfnStart: h.gfnStart, gfnEnd: h.gfnEnd }));
    };
  }
  if (has('get_slots') || has('get_generation')) {
    extra.observe = async (profile) => {
      const spaces = [];
      for (let asId = 0; asId < profile.addressSpaces; asId++) {
        let slots: Memslot[] | null = null;
        let generation: bigint | null = null;
        if (has('get_slots')) {
          const r: Request = { op: 'get_slots', asId };
          const a = await ask(r);
          if (a.kind !== 'slots') return unexpected(r, a);
          slots = a.slots.map(slotOf);
        }
        if (has('get_generation')) {
          const r: Request = { op: 'get_generation', asId };
          const a = await ask(r);
          if (a.kind !== 'generation') return unexpected(r, a);
          generation = a.generation;
        }
        spaces.push({ asId, generation, slots });
      }
      return { spaces, nrMemslotPages: null, bitmaps: false };
    };
  }
  return { ...target, ...extra };
}
