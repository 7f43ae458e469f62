/**
 * Profile files (model/profiles.ts): the exact error for each bad field (found by mutation
 * testing, docs/mutation.md). test/rules/profiles.test.ts has the format and the built-in profiles.
 */
import { describe, expect, it } from 'vitest';
import { PROFILES, parseU64, profileFromJson } from './index.js';
import { NOSMM } from '../test/rules/helpers.js';

describe('profile files: the exact errors', () => {
  const FULL = {
    address_spaces: 2,
    user_mem_slots: 32764,
    mem_slots_num: 32767,
    max_gfn: '0xffffffffff',
    user_addr_max: '0x7ffffffff000',
    max_nr_pages: '2147483647',
  };

  it('a missing core field is reported as missing', () => {
    for (const k of Object.keys(FULL)) {
      const v: Record<string, unknown> = { ...FULL };
      delete v[k];
      expect(profileFromJson(v, 'p')).toEqual({ ok: false, error: `missing profile field "${k}"` });
    }
  });

  it('a bad u64 field is reported with its format; only max_gfn adds "or null"', () => {
    expect(profileFromJson({ ...FULL, max_gfn: 5 }, 'p')).toEqual({
      ok: false,
      error: 'profile field "max_gfn" must be a u64 string ("0x..." or decimal) or null',
    });
    expect(profileFromJson({ ...FULL, user_addr_max: 'x' }, 'p')).toEqual({
      ok: false,
      error: 'profile field "user_addr_max" must be a u64 string ("0x..." or decimal)',
    });
  });

  it('an integer field outside its range, fractional or a string is reported with its range', () => {
    const err = (k: string, max: number): unknown => ({ ok: false, error: `profile field "${k}" must be an integer from 1 to ${max}` });
    for (const v of [0, 3, 1.5, '2']) expect(profileFromJson({ ...FULL, address_spaces: v }, 'p')).toEqual(err('address_spaces', 2));
    for (const v of [0, 0x10000]) expect(profileFromJson({ ...FULL, user_mem_slots: v }, 'p')).toEqual(err('user_mem_slots', 0xffff));
    expect(profileFromJson({ ...FULL, mem_slots_num: -1 }, 'p')).toEqual(err('mem_slots_num', 0xffff));
    expect(profileFromJson({ ...FULL, address_spaces: 1, user_mem_slots: 0xffff, mem_slots_num: 0xffff }, 'p').ok).toBe(true);
  });

  it('parseU64 takes strings of up to 66 characters, leading zeros included', () => {
    expect(parseU64(`0x${'0'.repeat(63)}1`)).toBe(1n);
    expect(parseU64(`0x${'0'.repeat(64)}1`)).toBeNull();
    expect(parseU64('0'.repeat(66))).toBe(0n);
    expect(parseU64('0'.repeat(67))).toBeNull();
  });

  it('the built-in profiles are what PROFILES lists (sanity for the examples above)', () => {
    expect(PROFILES['x86_64-nosmm']).toBe(NOSMM);
  });
});
