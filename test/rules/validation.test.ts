/**
 * MS-VAL-01 .. MS-VAL-11 (spec/20-set-memory-region.md), in the kernel's check order.
 *
 * Each example is one request against a known state; where two rules' conditions hold at
 * once, the earlier rule must decide. Edges are the ones measured on Linux 6.18
 * (kernel-memslots.md, "Measured behaviour of KVM_SET_USER_MEMORY_REGION(2)").
 */
import { describe, expect, it } from 'vitest';
import { createVm, setInternalMemslot, setMemoryRegion, setUserMemoryRegion, type Profile } from '../../model/index.js';
import { IMPLEMENTATIONS } from '../../impl/index.js';
import {
  L510,
  MAX_NR_PAGES,
  NOSMM,
  PAGE,
  SLOT0_UADDR,
  USER_ADDR_MAX,
  X86,
  build,
  del,
  expectErr,
  expectOk,
  exampleVm,
  memslot,
  pages,
  region,
  slotNr,
  slotsOf,
} from './helpers.js';

/** x86_64-nosmm without read-only memory (a protected-state VM, or an arch without it). */
const NO_READONLY: Profile = { ...NOSMM, name: 'x86_64-nosmm-no-readonly', readonlyMem: false };

const U = 0x7f00_0040_0000n;
/** A valid one-page CREATE for slot 1, clear of slot 0. */
const ok1 = (over: Partial<{ slot: number; flags: number; gpa: bigint; size: bigint; uaddr: bigint }> = {}) =>
  region(over.slot ?? 1, over.gpa ?? 0x100_0000n, over.size ?? PAGE, over.uaddr ?? U, over.flags ?? 0);

describe('[MS-VAL-01] v1 flag mask', () => {
  const vm = exampleVm();
  it('[MS-VAL-01] flags 4 (KVM_MEM_GUEST_MEMFD) on the v1 ioctl fails with EINVAL', () => {
    expectErr(vm, ok1({ flags: 4 }), 'EINVAL', 'MS-VAL-01');
  });
  it('[MS-VAL-01] flags 8 on the v1 ioctl fails with EINVAL', () => {
    expectErr(vm, ok1({ flags: 8 }), 'EINVAL', 'MS-VAL-01');
  });
  it('[MS-VAL-01] flags 0x80000000 (bit 31) fails with EINVAL', () => {
    expectErr(vm, ok1({ flags: 0x8000_0000 }), 'EINVAL', 'MS-VAL-01');
  });
  it('[MS-VAL-01] flags 5 (LOG_DIRTY_PAGES | GUEST_MEMFD) fails with EINVAL', () => {
    expectErr(vm, ok1({ flags: 5 }), 'EINVAL', 'MS-VAL-01');
  });
  it('[MS-VAL-01] a delete of an existing slot with flags 4 fails with EINVAL; the slot stays', () => {
    expectErr(vm, del(0, 0n, 0n, 4), 'EINVAL', 'MS-VAL-01');
  });
  it('[MS-VAL-01] bad flags and a bad slot id (32764) on x86_64-nosmm: the v1 mask decides first', () => {
    expectErr(vm, ok1({ slot: 32764, flags: 4 }), 'EINVAL', 'MS-VAL-01');
  });
  it('[MS-VAL-01] bad flags and every later failure at once (bad id, size, gpa, uaddr): the v1 mask decides', () => {
    expectErr(vm, region(0xffff_ffff, 0x1001n, 0x1001n, 0x1001n, 0xffff_fffc), 'EINVAL', 'MS-VAL-01');
  });
  it('[MS-VAL-01][MS-CRT-02] each of the 32 flag bits alone on a fresh VM (set_memory_region_test): bits 0 and 1 create, bits 2..31 fail with EINVAL', () => {
    for (let bit = 0; bit < 32; bit++) {
      const vm0 = createVm(NOSMM);
      // test_invalid_memory_region_flags(): slot 0, BIT(i), gpa 0, 2 MiB, NULL host address.
      const r = region(0, 0n, 0x20_0000n, 0n, (1 << bit) >>> 0);
      if (bit < 2) {
        const s = expectOk(vm0, r, 'CREATE', 'MS-CRT-02');
        expect(slotsOf(s.state)).toEqual([memslot(0, 0, 0n, 0x200n, 0n, 1 << bit, bit === 0 ? 0 : null)]);
      } else {
        expectErr(vm0, r, 'EINVAL', 'MS-VAL-01');
      }
    }
  });
});

describe('[MS-VAL-02] user id bound', () => {
  const vm = exampleVm();
  it('[MS-VAL-02][MS-CRT-02] slot 32763, the last user id, is accepted (measured)', () => {
    const s = expectOk(vm, ok1({ slot: 32763 }), 'CREATE', 'MS-CRT-02');
    expect(slotsOf(s.state).map((x) => x.id)).toEqual([0, 32763]);
  });
  it('[MS-VAL-02] slot 32764 (KVM_USER_MEM_SLOTS) fails with EINVAL (measured)', () => {
    expectErr(vm, ok1({ slot: 32764 }), 'EINVAL', 'MS-VAL-02');
  });
  it('[MS-VAL-02] slots 32765 and 32766 (internal ids) fail with EINVAL', () => {
    expectErr(vm, ok1({ slot: 32765 }), 'EINVAL', 'MS-VAL-02');
    expectErr(vm, ok1({ slot: 32766 }), 'EINVAL', 'MS-VAL-02');
  });
  it('[MS-VAL-02] slot 0xffff fails with EINVAL', () => {
    expectErr(vm, ok1({ slot: 0xffff }), 'EINVAL', 'MS-VAL-02');
  });
  it('[MS-VAL-02] slot 0x17ffc (as 1, id 32764) on x86_64 fails: only the low 16 bits are compared', () => {
    expectErr(exampleVm(X86), ok1({ slot: 0x1_7ffc }), 'EINVAL', 'MS-VAL-02');
  });
  it('[MS-VAL-02] slot 0x17ffc on x86_64-nosmm: the user id bound decides before the address-space bound', () => {
    expectErr(vm, ok1({ slot: 0x1_7ffc }), 'EINVAL', 'MS-VAL-02');
  });
  it('[MS-VAL-02] a delete (size 0) naming internal id 32765 fails with EINVAL, not MS-DEL-01', () => {
    expectErr(vm, del(32765), 'EINVAL', 'MS-VAL-02');
  });
  it('[MS-VAL-02][MS-CRT-02] linux-5.10-x86_64: slot 508 is accepted, slot 509 fails with EINVAL', () => {
    const v = exampleVm(L510);
    expectOk(v, ok1({ slot: 508 }), 'CREATE', 'MS-CRT-02');
    expectErr(v, ok1({ slot: 509 }), 'EINVAL', 'MS-VAL-02');
  });
  it('[MS-VAL-02] linux-5.10-x86_64 (no v1 mask): flags 4 with slot 32764 fails the user id bound first', () => {
    expectErr(exampleVm(L510), ok1({ slot: 32764, flags: 4 }), 'EINVAL', 'MS-VAL-02');
  });
});

describe('[MS-VAL-03] valid flags', () => {
  it('[MS-VAL-03] linux-5.10-x86_64 (no v1 mask): flags 4 fails in check_memory_region_flags', () => {
    expectErr(exampleVm(L510), ok1({ flags: 4 }), 'EINVAL', 'MS-VAL-03');
  });
  it('[MS-VAL-03][MS-CRT-02] linux-5.10-x86_64: each of the 32 flag bits alone: bits 0 and 1 create, bits 2..31 fail with EINVAL', () => {
    for (let bit = 0; bit < 32; bit++) {
      const vm0 = createVm(L510);
      const r = region(0, 0n, 0x20_0000n, 0n, (1 << bit) >>> 0);
      if (bit < 2) expectOk(vm0, r, 'CREATE', 'MS-CRT-02');
      else expectErr(vm0, r, 'EINVAL', 'MS-VAL-03');
    }
  });
  it('[MS-VAL-03] READONLY on a VM without read-only memory fails with EINVAL', () => {
    expectErr(build(NO_READONLY, []), ok1({ flags: 2 }), 'EINVAL', 'MS-VAL-03');
    expectErr(build(NO_READONLY, []), ok1({ flags: 3 }), 'EINVAL', 'MS-VAL-03');
  });
  it('[MS-VAL-03][MS-CRT-02] LOG_DIRTY_PAGES alone is valid on a VM without read-only memory', () => {
    expectOk(build(NO_READONLY, []), ok1({ flags: 1 }), 'CREATE', 'MS-CRT-02');
  });
  it('[MS-VAL-03] the flag check runs for deletes too: a delete with READONLY on a VM without read-only memory fails', () => {
    expectErr(build(NO_READONLY, [{ ...ok1(), slot: 0 }]), del(0, 0n, 0n, 2), 'EINVAL', 'MS-VAL-03');
  });
  it('[MS-VAL-03] linux-5.10-x86_64: bad flags and unaligned size: the flag check decides first', () => {
    expectErr(exampleVm(L510), ok1({ flags: 8, size: 0x1001n }), 'EINVAL', 'MS-VAL-03');
  });
  it('[MS-VAL-03] bad flags and as_id 2: the flag check decides before the address-space bound', () => {
    expectErr(build(NO_READONLY, []), ok1({ slot: 0x2_0001, flags: 2 }), 'EINVAL', 'MS-VAL-03');
  });
});

describe('[MS-VAL-04] size alignment', () => {
  const vm = exampleVm();
  it('[MS-VAL-04] memory_size 0x1001 for slot 0 fails with EINVAL (chapter 20 example)', () => {
    expectErr(vm, region(0, 0x10_0000n, 0x1001n, SLOT0_UADDR), 'EINVAL', 'MS-VAL-04');
  });
  it('[MS-VAL-04] memory_size 0x800 and 0xffffffffffffffff fail with EINVAL', () => {
    expectErr(vm, ok1({ size: 0x800n }), 'EINVAL', 'MS-VAL-04');
    expectErr(vm, ok1({ size: 0xffff_ffff_ffff_ffffn }), 'EINVAL', 'MS-VAL-04');
  });
  it('[MS-VAL-04] unaligned size and unaligned gpa: the size check decides first', () => {
    expectErr(vm, ok1({ size: 0xfffn, gpa: 0x1001n }), 'EINVAL', 'MS-VAL-04');
  });
  it('[MS-VAL-04] unaligned size and as_id 2: the size check decides first', () => {
    expectErr(vm, ok1({ slot: 0x2_0001, size: 0x10n }), 'EINVAL', 'MS-VAL-04');
  });
});

describe('[MS-VAL-05] guest address alignment', () => {
  const vm = exampleVm();
  it('[MS-VAL-05] guest_phys_addr 0x1001 fails with EINVAL', () => {
    expectErr(vm, ok1({ gpa: 0x1001n }), 'EINVAL', 'MS-VAL-05');
  });
  it('[MS-VAL-05] unaligned gpa and unaligned uaddr: the gpa check decides first', () => {
    expectErr(vm, ok1({ gpa: 0x1800n, uaddr: U + 1n }), 'EINVAL', 'MS-VAL-05');
  });
  it('[MS-VAL-05] a delete of an existing slot with an unaligned gpa fails with EINVAL; the slot stays', () => {
    expectErr(vm, del(0, 0x10_0001n), 'EINVAL', 'MS-VAL-05');
  });
  it('[MS-VAL-05] a misaligned delete of a missing slot fails the gpa check, not MS-DEL-01', () => {
    expectErr(vm, del(7, 0x801n), 'EINVAL', 'MS-VAL-05');
  });
});

describe('[MS-VAL-06] user address alignment', () => {
  const vm = exampleVm();
  it('[MS-VAL-06] userspace_addr 0x7f0000400001 fails with EINVAL', () => {
    expectErr(vm, ok1({ uaddr: U + 1n }), 'EINVAL', 'MS-VAL-06');
  });
  it('[MS-VAL-06] unaligned uaddr that is also past the limit: alignment decides first', () => {
    expectErr(vm, ok1({ uaddr: 0x7fff_ffff_f800n }), 'EINVAL', 'MS-VAL-06');
  });
  it('[MS-VAL-06] a delete of an existing slot with an unaligned uaddr fails with EINVAL', () => {
    expectErr(vm, del(0, 0n, 0x10n), 'EINVAL', 'MS-VAL-06');
  });
});

describe('[MS-VAL-07] user address limit', () => {
  const vm = exampleVm();
  it('[MS-VAL-07][MS-CRT-02] userspace_addr + memory_size = exactly 0x7ffffffff000 is accepted (measured)', () => {
    const s = expectOk(vm, ok1({ uaddr: USER_ADDR_MAX - PAGE }), 'CREATE', 'MS-CRT-02');
    expect(slotsOf(s.state)[1]).toEqual(memslot(0, 1, 0x1000n, 1n, USER_ADDR_MAX - PAGE));
  });
  it('[MS-VAL-07] userspace_addr + memory_size = 0x7ffffffff000 + 0x1000 fails with EINVAL (measured)', () => {
    expectErr(vm, ok1({ uaddr: USER_ADDR_MAX }), 'EINVAL', 'MS-VAL-07');
    expectErr(vm, ok1({ uaddr: USER_ADDR_MAX - PAGE, size: 2n * PAGE }), 'EINVAL', 'MS-VAL-07');
  });
  it('[MS-VAL-07] userspace_addr + memory_size wrapping past 2^64 fails with EINVAL', () => {
    expectErr(vm, ok1({ uaddr: 0xffff_ffff_ffff_f000n, size: 2n * PAGE }), 'EINVAL', 'MS-VAL-07');
  });
  it('[MS-VAL-07][MS-CRT-02] userspace_addr 0 (a range nothing maps) is accepted (measured)', () => {
    expectOk(vm, ok1({ uaddr: 0n }), 'CREATE', 'MS-CRT-02');
  });
  it('[MS-VAL-07][MS-DEL-02] a delete with userspace_addr exactly at the limit succeeds (size 0: uaddr <= limit)', () => {
    expectOk(vm, del(0, 0n, USER_ADDR_MAX), 'DELETE', 'MS-DEL-02');
  });
  it('[MS-VAL-07] a delete with userspace_addr past the limit fails with EINVAL; the slot stays', () => {
    expectErr(vm, del(0, 0n, USER_ADDR_MAX + PAGE), 'EINVAL', 'MS-VAL-07');
  });
  it('[MS-VAL-07] uaddr past the limit and as_id 1 on x86_64-nosmm: the address limit decides first', () => {
    expectErr(vm, ok1({ slot: 0x1_0001, uaddr: USER_ADDR_MAX }), 'EINVAL', 'MS-VAL-07');
  });
});

describe('[MS-VAL-08] address-space bound', () => {
  const vm = exampleVm();
  it('[MS-VAL-08] as_id 1 (slot 0x10001) on x86_64-nosmm fails with EINVAL (measured)', () => {
    expectErr(vm, ok1({ slot: 0x1_0001 }), 'EINVAL', 'MS-VAL-08');
  });
  it('[MS-VAL-08] as_id 2 (slot 0x20001) on x86_64-nosmm fails with EINVAL (measured)', () => {
    expectErr(vm, ok1({ slot: 0x2_0001 }), 'EINVAL', 'MS-VAL-08');
  });
  it('[MS-VAL-08][MS-CRT-02] as_id 1 on x86_64 is accepted; as_id 2 and 0xffff fail with EINVAL', () => {
    const v = exampleVm(X86);
    const s = expectOk(v, ok1({ slot: slotNr(1, 1) }), 'CREATE', 'MS-CRT-02');
    expect(slotsOf(s.state, 1)).toEqual([memslot(1, 1, 0x1000n, 1n, U)]);
    expectErr(v, ok1({ slot: slotNr(2, 1) }), 'EINVAL', 'MS-VAL-08');
    expectErr(v, ok1({ slot: slotNr(0xffff, 1) }), 'EINVAL', 'MS-VAL-08');
  });
  it('[MS-VAL-08][MS-CRT-02] linux-5.10-x86_64 has two address spaces: as_id 1 is accepted', () => {
    expectOk(exampleVm(L510), ok1({ slot: slotNr(1, 508) }), 'CREATE', 'MS-CRT-02');
  });
  it('[MS-VAL-08] a delete in as_id 1 on x86_64-nosmm fails the address-space bound, not MS-DEL-01', () => {
    expectErr(vm, del(0x1_0000), 'EINVAL', 'MS-VAL-08');
  });
  it('[MS-VAL-08] as_id 1 on x86_64-nosmm and a wrapping guest range: the address-space bound decides first', () => {
    expectErr(vm, ok1({ slot: 0x1_0001, gpa: 0xffff_ffff_ffff_f000n, size: 2n * PAGE }), 'EINVAL', 'MS-VAL-08');
  });
});

describe('[MS-VAL-09] id bound (common path)', () => {
  const vm = exampleVm();
  it('[MS-VAL-09] the common path with id 32767 (KVM_MEM_SLOTS_NUM) fails with EINVAL', () => {
    expectErr(vm, ok1({ slot: 32767 }), 'EINVAL', 'MS-VAL-09', setMemoryRegion);
    expectErr(vm, ok1({ slot: 0xffff }), 'EINVAL', 'MS-VAL-09', setMemoryRegion);
  });
  it('[MS-VAL-02][MS-VAL-09] the user ioctl never reaches the id bound: id 32767 fails the user id bound first', () => {
    expectErr(vm, ok1({ slot: 32767 }), 'EINVAL', 'MS-VAL-02');
  });
  it('[MS-VAL-08] the common path with as_id 1 and id 32767 on x86_64-nosmm fails the address-space bound first', () => {
    expectErr(vm, ok1({ slot: slotNr(1, 32767) }), 'EINVAL', 'MS-VAL-08', setMemoryRegion);
  });
  it('[MS-VAL-09][MS-CRT-02] the common path accepts internal id 32766, the last id below the bound', () => {
    expectOk(vm, ok1({ slot: 32766 }), 'CREATE', 'MS-CRT-02', setMemoryRegion);
  });
  it('[MS-VAL-09][MS-CRT-02] linux-5.10-x86_64: the common path accepts id 511 and rejects id 512', () => {
    const v = exampleVm(L510);
    expectOk(v, ok1({ slot: 511 }), 'CREATE', 'MS-CRT-02', setMemoryRegion);
    expectErr(v, ok1({ slot: 512 }), 'EINVAL', 'MS-VAL-09', setMemoryRegion);
  });
});

describe('[MS-VAL-10] guest range wrap', () => {
  const vm = exampleVm();
  it('[MS-VAL-10] gpa 0xfffffffffffff000 + size 0x1000 (exactly 2^64) wraps and fails with EINVAL', () => {
    expectErr(vm, ok1({ gpa: 0xffff_ffff_ffff_f000n }), 'EINVAL', 'MS-VAL-10');
  });
  it('[MS-VAL-10] gpa 0xfffffffffffff000 + size 0x2000 fails with EINVAL', () => {
    expectErr(vm, ok1({ gpa: 0xffff_ffff_ffff_f000n, size: 2n * PAGE }), 'EINVAL', 'MS-VAL-10');
  });
  it('[MS-VAL-10][MS-X86-01] gpa 0xffffffffffffe000 + size 0x1000 does not wrap; the max gfn rejects it', () => {
    expectErr(vm, ok1({ gpa: 0xffff_ffff_ffff_e000n }), 'EINVAL', 'MS-X86-01');
  });
  it('[MS-VAL-10][MS-CRT-02] linux-5.10-x86_64 (no max gfn): gpa 0xffffffffffffe000 + 0x1000 is created', () => {
    const s = expectOk(exampleVm(L510), ok1({ gpa: 0xffff_ffff_ffff_e000n }), 'CREATE', 'MS-CRT-02');
    expect(slotsOf(s.state).at(-1)).toEqual(memslot(0, 1, 0xf_ffff_ffff_fffen, 1n, U));
  });
  it('[MS-VAL-10] a wrapping guest range and 2^31 pages: the wrap check decides before the size limit', () => {
    const size = pages(MAX_NR_PAGES + 1n);
    expectErr(vm, ok1({ gpa: (1n << 64n) - size + PAGE, size, uaddr: 0n }), 'EINVAL', 'MS-VAL-10');
  });
});

describe('[MS-VAL-11] size limit', () => {
  it('[MS-VAL-11][MS-CRT-02] a slot of 2^31 - 1 pages is accepted (measured)', () => {
    const s = expectOk(createVm(NOSMM), region(0, 0n, pages(MAX_NR_PAGES), 0n), 'CREATE', 'MS-CRT-02');
    expect(slotsOf(s.state)).toEqual([memslot(0, 0, 0n, MAX_NR_PAGES, 0n)]);
    expect(s.state.nrMemslotPages).toBe(MAX_NR_PAGES);
  });
  it('[MS-VAL-11] a slot of 2^31 pages fails with EINVAL (measured)', () => {
    expectErr(createVm(NOSMM), region(0, 0n, pages(MAX_NR_PAGES + 1n), 0n), 'EINVAL', 'MS-VAL-11');
  });
  it('[MS-VAL-11] 2^31 pages overlapping slot 0: the size limit decides before the overlap check', () => {
    expectErr(exampleVm(), region(1, 0n, pages(MAX_NR_PAGES + 1n), 0n), 'EINVAL', 'MS-VAL-11');
  });
  it('[MS-VAL-11] 2^31 pages for an existing slot (a resize): the size limit decides before MS-MOD-02', () => {
    const vm = build(NOSMM, [region(0, 0x10_0000n, 0x20_0000n, 0n)]);
    expectErr(vm, region(0, 0x10_0000n, pages(MAX_NR_PAGES + 1n), 0n), 'EINVAL', 'MS-VAL-11');
  });
  it('[MS-VAL-11][MS-CRT-02][MS-VAL-04] the common path refuses an internal id with a size above u32 as bad input (no kernel caller passes one) and creates one of 0xfffff000', () => {
    // __x86_set_memory_region() takes `u32 size` (7.3.4 arch/x86/kvm/x86.c:9963-9964; 5.10.262 x86.c:10746).
    for (const [p, id] of [
      [NOSMM, 32764],
      [X86, 32766],
      [L510, 509],
    ] as const) {
      for (const size of [pages(MAX_NR_PAGES + 1n), 1n << 32n]) {
        expect(() => setMemoryRegion(createVm(p), region(id, 0n, size, 0n)), `${p.name} id ${id} size ${size}`).toThrow(
          new RangeError(`internal slot size ${size} is not a u32 (__x86_set_memory_region() takes u32 size)`),
        );
      }
      // The largest u32 multiple of a page (2^20 - 1 pages) is a valid internal request;
      // 0xffffffff itself is a u32, so it reaches the checks and fails MS-VAL-04.
      expectOk(createVm(p), region(id, 0n, 0xffff_f000n, 0n), 'CREATE', 'MS-CRT-02', setMemoryRegion);
      expectErr(createVm(p), region(id, 0n, 0xffff_ffffn, 0n), 'EINVAL', 'MS-VAL-04', setMemoryRegion);
    }
    // User ids keep the u64 size of the ioctl.
    expectErr(createVm(NOSMM), region(0, 0n, pages(MAX_NR_PAGES + 1n), 0n), 'EINVAL', 'MS-VAL-11', setMemoryRegion);
  });
  it('[MS-VAL-11][MS-CRT-02] max_nr_pages_user_only exempts internal ids; only a profile with max_nr_pages below 2^20 can show it', () => {
    const small = (userOnly: boolean): Profile => ({
      ...NOSMM,
      name: `x86_64-nosmm max_nr_pages 2 user_only ${userOnly}`,
      maxNrPages: 2n,
      maxNrPagesUserOnly: userOnly,
    });
    const s = expectOk(createVm(small(true)), region(32764, 0n, pages(3n), 0n), 'CREATE', 'MS-CRT-02', setMemoryRegion);
    expect(slotsOf(s.state)).toEqual([memslot(0, 32764, 0n, 3n, 0n)]);
    expectErr(createVm(small(false)), region(32764, 0n, pages(3n), 0n), 'EINVAL', 'MS-VAL-11', setMemoryRegion);
    expectErr(createVm({ ...L510, maxNrPages: 2n }), region(509, 0n, pages(3n), 0n), 'EINVAL', 'MS-VAL-11', setMemoryRegion);
    // A user id is limited either way.
    expectErr(createVm(small(true)), region(1, 0n, pages(3n), 0n), 'EINVAL', 'MS-VAL-11', setMemoryRegion);
  });
  it('[MS-VAL-11] linux-5.10-x86_64: a user slot of 2^31 pages fails with EINVAL', () => {
    expectErr(createVm(L510), region(0, 0n, pages(MAX_NR_PAGES + 1n), 0n), 'EINVAL', 'MS-VAL-11');
  });
});

describe('the user ioctl and the common path agree past the ioctl layer', () => {
  it('[MS-VAL-05] setUserMemoryRegion and setMemoryRegion give the same answer for a valid user id', () => {
    const vm = exampleVm();
    const r = ok1({ gpa: 0x1001n });
    expect(setUserMemoryRegion(vm, r).result).toEqual(setMemoryRegion(vm, r).result);
    expectErr(vm, r, 'EINVAL', 'MS-VAL-05', setMemoryRegion);
  });
});

// The built-in max_nr_pages (2^31 - 1) is far above any internal slot, so the exemption of
// internal slots shows only under a crafted profile.
describe.each(Object.entries(IMPLEMENTATIONS))('[MS-VAL-11] size limit, %s implementation', (_name, make) => {
  it('[MS-VAL-11] with max_nr_pages_user_only, an internal slot above max_nr_pages is allowed; without it, EINVAL', () => {
    for (const userOnly of [true, false]) {
      const p: Profile = { ...X86, name: `x86_64 max_nr_pages 2 user_only ${userOnly}`, maxNrPages: 2n, maxNrPagesUserOnly: userOnly };
      const tss = p.userMemSlots;
      const impl = make(p);
      const want = setInternalMemslot(createVm(p), tss, 0xfeffd000n, 3n * PAGE, 0x7e00_0000_0000n).result;
      const got = impl.setInternalMemslot(tss, 0xfeffd000n, 3n * PAGE, 0x7e00_0000_0000n);
      expect(got).toEqual(userOnly ? { ok: true, change: 'CREATE' } : { ok: false, errno: 'EINVAL' });
      expect(got.ok).toBe(want.ok);
      // A user slot above the limit fails either way.
      expect(impl.setUserMemoryRegion(region(1, 0n, 3n * PAGE, 0x7f00_0000_0000n))).toEqual({ ok: false, errno: 'EINVAL' });
    }
  });
});
