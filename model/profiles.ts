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
  // The 6.8+ memory API (spec/28-memory-api.md).
  /** KVM_CAP_VM_TYPES: a mask of the VM types KVM_CREATE_VM accepts; 0 where the kernel lacks the cap (then type 0 only). */
  readonly vmTypes: number;
  /** KVM_SET_USER_MEMORY_REGION2 exists (KVM_CAP_USER_MEMORY2, 6.8+). */
  readonly userMemory2: boolean;
  /** KVM_CREATE_GUEST_MEMFD exists. */
  readonly guestMemfd: boolean;
  /** Which VM types accept KVM_MEM_GUEST_MEMFD slots: those with private memory (6.12), or all (7.2+). */
  readonly guestMemfdSlots: 'private' | 'all';
  /** The GUEST_MEMFD_FLAG_* bits KVM_CREATE_GUEST_MEMFD knows (KVM_CAP_GUEST_MEMFD_FLAGS on /dev/kvm); 0 before 6.18. */
  readonly guestMemfdFlags: bigint;
  /** The errno of a binding over a guest_memfd range that is already bound (EINVAL in 6.12, EEXIST in 7.2+). */
  readonly gmemBindErrno: 'EINVAL' | 'EEXIST';
  /** The already-bound check runs after the architecture's checks (kvm_gmem_commit_memory_region(), 7.3). */
  readonly gmemBindLate: boolean;
  /** KVM_SET_MEMORY_ATTRIBUTES exists (CONFIG_KVM_GENERIC_MEMORY_ATTRIBUTES). */
  readonly memoryAttributes: boolean;
  /** KVM_CAP_DIRTY_LOG_RING: the largest ring in bytes; 0 without dirty rings (5.10). */
  readonly dirtyRingMaxBytes: number;
  /** KVM_CAP_DIRTY_LOG_RING_ACQ_REL is offered (6.1+). */
  readonly dirtyRingAcqRel: boolean;
  /** kvm_dirty_ring_get_rsvd_entries(): 64 + kvm_cpu_dirty_log_size() (0 on AMD, 512 with Intel PML). */
  readonly dirtyRingRsvdEntries: number;
  /**
   * A property of the SUT's vCPU, not of the kernel: its `write` drops every mapping of the VM
   * when it is done (the kvm driver's write deletes a code slot of its own, which zaps them all:
   * MS-RNG-11). False for a SUT whose writes leave the MMU as the guest left it.
   */
  readonly writeDropsMappings: boolean;
}

/** The 6.8+ memory API as the pinned kernel (6.18) has it. */
const MEMORY_API_618 = {
  vmTypes: 1,
  userMemory2: true,
  guestMemfd: true,
  guestMemfdSlots: 'all',
  guestMemfdFlags: 3n,
  // Probed on 6.18.15: a second binding of a bound range fails with EINVAL, as in 6.12 (EEXIST came in 7.x).
  gmemBindErrno: 'EINVAL',
  gmemBindLate: false,
  memoryAttributes: true,
  dirtyRingMaxBytes: 65536 * 16,
  dirtyRingAcqRel: true,
  dirtyRingRsvdEntries: 64,
  writeDropsMappings: false,
} as const;

/** Before the 6.8+ memory API (5.10, 6.1). */
const NO_MEMORY_API = {
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
} as const;

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
  ...MEMORY_API_618,
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
    ...NO_MEMORY_API,
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
  'linux-6.1-x86_64': {
    name: 'linux-6.1-x86_64',
    addressSpaces: 2,
    ...MAINLINE,
    v1FlagsMask: false,
    maxNrPagesUserOnly: false,
    ...NO_MEMORY_API,
    dirtyRingMaxBytes: 65536 * 16,
    dirtyRingAcqRel: true,
  },
  /**
   * Linux 6.12 (Debian 6.12.117): the size limit still on every id (kvm_main.c:2025); guest_memfd
   * slots only on VM types with private memory (kvm_main.c:1577), no guest_memfd flags
   * (guest_memfd.c:464), a range bound twice fails with EINVAL (guest_memfd.c:509-512).
   */
  'linux-6.12-x86_64': {
    name: 'linux-6.12-x86_64',
    addressSpaces: 2,
    ...MAINLINE,
    maxNrPagesUserOnly: false,
    guestMemfdSlots: 'private',
    guestMemfdFlags: 0n,
    gmemBindErrno: 'EINVAL',
  },
  /** Linux 6.18 (Debian 6.18.15, trixie-backports). */
  'linux-6.18-x86_64': { name: 'linux-6.18-x86_64', addressSpaces: 2, ...MAINLINE },
  /** Linux 7.3 (Debian 7.3.4, trixie-backports). */
  'linux-7.3-x86_64': { name: 'linux-7.3-x86_64', addressSpaces: 2, ...MAINLINE, gmemBindErrno: 'EEXIST', gmemBindLate: true },
};

/**
 * Profiles from the source alone, never recorded here (no such kernel or host was available):
 * Debian's kernels lack CONFIG_KVM_SW_PROTECTED_VM, and SEV, SEV-ES, SNP and TDX need the
 * hardware. Each is a 7.3 kernel offering those VM types (KVM_CAP_VM_TYPES).
 */
export const SOURCE_PROFILES: Readonly<Record<string, Profile>> = {
  /** 7.2.13 (Debian sid): as 7.3, but the already-bound check runs inside kvm_gmem_bind(), before the arch checks (K72 kvm_main.c:2108). */
  'linux-7.2-x86_64': { name: 'linux-7.2-x86_64', addressSpaces: 2, ...MAINLINE, gmemBindErrno: 'EEXIST' },
  /** 7.3 built with CONFIG_KVM_SW_PROTECTED_VM and the TDP MMU: DEFAULT and SW_PROTECTED (x86.c:7134-7135). */
  'linux-7.3-x86_64-sw-protected': {
    name: 'linux-7.3-x86_64-sw-protected',
    addressSpaces: 2,
    ...MAINLINE,
    gmemBindErrno: 'EEXIST',
    gmemBindLate: true,
    vmTypes: 0b11,
  },
  /** 7.3 on an AMD host with SEV-SNP: DEFAULT, SEV, SEV_ES, SNP (sev.c:3243-3251). */
  'linux-7.3-x86_64-amd-sev': {
    name: 'linux-7.3-x86_64-amd-sev',
    addressSpaces: 2,
    ...MAINLINE,
    gmemBindErrno: 'EEXIST',
    gmemBindLate: true,
    vmTypes: 0b11101,
  },
  /** 7.3 on an Intel host with TDX: DEFAULT and TDX (vmx/main.c:1105). */
  'linux-7.3-x86_64-intel-tdx': {
    name: 'linux-7.3-x86_64-intel-tdx',
    addressSpaces: 2,
    ...MAINLINE,
    gmemBindErrno: 'EEXIST',
    gmemBindLate: true,
    vmTypes: 0b100001,
  },
};

/**
 * The parameters a built-in profile takes after its name (`NAME,max_gfn=0x...`): facts of the
 * host rather than of the kernel line (the guest's physical address bits; the entries a CPU dirty
 * log such as Intel PML reserves in each dirty ring).
 */
export const PROFILE_PARAMS = ['max_gfn', 'dirty_ring_rsvd_entries'] as const;

/**
 * A built-in profile by name, with parameters: `NAME`, `NAME,max_gfn=VALUE` (VALUE a u64 or
 * `null`), `NAME,dirty_ring_rsvd_entries=N` (0 to 65535), or both. Null for an unknown name; an
 * error string for a bad parameter.
 */
export function withParams(spec: string): Profile | string | null {
  const [base, ...params] = spec.split(',');
  const p = PROFILES[base!] ?? LINE_PROFILES[base!] ?? SOURCE_PROFILES[base!];
  if (p === undefined) return null;
  let maxGfn = p.maxGfn;
  let dirtyRingRsvdEntries = p.dirtyRingRsvdEntries;
  for (const param of params) {
    const eq = param.indexOf('=');
    const key = eq < 0 ? param : param.slice(0, eq);
    const value = eq < 0 ? '' : param.slice(eq + 1);
    if (key === 'dirty_ring_rsvd_entries') {
      const n = /^[0-9]+$/.test(value) ? Number(value) : NaN;
      if (!(n <= 0xffff)) return `profile parameter dirty_ring_rsvd_entries must be an integer from 0 to 65535, got "${value}"`;
      dirtyRingRsvdEntries = n;
      continue;
    }
    if (key !== 'max_gfn') return `unknown profile parameter "${key}" (known: ${PROFILE_PARAMS.join(', ')})`;
    const v = value === 'null' ? null : parseU64(value);
    if (v === null && value !== 'null') return `profile parameter max_gfn must be a u64 ("0x..." or decimal) or null, got "${value}"`;
    maxGfn = v;
  }
  return params.length === 0 ? p : { ...p, name: spec, maxGfn, dirtyRingRsvdEntries };
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
  vm_types: 'vmTypes',
  user_memory2: 'userMemory2',
  guest_memfd: 'guestMemfd',
  guest_memfd_slots: 'guestMemfdSlots',
  guest_memfd_flags: 'guestMemfdFlags',
  gmem_bind_errno: 'gmemBindErrno',
  gmem_bind_late: 'gmemBindLate',
  memory_attributes: 'memoryAttributes',
  dirty_ring_max_bytes: 'dirtyRingMaxBytes',
  dirty_ring_acq_rel: 'dirtyRingAcqRel',
  dirty_ring_rsvd_entries: 'dirtyRingRsvdEntries',
  write_drops_mappings: 'writeDropsMappings',
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
  const pinned = PROFILES[DEFAULT_PROFILE_NAME]!;
  // An omitted field of spec/28 takes the pinned kernel's value, except in a profile without the
  // v1 flag mask: that mask came with the memory API (6.8), so such a profile (5.10, 6.1, or a
  // driver older than chapter 28) says nothing of it, and none of it is assumed, dirty rings included.
  const base: Profile = obj['v1_flags_mask'] === false ? { ...pinned, ...NO_MEMORY_API } : pinned;
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
  const optInt = (key: string, dflt: number, max: number): number | string => (Object.hasOwn(obj, key) ? int(key, 0, max) : dflt);
  const oneOf = <T extends string>(key: string, dflt: T, values: readonly T[]): T | { error: string } => {
    if (!Object.hasOwn(obj, key)) return dflt;
    const v = obj[key];
    return values.includes(v as T) ? (v as T) : { error: `profile field "${key}" must be one of ${values.map((x) => JSON.stringify(x)).join(', ')}` };
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
  const vmTypes = optInt('vm_types', base.vmTypes, 0xffff_ffff);
  const userMemory2 = bool('user_memory2', base.userMemory2);
  const guestMemfd = bool('guest_memfd', base.guestMemfd);
  const guestMemfdSlots = oneOf('guest_memfd_slots', base.guestMemfdSlots, ['private', 'all'] as const);
  const guestMemfdFlags = Object.hasOwn(obj, 'guest_memfd_flags') ? u64('guest_memfd_flags', false) : base.guestMemfdFlags;
  const gmemBindErrno = oneOf('gmem_bind_errno', base.gmemBindErrno, ['EINVAL', 'EEXIST'] as const);
  const gmemBindLate = bool('gmem_bind_late', base.gmemBindLate);
  const memoryAttributes = bool('memory_attributes', base.memoryAttributes);
  const dirtyRingMaxBytes = optInt('dirty_ring_max_bytes', base.dirtyRingMaxBytes, 0x7fff_ffff);
  const dirtyRingAcqRel = bool('dirty_ring_acq_rel', base.dirtyRingAcqRel);
  const dirtyRingRsvdEntries = optInt('dirty_ring_rsvd_entries', base.dirtyRingRsvdEntries, 0xffff);
  const writeDropsMappings = bool('write_drops_mappings', base.writeDropsMappings);
  for (const v of [guestMemfdSlots, gmemBindErrno]) {
    if (typeof v === 'object') return { ok: false, error: v.error };
  }
  for (const v of [
    vmTypes,
    userMemory2,
    guestMemfd,
    guestMemfdFlags,
    gmemBindLate,
    memoryAttributes,
    dirtyRingMaxBytes,
    dirtyRingAcqRel,
    dirtyRingRsvdEntries,
    writeDropsMappings,
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
      vmTypes: vmTypes as number,
      userMemory2: userMemory2 as boolean,
      guestMemfd: guestMemfd as boolean,
      guestMemfdSlots: guestMemfdSlots as 'private' | 'all',
      guestMemfdFlags: guestMemfdFlags as bigint,
      gmemBindErrno: gmemBindErrno as 'EINVAL' | 'EEXIST',
      gmemBindLate: gmemBindLate as boolean,
      memoryAttributes: memoryAttributes as boolean,
      dirtyRingMaxBytes: dirtyRingMaxBytes as number,
      dirtyRingAcqRel: dirtyRingAcqRel as boolean,
      dirtyRingRsvdEntries: dirtyRingRsvdEntries as number,
      writeDropsMappings: writeDropsMappings as boolean,
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
    vm_types: p.vmTypes,
    user_memory2: p.userMemory2,
    guest_memfd: p.guestMemfd,
    guest_memfd_slots: p.guestMemfdSlots,
    guest_memfd_flags: `0x${p.guestMemfdFlags.toString(16)}`,
    gmem_bind_errno: p.gmemBindErrno,
    gmem_bind_late: p.gmemBindLate,
    memory_attributes: p.memoryAttributes,
    dirty_ring_max_bytes: p.dirtyRingMaxBytes,
    dirty_ring_acq_rel: p.dirtyRingAcqRel,
    dirty_ring_rsvd_entries: p.dirtyRingRsvdEntries,
    write_drops_mappings: p.writeDropsMappings,
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
