/**
 * The rule registry: every rule ID of the spec with its one-line text.
 *
 * The chapters in `spec/*.md` are normative; this file mirrors them so that code and tests
 * can cite rules by a checked type. `test/traceability.test.ts` keeps the two in step:
 * an ID in one and not the other fails the build. IDs are never renumbered or reused.
 */
export const RULES = {
  // 20-set-memory-region.md: validation, in the kernel's check order
  'MS-VAL-01': 'v1 ioctl: a flag outside KVM_MEM_LOG_DIRTY_PAGES|KVM_MEM_READONLY fails with EINVAL',
  'MS-VAL-02': 'the low 16 bits of slot at or above KVM_USER_MEM_SLOTS fail with EINVAL',
  'MS-VAL-03': 'a flag outside the valid set of check_memory_region_flags fails with EINVAL',
  'MS-VAL-04': 'memory_size not a multiple of PAGE_SIZE fails with EINVAL',
  'MS-VAL-05': 'guest_phys_addr not a multiple of PAGE_SIZE fails with EINVAL',
  'MS-VAL-06': 'userspace_addr not a multiple of PAGE_SIZE fails with EINVAL',
  'MS-VAL-07': 'userspace_addr + memory_size wrapping or above the user address limit fails with EINVAL',
  'MS-VAL-08': 'as_id (slot >> 16) at or above the number of address spaces fails with EINVAL',
  'MS-VAL-09': 'id at or above KVM_MEM_SLOTS_NUM fails with EINVAL',
  'MS-VAL-10': 'guest_phys_addr + memory_size wrapping past 2^64 fails with EINVAL',
  'MS-VAL-11': 'more than KVM_MEM_MAX_NR_PAGES pages fails with EINVAL',
  'MS-DEL-01': 'memory_size 0 for a slot that does not exist fails with EINVAL',
  'MS-DEL-02': 'memory_size 0 for an existing slot deletes it',
  'MS-CRT-01': 'a new slot whose pages overflow the VM-wide page count fails with EINVAL',
  'MS-MOD-01': 'changing userspace_addr of an existing slot fails with EINVAL',
  'MS-MOD-02': 'changing the size of an existing slot fails with EINVAL',
  'MS-MOD-03': 'toggling KVM_MEM_READONLY on an existing slot fails with EINVAL',
  'MS-NOP-01': 'an identical re-issue of an existing slot succeeds and changes nothing',
  'MS-OVL-01': 'a CREATE or MOVE whose gfn range overlaps another slot of its address space fails with EEXIST',
  'MS-X86-01': 'a CREATE or MOVE whose last gfn is above the max gfn fails with EINVAL',
  'MS-CRT-02': 'a request for an id with no slot creates the slot',
  'MS-MOV-01': 'a request for an existing slot with another base gfn moves the slot',
  'MS-FLG-01': 'a request for an existing slot with other flags changes only the flags',
  // 25-dirty-log.md
  'MS-DLG-01': 'KVM_GET_DIRTY_LOG with as_id at or above the number of address spaces fails with EINVAL',
  'MS-DLG-02': 'KVM_GET_DIRTY_LOG with id at or above KVM_USER_MEM_SLOTS fails with EINVAL',
  'MS-DLG-03': 'KVM_GET_DIRTY_LOG of a slot that does not exist fails with ENOENT',
  'MS-DLG-04': 'KVM_GET_DIRTY_LOG of a slot without a dirty bitmap fails with ENOENT',
  'MS-DLG-05': 'KVM_GET_DIRTY_LOG of a slot with a dirty bitmap succeeds',
  'MS-DLG-06': 'a MOVE that keeps KVM_MEM_LOG_DIRTY_PAGES keeps the same dirty bitmap',
  'MS-DLG-07': 'a change that sets KVM_MEM_LOG_DIRTY_PAGES on a slot without a bitmap allocates a fresh one',
  'MS-DLG-08': 'a change that leaves KVM_MEM_LOG_DIRTY_PAGES clear leaves the slot without a bitmap',
  'MS-DLB-01': 'a fresh dirty bitmap is all zeros, or all ones when manual protect was enabled with KVM_DIRTY_LOG_INITIALLY_SET',
  'MS-DLB-02': 'KVM_GET_DIRTY_LOG copies out the bitmap; without manual protect it clears the bitmap as it reads it',
  'MS-CLR-01': 'KVM_CLEAR_DIRTY_LOG with as_id or id out of bounds fails with EINVAL',
  'MS-CLR-02': 'KVM_CLEAR_DIRTY_LOG with first_page not a multiple of 64 fails with EINVAL',
  'MS-CLR-03': 'KVM_CLEAR_DIRTY_LOG of a missing slot or a slot without a bitmap fails with ENOENT',
  'MS-CLR-04': 'KVM_CLEAR_DIRTY_LOG with a range past the slot, or a count not a multiple of 64 short of its end, fails with EINVAL',
  'MS-CLR-05': 'KVM_CLEAR_DIRTY_LOG otherwise clears the bits its buffer sets within the range',
  'MS-MAN-01': 'enabling KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 with flags not 0 fails with EINVAL',
  'MS-MAN-02': 'enabling KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 with bits other than PROTECT_ENABLE, or INITIALLY_SET without it, fails with EINVAL',
  'MS-MAN-03': 'enabling KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 otherwise sets the manual-protect bits (0 clears them)',
  'MS-WR-01': 'a guest write to a gpa no slot of its address space holds exits as MMIO',
  'MS-WR-02': 'a guest write into a READONLY slot exits as MMIO',
  'MS-WR-03': 'a guest write into a slot with a dirty bitmap sets the bit of its page',
  'MS-WR-04': 'a guest write into any other slot lands and records nothing',
  'MS-DLG-09': 'KVM_GET_DIRTY_LOG in a VM with a dirty ring fails with ENXIO before any other check',
  'MS-DLG-10': 'a change that sets KVM_MEM_LOG_DIRTY_PAGES in a VM with a dirty ring allocates no bitmap',
  'MS-CLR-06': 'KVM_CLEAR_DIRTY_LOG in a VM with a dirty ring fails with ENXIO before any other check',
  'MS-RNG-01': 'enabling a dirty ring capability the kernel does not offer fails with EINVAL',
  'MS-RNG-02': 'enabling a dirty ring whose size (args[0] truncated to u32) is 0 or not a power of two fails with EINVAL',
  'MS-RNG-03': 'enabling a dirty ring smaller than the reserved entries or a page fails with EINVAL',
  'MS-RNG-04': 'enabling a dirty ring larger than KVM_DIRTY_RING_MAX_ENTRIES entries fails with E2BIG',
  'MS-RNG-05': 'enabling a dirty ring when the VM has one fails with EINVAL',
  'MS-RNG-06': 'enabling a dirty ring after a vCPU was created fails with EINVAL',
  'MS-RNG-07': 'enabling a dirty ring otherwise sets its size for the vCPUs created later',
  'MS-RNG-08': 'a guest write when the ring holds the soft limit of unreset entries exits with dirty_ring_full before the guest runs',
  'MS-RNG-09':
    'a guest write into a logged slot whose page is not mapped writable pushes (slot, offset) and maps it; reaching the soft limit exits with dirty_ring_full',
  'MS-RNG-10': 'a guest write into a page mapped writable since its last push pushes nothing',
  'MS-RNG-11': 'a DELETE or MOVE drops the mappings (all of them in a default VM), a FLAGS_ONLY that sets logging write-protects the slot',
  'MS-RNG-12': 'a harvest returns the entries pushed since the last harvest, in order, and flags them for reset',
  'MS-RNG-13': 'KVM_RESET_DIRTY_RINGS without a ring fails with EINVAL (ENOTTY on a kernel without rings)',
  'MS-RNG-14': 'KVM_RESET_DIRTY_RINGS resets the harvested entries, write-protects their pages again, and returns their number',
  // 26-internal-slots.md
  'MS-INT-01': 'creating an internal slot that exists fails with EEXIST',
  'MS-INT-02': 'deleting an internal slot that does not exist is a no-op',
  'MS-INT-03': 'an internal slot change is made in every address space with flags 0',
  // 27-resource-failures.md
  'MS-RES-01': 'a request the model accepts as a change may instead fail with ENOMEM; a no-op or a rejection may not',
  'MS-RES-02': 'after such an ENOMEM nothing changes, except that a MOVE grows its generation by 2N as MS-GEN-05',
  // 28-memory-api.md
  'MS-VM-01': 'KVM_CREATE_VM with a type the kernel does not offer fails with EINVAL and leaves the previous VM',
  'MS-VM-02': 'a VM type with private memory has one address space; one with protected state has no READONLY memory',
  'MS-V2-01': 'KVM_SET_USER_MEMORY_REGION2 fails with ENOTTY where the kernel lacks it',
  'MS-V2-02': 'KVM_SET_USER_MEMORY_REGION2 skips the v1 flag mask and takes the common path after MS-VAL-02',
  'MS-GMS-01': 'KVM_MEM_GUEST_MEMFD on a VM type that does not accept guest_memfd slots fails with EINVAL',
  'MS-GMS-02': 'KVM_MEM_GUEST_MEMFD with KVM_MEM_LOG_DIRTY_PAGES fails with EINVAL',
  'MS-GMS-03': 'KVM_MEM_GUEST_MEMFD with KVM_MEM_READONLY fails with EINVAL',
  'MS-GMS-04': 'KVM_MEM_GUEST_MEMFD with an unaligned or wrapping guest_memfd_offset fails with EINVAL',
  'MS-GMS-05': 'a non-delete request for an existing slot with KVM_MEM_GUEST_MEMFD in its flags fails with EINVAL',
  'MS-GMS-06': 'a request for an existing slot that differs from it in KVM_MEM_GUEST_MEMFD fails with EINVAL',
  'MS-GMB-01': 'a guest_memfd CREATE whose fd is not open fails with EBADF',
  'MS-GMB-02': 'a guest_memfd CREATE whose fd is not a guest_memfd fails with EINVAL',
  'MS-GMB-03': "a guest_memfd CREATE with another VM's guest_memfd fails with EINVAL",
  'MS-GMB-04': "a guest_memfd CREATE whose range passes the file's size fails with EINVAL",
  'MS-GMB-05': 'a guest_memfd CREATE over a file range bound to another slot fails with the line errno (EINVAL 6.12 and 6.18, EEXIST 7.2+)',
  'MS-GMB-06': 'a guest_memfd CREATE binds the file range to the slot; DELETE unbinds it',
  'MS-X86-02': "a CREATE or MOVE whose last gfn has one of the VM's gfn_direct_bits (TDX) fails with EINVAL",
  'MS-GMF-01': 'KVM_CREATE_GUEST_MEMFD fails with ENOTTY where the kernel lacks it',
  'MS-GMF-02': 'KVM_CREATE_GUEST_MEMFD with flags outside the supported set fails with EINVAL',
  'MS-GMF-03': 'KVM_CREATE_GUEST_MEMFD with a size of 0, at least 2^63, or unaligned fails with EINVAL',
  'MS-GMF-04': "KVM_CREATE_GUEST_MEMFD otherwise creates a file, the VM's next handle",
  'MS-ATR-01': 'KVM_SET_MEMORY_ATTRIBUTES fails with ENOTTY where the kernel lacks it',
  'MS-ATR-02': 'KVM_SET_MEMORY_ATTRIBUTES with flags not 0 fails with EINVAL',
  'MS-ATR-03': 'KVM_SET_MEMORY_ATTRIBUTES with attributes outside the supported set fails with EINVAL',
  'MS-ATR-04': 'KVM_SET_MEMORY_ATTRIBUTES with size 0 or a wrapping range fails with EINVAL',
  'MS-ATR-05': 'KVM_SET_MEMORY_ATTRIBUTES with an unaligned address or size fails with EINVAL',
  'MS-ATR-06': 'KVM_SET_MEMORY_ATTRIBUTES otherwise succeeds',
  'MS-CAP-01': 'KVM_CAP_USER_MEMORY answers 1',
  'MS-CAP-02': 'KVM_CAP_NR_MEMSLOTS answers KVM_USER_MEM_SLOTS',
  'MS-CAP-03': 'KVM_CAP_READONLY_MEM answers whether READONLY slots are possible (the VM on the VM fd)',
  'MS-CAP-04': 'KVM_CAP_MULTI_ADDRESS_SPACE answers the number of address spaces (the VM on the VM fd; 0 without SMM)',
  'MS-CAP-05': 'KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 answers 3',
  'MS-CAP-06': 'KVM_CAP_DIRTY_LOG_RING and _ACQ_REL answer the largest ring in bytes',
  'MS-CAP-07': 'KVM_CAP_USER_MEMORY2 answers whether KVM_SET_USER_MEMORY_REGION2 exists',
  'MS-CAP-08': 'KVM_CAP_MEMORY_ATTRIBUTES answers the supported attributes',
  'MS-CAP-09': 'KVM_CAP_GUEST_MEMFD answers whether guest_memfd slots are possible',
  'MS-CAP-10': 'KVM_CAP_VM_TYPES answers the mask of VM types',
  'MS-CAP-11': 'KVM_CAP_GUEST_MEMFD_FLAGS answers the supported guest_memfd flags',
  // 30-lookup.md
  'MS-LKP-01': 'id_to_memslot returns the slot of that id in the address space, or none',
  'MS-LKP-02': 'gfn_to_memslot returns the slot whose gfn range contains gfn, or none',
  'MS-LKP-03': 'the approx lookup returns the containing slot, else a slot bordering the hole, or none when empty',
  'MS-LKP-04': 'gfn-range iteration yields every slot intersecting [start, end) in ascending base_gfn order',
  'MS-LKP-05': 'hva-range iteration yields every slot of every address space whose hva range intersects [start, end)',
  'MS-LKP-06': 'a vCPU in SMM looks up address space 1, otherwise address space 0',
  'MS-LKP-07': 'a vCPU cached slot is used only while the generation it was cached at is current',
  'MS-LKP-08': 'a slot is visible iff it exists, has a user id and is not INVALID',
  'MS-LKP-09': 'gfn to hva with no slot or an INVALID slot gives KVM_HVA_ERR_BAD',
  'MS-LKP-10': 'gfn to hva for a write into a READONLY slot gives KVM_HVA_ERR_RO_BAD',
  'MS-LKP-11': 'gfn to hva otherwise gives userspace_addr + (gfn - base_gfn) * PAGE_SIZE',
  // 40-generations.md
  'MS-GEN-01': 'the generation of address space i starts at i',
  'MS-GEN-02': 'CREATE and FLAGS_ONLY publish once: the generation grows by the number of address spaces',
  'MS-GEN-03': 'DELETE and MOVE publish twice: the generation grows by twice the number of address spaces',
  'MS-GEN-04': 'the no-op and every rejected request leave the generation unchanged, except as MS-GEN-05 says',
  'MS-GEN-05': 'a MOVE rejected by the architecture after its INVALID copy was published grows the generation by twice the number of address spaces',
  // 45-atomicity.md
  'MS-ATM-01': 'every answer a reader gets between srcu_read_lock and srcu_read_unlock comes from one single published state',
  'MS-ATM-02': 'the state a reader sees is the one current when it entered, never a later one or a set still being built',
  'MS-ATM-03': 'while the swap that published its state is in progress, a reader reads the previous generation with bit 63 set',
  'MS-ATM-04': 'once that swap is over a reader reads the final generation, and never the in-progress value after it',
  'MS-ATM-05': 'during a DELETE or MOVE a reader sees the slot whole, as its INVALID copy, or as the request leaves it, never half-moved',
  'MS-ATM-06': "a vCPU drops its cached slot when the generation differs, so its lookups answer from the reader's state",
  // 50-invariants.md
  'MS-INV-01': 'slot ids are unique within an address space',
  'MS-INV-02': 'the gfn ranges of an address space are pairwise disjoint',
  'MS-INV-03': 'every slot has at least one page',
  'MS-INV-04': 'a generation is congruent to its as_id modulo the number of address spaces and never decreases',
  'MS-INV-05': 'the VM-wide page count equals the sum of npages over all slots',
  'MS-INV-06': 'no slot of a stable state is INVALID',
  'MS-INV-07': 'a slot has a dirty bitmap iff it has KVM_MEM_LOG_DIRTY_PAGES',
} as const;

export type RuleId = keyof typeof RULES;

export const RULE_IDS = Object.keys(RULES) as RuleId[];

export function isRuleId(s: string): s is RuleId {
  return Object.hasOwn(RULES, s);
}

/**
 * The VMM checks (spec/90-vmm-checks.md): rules for the caller's side, run over a trace by
 * `memslot-oracle lint` and `replay` (lint/). They judge the stream of requests a VMM sends, not
 * the kernel's answers, so they are kept apart from RULES: the model never decides by them and
 * the stateful suite's coverage table does not list them. test/traceability.test.ts keeps this
 * registry, the chapter's `**[VMM-…]` headings, lint/ and the test titles in step.
 */
export const VMM_CHECKS = {
  'VMM-WIN-01': 'a gfn unmapped by a request of a run of set-region requests and mapped again at the same host address by a later one (an update window)',
  'VMM-IDS-01': 'ids deleted and never reused while new ids climb past them towards the limit (an id leak)',
  'VMM-IDS-02': 'a set-region request names an id or address space past what the profile allows',
  'VMM-REJ-01': 'a rejected request is issued again unchanged while nothing in the VM changed (it must fail again)',
  'VMM-REJ-02': 'a rejected request is followed as if it had succeeded (deleting or reading a slot never created, creating over a slot never deleted)',
  'VMM-X86-01': "a create or move covers a gpa of the kernel's x86 internal slots (APIC access page, TSS, identity map)",
} as const;

export type VmmCheckId = keyof typeof VMM_CHECKS;

export const VMM_CHECK_IDS = Object.keys(VMM_CHECKS) as VmmCheckId[];
