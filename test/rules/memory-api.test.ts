/**
 * Chapter 28: KVM_SET_USER_MEMORY_REGION2, guest_memfd, memory attributes, VM types and
 * capabilities, one example per rule against the model, on the kernel lines where they differ.
 */
import { describe, expect, it } from 'vitest';
import {
  CAP_NAMES,
  KVM_MEM_GUEST_MEMFD,
  KVM_MEM_LOG_DIRTY_PAGES,
  KVM_MEM_READONLY,
  LINE_PROFILES,
  PROFILES,
  SOURCE_PROFILES,
  checkExtension,
  createGuestMemfd,
  createVm,
  createVmOfType,
  memslots,
  setMemoryAttributes,
  setUserMemoryRegion,
  setUserMemoryRegion2,
  type CapName,
  type GmemRef,
  type MemoryRegion2,
  type Profile,
  type VmState,
} from '../../model/index.js';
import type { RuleId } from '../../spec/rules.js';
import { expectTitleCites } from './helpers.js';

const K73 = LINE_PROFILES['linux-7.3-x86_64']!;
const K612 = LINE_PROFILES['linux-6.12-x86_64']!;
const K618 = LINE_PROFILES['linux-6.18-x86_64']!;
const K61 = LINE_PROFILES['linux-6.1-x86_64']!;
const K510 = PROFILES['linux-5.10-x86_64']!;
const K72 = SOURCE_PROFILES['linux-7.2-x86_64']!;
const SW = SOURCE_PROFILES['linux-7.3-x86_64-sw-protected']!;
const SEV = SOURCE_PROFILES['linux-7.3-x86_64-amd-sev']!;
const TDX = SOURCE_PROFILES['linux-7.3-x86_64-intel-tdx']!;
const MB = 0x10_0000n;
const UADDR = 0x7f00_0000_0000n;
const G = KVM_MEM_GUEST_MEMFD;

function r2(slot: number, gpa: bigint, size: bigint, flags = G, offset = 0n, fd: GmemRef = 0): MemoryRegion2 {
  return {
    slot,
    flags,
    guestPhysAddr: gpa,
    memorySize: size,
    userspaceAddr: UADDR + BigInt(slot & 0xffff) * 0x1000_0000n,
    guestMemfdOffset: offset,
    guestMemfd: fd,
  };
}

/** A VM of `vmType` under `p` with one guest_memfd of `size` (handle 0). */
function vmWithGmem(p: Profile, size = 4n * MB, vmType = 0): VmState {
  const vm = vmType === 0 ? createVm(p) : createVmOfType(createVm(p), vmType).state;
  const s = createGuestMemfd(vm, size, 0n);
  expect(s.result.ok).toBe(true);
  return s.state;
}

/** The request succeeds, decided by `rule` (setup as well as examples: no title check). */
function ok(vm: VmState, r: MemoryRegion2, rule: RuleId): VmState {
  const s = setUserMemoryRegion2(vm, r);
  expect(s.result).toMatchObject({ ok: true, rule });
  return s.state;
}

function err(vm: VmState, r: MemoryRegion2, errno: string, rule: RuleId): void {
  const s = setUserMemoryRegion2(vm, r);
  expect(s.result).toEqual({ ok: false, errno, rule });
  expectTitleCites(rule);
  expect(s.state).toBe(vm);
}

describe('VM types', () => {
  it('[MS-VM-01] a type the kernel does not offer fails with EINVAL and the old VM stays; Debian kernels offer type 0 only', () => {
    const vm = vmWithGmem(K73);
    for (const t of [1, 2, 3, 4, 5, 6, 31, 32, 0xffff_ffff]) {
      const s = createVmOfType(vm, t);
      expect(s.result).toEqual({ ok: false, errno: 'EINVAL', rule: 'MS-VM-01' });
      expect(s.state).toBe(vm);
    }
    // Before KVM_CAP_VM_TYPES (vm_types 0) type 0 alone.
    expect(createVmOfType(createVm(K61), 0).result.ok).toBe(true);
    expect(createVmOfType(createVm(K61), 1).result).toMatchObject({ ok: false, rule: 'MS-VM-01' });
    expect(createVmOfType(createVm(SEV), 1).result).toMatchObject({ ok: false, rule: 'MS-VM-01' });
  });
  it('[MS-VM-02] private memory means one address space; protected state means no READONLY', () => {
    const sw = createVmOfType(createVm(SW), 1);
    expect(sw.result).toEqual({ ok: true, rule: 'MS-VM-02' });
    expect(sw.state.spaces.length).toBe(1);
    expect(sw.state.gmems).toEqual([]);
    const asid1 = { slot: 1 << 16, flags: 0, guestPhysAddr: 0n, memorySize: MB, userspaceAddr: UADDR };
    expect(setUserMemoryRegion(sw.state, asid1).result).toMatchObject({ errno: 'EINVAL', rule: 'MS-VAL-08' });
    expect(setUserMemoryRegion(createVm(SW), asid1).result.ok).toBe(true);
    const sevEs = createVmOfType(createVm(SEV), 3).state;
    expect(sevEs.spaces.length).toBe(2);
    const ro = { slot: 0, flags: KVM_MEM_READONLY, guestPhysAddr: 0n, memorySize: MB, userspaceAddr: UADDR };
    expect(setUserMemoryRegion(sevEs, ro).result).toMatchObject({ errno: 'EINVAL', rule: 'MS-VAL-03' });
    expect(setUserMemoryRegion(createVmOfType(createVm(SEV), 2).state, ro).result.ok).toBe(true);
    expect(createVmOfType(createVm(TDX), 5).state.spaces.length).toBe(1);
  });
});

describe('KVM_SET_USER_MEMORY_REGION2', () => {
  it('[MS-V2-01] kernels before 6.8 answer ENOTTY', () => {
    for (const p of [K510, K61]) err(createVm(p), r2(0, 0n, MB, 0), 'ENOTTY', 'MS-V2-01');
  });
  it('[MS-V2-02] v2 has no v1 flag mask: an unknown flag is MS-VAL-03, and a plain v2 create is a CREATE', () => {
    const vm = createVm(K73);
    const bad = setUserMemoryRegion2(vm, r2(0, 0n, MB, 1 << 3));
    expect(bad.result).toEqual({ ok: false, errno: 'EINVAL', rule: 'MS-VAL-03' });
    expect(bad.fired).toContain('MS-V2-02');
    const s = setUserMemoryRegion2(vm, r2(0, 0n, MB, KVM_MEM_LOG_DIRTY_PAGES));
    expect(s.result).toEqual({ ok: true, change: 'CREATE', rule: 'MS-CRT-02' });
    expect(s.fired[0]).toBe('MS-V2-02');
    expectTitleCites('MS-V2-02');
  });
  it('[MS-GMS-01] 6.12 refuses guest_memfd slots on a type-0 VM; 6.18 (probed), 7.2 and 7.3 accept them', () => {
    err(vmWithGmem(K612), r2(0, 0n, MB), 'EINVAL', 'MS-GMS-01');
    for (const p of [K72, K73, K618]) expect(setUserMemoryRegion2(vmWithGmem(p), r2(0, 0n, MB)).result.ok).toBe(true);
  });
  it('[MS-GMS-02] guest_memfd with dirty logging fails with EINVAL', () => {
    err(vmWithGmem(K73), r2(0, 0n, MB, G | KVM_MEM_LOG_DIRTY_PAGES), 'EINVAL', 'MS-GMS-02');
  });
  it('[MS-GMS-03] guest_memfd with READONLY fails with EINVAL', () => {
    err(vmWithGmem(K73), r2(0, 0n, MB, G | KVM_MEM_READONLY), 'EINVAL', 'MS-GMS-03');
  });
  it('[MS-GMS-04] an unaligned or wrapping offset fails with EINVAL, before the as_id check and on deletes too', () => {
    const vm = vmWithGmem(K73);
    err(vm, r2(0, 0n, MB, G, 0x800n), 'EINVAL', 'MS-GMS-04');
    err(vm, r2(0, 0n, MB, G, (1n << 64n) - 0x1000n), 'EINVAL', 'MS-GMS-04');
    err(vm, r2(7 << 16, 0n, MB, G, 0x800n), 'EINVAL', 'MS-GMS-04');
    err(vm, r2(0, 0n, 0n, G, 0x800n), 'EINVAL', 'MS-GMS-04');
  });
  it('[MS-GMS-05] a guest_memfd slot takes no request with the flag but a delete, an identical re-issue included', () => {
    const vm = ok(vmWithGmem(K73), r2(0, 0n, MB), 'MS-CRT-02');
    err(vm, r2(0, 0n, MB), 'EINVAL', 'MS-GMS-05');
    err(vm, r2(0, 2n * MB, MB), 'EINVAL', 'MS-GMS-05');
  });
  it('[MS-GMS-06] a request without the flag for a guest_memfd slot (v1 or v2) fails with EINVAL', () => {
    const vm = ok(vmWithGmem(K73), r2(0, 0n, MB), 'MS-CRT-02');
    err(vm, r2(0, 0n, MB, 0), 'EINVAL', 'MS-GMS-06');
    expect(setUserMemoryRegion(vm, { slot: 0, flags: 0, guestPhysAddr: 0n, memorySize: MB, userspaceAddr: UADDR }).result).toMatchObject({
      errno: 'EINVAL',
      rule: 'MS-GMS-06',
    });
  });
});

describe('guest_memfd bindings', () => {
  it('[MS-GMB-01][MS-OVL-01] an fd that is not open fails with EBADF, after the gpa overlap check', () => {
    const vm = vmWithGmem(K73);
    err(vm, r2(0, 0n, MB, G, 0n, 'closed'), 'EBADF', 'MS-GMB-01');
    const withSlot = ok(vm, r2(0, 0n, MB), 'MS-CRT-02');
    err(withSlot, r2(1, 0n, MB, G, 2n * MB, 'closed'), 'EEXIST', 'MS-OVL-01');
  });
  it('[MS-GMB-02] a file that is not a guest_memfd fails with EINVAL', () => {
    err(vmWithGmem(K73), r2(0, 0n, MB, G, 0n, 'memfd'), 'EINVAL', 'MS-GMB-02');
  });
  it("[MS-GMB-03] another VM's guest_memfd fails with EINVAL", () => {
    err(vmWithGmem(K73), r2(0, 0n, MB, G, 0n, 'other_vm'), 'EINVAL', 'MS-GMB-03');
  });
  it("[MS-GMB-04] a range past the file's size fails with EINVAL; one that ends at it is bound", () => {
    const vm = vmWithGmem(K73, 2n * MB);
    err(vm, r2(0, 0n, MB, G, MB + 0x1000n), 'EINVAL', 'MS-GMB-04');
    ok(vm, r2(0, 0n, MB, G, MB), 'MS-CRT-02');
  });
  it('[MS-GMB-05] a file range bound to another slot: EINVAL on 6.12 (private-memory VM) and 6.18, EEXIST on 7.2 and 7.3', () => {
    const first = (p: Profile, t = 0): VmState => ok(vmWithGmem(p, 4n * MB, t), r2(0, 0n, MB, G, MB), 'MS-CRT-02');
    err(first(K618), r2(1, 8n * MB, MB, G, MB), 'EINVAL', 'MS-GMB-05');
    err(first(K73), r2(1, 8n * MB, MB, G, 0x1f_f000n - 0x10_0000n + MB), 'EEXIST', 'MS-GMB-05');
    err(first(K72), r2(1, 8n * MB, MB, G, MB), 'EEXIST', 'MS-GMB-05');
    const k612sw: Profile = { ...K612, name: 'k612-sw', vmTypes: 0b11 };
    err(first(k612sw, 1), r2(1, 8n * MB, 2n * MB, G, 0n), 'EINVAL', 'MS-GMB-05');
    // Disjoint ranges of one file bind.
    ok(first(K73), r2(1, 8n * MB, MB, G, 2n * MB), 'MS-CRT-02');
    ok(first(K73), r2(1, 8n * MB, MB, G, 0n), 'MS-CRT-02');
  });
  it('[MS-GMB-05][MS-X86-01] 7.3 checks the binding after the max gfn, 7.2 before: the same create gets EINVAL on 7.3, EEXIST on 7.2', () => {
    const high = (p: Profile): VmState => ok(vmWithGmem({ ...p, maxGfn: 0xfffffffn }), r2(0, 0n, MB, G, 0n), 'MS-CRT-02');
    const req = r2(1, 0x1000_0000_0000n, MB, G, 0n);
    err(high(K73), req, 'EINVAL', 'MS-X86-01');
    err(high(K72), req, 'EEXIST', 'MS-GMB-05');
  });
  it('[MS-GMB-06] a create binds the range to the slot, a delete unbinds it, and the range binds again', () => {
    let vm = ok(vmWithGmem(K73), r2(3, 0n, MB, G, MB), 'MS-CRT-02');
    expect(memslots(vm, 0)[0]!.gmem).toEqual({ file: 0, pgoff: 0x100n });
    expect(vm.gmems[0]!.bindings.valuesArray()).toEqual([{ pgoff: 0x100n, npages: 0x100n, asId: 0, id: 3 }]);
    const d = setUserMemoryRegion2(vm, r2(3, 0n, 0n, 0));
    expect(d.result).toMatchObject({ ok: true, change: 'DELETE' });
    expect(d.fired).toContain('MS-GMB-06');
    vm = d.state;
    expect(vm.gmems[0]!.bindings.size).toBe(0);
    ok(vm, r2(4, 2n * MB, MB, G, MB), 'MS-CRT-02');
  });
  it('[MS-X86-02] TDX: a slot whose last gfn has the shared bit fails with EINVAL', () => {
    const vm = createVmOfType(createVm({ ...TDX, maxGfn: (1n << 40n) - 1n }), 5).state;
    const shared = 1n << 35n;
    err(vm, r2(0, shared << 12n, MB, 0), 'EINVAL', 'MS-X86-02');
    expect(setUserMemoryRegion2(vm, r2(0, (shared - 0x100n) << 12n, MB, 0)).result.ok).toBe(true);
  });
});

describe('KVM_CREATE_GUEST_MEMFD', () => {
  const create = (p: Profile, size: bigint, flags: bigint, vmType = 0): ReturnType<typeof createGuestMemfd> =>
    createGuestMemfd(vmType === 0 ? createVm(p) : createVmOfType(createVm(p), vmType).state, size, flags);
  it('[MS-GMF-01] ENOTTY before guest_memfd (5.10, 6.1)', () => {
    for (const p of [K510, K61]) expect(create(p, MB, 0n).result).toEqual({ ok: false, errno: 'ENOTTY', rule: 'MS-GMF-01' });
  });
  it('[MS-GMF-02] flags outside the supported set: every flag on 6.12, bits 2+ on 7.3, INIT_SHARED with private memory', () => {
    expect(create(K612, MB, 1n).result).toMatchObject({ errno: 'EINVAL', rule: 'MS-GMF-02' });
    for (const f of [1n, 2n, 3n]) expect(create(K73, MB, f).result.ok).toBe(true);
    for (let b = 2n; b < 64n; b++) expect(create(K73, MB, 1n << b).result).toMatchObject({ errno: 'EINVAL', rule: 'MS-GMF-02' });
    expect(create(SW, MB, 2n, 1).result).toMatchObject({ errno: 'EINVAL', rule: 'MS-GMF-02' });
    expect(create(SW, MB, 1n, 1).result.ok).toBe(true);
  });
  it('[MS-GMF-03] size 0, 2^63 and above, or unaligned fails with EINVAL', () => {
    for (const size of [0n, 1n << 63n, (1n << 64n) - 0x1000n, 0x800n, MB + 1n]) {
      expect(create(K73, size, 0n).result, String(size)).toEqual({ ok: false, errno: 'EINVAL', rule: 'MS-GMF-03' });
    }
  });
  it('[MS-GMF-04] a good request creates the next handle, with its size and flags, nothing bound', () => {
    const a = create(K73, MB, 1n);
    expect(a.result).toEqual({ ok: true, rule: 'MS-GMF-04' });
    const b = createGuestMemfd(a.state, (1n << 63n) - 0x1000n, 0n);
    expect(b.state.gmems.map((g) => [g.size, g.flags, g.bindings.size])).toEqual([
      [MB, 1n, 0],
      [(1n << 63n) - 0x1000n, 0n, 0],
    ]);
  });
});

describe('KVM_SET_MEMORY_ATTRIBUTES', () => {
  const attr = (vm: VmState, a: bigint, s: bigint, at: bigint, f = 0n): unknown => setMemoryAttributes(vm, a, s, at, f).result;
  it('[MS-ATR-01] ENOTTY where the kernel lacks it', () => {
    expect(attr(createVm(K61), 0n, MB, 0n)).toEqual({ ok: false, errno: 'ENOTTY', rule: 'MS-ATR-01' });
  });
  it('[MS-ATR-02] flags not 0 fail with EINVAL, before the attributes', () => {
    expect(attr(createVm(K73), 0n, MB, 8n, 1n)).toEqual({ ok: false, errno: 'EINVAL', rule: 'MS-ATR-02' });
  });
  it('[MS-ATR-03] on a type-0 VM every attribute fails; PRIVATE passes on a VM with private memory', () => {
    expect(attr(createVm(K73), 0n, MB, 8n)).toEqual({ ok: false, errno: 'EINVAL', rule: 'MS-ATR-03' });
    const sw = createVmOfType(createVm(SW), 1).state;
    expect(attr(sw, 0n, MB, 8n)).toEqual({ ok: true, rule: 'MS-ATR-06' });
    expect(attr(sw, 0n, MB, 16n)).toMatchObject({ rule: 'MS-ATR-03' });
  });
  it('[MS-ATR-04] size 0 or a wrapping range fails with EINVAL, before alignment', () => {
    expect(attr(createVm(K73), 0x800n, 0n, 0n)).toEqual({ ok: false, errno: 'EINVAL', rule: 'MS-ATR-04' });
    expect(attr(createVm(K73), (1n << 64n) - 0x1000n, 0x2000n, 0n)).toEqual({ ok: false, errno: 'EINVAL', rule: 'MS-ATR-04' });
  });
  it('[MS-ATR-05] an unaligned address or size fails with EINVAL', () => {
    expect(attr(createVm(K73), 0x800n, MB, 0n)).toEqual({ ok: false, errno: 'EINVAL', rule: 'MS-ATR-05' });
    expect(attr(createVm(K73), 0n, 0x800n, 0n)).toEqual({ ok: false, errno: 'EINVAL', rule: 'MS-ATR-05' });
  });
  it('[MS-ATR-06] otherwise 0, with or without slots, and the state is unchanged', () => {
    const vm = createVm(K73);
    const s = setMemoryAttributes(vm, 0xfee0_0000n, 0x1000n, 0n, 0n);
    expect(s.result).toEqual({ ok: true, rule: 'MS-ATR-06' });
    expect(s.state).toBe(vm);
  });
});

describe('KVM_CHECK_EXTENSION', () => {
  const both = (p: Profile, cap: CapName, vmType = 0): [number, number] => {
    const vm = vmType === 0 ? createVm(p) : createVmOfType(createVm(p), vmType).state;
    return [checkExtension(vm, cap, 'system').value, checkExtension(vm, cap, 'vm').value];
  };
  const rule = (cap: CapName): RuleId => checkExtension(createVm(K73), cap, 'vm').rule;
  it('[MS-CAP-01][MS-CAP-02][MS-CAP-05] USER_MEMORY 1, NR_MEMSLOTS the user id bound, MANUAL_DIRTY_LOG_PROTECT2 3', () => {
    expect(both(K73, 'USER_MEMORY')).toEqual([1, 1]);
    expect(both(K73, 'NR_MEMSLOTS')).toEqual([32764, 32764]);
    expect(both(K510, 'NR_MEMSLOTS')).toEqual([509, 509]);
    expect(both(K73, 'MANUAL_DIRTY_LOG_PROTECT2')).toEqual([3, 3]);
    expect([rule('USER_MEMORY'), rule('NR_MEMSLOTS'), rule('MANUAL_DIRTY_LOG_PROTECT2')]).toEqual(['MS-CAP-01', 'MS-CAP-02', 'MS-CAP-05']);
  });
  it('[MS-CAP-03][MS-CAP-04] READONLY_MEM and MULTI_ADDRESS_SPACE follow the VM type on the VM fd; 0 address-space answer without SMM', () => {
    expect(both(K73, 'READONLY_MEM')).toEqual([1, 1]);
    expect(both(SEV, 'READONLY_MEM', 3)).toEqual([1, 0]);
    expect(both(K73, 'MULTI_ADDRESS_SPACE')).toEqual([2, 2]);
    expect(both(SW, 'MULTI_ADDRESS_SPACE', 1)).toEqual([2, 1]);
    expect(both(PROFILES['x86_64-nosmm']!, 'MULTI_ADDRESS_SPACE')).toEqual([0, 0]);
  });
  it('[MS-CAP-06] the dirty rings: 1 MiB from 5.11 (ACQ_REL from 6.1), none on 5.10', () => {
    expect(both(K73, 'DIRTY_LOG_RING')).toEqual([1 << 20, 1 << 20]);
    expect(both(K73, 'DIRTY_LOG_RING_ACQ_REL')).toEqual([1 << 20, 1 << 20]);
    expect(both(K510, 'DIRTY_LOG_RING')).toEqual([0, 0]);
    expect(both(K510, 'DIRTY_LOG_RING_ACQ_REL')).toEqual([0, 0]);
  });
  it('[MS-CAP-07][MS-CAP-10] USER_MEMORY2 from 6.8, VM_TYPES the mask (0 before the cap)', () => {
    expect(both(K61, 'USER_MEMORY2')).toEqual([0, 0]);
    expect(both(K612, 'USER_MEMORY2')).toEqual([1, 1]);
    expect(both(K61, 'VM_TYPES')).toEqual([0, 0]);
    expect(both(K73, 'VM_TYPES')).toEqual([1, 1]);
    expect(both(SEV, 'VM_TYPES')).toEqual([0b11101, 0b11101]);
  });
  it('[MS-CAP-08][MS-CAP-09][MS-CAP-11] MEMORY_ATTRIBUTES, GUEST_MEMFD and GUEST_MEMFD_FLAGS per line and type', () => {
    expect(both(K73, 'MEMORY_ATTRIBUTES')).toEqual([8, 0]);
    expect(both(SW, 'MEMORY_ATTRIBUTES', 1)).toEqual([8, 8]);
    expect(both(K61, 'MEMORY_ATTRIBUTES')).toEqual([0, 0]);
    expect(both(K612, 'GUEST_MEMFD')).toEqual([1, 0]);
    expect(both(K73, 'GUEST_MEMFD')).toEqual([1, 1]);
    expect(both(K61, 'GUEST_MEMFD')).toEqual([0, 0]);
    expect(both(K73, 'GUEST_MEMFD_FLAGS')).toEqual([3, 3]);
    expect(both(SW, 'GUEST_MEMFD_FLAGS', 1)).toEqual([3, 1]);
    expect(both(K612, 'GUEST_MEMFD_FLAGS')).toEqual([0, 0]);
  });
  it('every capability of the protocol has an answer and the rule that gives it', () => {
    for (const cap of CAP_NAMES) expect(rule(cap)).toMatch(/^MS-CAP-\d\d$/);
  });
});
