/**
 * Types shared by the model, the implementations and the oracle.
 *
 * Every u64 quantity (addresses, sizes, gfns, page counts, generations) is a `bigint`.
 * u32 quantities that the kernel treats as bit fields or small ids (`slot`, `flags`, `id`,
 * `asId`) are `number`.
 */
import type { RuleId } from '../spec/rules.js';

export type Gfn = bigint;
export type Gpa = bigint;
export type Hva = bigint;
export type NPages = bigint;

export const PAGE_SHIFT = 12n;
export const PAGE_SIZE = 1n << PAGE_SHIFT;
export const U64_MAX = (1n << 64n) - 1n;
export const U32_MAX = 0xffff_ffff;

/** include/uapi/linux/kvm.h */
export const KVM_MEM_LOG_DIRTY_PAGES = 1 << 0;
export const KVM_MEM_READONLY = 1 << 1;
export const KVM_MEM_GUEST_MEMFD = 1 << 2;
/** include/uapi/linux/kvm.h: KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2's argument bits. */
export const KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE = 1 << 0;
export const KVM_DIRTY_LOG_INITIALLY_SET = 1 << 1;
/** include/uapi/linux/kvm.h: the flags of KVM_CREATE_GUEST_MEMFD. */
export const GUEST_MEMFD_FLAG_MMAP = 1n << 0n;
export const GUEST_MEMFD_FLAG_INIT_SHARED = 1n << 1n;
/** include/uapi/linux/kvm.h: the one memory attribute. */
export const KVM_MEMORY_ATTRIBUTE_PRIVATE = 1n << 3n;
/** Kernel-internal slot flag (include/linux/kvm_host.h): set on the temporary copy during DELETE/MOVE. */
export const KVM_MEMSLOT_INVALID = 1 << 16;
/** KVM_SET_USER_MEMORY_REGION_V1_FLAGS */
export const KVM_SET_USER_MEMORY_REGION_V1_FLAGS = KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY;
/** Bit 63 of a generation: a swap of the active set is in progress. */
export const KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS = 1n << 63n;

import type { Errno } from './errno.js';
export { ERRNOS, ERRNO_NUMBERS, isErrno, type Errno } from './errno.js';

/** `enum kvm_mr_change`, plus `NONE` for the identical re-issue that changes nothing. */
export type ChangeKind = 'CREATE' | 'DELETE' | 'MOVE' | 'FLAGS_ONLY' | 'NONE';

/** The arguments of `KVM_SET_USER_MEMORY_REGION` (v1), `struct kvm_userspace_memory_region`. */
export interface MemoryRegion {
  /** u32: `as_id << 16 | id`. */
  readonly slot: number;
  /** u32 */
  readonly flags: number;
  readonly guestPhysAddr: Gpa;
  readonly memorySize: bigint;
  readonly userspaceAddr: Hva;
}

/**
 * The file descriptor a `KVM_SET_USER_MEMORY_REGION2` passes as `guest_memfd` (spec/80): a
 * guest_memfd of this VM by handle (its creation index), a guest_memfd of another VM, a plain
 * memfd, or a number that is no open file descriptor.
 */
export type GmemRef = number | 'other_vm' | 'memfd' | 'closed';

/** The arguments of `KVM_SET_USER_MEMORY_REGION2`, `struct kvm_userspace_memory_region2` (pads are never read). */
export interface MemoryRegion2 extends MemoryRegion {
  readonly guestMemfdOffset: bigint;
  readonly guestMemfd: GmemRef;
}

/** A slot's guest_memfd binding: the file (a handle of this VM) and the first file page it maps. */
export interface GmemBinding {
  readonly file: number;
  readonly pgoff: bigint;
}

/** `struct kvm_memory_slot`, as far as it is observable. */
export interface Memslot {
  readonly asId: number;
  readonly id: number;
  readonly baseGfn: Gfn;
  readonly npages: NPages;
  /** User flags, plus KVM_MEMSLOT_INVALID on the temporary copy during DELETE/MOVE. */
  readonly flags: number;
  readonly userspaceAddr: Hva;
  /**
   * Identity of the dirty bitmap, or null when the slot has none. Two slots with the same
   * number share one bitmap (a MOVE keeps it, [MS-DLG-06]); a fresh bitmap gets a
   * fresh number.
   */
  readonly dirtyBitmap: number | null;
  /** The guest_memfd range the slot is bound to (only with KVM_MEM_GUEST_MEMFD), else null. */
  readonly gmem: GmemBinding | null;
}

/** What a set-memory-region request answers: success with the change it made, or an errno. */
export type SetOutcome = { readonly ok: true; readonly change: ChangeKind } | { readonly ok: false; readonly errno: Errno };

/**
 * What KVM_GET_DIRTY_LOG answers, and every other ioctl whose success is a plain 0. A
 * KVM_GET_DIRTY_LOG success carries the bitmap it copied out (hex, spec/25) where the answerer
 * knows it.
 */
export type DirtyLogOutcome = { readonly ok: true; readonly bitmap?: string } | { readonly ok: false; readonly errno: Errno };
export type IoctlOutcome = DirtyLogOutcome;

/** The model's answer: the outcome plus the rule that decided it (evidence for coverage and reports). */
export type SetResult = SetOutcome & { readonly rule: RuleId };
export type DirtyLogResult = DirtyLogOutcome & { readonly rule: RuleId };
export type IoctlResult = DirtyLogResult;
/** What KVM_CHECK_EXTENSION answers: a non-negative int. */
export interface CapResult {
  readonly value: number;
  readonly rule: RuleId;
}

/** `KVM_HVA_ERR_BAD` / `KVM_HVA_ERR_RO_BAD`, or a host virtual address. */
export type HvaResult = { readonly ok: true; readonly hva: Hva } | { readonly ok: false; readonly error: 'KVM_HVA_ERR_BAD' | 'KVM_HVA_ERR_RO_BAD' };

/** A slot found by an hva-range walk, with the gfn range it covers ([MS-LKP-05]). */
export interface HvaRangeHit {
  readonly asId: number;
  readonly id: number;
  /** Half-open gfn range `[start, end)` of the slot that the hva range touches. */
  readonly gfnStart: Gfn;
  readonly gfnEnd: Gfn;
}

/**
 * A broken internal invariant: a bug in the model or an implementation (the kernel's
 * WARN/BUG), never an errno.
 */
export class InvariantError extends Error {
  constructor(
    readonly rule: RuleId,
    readonly detail: string,
  ) {
    super(`[${rule}] invariant broken: ${detail}`);
    this.name = 'InvariantError';
  }
}

export function hex(v: bigint | number): string {
  return `0x${v.toString(16)}`;
}
