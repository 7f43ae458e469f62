/**
 * The trace's vocabulary (spec/70-traces.md, spec/80-protocol.md): the requests, the answers
 * and a trace's lines, as the parser (trace.ts), its canonical-line fast path and the executor
 * share them.
 */
import type { Errno, MemoryRegion, MemoryRegion2 } from '../model/types.js';
import type { Profile } from '../model/profiles.js';
import type { CapFd, CapName } from '../model/capabilities.js';
import type { ClearDirtyLog, EnableCapName } from '../model/dirty-log.js';

export type Request =
  /** `vmType` absent: type 0, as `{"op":"reset"}` has always meant. */
  | { readonly op: 'reset'; readonly vmType?: number }
  | { readonly op: 'set_user_memory_region'; readonly region: MemoryRegion }
  | { readonly op: 'set_user_memory_region2'; readonly region: MemoryRegion2 }
  | { readonly op: 'create_guest_memfd'; readonly size: bigint; readonly flags: bigint }
  | { readonly op: 'set_memory_attributes'; readonly address: bigint; readonly size: bigint; readonly attributes: bigint; readonly flags: bigint }
  | { readonly op: 'check_extension'; readonly cap: CapName; readonly fd: CapFd }
  | { readonly op: 'clear_dirty_log'; readonly clear: ClearDirtyLog }
  | { readonly op: 'enable_cap'; readonly cap: EnableCapName; readonly args0: bigint; readonly flags: number }
  | { readonly op: 'harvest_dirty_ring' }
  | { readonly op: 'reset_dirty_rings' }
  | { readonly op: 'write'; readonly asId: number; readonly gpa: bigint }
  | { readonly op: 'get_dirty_log'; readonly slot: number }
  | { readonly op: 'set_internal_memslot'; readonly id: number; readonly guestPhysAddr: bigint; readonly memorySize: bigint; readonly userspaceAddr: bigint }
  | { readonly op: 'get_slots'; readonly asId: number }
  | { readonly op: 'get_generation'; readonly asId: number }
  | { readonly op: 'gfn_to_memslot'; readonly asId: number; readonly gfn: bigint }
  | { readonly op: 'hva_to_memslots'; readonly start: bigint; readonly end: bigint };

export type Op = Request['op'];
export const OPS: readonly Op[] = [
  'reset',
  'set_user_memory_region',
  'get_dirty_log',
  'set_internal_memslot',
  'get_slots',
  'get_generation',
  'gfn_to_memslot',
  'hva_to_memslots',
  'set_user_memory_region2',
  'create_guest_memfd',
  'set_memory_attributes',
  'check_extension',
  'clear_dirty_log',
  'enable_cap',
  'write',
  'harvest_dirty_ring',
  'reset_dirty_rings',
];
/** The capabilities `enable_cap` names (spec/80). */
export const ENABLE_CAP_NAMES: readonly EnableCapName[] = ['MANUAL_DIRTY_LOG_PROTECT2', 'DIRTY_LOG_RING', 'DIRTY_LOG_RING_ACQ_REL'];
/**
 * What a SUT lists in hello to say that its `reset` takes `vm_type`: not an op of its own, the
 * oracle sends `reset` with `vm_type` only to a SUT that lists it.
 */
export const RESET_VM_TYPE = 'reset_vm_type';
/** Ops every SUT must support; the rest are used only when the SUT lists them in hello. */
export const REQUIRED_OPS: readonly Op[] = ['reset', 'set_user_memory_region', 'get_dirty_log'];

export interface SlotInfo {
  readonly slot: number;
  readonly flags: number;
  readonly guestPhysAddr: bigint;
  readonly memorySize: bigint;
  readonly userspaceAddr: bigint;
}
/** A dirty ring entry as the protocol carries it. */
export interface RingEntryInfo {
  readonly slot: number;
  readonly offset: bigint;
}
export interface HvaHitInfo {
  readonly slot: number;
  readonly gfnStart: bigint;
  readonly gfnEnd: bigint;
}

export type Answer =
  | { readonly kind: 'ok' }
  /** `bitmap`: what a KVM_GET_DIRTY_LOG copied out, hex (spec/25), where the answer says it. */
  | { readonly kind: 'ret'; readonly bitmap?: string }
  /** A guest write that exits to user space as MMIO. */
  | { readonly kind: 'mmio' }
  /** A guest write whose vCPU exits with KVM_EXIT_DIRTY_RING_FULL. */
  | { readonly kind: 'dirty_ring_full' }
  /** A harvest of the dirty ring. */
  | { readonly kind: 'entries'; readonly entries: readonly RingEntryInfo[] }
  /** An ioctl's non-negative return other than 0 (KVM_RESET_DIRTY_RINGS), `{"ret":N}`. */
  | { readonly kind: 'count'; readonly count: number }
  | { readonly kind: 'errno'; readonly errno: Errno }
  | { readonly kind: 'slots'; readonly slots: readonly SlotInfo[] }
  | { readonly kind: 'generation'; readonly generation: bigint }
  | { readonly kind: 'slot'; readonly slot: number | null }
  | { readonly kind: 'hva_hits'; readonly hits: readonly HvaHitInfo[] }
  | { readonly kind: 'value'; readonly value: number };

export type TraceLine =
  | { readonly kind: 'request'; readonly line: number; readonly request: Request; readonly expect?: Answer }
  | { readonly kind: 'profile'; readonly line: number; readonly profile: Profile };
