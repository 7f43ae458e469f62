/**
 * Profiles (spec/60-profiles.md): the three built-ins and the JSON file format.
 *
 * Chapter 60 defines no rule IDs of its own; the built-in tests cite the rules whose
 * behaviour each field selects, the format tests cite none.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_PROFILE_NAME, PROFILES, U64_MAX, parseU64, profileDiff, profileFromJson, profileToJson, type Profile } from '../../model/index.js';
import { L510, NOSMM, X86 } from './helpers.js';

const FULL = {
  address_spaces: 2,
  user_mem_slots: 32764,
  mem_slots_num: 32767,
  max_gfn: '0xffffffffff',
  user_addr_max: '0x7ffffffff000',
  max_nr_pages: '2147483647',
  readonly_mem: true,
  v1_flags_mask: true,
  max_nr_pages_user_only: true,
  nr_memslot_pages_check: true,
  vm_types: 1,
  user_memory2: true,
  guest_memfd: true,
  guest_memfd_slots: 'all',
  guest_memfd_flags: '0x3',
  gmem_bind_errno: 'EINVAL',
  gmem_bind_late: false,
  memory_attributes: true,
  dirty_ring_max_bytes: 1048576,
  dirty_ring_acq_rel: true,
  dirty_ring_rsvd_entries: 64,
  write_drops_mappings: false,
} as const;
const CORE = ['address_spaces', 'user_mem_slots', 'mem_slots_num', 'max_gfn', 'user_addr_max', 'max_nr_pages'] as const;

/** profileFromJson fails with a message that names `field`. */
function expectFieldError(value: unknown, field: string): void {
  const r = profileFromJson(value, 'p');
  expect(r.ok, JSON.stringify(value)).toBe(false);
  if (!r.ok) expect(r.error).toContain(`"${field}"`);
}

describe('built-in profiles', () => {
  it('there are exactly three built-ins, and x86_64-nosmm (what our machines report) is the default', () => {
    expect(Object.keys(PROFILES).sort()).toEqual(['linux-5.10-x86_64', 'x86_64', 'x86_64-nosmm']);
    expect(DEFAULT_PROFILE_NAME).toBe('x86_64-nosmm');
    for (const [name, p] of Object.entries(PROFILES)) expect(p.name).toBe(name);
  });
  it('[MS-VAL-02][MS-VAL-08][MS-VAL-09][MS-X86-01][MS-VAL-07][MS-VAL-11] x86_64: 2 address spaces, 32764/32767 ids, max gfn 2^40 - 1, every switch on', () => {
    expect(X86).toEqual({
      name: 'x86_64',
      addressSpaces: 2,
      userMemSlots: 32764,
      memSlotsNum: 32767,
      maxGfn: 0xff_ffff_ffffn,
      userAddrMax: 0x7fff_ffff_f000n,
      maxNrPages: 0x7fff_ffffn,
      readonlyMem: true,
      v1FlagsMask: true,
      maxNrPagesUserOnly: true,
      nrMemslotPagesCheck: true,
      vmTypes: 1,
      userMemory2: true,
      guestMemfd: true,
      guestMemfdSlots: 'all',
      guestMemfdFlags: 3n,
      gmemBindErrno: 'EINVAL',
      gmemBindLate: false,
      memoryAttributes: true,
      dirtyRingMaxBytes: 1048576,
      dirtyRingAcqRel: true,
      dirtyRingRsvdEntries: 64,
      writeDropsMappings: false,
    } satisfies Profile);
  });
  it('[MS-VAL-08][MS-DLG-01] x86_64-nosmm: as x86_64 but one address space', () => {
    expect(NOSMM).toEqual({ ...X86, name: 'x86_64-nosmm', addressSpaces: 1 });
  });
  it('[MS-VAL-01][MS-VAL-02][MS-VAL-11][MS-CRT-01][MS-X86-01] linux-5.10-x86_64: 509/512 ids, no max gfn, no v1 mask, page limit on every id, no page-count check, read-only memory on', () => {
    expect(L510).toEqual({
      name: 'linux-5.10-x86_64',
      addressSpaces: 2,
      userMemSlots: 509,
      memSlotsNum: 512,
      maxGfn: null,
      userAddrMax: 0x7fff_ffff_f000n,
      maxNrPages: 0x7fff_ffffn,
      // 5.10 x86 defines __KVM_HAVE_READONLY_MEM (kernel-memslots.md §5.3).
      readonlyMem: true,
      v1FlagsMask: false,
      maxNrPagesUserOnly: false,
      nrMemslotPagesCheck: false,
      vmTypes: 0,
      userMemory2: false,
      guestMemfd: false,
      guestMemfdSlots: 'private',
      guestMemfdFlags: 0n,
      gmemBindErrno: 'EINVAL',
      gmemBindLate: false,
      memoryAttributes: false,
      dirtyRingMaxBytes: 0,
      dirtyRingAcqRel: false,
      dirtyRingRsvdEntries: 64,
      writeDropsMappings: false,
    } satisfies Profile);
  });
  it('every built-in survives profileToJson -> profileFromJson unchanged', () => {
    for (const p of Object.values(PROFILES)) expect(profileFromJson(profileToJson(p), p.name)).toEqual({ ok: true, profile: p });
  });
  it('profileToJson writes every field in file order, u64s as lowercase 0x-hex strings', () => {
    expect(profileToJson(L510)).toEqual({
      address_spaces: 2,
      user_mem_slots: 509,
      mem_slots_num: 512,
      max_gfn: null,
      user_addr_max: '0x7ffffffff000',
      max_nr_pages: '0x7fffffff',
      readonly_mem: true,
      v1_flags_mask: false,
      max_nr_pages_user_only: false,
      nr_memslot_pages_check: false,
      vm_types: 0,
      user_memory2: false,
      guest_memfd: false,
      guest_memfd_slots: 'private',
      guest_memfd_flags: '0x0',
      gmem_bind_errno: 'EINVAL',
      gmem_bind_late: false,
      memory_attributes: false,
      dirty_ring_max_bytes: 0,
      dirty_ring_acq_rel: false,
      dirty_ring_rsvd_entries: 64,
      write_drops_mappings: false,
    });
    expect(Object.keys(profileToJson(X86))).toEqual(Object.keys(FULL));
  });
  it('profileDiff names the first differing field, or null', () => {
    expect(profileDiff(NOSMM, X86)).toEqual({ field: 'address_spaces', a: 1, b: 2 });
    expect(profileDiff(X86, L510)).toEqual({ field: 'user_mem_slots', a: 32764, b: 509 });
    expect(profileDiff(X86, { ...X86, name: 'other name' })).toBeNull();
  });
});

describe('profile file format', () => {
  it('the documented format with every field (decimal and 0x-hex u64 strings) is accepted', () => {
    expect(profileFromJson(FULL, 'mine')).toEqual({ ok: true, profile: { ...X86, name: 'mine' } });
  });
  it('the six core fields alone are enough: the four switches default to the pinned kernel (all true)', () => {
    const core = Object.fromEntries(CORE.map((k) => [k, FULL[k]]));
    expect(profileFromJson({ ...core, address_spaces: 1 }, 'x')).toEqual({ ok: true, profile: { ...NOSMM, name: 'x' } });
  });
  it('max_gfn may be null (no max-gfn check); hex digits may be upper case', () => {
    const r = profileFromJson({ ...FULL, max_gfn: null, user_addr_max: '0x7FFFFFFFF000' }, 'x');
    expect(r).toEqual({ ok: true, profile: { ...X86, name: 'x', maxGfn: null } });
  });
  it('each switch is read as given', () => {
    const r = profileFromJson({ ...FULL, readonly_mem: false, v1_flags_mask: false, max_nr_pages_user_only: false, nr_memslot_pages_check: false }, 'x');
    expect(r).toEqual({
      ok: true,
      profile: { ...X86, name: 'x', readonlyMem: false, v1FlagsMask: false, maxNrPagesUserOnly: false, nrMemslotPagesCheck: false },
    });
  });
  it('a value that is not a JSON object is rejected', () => {
    for (const v of [null, [], 'x86_64', 2, true]) expect(profileFromJson(v, 'p')).toEqual({ ok: false, error: 'a profile must be a JSON object' });
  });
  it('an unknown field is an error that names it (camelCase spellings too)', () => {
    expectFieldError({ ...FULL, foo: 1 }, 'foo');
    expectFieldError({ ...FULL, addressSpaces: 2 }, 'addressSpaces');
    expectFieldError({ ...FULL, name: 'x' }, 'name');
  });
  it('each missing core field is an error that names it', () => {
    for (const k of CORE) {
      const v: Record<string, unknown> = { ...FULL };
      delete v[k];
      expectFieldError(v, k);
    }
  });
  it('address_spaces must be the integer 1 or 2', () => {
    for (const bad of [0, 3, 1.5, '2', null, true]) expectFieldError({ ...FULL, address_spaces: bad }, 'address_spaces');
  });
  it('user_mem_slots and mem_slots_num must be integers from 1 to 65535', () => {
    for (const bad of [0, -1, 0x10000, 32764.5, '32764']) expectFieldError({ ...FULL, user_mem_slots: bad }, 'user_mem_slots');
    for (const bad of [0, 0x10000, '32767', null]) expectFieldError({ ...FULL, mem_slots_num: bad }, 'mem_slots_num');
  });
  it('mem_slots_num below user_mem_slots is an error naming mem_slots_num', () => {
    expectFieldError({ ...FULL, user_mem_slots: 600, mem_slots_num: 512 }, 'mem_slots_num');
    expect(profileFromJson({ ...FULL, user_mem_slots: 512, mem_slots_num: 512 }, 'x').ok).toBe(true);
  });
  it('u64 fields must be strings: a JSON number, a bad string or a value past 2^64 - 1 is an error naming the field', () => {
    for (const field of ['max_gfn', 'user_addr_max', 'max_nr_pages'] as const) {
      for (const bad of [1099511627775, '0x', 'abc', '-1', ' 5', '0x1_0000', '18446744073709551616', '0x10000000000000000', true]) {
        expectFieldError({ ...FULL, [field]: bad }, field);
      }
    }
  });
  it('only max_gfn may be null', () => {
    expectFieldError({ ...FULL, user_addr_max: null }, 'user_addr_max');
    expectFieldError({ ...FULL, max_nr_pages: null }, 'max_nr_pages');
  });
  it('switches must be booleans', () => {
    for (const k of ['readonly_mem', 'v1_flags_mask', 'max_nr_pages_user_only', 'nr_memslot_pages_check']) {
      for (const bad of ['true', 1, null]) expectFieldError({ ...FULL, [k]: bad }, k);
    }
  });
  it('parseU64 reads 0x-hex and decimal up to 2^64 - 1 exactly', () => {
    expect(parseU64('0xffffffffffffffff')).toBe(U64_MAX);
    expect(parseU64('18446744073709551615')).toBe(U64_MAX);
    expect(parseU64('0')).toBe(0n);
    expect(parseU64('0x0')).toBe(0n);
    expect(parseU64('18446744073709551616')).toBeNull();
    expect(parseU64('0X10')).toBeNull();
    expect(parseU64('1e3')).toBeNull();
    expect(parseU64('')).toBeNull();
  });
});
