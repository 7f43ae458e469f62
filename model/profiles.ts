/**
 * Profiles: the parameters that differ between kernels and hosts (spec/60-profiles.md).
 *
 * A profile file is JSON with snake_case fields named after the kernel constant or
 * capability each one mirrors. The six core fields are required; the four behaviour
 * switches default to the pinned kernel (Linux 6.18).
 */
import type { Gfn, Hva, NPages } from './types.js';

export interface Profile {
  readonly name: string;
  /** kvm_arch_nr_memslot_as_ids(): 2 on x86 with SMM, else 1. */
  readonly addressSpaces: number;
  /** KVM_USER_MEM_SLOTS (= KVM_CAP_NR_MEMSLOTS): user ids are 0 .. userMemSlots-1. */
  readonly userMemSlots: number;
  /** KVM_MEM_SLOTS_NUM: user plus internal ids. */
  readonly memSlotsNum: number;
  /** kvm_mmu_max_gfn(): the highest gfn a slot may cover; null where the kernel has no such check (5.10). */
  readonly maxGfn: Gfn | null;
  /** The largest `userspace_addr + memory_size` that access_ok() accepts (USER_PTR_MAX on x86-64). */
  readonly userAddrMax: Hva;
  /** KVM_MEM_MAX_NR_PAGES */
  readonly maxNrPages: NPages;
  /** kvm_arch_has_readonly_mem() (KVM_CAP_READONLY_MEM). */
  readonly readonlyMem: boolean;
  /** The v1 ioctl rejects flags outside KVM_SET_USER_MEMORY_REGION_V1_FLAGS first (6.8+). */
  readonly v1FlagsMask: boolean;
  /** KVM_MEM_MAX_NR_PAGES applies to user ids only (newest); in 5.10 it applies to every id. */
  readonly maxNrPagesUserOnly: boolean;
  /** The nr_memslot_pages overflow check on CREATE exists (5.17+). */
  readonly nrMemslotPagesCheck: boolean;
}

const MAINLINE = {
  userMemSlots: 32764,
  memSlotsNum: 32767,
  maxGfn: (1n << 40n) - 1n,
  userAddrMax: 0x7fff_ffff_f000n,
  maxNrPages: (1n << 31n) - 1n,
  readonlyMem: true,
  v1FlagsMask: true,
  maxNrPagesUserOnly: true,
  nrMemslotPagesCheck: true,
} as const;

/** The built-in profiles, by name. */
export const PROFILES: Readonly<Record<string, Profile>> = {
  /** Mainline x86-64 with SMM: two address spaces. */
  x86_64: { name: 'x86_64', addressSpaces: 2, ...MAINLINE },
  /** x86-64 without SMM: one address space. What our machines' Linux 6.18 reports. */
  'x86_64-nosmm': { name: 'x86_64-nosmm', addressSpaces: 1, ...MAINLINE },
  /** Linux 5.10 x86-64: the legacy array, 509 user slots, no max-gfn check. */
  'linux-5.10-x86_64': {
    name: 'linux-5.10-x86_64',
    addressSpaces: 2,
    userMemSlots: 509,
    memSlotsNum: 512,
    maxGfn: null,
    userAddrMax: 0x7fff_ffff_f000n,
    maxNrPages: (1n << 31n) - 1n,
    readonlyMem: true,
    v1FlagsMask: false,
    maxNrPagesUserOnly: false,
    nrMemslotPagesCheck: false,
  },
};

export const DEFAULT_PROFILE_NAME = 'x86_64-nosmm';

/**
 * One built-in profile per Debian kernel line of the kernel matrix (kernel-matrix/kernels.ts),
 * each what that kernel's driver reports in a two-address-space VM. `max_gfn` is a fact of the
 * host (the guest's physical address bits under TDP, 52 bits without), so it is a parameter:
 * `linux-7.3-x86_64,max_gfn=0xfffffff` (see `withParams`); without one it is 2^40 - 1, the value
 * with kvm_amd npt=0 and on our host. 5.10 is `linux-5.10-x86_64` above (no max-gfn check). Kept
 * apart from PROFILES so the suites that run every built-in profile do not grow.
 */
export const LINE_PROFILES: Readonly<Record<string, Profile>> = {
  /** Linux 6.1 (Debian 6.1.192): scalable memslots, no v1 flag mask, the size limit on every id. */
  'linux-6.1-x86_64': { name: 'linux-6.1-x86_64', addressSpaces: 2, ...MAINLINE, v1FlagsMask: false, maxNrPagesUserOnly: false },
  /** Linux 6.12 (Debian 6.12.117): the size limit still on every id (kvm_main.c:2025). */
  'linux-6.12-x86_64': { name: 'linux-6.12-x86_64', addressSpaces: 2, ...MAINLINE, maxNrPagesUserOnly: false },
  /** Linux 6.18 (Debian 6.18.15, trixie-backports). */
  'linux-6.18-x86_64': { name: 'linux-6.18-x86_64', addressSpaces: 2, ...MAINLINE },
  /** Linux 7.3 (Debian 7.3.4, trixie-backports). */
  'linux-7.3-x86_64': { name: 'linux-7.3-x86_64', addressSpaces: 2, ...MAINLINE },
};

/** The parameters a built-in profile takes after its name (`NAME,max_gfn=0x...`). */
export const PROFILE_PARAMS = ['max_gfn'] as const;

/**
 * A built-in profile by name, with parameters: `NAME` or `NAME,max_gfn=VALUE` (VALUE a u64 or
 * `null`). Null for an unknown name; an error string for a bad parameter.
 */
export function withParams(spec: string): Profile | string | null {
  const [base, ...params] = spec.split(',');
  const p = PROFILES[base!] ?? LINE_PROFILES[base!];
  if (p === undefined) return null;
  let maxGfn = p.maxGfn;
  for (const param of params) {
    const eq = param.indexOf('=');
    const key = eq < 0 ? param : param.slice(0, eq);
    const value = eq < 0 ? '' : param.slice(eq + 1);
    if (key !== 'max_gfn') return `unknown profile parameter "${key}" (known: ${PROFILE_PARAMS.join(', ')})`;
    const v = value === 'null' ? null : parseU64(value);
    if (v === null && value !== 'null') return `profile parameter max_gfn must be a u64 ("0x..." or decimal) or null, got "${value}"`;
    maxGfn = v;
  }
  return params.length === 0 ? p : { ...p, name: spec, maxGfn };
}

/** Field names of a profile file, mapped to the Profile key. */
const FILE_FIELDS = {
  address_spaces: 'addressSpaces',
  user_mem_slots: 'userMemSlots',
  mem_slots_num: 'memSlotsNum',
  max_gfn: 'maxGfn',
  user_addr_max: 'userAddrMax',
  max_nr_pages: 'maxNrPages',
  readonly_mem: 'readonlyMem',
  v1_flags_mask: 'v1FlagsMask',
  max_nr_pages_user_only: 'maxNrPagesUserOnly',
  nr_memslot_pages_check: 'nrMemslotPagesCheck',
} as const satisfies Record<string, keyof Profile>;

const REQUIRED_FIELDS = ['address_spaces', 'user_mem_slots', 'mem_slots_num', 'max_gfn', 'user_addr_max', 'max_nr_pages'];

export type ProfileResult = { ok: true; profile: Profile } | { ok: false; error: string };

/**
 * Reads a profile from its JSON object form.
 * @returns the profile, or an error naming the offending field.
 */
export function profileFromJson(value: unknown, name: string): ProfileResult {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, error: 'a profile must be a JSON object' };
  }
  const obj = value as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!Object.hasOwn(FILE_FIELDS, key)) return { ok: false, error: `unknown profile field "${key}"` };
  }
  for (const key of REQUIRED_FIELDS) {
    if (!Object.hasOwn(obj, key)) return { ok: false, error: `missing profile field "${key}"` };
  }
  const base = PROFILES[DEFAULT_PROFILE_NAME]!;
  const int = (key: string, min: number, max: number): number | string => {
    const v = obj[key];
    // Stryker disable next-line ConditionalExpression: Number.isInteger() rejects every non-number too; the typeof is for the type checker
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      return `profile field "${key}" must be an integer from ${min} to ${max}`;
    }
    return v;
  };
  const u64 = (key: string, nullable: boolean): bigint | null | string => {
    const v = obj[key];
    if (v === null && nullable) return null;
    const parsed = typeof v === 'string' ? parseU64(v) : null;
    if (parsed === null) {
      return `profile field "${key}" must be a u64 string ("0x..." or decimal)${nullable ? ' or null' : ''}`;
    }
    return parsed;
  };
  const bool = (key: string, dflt: boolean): boolean | string => {
    if (!Object.hasOwn(obj, key)) return dflt;
    const v = obj[key];
    return typeof v === 'boolean' ? v : `profile field "${key}" must be true or false`;
  };
  const addressSpaces = int('address_spaces', 1, 2);
  const userMemSlots = int('user_mem_slots', 1, 0xffff);
  const memSlotsNum = int('mem_slots_num', 1, 0xffff);
  const maxGfn = u64('max_gfn', true);
  const userAddrMax = u64('user_addr_max', false);
  const maxNrPages = u64('max_nr_pages', false);
  const readonlyMem = bool('readonly_mem', base.readonlyMem);
  const v1FlagsMask = bool('v1_flags_mask', base.v1FlagsMask);
  const maxNrPagesUserOnly = bool('max_nr_pages_user_only', base.maxNrPagesUserOnly);
  const nrMemslotPagesCheck = bool('nr_memslot_pages_check', base.nrMemslotPagesCheck);
  for (const v of [
    addressSpaces,
    userMemSlots,
    memSlotsNum,
    maxGfn,
    userAddrMax,
    maxNrPages,
    readonlyMem,
    v1FlagsMask,
    maxNrPagesUserOnly,
    nrMemslotPagesCheck,
  ]) {
    if (typeof v === 'string') return { ok: false, error: v };
  }
  if ((memSlotsNum as number) < (userMemSlots as number)) {
    return { ok: false, error: 'profile field "mem_slots_num" must be at least "user_mem_slots"' };
  }
  return {
    ok: true,
    profile: {
      name,
      addressSpaces: addressSpaces as number,
      userMemSlots: userMemSlots as number,
      memSlotsNum: memSlotsNum as number,
      maxGfn: maxGfn as bigint | null,
      userAddrMax: userAddrMax as bigint,
      maxNrPages: maxNrPages as bigint,
      readonlyMem: readonlyMem as boolean,
      v1FlagsMask: v1FlagsMask as boolean,
      maxNrPagesUserOnly: maxNrPagesUserOnly as boolean,
      nrMemslotPagesCheck: nrMemslotPagesCheck as boolean,
    },
  };
}

/** The JSON object form of a profile (every field, in file order). */
export function profileToJson(p: Profile): Record<string, unknown> {
  return {
    address_spaces: p.addressSpaces,
    user_mem_slots: p.userMemSlots,
    mem_slots_num: p.memSlotsNum,
    max_gfn: p.maxGfn === null ? null : `0x${p.maxGfn.toString(16)}`,
    user_addr_max: `0x${p.userAddrMax.toString(16)}`,
    max_nr_pages: `0x${p.maxNrPages.toString(16)}`,
    readonly_mem: p.readonlyMem,
    v1_flags_mask: p.v1FlagsMask,
    max_nr_pages_user_only: p.maxNrPagesUserOnly,
    nr_memslot_pages_check: p.nrMemslotPagesCheck,
  };
}

/** The first field on which two profiles differ (by file name), or null when they agree. */
export function profileDiff(a: Profile, b: Profile): { field: string; a: unknown; b: unknown } | null {
  const ja = profileToJson(a);
  const jb = profileToJson(b);
  for (const key of Object.keys(ja)) {
    if (ja[key] !== jb[key]) return { field: key, a: ja[key], b: jb[key] };
  }
  return null;
}

/** Parses a u64 given as "0x..." hex or decimal; null when it is not exactly that. */
export function parseU64(s: string): bigint | null {
  if (s.length > 66 || !/^(0x[0-9a-fA-F]+|[0-9]+)$/.test(s)) return null;
  const v = BigInt(s);
  return v <= 0xffff_ffff_ffff_ffffn ? v : null;
}
