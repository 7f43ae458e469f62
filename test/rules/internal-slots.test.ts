/**
 * x86 internal memslots through __x86_set_memory_region() (spec/26-internal-slots.md):
 * MS-VAL-09, MS-INT-01 .. MS-INT-03, in both address spaces under the x86_64 profile.
 */
import { describe, expect, it } from 'vitest';
import { INTERNAL_SLOT_LAYOUT, checkInvariants, createVm, internalSlotIds, observableState, setInternalMemslot, setMemoryRegion } from '../../model/index.js';
import { IMPLEMENTATIONS } from '../../impl/index.js';
import { L510, MAX_NR_PAGES, NOSMM, PAGE, X86, at, build, expectTitleCites, gen, memslot, pages, region, slotNr, slotsOf } from './helpers.js';

const APIC = 32765;
const APIC_GPA = INTERNAL_SLOT_LAYOUT.apicAccessPageGpa;
const H = 0x7f20_0000_0000n;

describe('internal slot ids and layout', () => {
  it('[MS-INT-03] the internal ids are KVM_USER_MEM_SLOTS + 0, 1, 2 (x86_64: 32764..32766, linux-5.10-x86_64: 509..511)', () => {
    expect(internalSlotIds(createVm(X86))).toEqual({ tss: 32764, apicAccessPage: 32765, identityMap: 32766 });
    expect(internalSlotIds(createVm(L510))).toEqual({ tss: 509, apicAccessPage: 510, identityMap: 511 });
    expect(INTERNAL_SLOT_LAYOUT).toEqual({ tssPages: 3n, apicAccessPageGpa: 0xfee0_0000n, identityMapGpa: 0xfffb_c000n, pageSize: PAGE });
  });
});

describe('[MS-INT-03] every address space', () => {
  it('[MS-INT-03][MS-CRT-02][MS-GEN-02] x86_64: the APIC access page is created in address spaces 0 and 1 with flags 0; each generation grows by 2', () => {
    const vm = createVm(X86);
    const s = setInternalMemslot(vm, APIC, APIC_GPA, PAGE, H);
    expect(s.result).toEqual({ ok: true, change: 'CREATE', rule: 'MS-CRT-02' });
    expect(s.fired).toContain('MS-INT-03');
    expect(slotsOf(s.state, 0)).toEqual([memslot(0, APIC, 0xfee00n, 1n, H)]);
    expect(slotsOf(s.state, 1)).toEqual([memslot(1, APIC, 0xfee00n, 1n, H)]);
    expect([gen(s.state, 0), gen(s.state, 1)]).toEqual([2n, 3n]);
    // Internal slots count in the VM-wide page count, once per address space.
    expect(s.state.nrMemslotPages).toBe(2n);
    // One publish per address space, address space 0 first.
    expect(s.published).toHaveLength(2);
    const first = at(s.published, 0);
    expect([gen(first, 0), gen(first, 1)]).toEqual([2n, 1n]);
    expect(slotsOf(first, 1)).toEqual([]);
    expect(at(s.published, 1)).toBe(s.state);
    checkInvariants(X86, observableState(s.state), observableState(vm));
  });
  it('[MS-INT-03][MS-CRT-02] x86_64-nosmm: the APIC access page is created in address space 0 only', () => {
    const s = setInternalMemslot(createVm(NOSMM), APIC, APIC_GPA, PAGE, H);
    expect(s.result).toEqual({ ok: true, change: 'CREATE', rule: 'MS-CRT-02' });
    expect(observableState(s.state).spaces).toEqual([{ asId: 0, generation: 1n, slots: [memslot(0, APIC, 0xfee00n, 1n, H)] }]);
  });
  it('[MS-INT-03][MS-CRT-02] x86_64: TSS (3 pages), APIC access page and identity map all exist in both address spaces', () => {
    let vm = createVm(X86);
    const ids = internalSlotIds(vm);
    vm = setInternalMemslot(vm, ids.tss, 0xfffb_d000n, pages(INTERNAL_SLOT_LAYOUT.tssPages), H).state;
    vm = setInternalMemslot(vm, ids.apicAccessPage, APIC_GPA, PAGE, H + 0x10_0000n).state;
    const s = setInternalMemslot(vm, ids.identityMap, INTERNAL_SLOT_LAYOUT.identityMapGpa, PAGE, H + 0x20_0000n);
    expect(s.result).toEqual({ ok: true, change: 'CREATE', rule: 'MS-CRT-02' });
    for (const asId of [0, 1]) {
      expect(slotsOf(s.state, asId).map((x) => [x.id, x.baseGfn, x.npages])).toEqual([
        [32765, 0xfee00n, 1n],
        [32766, 0xfffbcn, 1n],
        [32764, 0xfffbdn, 3n],
      ]);
    }
    expect(s.state.nrMemslotPages).toBe(10n);
    expect([gen(s.state, 0), gen(s.state, 1)]).toEqual([6n, 7n]);
  });
  it('[MS-INT-03][MS-DEL-02][MS-GEN-03] x86_64: delete removes the slot from both address spaces with its own hva (the caller passes none)', () => {
    const vm = setInternalMemslot(createVm(X86), APIC, APIC_GPA, PAGE, H).state;
    // An unaligned or out-of-range caller hva cannot matter: the slot's own userspace_addr is used.
    const s = setInternalMemslot(vm, APIC, 0n, 0n, 0xffff_ffff_ffff_f123n);
    expect(s.result).toEqual({ ok: true, change: 'DELETE', rule: 'MS-DEL-02' });
    expect(s.fired).toContain('MS-INT-03');
    expect([slotsOf(s.state, 0), slotsOf(s.state, 1)]).toEqual([[], []]);
    expect(s.state.nrMemslotPages).toBe(0n);
    expect([gen(s.state, 0), gen(s.state, 1)]).toEqual([6n, 7n]);
    // Two publishes per address space; the first of each shows the INVALID copy.
    expect(s.published).toHaveLength(4);
    expect(at(slotsOf(at(s.published, 0), 0), 0).flags).toBe(1 << 16);
    expect(at(slotsOf(at(s.published, 2), 1), 0).flags).toBe(1 << 16);
  });
  it('[MS-INT-03][MS-OVL-01] x86_64: creation failing in address space 1 (a user slot there) leaves address space 0 changed', () => {
    const vm = build(X86, [region(slotNr(1, 5), APIC_GPA, PAGE, H)]);
    const s = setInternalMemslot(vm, APIC, APIC_GPA, PAGE, H + PAGE);
    expect(s.result).toEqual({ ok: false, errno: 'EEXIST', rule: 'MS-OVL-01' });
    expectTitleCites('MS-OVL-01');
    expect(slotsOf(s.state, 0)).toEqual([memslot(0, APIC, 0xfee00n, 1n, H + PAGE)]);
    expect(s.state.spaces[1]).toBe(vm.spaces[1]);
    expect([gen(s.state, 0), gen(s.state, 1)]).toEqual([2n, gen(vm, 1)]);
    expect(s.state.nrMemslotPages).toBe(2n);
    expect(s.published).toHaveLength(1);
    checkInvariants(X86, observableState(s.state), observableState(vm));
  });
  it('[MS-INT-03][MS-OVL-01] x86_64: creation failing in address space 0 changes nothing', () => {
    const vm = build(X86, [region(5, APIC_GPA - PAGE, 2n * PAGE, H)]);
    const s = setInternalMemslot(vm, APIC, APIC_GPA, PAGE, H);
    expect(s.result).toEqual({ ok: false, errno: 'EEXIST', rule: 'MS-OVL-01' });
    expect(s.state).toBe(vm);
    expect(s.published).toEqual([]);
  });
  it('[MS-INT-03][MS-VAL-05] an unaligned internal gpa fails the common path in address space 0', () => {
    const vm = createVm(X86);
    const s = setInternalMemslot(vm, APIC, APIC_GPA + 1n, PAGE, H);
    expect(s.result).toEqual({ ok: false, errno: 'EINVAL', rule: 'MS-VAL-05' });
    expect(s.state).toBe(vm);
  });
  it('[MS-INT-03][MS-CRT-02][MS-GEN-02] linux-5.10-x86_64: the TSS (id 509) is created in both address spaces', () => {
    const s = setInternalMemslot(createVm(L510), 509, 0xfffb_d000n, 3n * PAGE, H);
    expect(s.result).toEqual({ ok: true, change: 'CREATE', rule: 'MS-CRT-02' });
    expect(slotsOf(s.state, 1)).toEqual([memslot(1, 509, 0xfffbdn, 3n, H)]);
    expect([gen(s.state, 0), gen(s.state, 1)]).toEqual([2n, 3n]);
  });
  it.each(Object.entries(IMPLEMENTATIONS))(
    '[MS-INT-03][MS-VAL-04] a size that is not a u32 is bad input (RangeError) in the model and %s: the kernel caller takes u32 size',
    (name, make) => {
      // __x86_set_memory_region(struct kvm *kvm, int id, gpa_t gpa, u32 size): 7.3.4
      // arch/x86/kvm/x86.c:9963-9964; 5.10.262 x86.c:10746. So an internal slot has < 2^20 pages.
      for (const p of [X86, L510]) {
        const tss = p.userMemSlots;
        for (const size of [pages(MAX_NR_PAGES + 1n), 1n << 32n, -PAGE]) {
          const error = new RangeError(`internal slot size ${size} is not a u32 (__x86_set_memory_region() takes u32 size)`);
          expect(() => setInternalMemslot(createVm(p), tss, 0n, size, H), `model ${p.name} ${size}`).toThrow(error);
          expect(() => make(p).setInternalMemslot(tss, 0n, size, H), `${name} ${p.name} ${size}`).toThrow(error);
        }
        // Before every check of the call, MS-VAL-09 included.
        const past = new RangeError(`internal slot size ${1n << 32n} is not a u32 (__x86_set_memory_region() takes u32 size)`);
        expect(() => setInternalMemslot(createVm(p), p.memSlotsNum, 0n, 1n << 32n, H), `model ${p.name} id ${p.memSlotsNum}`).toThrow(past);
        expect(() => make(p).setInternalMemslot(p.memSlotsNum, 0n, 1n << 32n, H), `${name} ${p.name} id ${p.memSlotsNum}`).toThrow(past);
        // 0xfffff000 (2^20 - 1 pages), the largest page-aligned u32, is created in every address space.
        const s = setInternalMemslot(createVm(p), tss, 0n, 0xffff_f000n, H);
        expect(s.result).toEqual({ ok: true, change: 'CREATE', rule: 'MS-CRT-02' });
        expect(s.state.nrMemslotPages).toBe(2n * 0xf_ffffn);
        const impl = make(p);
        expect(impl.setInternalMemslot(tss, 0n, 0xffff_f000n, H)).toEqual({ ok: true, change: 'CREATE' });
        expect(impl.nrMemslotPages()).toBe(2n * 0xf_ffffn);
        // 0xffffffff is a u32: it is asked, and fails MS-VAL-04 in address space 0.
        expect(setInternalMemslot(createVm(p), tss, 0n, 0xffff_ffffn, H).result).toEqual({ ok: false, errno: 'EINVAL', rule: 'MS-VAL-04' });
        expect(make(p).setInternalMemslot(tss, 0n, 0xffff_ffffn, H)).toEqual({ ok: false, errno: 'EINVAL' });
      }
    },
  );
  it('[MS-INT-03][MS-VAL-11][MS-CRT-02] max_nr_pages_user_only shows only under a profile with max_nr_pages below 2^20: exempt on x86_64, limited on linux-5.10-x86_64', () => {
    const x = setInternalMemslot(createVm({ ...X86, maxNrPages: 2n }), 32764, 0xfeffd000n, 3n * PAGE, H);
    expect(x.result).toEqual({ ok: true, change: 'CREATE', rule: 'MS-CRT-02' });
    expect(x.state.nrMemslotPages).toBe(6n);
    const old = createVm({ ...L510, maxNrPages: 2n });
    const l = setInternalMemslot(old, 509, 0xfeffd000n, 3n * PAGE, H);
    expect(l.result).toEqual({ ok: false, errno: 'EINVAL', rule: 'MS-VAL-11' });
    expect(l.state).toBe(old);
  });
  it('[MS-INT-03][MS-CRT-02] x86_64: only address space 0 is consulted: a copy already in address space 1 is re-issued as a no-op there', () => {
    // Address space 1 got slot 32765 through the common path (as a kernel bug or an earlier partial failure could leave it).
    const vm = setMemoryRegion(createVm(X86), region(slotNr(1, APIC), APIC_GPA, PAGE, H)).state;
    const s = setInternalMemslot(vm, APIC, APIC_GPA, PAGE, H);
    // The answer is that of the last address space: MS-NOP-01 there, after the CREATE in address space 0.
    expect(s.result).toEqual({ ok: true, change: 'NONE', rule: 'MS-NOP-01' });
    expect(s.fired).toEqual(expect.arrayContaining(['MS-INT-03', 'MS-CRT-02', 'MS-NOP-01']));
    expect(slotsOf(s.state, 0)).toEqual([memslot(0, APIC, 0xfee00n, 1n, H)]);
    expect(s.state.spaces[1]).toBe(vm.spaces[1]);
  });
});

describe('[MS-INT-01] create of an existing internal slot', () => {
  it('[MS-INT-01] creating the APIC access page twice fails with EEXIST and changes nothing', () => {
    const vm = setInternalMemslot(createVm(X86), APIC, APIC_GPA, PAGE, H).state;
    const s = setInternalMemslot(vm, APIC, APIC_GPA, PAGE, H);
    expect(s.result).toEqual({ ok: false, errno: 'EEXIST', rule: 'MS-INT-01' });
    expect(s.state).toBe(vm);
    expect(s.published).toEqual([]);
  });
  it('[MS-INT-01] an existing internal slot blocks a create elsewhere (another gpa) too', () => {
    const vm = setInternalMemslot(createVm(NOSMM), APIC, APIC_GPA, PAGE, H).state;
    expect(setInternalMemslot(vm, APIC, 0x1000n, PAGE, H).result).toEqual({ ok: false, errno: 'EEXIST', rule: 'MS-INT-01' });
  });
});

describe('[MS-INT-02] delete of a missing internal slot', () => {
  it('[MS-INT-02] deleting an internal slot that does not exist succeeds and changes nothing', () => {
    const vm = createVm(X86);
    const s = setInternalMemslot(vm, APIC, 0n, 0n, 0n);
    expect(s.result).toEqual({ ok: true, change: 'NONE', rule: 'MS-INT-02' });
    expect(s.state).toBe(vm);
    expect(s.published).toEqual([]);
  });
  it('[MS-INT-02] deleting one internal slot twice: the second delete is a no-op', () => {
    let vm = setInternalMemslot(createVm(NOSMM), 32766, 0xfffb_c000n, PAGE, H).state;
    vm = setInternalMemslot(vm, 32766, 0n, 0n, 0n).state;
    expect(setInternalMemslot(vm, 32766, 0n, 0n, 0n).result).toEqual({ ok: true, change: 'NONE', rule: 'MS-INT-02' });
  });
});

describe('[MS-VAL-09] id bound on the internal path', () => {
  it('[MS-VAL-09] id 32767 (KVM_MEM_SLOTS_NUM) fails with EINVAL before anything else', () => {
    const vm = createVm(X86);
    for (const id of [32767, 40000, 0xffff]) {
      const s = setInternalMemslot(vm, id, APIC_GPA, PAGE, H);
      expect(s.result).toEqual({ ok: false, errno: 'EINVAL', rule: 'MS-VAL-09' });
      expect(s.state).toBe(vm);
    }
    // A delete (size 0) of such an id is rejected the same way, not treated as a missing slot.
    expect(setInternalMemslot(vm, 32767, 0n, 0n, 0n).result).toEqual({ ok: false, errno: 'EINVAL', rule: 'MS-VAL-09' });
  });
  it('[MS-VAL-09] linux-5.10-x86_64: id 512 fails with EINVAL; 511 is an internal id', () => {
    const vm = createVm(L510);
    expect(setInternalMemslot(vm, 512, 0n, PAGE, H).result).toEqual({ ok: false, errno: 'EINVAL', rule: 'MS-VAL-09' });
    expect(setInternalMemslot(vm, 511, 0n, PAGE, H).result).toEqual({ ok: true, change: 'CREATE', rule: 'MS-CRT-02' });
  });
  it('[MS-VAL-09] a user id on the internal path is a caller bug (the kernel WARNs): it throws', () => {
    expect(() => setInternalMemslot(createVm(X86), 32763, 0n, PAGE, H)).toThrow(RangeError);
  });
});
