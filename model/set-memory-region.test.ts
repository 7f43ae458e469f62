/**
 * Details of model/ that no other test pinned (found by mutation testing, docs/mutation.md):
 * the rules each step reports as fired (the conformance suite's coverage gate counts them), the
 * INVALID state a reverted MOVE publishes when other slots exist, the messages of invariant
 * violations and of profile-file errors, and small helpers.
 */
import { describe, expect, it } from 'vitest';
import {
  InvariantError,
  KVM_MEMSLOT_INVALID,
  PROFILES,
  checkInvariants,
  createVm,
  hex,
  lastGfn,
  parseU64,
  profileFromJson,
  setInternalMemslot,
  setUserMemoryRegion,
  memslots,
  space,
  type ObservableState,
} from './index.js';
import { GPA_LIMIT, NOSMM, PAGE, X86, build, del, memslot, region } from '../test/rules/helpers.js';

const UADDR = 0x7f00_0000_0000n;
const SLOT0 = region(0, 0x10_0000n, 2n * PAGE, UADDR);

describe('the rules a step reports as fired', () => {
  const vm = build(NOSMM, [SLOT0]);

  it('[MS-VAL-04][MS-GEN-04] a rejected request fires its rule and MS-GEN-04, nothing else', () => {
    const s = setUserMemoryRegion(vm, { ...SLOT0, memorySize: 2n * PAGE + 1n });
    expect(s.fired).toEqual(['MS-VAL-04', 'MS-GEN-04']);
  });

  it('[MS-NOP-01][MS-GEN-04] an identical re-issue fires MS-NOP-01 and MS-GEN-04', () => {
    expect(setUserMemoryRegion(vm, SLOT0).fired).toEqual(['MS-NOP-01', 'MS-GEN-04']);
  });

  it('[MS-CRT-02][MS-DLG-08][MS-GEN-02] a CREATE without dirty logging fires exactly its three rules', () => {
    expect(setUserMemoryRegion(createVm(NOSMM), SLOT0).fired).toEqual(['MS-CRT-02', 'MS-DLG-08', 'MS-GEN-02']);
  });

  it('[MS-FLG-01][MS-DLG-07][MS-MOV-01][MS-DLG-06][MS-GEN-02][MS-GEN-03] FLAGS_ONLY that starts logging, then a MOVE that keeps the bitmap', () => {
    const flags = setUserMemoryRegion(vm, { ...SLOT0, flags: 1 });
    expect(flags.fired).toEqual(['MS-FLG-01', 'MS-DLG-07', 'MS-GEN-02']);
    const move = setUserMemoryRegion(flags.state, { ...SLOT0, flags: 1, guestPhysAddr: 0x20_0000n });
    expect(move.fired).toEqual(['MS-MOV-01', 'MS-DLG-06', 'MS-GEN-03']);
  });

  it('[MS-DEL-02][MS-GEN-03] a DELETE fires MS-DEL-02 and MS-GEN-03', () => {
    expect(setUserMemoryRegion(vm, del(0)).fired).toEqual(['MS-DEL-02', 'MS-GEN-03']);
  });

  it('[MS-INT-03][MS-CRT-02][MS-GEN-02] x86_64: an internal create fires MS-INT-03, then one CREATE per address space', () => {
    const s = setInternalMemslot(createVm(X86), 32765, 0xfee0_0000n, PAGE, 0x1000n);
    expect(s.fired).toEqual(['MS-INT-03', 'MS-CRT-02', 'MS-DLG-08', 'MS-GEN-02', 'MS-CRT-02', 'MS-DLG-08', 'MS-GEN-02']);
    expect(s.result).toEqual({ ok: true, change: 'CREATE', rule: 'MS-CRT-02' });
  });

  it('[MS-VAL-09][MS-INT-02][MS-INT-01][MS-GEN-04] internal requests that change nothing fire their rule and MS-GEN-04 and publish nothing', () => {
    const x = createVm(X86);
    const bad = setInternalMemslot(x, 32767, 0xfee0_0000n, PAGE, 0x1000n);
    expect(bad).toEqual({ state: x, result: { ok: false, errno: 'EINVAL', rule: 'MS-VAL-09' }, fired: ['MS-VAL-09', 'MS-GEN-04'], published: [] });
    const none = setInternalMemslot(x, 32765, 0n, 0n, 0n);
    expect(none).toEqual({ state: x, result: { ok: true, change: 'NONE', rule: 'MS-INT-02' }, fired: ['MS-INT-02', 'MS-GEN-04'], published: [] });
    const made = setInternalMemslot(x, 32765, 0xfee0_0000n, PAGE, 0x1000n).state;
    const twice = setInternalMemslot(made, 32765, 0xfee0_0000n, PAGE, 0x1000n);
    expect(twice).toEqual({ state: made, result: { ok: false, errno: 'EEXIST', rule: 'MS-INT-01' }, fired: ['MS-INT-01', 'MS-GEN-04'], published: [] });
  });

  it('[MS-VAL-02] a user id passed as an internal slot is a caller error that says so', () => {
    expect(() => setInternalMemslot(createVm(X86), 5, 0n, PAGE, 0n)).toThrow(new RangeError('internal slot id 5 is a user id (WARN in kvm_set_internal_memslot)'));
  });
});

describe('a reverted MOVE among other slots', () => {
  it('[MS-GEN-05][MS-X86-01][MS-ATM-05] only the moved slot becomes INVALID in the first publish; the second restores the set', () => {
    const other = region(1, 0n, PAGE, UADDR);
    const vm = build(NOSMM, [SLOT0, other]);
    const s = setUserMemoryRegion(vm, { ...SLOT0, guestPhysAddr: GPA_LIMIT });
    expect(s.result).toEqual({ ok: false, errno: 'EINVAL', rule: 'MS-X86-01' });
    expect(s.fired).toEqual(['MS-X86-01', 'MS-GEN-05']);
    const s1 = memslot(0, 1, 0n, 1n, UADDR);
    const s0 = memslot(0, 0, 0x100n, 2n, UADDR);
    expect(s.published.map((p) => memslots(p, 0))).toEqual([[s1, { ...s0, flags: KVM_MEMSLOT_INVALID }], [s1, s0]]);
    expect(s.published.map((p) => space(p, 0).generation)).toEqual([space(vm, 0).generation + 1n, space(vm, 0).generation + 2n]);
  });
});

describe('invariant violations say what is wrong', () => {
  const slot = memslot(0, 1, 4n, 2n, 0x1000n);
  const one = (slots: ObservableState['spaces'][number]['slots'], generation = 0n, pages?: bigint): ObservableState => ({
    spaces: [{ asId: 0, generation, slots }],
    nrMemslotPages: pages ?? slots.reduce((n, s) => n + s.npages, 0n),
  });
  const broken = (now: ObservableState, before?: ObservableState): InvariantError => {
    try {
      checkInvariants(NOSMM, now, before);
    } catch (e) {
      if (e instanceof InvariantError) return e;
      throw e;
    }
    throw new Error('no invariant broken');
  };

  it('[MS-INV-01][MS-INV-02][MS-INV-03] duplicate ids, overlaps and empty slots are named with their address space and ids', () => {
    expect(broken(one([slot, { ...slot, baseGfn: 9n }])).detail).toBe('as 0: id 1 twice');
    expect(broken(one([slot, { ...slot, id: 2, baseGfn: 5n }])).detail).toBe('as 0: slot 2 overlaps slot 1 or is out of gfn order');
    expect(broken(one([{ ...slot, npages: 0n }])).detail).toBe('as 0: slot 1 has 0 pages');
  });

  it('[MS-INV-06][MS-INV-07] an INVALID slot and a bitmap without dirty logging are named', () => {
    expect(broken(one([{ ...slot, flags: KVM_MEMSLOT_INVALID }])).detail).toBe('as 0: slot 1 is INVALID');
    expect(broken(one([{ ...slot, dirtyBitmap: 3 }])).detail).toBe('as 0: slot 1 dirty bitmap 3 with flags 0');
  });

  it('[MS-INV-04][MS-INV-05] generations and the page count are named with both numbers', () => {
    const x86 = (generation: bigint): ObservableState => ({ spaces: [{ asId: 0, generation, slots: [] }, { asId: 1, generation: 1n, slots: [] }], nrMemslotPages: 0n });
    let e: unknown;
    try {
      checkInvariants(X86, x86(3n));
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(InvariantError);
    expect((e as InvariantError).detail).toBe('as 0: generation 3 is not 0 mod 2');
    expect(broken(one([], 2n), one([], 4n)).detail).toBe('as 0: generation went back from 4 to 2');
    expect(broken(one([slot], 0n, 3n)).detail).toBe('nr_memslot_pages 3, slots sum 2');
  });

  it('[MS-INV-01] an InvariantError is named InvariantError, and its message carries the rule', () => {
    const e = new InvariantError('MS-INV-01', 'as 0: id 1 twice');
    expect(e.name).toBe('InvariantError');
    expect(e.message).toBe('[MS-INV-01] invariant broken: as 0: id 1 twice');
    expect(String(e)).toBe('InvariantError: [MS-INV-01] invariant broken: as 0: id 1 twice');
  });
});

describe('small helpers', () => {
  it('[MS-VAL-08] an address space the profile lacks is a caller error naming it and the profile', () => {
    expect(() => space(createVm(NOSMM), 1)).toThrow(new RangeError('address space 1 does not exist in profile x86_64-nosmm'));
    expect(space(createVm(X86), 1).asId).toBe(1);
  });

  it('[MS-LKP-02] lastGfn is the last gfn a slot covers, inclusive', () => {
    expect(lastGfn({ baseGfn: 4n, npages: 2n })).toBe(5n);
    expect(lastGfn({ baseGfn: 0n, npages: 1n })).toBe(0n);
  });

  it('[MS-ATM-05] hex writes lowercase 0x-hex for numbers and bigints', () => {
    expect(hex(255)).toBe('0xff');
    expect(hex(0n)).toBe('0x0');
    expect(hex(0xfee0_0000n)).toBe('0xfee00000');
  });
});

describe('profile files: the exact errors', () => {
  const FULL = {
    address_spaces: 2,
    user_mem_slots: 32764,
    mem_slots_num: 32767,
    max_gfn: '0xffffffffff',
    user_addr_max: '0x7ffffffff000',
    max_nr_pages: '2147483647',
  };

  it('[MS-VAL-08][MS-VAL-02][MS-VAL-09][MS-X86-01][MS-VAL-07][MS-VAL-11] a missing core field is reported as missing', () => {
    for (const k of Object.keys(FULL)) {
      const v: Record<string, unknown> = { ...FULL };
      delete v[k];
      expect(profileFromJson(v, 'p')).toEqual({ ok: false, error: `missing profile field "${k}"` });
    }
  });

  it('[MS-X86-01][MS-VAL-07] a bad u64 field is reported with its format; only max_gfn adds "or null"', () => {
    expect(profileFromJson({ ...FULL, max_gfn: 5 }, 'p')).toEqual({ ok: false, error: 'profile field "max_gfn" must be a u64 string ("0x..." or decimal) or null' });
    expect(profileFromJson({ ...FULL, user_addr_max: 'x' }, 'p')).toEqual({ ok: false, error: 'profile field "user_addr_max" must be a u64 string ("0x..." or decimal)' });
  });

  it('[MS-VAL-08][MS-VAL-02] an integer field outside its range, fractional or a string is reported with its range', () => {
    const err = (k: string, max: number): unknown => ({ ok: false, error: `profile field "${k}" must be an integer from 1 to ${max}` });
    for (const v of [0, 3, 1.5, '2']) expect(profileFromJson({ ...FULL, address_spaces: v }, 'p')).toEqual(err('address_spaces', 2));
    for (const v of [0, 0x10000]) expect(profileFromJson({ ...FULL, user_mem_slots: v }, 'p')).toEqual(err('user_mem_slots', 0xffff));
    expect(profileFromJson({ ...FULL, mem_slots_num: -1 }, 'p')).toEqual(err('mem_slots_num', 0xffff));
    expect(profileFromJson({ ...FULL, address_spaces: 1, user_mem_slots: 0xffff, mem_slots_num: 0xffff }, 'p').ok).toBe(true);
  });

  it('[MS-X86-01][MS-VAL-07] parseU64 takes strings of up to 66 characters, leading zeros included', () => {
    expect(parseU64(`0x${'0'.repeat(63)}1`)).toBe(1n);
    expect(parseU64(`0x${'0'.repeat(64)}1`)).toBeNull();
    expect(parseU64('0'.repeat(66))).toBe(0n);
    expect(parseU64('0'.repeat(67))).toBeNull();
  });

  it('[MS-VAL-02] the built-in profiles are what PROFILES lists (sanity for the examples above)', () => {
    expect(PROFILES['x86_64-nosmm']).toBe(NOSMM);
  });
});
