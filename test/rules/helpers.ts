/**
 * Shared builders and assertions for the rule example tests (test/rules/*.test.ts).
 *
 * Every example runs one request against a known state and asserts the exact answer
 * (ok/change or errno, and the deciding rule) and its effect on the state. The deciding
 * rule must be cited in the test's title, so a title can never claim a rule the example
 * does not exercise.
 */
import { expect } from 'vitest';
import {
  PAGE_SHIFT,
  PROFILES,
  checkInvariants,
  createVm,
  memslots,
  observableState,
  setUserMemoryRegion,
  type ChangeKind,
  type Errno,
  type MemoryRegion,
  type Memslot,
  type ObservableState,
  type Profile,
  type SetResult,
  type Step,
  type VmState,
} from '../../model/index.js';
import type { RuleId } from '../../spec/rules.js';

export const NOSMM: Profile = profile('x86_64-nosmm');
export const X86: Profile = profile('x86_64');
export const L510: Profile = profile('linux-5.10-x86_64');

/** A built-in profile by name; fails loudly when it is missing. */
export function profile(name: string): Profile {
  const p = PROFILES[name];
  if (p === undefined) throw new Error(`no built-in profile ${name}`);
  return p;
}

/** The u32 `slot` field: `as_id << 16 | id`. */
export function slotNr(asId: number, id: number): number {
  return ((asId << 16) | id) >>> 0;
}

/** A v1 request. */
export function region(slot: number, gpa: bigint, size: bigint, uaddr: bigint, flags = 0): MemoryRegion {
  return { slot, flags, guestPhysAddr: gpa, memorySize: size, userspaceAddr: uaddr };
}

/** A delete request for `slot` (size 0), with the given gpa/uaddr/flags (they need not match). */
export function del(slot: number, gpa = 0n, uaddr = 0n, flags = 0): MemoryRegion {
  return region(slot, gpa, 0n, uaddr, flags);
}

/** The memslot the model should hold. */
export function memslot(
  asId: number,
  id: number,
  baseGfn: bigint,
  npages: bigint,
  userspaceAddr: bigint,
  flags = 0,
  dirtyBitmap: number | null = null,
): Memslot {
  return { asId, id, baseGfn, npages, flags, userspaceAddr, dirtyBitmap, gmem: null };
}

/** A fresh VM with the given user requests applied; every one of them must succeed. */
export function build(p: Profile, requests: readonly MemoryRegion[]): VmState {
  let vm = createVm(p);
  for (const r of requests) {
    const s = setUserMemoryRegion(vm, r);
    if (!s.result.ok) throw new Error(`setup request ${JSON.stringify(r, big)} failed: ${JSON.stringify(s.result)}`);
    vm = s.state;
  }
  return vm;
}

function big(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? `0x${v.toString(16)}` : v;
}

/** The slots of address space `asId`, ascending by baseGfn. */
export function slotsOf(vm: VmState, asId = 0): readonly Memslot[] {
  if (vm.spaces[asId] === undefined) throw new Error(`no address space ${asId}`);
  return memslots(vm, asId);
}

/** The state as plain data (slot arrays in gfn order), for comparing two states with toEqual. */
export function asData(vm: VmState): ObservableState & { profile: Profile; bitmapsAllocated: number } {
  const o = observableState(vm);
  return { profile: vm.profile, spaces: o.spaces, nrMemslotPages: o.nrMemslotPages, bitmapsAllocated: vm.bitmapsAllocated };
}

/** The generation of address space `asId`. */
export function gen(vm: VmState, asId = 0): bigint {
  const s = vm.spaces[asId];
  if (s === undefined) throw new Error(`no address space ${asId}`);
  return s.generation;
}

/** Element `i`, which must exist. */
export function at<T>(xs: readonly T[], i: number): T {
  const x = xs[i];
  if (x === undefined) throw new Error(`no element ${i} (length ${xs.length})`);
  return x;
}

/** The deciding rule must appear as `[ID]` in the running test's title. */
export function expectTitleCites(rule: RuleId): void {
  // Only the test's own title (after the describe path): that is what traceability reads.
  const title = (expect.getState().currentTestName ?? '').split(' > ').at(-1) ?? '';
  expect(title, `the test title must cite the deciding rule [${rule}]`).toContain(`[${rule}]`);
}

type Apply = (vm: VmState, r: MemoryRegion) => Step<SetResult>;

/**
 * The request succeeds with `change`, decided by `rule`. The new state satisfies every
 * invariant (generations checked against `vm`), and it is the last state published.
 */
export function expectOk(vm: VmState, r: MemoryRegion, change: ChangeKind, rule: RuleId, apply: Apply = setUserMemoryRegion): Step<SetResult> {
  const step = apply(vm, r);
  expect(step.result).toEqual({ ok: true, change, rule });
  expectTitleCites(rule);
  checkInvariants(vm.profile, observableState(step.state), observableState(vm));
  if (change === 'NONE') {
    expect(step.state).toBe(vm);
    expect(step.published).toEqual([]);
  } else {
    expect(step.published.at(-1)).toBe(step.state);
  }
  return step;
}

/**
 * The request fails with `errno`, decided by `rule`, and changes nothing: the same state
 * object comes back and nothing was published (MS-GEN-04).
 */
export function expectErr(vm: VmState, r: MemoryRegion, errno: Errno, rule: RuleId, apply: Apply = setUserMemoryRegion): Step<SetResult> {
  const step = apply(vm, r);
  expect(step.result).toEqual({ ok: false, errno, rule });
  expectTitleCites(rule);
  expect(step.state).toBe(vm);
  expect(step.published).toEqual([]);
  return step;
}

/** Bytes of `n` pages. */
export function pages(n: bigint): bigint {
  return n << PAGE_SHIFT;
}

export const PAGE = 0x1000n;
/** The measured user address limit of our machines (4-level paging). */
export const USER_ADDR_MAX = 0x7fff_ffff_f000n;
/** Guest physical address 2^52: one past the last byte of gfn max_gfn = 2^40 - 1. */
export const GPA_LIMIT = 1n << 52n;
/** KVM_MEM_MAX_NR_PAGES */
export const MAX_NR_PAGES = (1n << 31n) - 1n;

/**
 * The chapter-20 example VM: slot 0 at gfn 0x100, 0x200 pages, uaddr 0x7f0000000000,
 * under `p` (default x86_64-nosmm).
 */
export const SLOT0_UADDR = 0x7f00_0000_0000n;
export const SLOT0 = region(0, 0x10_0000n, 0x20_0000n, SLOT0_UADDR);
export function exampleVm(p: Profile = NOSMM): VmState {
  return build(p, [SLOT0]);
}

/** Setup: applies a user request that must succeed, and returns the new state (no title check). */
export function applyOk(vm: VmState, r: MemoryRegion): VmState {
  const s = setUserMemoryRegion(vm, r);
  if (!s.result.ok) throw new Error(`setup request ${JSON.stringify(r, big)} failed: ${JSON.stringify(s.result)}`);
  return s.state;
}
