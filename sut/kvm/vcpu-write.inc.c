// SPDX-License-Identifier: MIT
/*
 * vcpu-write.inc.c - dirty bits for kvm-sut.c (spec/25, spec/80 "Optional: dirty bits"):
 * guest writes through a vCPU, the bitmap in get_dirty_log answers, KVM_CLEAR_DIRTY_LOG and
 * KVM_ENABLE_CAP(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, and the two dirty-ring caps of
 * dirty-ring.inc.c). #included by kvm-sut.c after its KVM helpers (vm_fd, ensure_vm,
 * set_region, shadow_get, profile, answer_*, get_u32/get_u64) and dirty-ring.inc.c (dr_*).
 *
 *   {"op":"write","as_id":A,"gpa":"0x.."}  -> {"ret":0} | {"exit":"mmio"} | {"exit":"dirty_ring_full"}
 *   {"op":"get_dirty_log","slot":N}        -> {"ret":0,"bitmap":"HEX"} | {"errno":..}
 *   {"op":"clear_dirty_log","slot":N,"first_page":"0x..","num_pages":N,"bitmap":"HEX"}
 *                                          -> {"ret":0} | {"errno":..}
 *   {"op":"enable_cap","cap":"MANUAL_DIRTY_LOG_PROTECT2","args0":"0x..","flags":N}
 *                                          -> {"ret":0} | {"errno":..}
 *   (cap also "DIRTY_LOG_RING" or "DIRTY_LOG_RING_ACQ_REL": args0 and flags go to the
 *   kernel as they are; see dirty-ring.inc.c)
 *
 * The write. vCPU 0 of the request VM is created on the first write (no in-kernel irqchip,
 * no CPUID: HLT exits to user space); if the VM was enabled with a dirty ring, its ring is
 * mapped right after KVM_CREATE_VCPU (dirty-ring.inc.c). Each write runs a flat 32-bit protected-mode guest
 * without paging (CS and DS base 0, limit 4 GiB, CR0.PE, set through KVM_SET_SREGS) at
 * EIP = C, EAX = gpa:
 *
 *     C6 00 01    mov byte [eax], 1
 *     F4          hlt
 *     EB FD       jmp hlt
 *
 * The code lives in a page the trace never names: a temporary one-page slot (flags 0, so no
 * bitmap) created for the run with a free user id and a free gfn below 4 GiB of the vCPU's
 * address space (not the target's page, not the APIC page 0xfee00), backed by a page of
 * this process, and deleted right after the run. A state without a free id or page answers
 * an error. For as_id 1 the vCPU is put in SMM (KVM_SET_VCPU_EVENTS, KVM_VCPUEVENT_VALID_SMM),
 * so every access, the code fetch included, goes through address space 1; for as_id 0 it
 * leaves SMM again.
 *
 * The target page of a user slot must be host memory for the write to land: the driver maps
 * it at userspace_addr + offset (MAP_FIXED_NOREPLACE; a page it mapped before is reused; a
 * host address already taken by something else, or one mmap refuses, answers an error).
 * Exits: KVM_EXIT_HLT -> {"ret":0}; a KVM_EXIT_MMIO write on the way (no slot, a READONLY
 * slot) -> {"exit":"mmio"} (the run is resumed so the instruction completes and HLT comes);
 * KVM_EXIT_DIRTY_RING_FULL (31) -> {"exit":"dirty_ring_full"}, the run not resumed (the
 * write may not have landed); anything else -> an error naming the exit reason. Every run,
 * whatever its exit, ends with the code slot's DELETE, which on x86 zaps all of the VM's
 * mappings (KVM_X86_QUIRK_SLOT_ZAP_ALL): the next write into any logged page faults again
 * and is logged again (hello: "write_drops_mappings").
 *
 * gpas of 4 GiB and above: the vCPU gets KVM_GET_SUPPORTED_CPUID (KVM_SET_CPUID2, for long
 * mode) and the guest runs in 64-bit mode with 4-level paging in the same single code page:
 * the page is its own PML4, PDPT, PD and page table (entry 0 points to itself, so linear 0 is
 * the code page; entry 1 maps linear 0x1000 to the target page), the code at offset 0x10 is
 * invlpg [rax]; mov byte [rax], 1; hlt, with RAX = 0x1000 + the page offset. A gpa beyond
 * the vCPU's physical address bits (CPUID 0x80000008) answers an error.
 *
 * hello lists write only when a probe on a scratch VM worked: in every address space, a
 * write into a logged one-page slot landed (the byte is 1), exited with HLT and set bit 0 of
 * the slot's bitmap; the same at gpa 4 GiB (long mode) decides whether such gpas work (if
 * not, they answer an error and stderr says why). clear_dirty_log and enable_cap are listed
 * when the kernel has KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2; harvest_dirty_ring and
 * reset_dirty_rings when, in addition, write is listed and KVM_CAP_DIRTY_LOG_RING is
 * offered (dirty_ring_max_bytes > 0).
 *
 * The bitmap. get_dirty_log's buffer is kvm_dirty_bitmap_bytes() = ALIGN(npages, 64) / 8 of
 * the slot (from the driver's table; kvm-sut.c sizes it); the answer is its bytes as hex up to
 * the last non-zero byte. A set bit at or beyond 2^27 is not exchanged: an error.
 */

#ifndef KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2
#define KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 168
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define VW_MAX_AS 16			/* as_ids the table keeps (the kernel has 1 or 2) */
#define VW_IDS (1 << 16)
#define VW_GFN_4G (1ULL << 20)		/* gfn of 4 GiB */
#define VW_APIC_GFN 0xfee00ULL
#define VW_MAX_BITS (1ULL << 27)	/* the protocol's bitmap limit (spec/25) */

struct vw_region {
	u64 base_gfn;
	u64 npages;		/* 0: no slot */
	u64 uaddr;
	u32 flags;
};

/* The driver's table of live user slots: successful sets, per as_id and id. */
static struct vw_region *vw_regions[VW_MAX_AS];

struct vw_vcpu {
	int fd;
	struct kvm_run *run;
	size_t run_size;
	bool in_smm;
};

static struct vw_vcpu vw_cpu = { .fd = -1 };
static unsigned char *vw_code;		/* the code page (host memory of the temporary slot) */
static bool vw_write_ok;		/* hello's probe: write works in every address space */
static bool vw_manual_ok;		/* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 */
static char vw_probe_why[512];

/* Host pages this driver mapped for guest writes (open addressing, 0 = empty). */
static u64 *vw_pages;
static size_t vw_pages_cap, vw_pages_n;

static const unsigned char vw_guest[] = { 0xc6, 0x00, 0x01, 0xf4, 0xeb, 0xfd };
/* 64-bit: invlpg [rax]; mov byte [rax], 1; hlt; jmp hlt, at VW_LONG_RIP of the code page. */
static const unsigned char vw_guest64[] = { 0x0f, 0x01, 0x38, 0xc6, 0x00, 0x01, 0xf4, 0xeb, 0xfd };
#define VW_LONG_RIP 0x10
#define VW_LONG_VA 0x1000		/* the target page's linear address */
static char vw_long_why[256];		/* why gpas of 4 GiB and above cannot be written, "" if they can */
static unsigned vw_phys_bits;		/* the vCPU's MAXPHYADDR (CPUID 0x80000008) */

/* Called by do_set_region after a successful KVM_SET_USER_MEMORY_REGION. */
static void vw_note_region(u32 slot, u32 flags, u64 gpa, u64 size, u64 uaddr)
{
	u32 as = slot >> 16, id = slot & 0xffff;

	if (as >= VW_MAX_AS)
		return;
	if (!vw_regions[as]) {
		if (!size)
			return;
		vw_regions[as] = calloc(VW_IDS, sizeof(struct vw_region));
		if (!vw_regions[as]) {
			fprintf(stderr, "kvm-sut: out of memory for the write table\n");
			return;
		}
	}
	vw_regions[as][id] = (struct vw_region){
		.base_gfn = gpa >> PAGE_SHIFT,
		.npages = size >> PAGE_SHIFT,
		.uaddr = uaddr,
		.flags = flags,
	};
}

static void vw_vcpu_close(struct vw_vcpu *c)
{
	if (c->run)
		munmap(c->run, c->run_size);
	if (c->fd >= 0)
		close(c->fd);
	*c = (struct vw_vcpu){ .fd = -1 };
}

/* Called by do_reset: the VM (and its vCPU) is about to go. */
static void vw_reset(void)
{
	dr_reset();
	vw_vcpu_close(&vw_cpu);
	for (int as = 0; as < VW_MAX_AS; as++) {
		free(vw_regions[as]);
		vw_regions[as] = NULL;
	}
}

static bool vw_code_page(char *err, size_t errlen)
{
	if (vw_code)
		return true;
	vw_code = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (vw_code == MAP_FAILED) {
		vw_code = NULL;
		snprintf(err, errlen, "cannot map the guest code page: %s", strerror(errno));
		return false;
	}
	return true;
}

/*
 * Gives the vCPU the CPUID KVM supports (long mode needs X86_FEATURE_LM in it): only the
 * writes at 4 GiB and above need it, so a failure only records why in vw_long_why.
 */
static void vw_set_cpuid(struct vw_vcpu *c)
{
	const int max = 256;
	struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + max * sizeof(struct kvm_cpuid_entry2));

	vw_phys_bits = 36;	/* KVM's default without CPUID 0x80000008 */
	if (!cpuid) {
		snprintf(vw_long_why, sizeof(vw_long_why), "out of memory for CPUID");
		return;
	}
	cpuid->nent = max;
	if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid)) {
		snprintf(vw_long_why, sizeof(vw_long_why), "KVM_GET_SUPPORTED_CPUID failed: %s", strerror(errno));
	} else if (ioctl(c->fd, KVM_SET_CPUID2, cpuid)) {
		snprintf(vw_long_why, sizeof(vw_long_why), "KVM_SET_CPUID2 failed: %s", strerror(errno));
	} else {
		for (u32 i = 0; i < cpuid->nent; i++)
			if (cpuid->entries[i].function == 0x80000008)
				vw_phys_bits = cpuid->entries[i].eax & 0xff;
	}
	free(cpuid);
}

static bool vw_vcpu_open(int vm, struct vw_vcpu *c, char *err, size_t errlen)
{
	int size;

	if (c->fd >= 0)
		return true;
	c->fd = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (c->fd < 0) {
		snprintf(err, errlen, "KVM_CREATE_VCPU failed: %s", strerror(errno));
		return false;
	}
	size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size <= 0) {
		snprintf(err, errlen, "KVM_GET_VCPU_MMAP_SIZE failed: %s", strerror(errno));
		vw_vcpu_close(c);
		return false;
	}
	c->run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
	if (c->run == MAP_FAILED) {
		c->run = NULL;
		snprintf(err, errlen, "cannot map kvm_run: %s", strerror(errno));
		vw_vcpu_close(c);
		return false;
	}
	c->run_size = (size_t)size;
	vw_set_cpuid(c);
	return true;
}

static const char *vw_exit_name(u32 r)
{
	switch (r) {
	case KVM_EXIT_UNKNOWN: return "KVM_EXIT_UNKNOWN";
	case KVM_EXIT_EXCEPTION: return "KVM_EXIT_EXCEPTION";
	case KVM_EXIT_IO: return "KVM_EXIT_IO";
	case KVM_EXIT_HLT: return "KVM_EXIT_HLT";
	case KVM_EXIT_MMIO: return "KVM_EXIT_MMIO";
	case KVM_EXIT_SHUTDOWN: return "KVM_EXIT_SHUTDOWN";
	case KVM_EXIT_FAIL_ENTRY: return "KVM_EXIT_FAIL_ENTRY";
	case KVM_EXIT_INTR: return "KVM_EXIT_INTR";
	case KVM_EXIT_INTERNAL_ERROR: return "KVM_EXIT_INTERNAL_ERROR";
	case KVM_EXIT_SYSTEM_EVENT: return "KVM_EXIT_SYSTEM_EVENT";
	case DR_KVM_EXIT_DIRTY_RING_FULL: return "KVM_EXIT_DIRTY_RING_FULL";
	}
	return "an unnamed exit";
}

static void vw_segment(struct kvm_segment *s, uint16_t selector, uint8_t type)
{
	*s = (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = selector, .type = type,
		.present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
	};
}

/*
 * Runs the guest once on vCPU c: code at code_gpa, the byte at gpa, in address space as
 * (1: SMM). *mmio tells whether a write exited as MMIO, *ring_full whether the run stopped
 * with KVM_EXIT_DIRTY_RING_FULL (dirty-ring.inc.c; not entered again). Returns false with err
 * on any failure or an unexpected exit.
 */
static bool vw_exec(struct vw_vcpu *c, u32 as, u64 code_gpa, u64 gpa, bool *mmio,
		    bool *ring_full, char *err, size_t errlen)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = { 0 };
	bool want_smm = as == 1;

	*mmio = false;
	*ring_full = false;
	if (c->in_smm != want_smm) {
		struct kvm_vcpu_events ev;

		if (ioctl(c->fd, KVM_GET_VCPU_EVENTS, &ev)) {
			snprintf(err, errlen, "KVM_GET_VCPU_EVENTS failed: %s", strerror(errno));
			return false;
		}
		ev.flags = KVM_VCPUEVENT_VALID_SMM;
		ev.smi.smm = want_smm;
		ev.smi.pending = 0;
		ev.smi.smm_inside_nmi = 0;
		ev.smi.latched_init = 0;
		if (ioctl(c->fd, KVM_SET_VCPU_EVENTS, &ev)) {
			snprintf(err, errlen, "KVM_SET_VCPU_EVENTS (smm %d, for as_id %u) failed: %s",
				 want_smm, as, strerror(errno));
			return false;
		}
		c->in_smm = want_smm;
	}
	if (ioctl(c->fd, KVM_GET_SREGS, &sregs)) {
		snprintf(err, errlen, "KVM_GET_SREGS failed: %s", strerror(errno));
		return false;
	}
	vw_segment(&sregs.cs, 0x08, 11);	/* execute/read, accessed */
	vw_segment(&sregs.ds, 0x10, 3);		/* read/write, accessed */
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	regs.rflags = 0x2;
	if (gpa < (VW_GFN_4G << PAGE_SHIFT)) {
		/* Flat 32-bit protected mode without paging: EIP and EAX are physical. */
		memset(vw_code, 0, PAGE_SIZE);
		memcpy(vw_code, vw_guest, sizeof(vw_guest));
		sregs.cr0 = 0x11;		/* PE | ET, no paging */
		sregs.cr4 = 0;
		sregs.efer = 0;
		regs.rip = code_gpa;
		regs.rax = gpa;
	} else {
		/*
		 * 64-bit mode, 4-level paging, one page: the code page is its own PML4, PDPT,
		 * PD and page table (entry 0 points to the page itself, so linear 0 maps the
		 * code page) and entry 1 of the table maps linear VW_LONG_VA to the target page.
		 */
		u64 *pte = (u64 *)vw_code;

		if (vw_long_why[0]) {
			snprintf(err, errlen, "write of gpa 0x%" PRIx64 " (4 GiB or above) needs long mode: %s",
				 gpa, vw_long_why);
			return false;
		}
		if (vw_phys_bits < 64 && gpa >> vw_phys_bits) {
			snprintf(err, errlen, "write of gpa 0x%" PRIx64 ": beyond the vCPU's %u physical "
				 "address bits (CPUID 0x80000008)", gpa, vw_phys_bits);
			return false;
		}
		memset(vw_code, 0, PAGE_SIZE);
		pte[0] = code_gpa | 0x3;			/* present, writable */
		pte[1] = (gpa & ~(PAGE_SIZE - 1)) | 0x3;
		memcpy(vw_code + VW_LONG_RIP, vw_guest64, sizeof(vw_guest64));
		sregs.cs.l = 1;
		sregs.cs.db = 0;
		sregs.cr0 = 0x80000011;		/* PG | ET | PE */
		sregs.cr3 = code_gpa;
		sregs.cr4 = 0x20;		/* PAE */
		sregs.efer = 0x500;		/* LMA | LME */
		regs.rip = VW_LONG_RIP;
		regs.rax = VW_LONG_VA + (gpa & (PAGE_SIZE - 1));
	}
	if (ioctl(c->fd, KVM_SET_SREGS, &sregs)) {
		snprintf(err, errlen, "KVM_SET_SREGS failed: %s", strerror(errno));
		return false;
	}
	if (ioctl(c->fd, KVM_SET_REGS, &regs)) {
		snprintf(err, errlen, "KVM_SET_REGS failed: %s", strerror(errno));
		return false;
	}
	for (int runs = 0; runs < 16; runs++) {
		struct kvm_run *r = c->run;

		if (ioctl(c->fd, KVM_RUN, 0)) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			snprintf(err, errlen, "KVM_RUN (write of gpa 0x%" PRIx64 ", as_id %u) failed: %s",
				 gpa, as, strerror(errno));
			return false;
		}
		switch (r->exit_reason) {
		case KVM_EXIT_HLT:
			return true;
		case DR_KVM_EXIT_DIRTY_RING_FULL:
			*ring_full = true;
			return true;	/* stop here: the caller answers "dirty_ring_full" */
		case KVM_EXIT_MMIO:
			if (!r->mmio.is_write) {
				snprintf(err, errlen, "KVM_EXIT_MMIO read at 0x%" PRIx64
					 " (the guest code page is not guest memory?)",
					 (u64)r->mmio.phys_addr);
				return false;
			}
			*mmio = true;
			continue;	/* the next KVM_RUN completes the write, then HLT */
		case KVM_EXIT_FAIL_ENTRY:
			snprintf(err, errlen, "write of gpa 0x%" PRIx64 ": KVM_EXIT_FAIL_ENTRY "
				 "(hardware_entry_failure_reason 0x%llx)", gpa,
				 (unsigned long long)r->fail_entry.hardware_entry_failure_reason);
			return false;
		case KVM_EXIT_INTERNAL_ERROR:
			snprintf(err, errlen, "write of gpa 0x%" PRIx64
				 ": KVM_EXIT_INTERNAL_ERROR (suberror %u)", gpa, r->internal.suberror);
			return false;
		default:
			snprintf(err, errlen, "write of gpa 0x%" PRIx64 ", as_id %u: exit reason %u (%s)",
				 gpa, as, r->exit_reason, vw_exit_name(r->exit_reason));
			return false;
		}
	}
	snprintf(err, errlen, "write of gpa 0x%" PRIx64 ": no KVM_EXIT_HLT after 16 runs", gpa);
	return false;
}

/* ---- host pages of the slots ---- */

static bool vw_page_known(u64 hva)
{
	if (!vw_pages_cap)
		return false;
	for (size_t i = (hva >> PAGE_SHIFT) * 0x9e3779b97f4a7c15ULL % vw_pages_cap;; i = (i + 1) % vw_pages_cap) {
		if (vw_pages[i] == hva)
			return true;
		if (!vw_pages[i])
			return false;
	}
}

static bool vw_page_add(u64 hva)
{
	if ((vw_pages_n + 1) * 2 > vw_pages_cap) {
		size_t cap = vw_pages_cap ? vw_pages_cap * 2 : 1024;
		u64 *old = vw_pages, *n = calloc(cap, sizeof(u64));
		size_t old_cap = vw_pages_cap;

		if (!n)
			return false;
		vw_pages = n;
		vw_pages_cap = cap;
		vw_pages_n = 0;
		for (size_t i = 0; i < old_cap; i++)
			if (old[i])
				vw_page_add(old[i]);
		free(old);
	}
	for (size_t i = (hva >> PAGE_SHIFT) * 0x9e3779b97f4a7c15ULL % vw_pages_cap;; i = (i + 1) % vw_pages_cap) {
		if (!vw_pages[i]) {
			vw_pages[i] = hva;
			vw_pages_n++;
			return true;
		}
	}
}

/* Makes the host page at hva (page-aligned) memory; false with err if it cannot. */
static bool vw_map_page(u64 hva, char *err, size_t errlen)
{
	void *p;

	if (vw_page_known(hva))
		return true;
	p = mmap((void *)(uintptr_t)hva, PAGE_SIZE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == MAP_FAILED) {
		snprintf(err, errlen, "cannot map the slot's host page 0x%" PRIx64 " for the write: %s%s",
			 hva, strerror(errno),
			 errno == EEXIST ? " (the address is taken in the driver's process)" : "");
		return false;
	}
	if ((u64)(uintptr_t)p != hva) {	/* a kernel without MAP_FIXED_NOREPLACE took it as a hint */
		munmap(p, PAGE_SIZE);
		snprintf(err, errlen, "cannot map the slot's host page 0x%" PRIx64 " for the write "
			 "(the address is taken)", hva);
		return false;
	}
	if (!vw_page_add(hva)) {
		snprintf(err, errlen, "out of memory for the page table of the driver");
		return false;
	}
	return true;
}

/* ---- the temporary code slot ---- */

struct vw_span {
	u64 start, end;
};

static int vw_span_cmp(const void *a, const void *b)
{
	const struct vw_span *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/*
 * A free user id and a free gfn below 4 GiB in address space as, away from target_gfn.
 * Returns false with err when there is none.
 */
static bool vw_free_place(u32 as, u64 target_gfn, u32 *id_out, u64 *gfn_out, char *err, size_t errlen)
{
	struct vw_region *t = vw_regions[as];
	struct vw_span *spans;
	size_t n = 0;
	u64 cand = 0x10;
	int limit = profile.user_mem_slots > 0 && profile.user_mem_slots <= VW_IDS ? profile.user_mem_slots : 0;
	int id = -1;

	for (int i = limit - 1; i >= 0; i--) {
		if (!t || !t[i].npages) {
			id = i;
			break;
		}
	}
	if (id < 0) {
		snprintf(err, errlen, "write: no free slot id in address space %u for the guest's code page", as);
		return false;
	}
	spans = malloc((VW_IDS + 2) * sizeof(*spans));
	if (!spans) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	spans[n++] = (struct vw_span){ target_gfn, target_gfn + 1 };
	spans[n++] = (struct vw_span){ VW_APIC_GFN, VW_APIC_GFN + 1 };
	for (int i = 0; t && i < VW_IDS; i++)
		if (t[i].npages && t[i].base_gfn < VW_GFN_4G)
			spans[n++] = (struct vw_span){ t[i].base_gfn, t[i].base_gfn + t[i].npages };
	qsort(spans, n, sizeof(*spans), vw_span_cmp);
	for (size_t i = 0; i < n && cand < VW_GFN_4G; i++) {
		if (spans[i].start > cand)
			break;
		if (spans[i].end > cand)
			cand = spans[i].end;
	}
	free(spans);
	if (cand >= VW_GFN_4G) {
		snprintf(err, errlen, "write: no free guest page below 4 GiB in address space %u for the guest's code", as);
		return false;
	}
	*id_out = (u32)id;
	*gfn_out = cand;
	return true;
}

static const struct vw_region *vw_find(u32 as, u64 gfn)
{
	struct vw_region *t = vw_regions[as];

	for (int i = 0; t && i < VW_IDS; i++)
		if (t[i].npages && gfn >= t[i].base_gfn && gfn - t[i].base_gfn < t[i].npages)
			return &t[i];
	return NULL;
}

/* The write itself on the request VM; answers. */
static void do_write(const struct request *req)
{
	char err[512];
	u32 as, id, code_slot;
	u64 gpa, code_gfn;
	const struct vw_region *target;
	bool mmio, ring_full, ok;
	int r;

	if (!get_u32(req, "as_id", &as, err, sizeof(err)) ||
	    !get_u64(req, "gpa", &gpa, err, sizeof(err))) {
		answer_error(err);
		return;
	}
	if (!vw_write_ok) {
		answer_errorf("write is not supported here: %s", vw_probe_why);
		return;
	}
	if ((int)as >= profile.address_spaces || as >= VW_MAX_AS) {
		answer_errorf("write: as_id %u is not an address space of this kernel (%d)", as,
			      profile.address_spaces);
		return;
	}
	if (!ensure_vm())
		return;
	if (!vw_code_page(err, sizeof(err)) || !vw_vcpu_open(vm_fd, &vw_cpu, err, sizeof(err)) ||
	    !dr_attach(vw_cpu.fd, err, sizeof(err))) {
		answer_error(err);
		return;
	}
	target = vw_find(as, gpa >> PAGE_SHIFT);
	if (target) {
		u64 hva = target->uaddr + (((gpa >> PAGE_SHIFT) - target->base_gfn) << PAGE_SHIFT);

		if (!vw_map_page(hva, err, sizeof(err))) {
			answer_error(err);
			return;
		}
	}
	if (!vw_free_place(as, gpa >> PAGE_SHIFT, &id, &code_gfn, err, sizeof(err))) {
		answer_error(err);
		return;
	}
	code_slot = as << 16 | id;
	r = set_region(vm_fd, code_slot, 0, code_gfn << PAGE_SHIFT, PAGE_SIZE, (u64)(uintptr_t)vw_code);
	if (r) {
		answer_errorf("write: the temporary code slot %#x at gfn 0x%" PRIx64 " was refused: %s",
			      code_slot, code_gfn, strerror(r));
		return;
	}
	ok = vw_exec(&vw_cpu, as, code_gfn << PAGE_SHIFT, gpa, &mmio, &ring_full, err, sizeof(err));
	r = set_region(vm_fd, code_slot, 0, code_gfn << PAGE_SHIFT, 0, (u64)(uintptr_t)vw_code);
	if (r) {
		answer_errorf("write: deleting the temporary code slot %#x failed: %s", code_slot, strerror(r));
		return;
	}
	if (!ok) {
		answer_error(err);
		return;
	}
	fputs(ring_full ? "{\"exit\":\"dirty_ring_full\"}" : mmio ? "{\"exit\":\"mmio\"}" : "{\"ret\":0}", stdout);
	end_answer();
}

/* ---- the probe (at hello, on a scratch VM) ---- */

static bool vw_probe_as(int vm, struct vw_vcpu *c, u32 as, unsigned char *data)
{
	struct kvm_dirty_log log = { 0 };
	u64 bits[1] = { 0 };
	const u64 code_gpa = 0x10000, data_gpa = 0x20000, high_gpa = 1ULL << 32;
	bool mmio, ring_full;
	char err[256];
	int r;

	if ((r = set_region(vm, as << 16 | 0, 0, code_gpa, PAGE_SIZE, (u64)(uintptr_t)vw_code)) ||
	    (r = set_region(vm, as << 16 | 1, KVM_MEM_LOG_DIRTY_PAGES, data_gpa, PAGE_SIZE,
			    (u64)(uintptr_t)data))) {
		snprintf(vw_probe_why, sizeof(vw_probe_why), "probe: a slot in address space %u was refused: %s",
			 as, strerror(r));
		return false;
	}
	if (!vw_exec(c, as, code_gpa, data_gpa + 0x10, &mmio, &ring_full, err, sizeof(err))) {
		snprintf(vw_probe_why, sizeof(vw_probe_why), "probe, address space %u: %s", as, err);
		return false;
	}
	if (mmio || data[0x10] != 1) {
		snprintf(vw_probe_why, sizeof(vw_probe_why),
			 "probe, address space %u: the write %s", as,
			 mmio ? "exited as MMIO" : "did not reach the slot's host page");
		return false;
	}
	log.slot = as << 16 | 1;
	log.dirty_bitmap = bits;
	errno = 0;
	if (ioctl(vm, KVM_GET_DIRTY_LOG, &log) || bits[0] != 1) {
		snprintf(vw_probe_why, sizeof(vw_probe_why),
			 "probe, address space %u: KVM_GET_DIRTY_LOG %s (bitmap 0x%" PRIx64 ")", as,
			 errno ? strerror(errno) : "succeeded", bits[0]);
		return false;
	}
	/* At 4 GiB (long mode): a failure here only keeps those gpas out (vw_long_why). */
	if (vw_long_why[0])
		return true;
	if ((r = set_region(vm, as << 16 | 2, KVM_MEM_LOG_DIRTY_PAGES, high_gpa, PAGE_SIZE,
			    (u64)(uintptr_t)data))) {
		snprintf(vw_long_why, sizeof(vw_long_why), "probe: a slot at 4 GiB in address space %u was refused: %s",
			 as, strerror(r));
		return true;
	}
	if (!vw_exec(c, as, code_gpa, high_gpa + 0x20, &mmio, &ring_full, err, sizeof(err))) {
		snprintf(vw_long_why, sizeof(vw_long_why), "probe at 4 GiB, address space %u: %.200s", as, err);
		return true;
	}
	bits[0] = 0;
	log.slot = as << 16 | 2;
	errno = 0;
	if (mmio || data[0x20] != 1 || ioctl(vm, KVM_GET_DIRTY_LOG, &log) || bits[0] != 1)
		snprintf(vw_long_why, sizeof(vw_long_why),
			 "probe at 4 GiB, address space %u: the write %s", as,
			 mmio ? "exited as MMIO" : data[0x20] != 1 ? "did not land" : "set no dirty bit");
	return true;
}

/* Called once by do_hello after the probes: sets vw_write_ok and vw_manual_ok. */
static void vw_probe(void)
{
	static bool done;
	struct vw_vcpu c = { .fd = -1 };
	unsigned char *data[2] = { NULL, NULL };
	char err[256];
	int vm;

	if (done)
		return;
	done = true;
	vw_manual_ok = check_extension(kvm_fd, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) > 0;
	vw_write_ok = false;
	if (!vw_code_page(err, sizeof(err))) {
		snprintf(vw_probe_why, sizeof(vw_probe_why), "%s", err);
		return;
	}
	vm = create_vm();
	if (vm < 0) {
		snprintf(vw_probe_why, sizeof(vw_probe_why), "probe: KVM_CREATE_VM failed: %s", strerror(errno));
		return;
	}
	if (!vw_vcpu_open(vm, &c, err, sizeof(err))) {
		snprintf(vw_probe_why, sizeof(vw_probe_why), "probe: %s", err);
		close(vm);
		return;
	}
	vw_write_ok = true;
	for (int as = 0; as < profile.address_spaces && as < 2 && vw_write_ok; as++) {
		data[as] = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (data[as] == MAP_FAILED) {
			data[as] = NULL;
			snprintf(vw_probe_why, sizeof(vw_probe_why), "probe: mmap: %s", strerror(errno));
			vw_write_ok = false;
			break;
		}
		vw_write_ok = vw_probe_as(vm, &c, (u32)as, data[as]);
	}
	if (profile.address_spaces > 2) {
		snprintf(vw_probe_why, sizeof(vw_probe_why), "%d address spaces: only 1 (SMM) is known",
			 profile.address_spaces);
		vw_write_ok = false;
	}
	vw_vcpu_close(&c);
	close(vm);
	for (int as = 0; as < 2; as++)
		if (data[as])
			munmap(data[as], PAGE_SIZE);
	if (!vw_write_ok)
		fprintf(stderr, "kvm-sut: write is not listed: %s\n", vw_probe_why);
	else if (vw_long_why[0])
		fprintf(stderr, "kvm-sut: writes at 4 GiB and above will answer an error: %s\n", vw_long_why);
}

/* The ops after the four of protocol v1, for hello (each with a leading comma). */
static void vw_put_ops(void)
{
	if (vw_write_ok)
		fputs(",\"write\"", stdout);
	if (vw_manual_ok)
		fputs(",\"clear_dirty_log\",\"enable_cap\"", stdout);
	if (vw_write_ok && vw_manual_ok && profile.dirty_ring_max_bytes > 0)
		fputs(",\"harvest_dirty_ring\",\"reset_dirty_rings\"", stdout);
}

/* ---- get_dirty_log's answer, clear_dirty_log, enable_cap ---- */

/* Answers a KVM_GET_DIRTY_LOG: err, or success with the bitmap (buf, the slot's npages). */
static void vw_answer_dirty_log(int err, const void *buf, u64 npages)
{
	const unsigned char *b = buf;
	u64 len = (npages + 63) / 64 * 8, last = 0;
	static const char digits[] = "0123456789abcdef";

	if (err) {
		answer_ioctl(err);
		return;
	}
	for (u64 i = len; i > 0; i--) {
		if (b[i - 1]) {
			last = i;
			break;
		}
	}
	if (last > VW_MAX_BITS / 8) {
		answer_errorf("get_dirty_log: a bit at or beyond 2^27 is set (byte 0x%" PRIx64
			      "); the protocol carries at most 2^27 bits", last - 1);
		return;
	}
	fputs("{\"ret\":0,\"bitmap\":\"", stdout);
	for (u64 i = 0; i < last; i++) {
		putchar(digits[b[i] >> 4]);
		putchar(digits[b[i] & 15]);
	}
	fputs("\"}", stdout);
	end_answer();
}

static void do_clear_dirty_log(const struct request *req)
{
	struct kvm_clear_dirty_log clr = { 0 };
	const struct field *f = find_field(req, "bitmap");
	static u64 empty[1];
	char err[256];
	u32 slot, num_pages;
	u64 first_page, len;
	size_t hexlen;
	unsigned char *buf;
	bool mapped = false;
	int r;

	if (!get_u32(req, "slot", &slot, err, sizeof(err)) ||
	    !get_u64(req, "first_page", &first_page, err, sizeof(err)) ||
	    !get_u32(req, "num_pages", &num_pages, err, sizeof(err))) {
		answer_error(err);
		return;
	}
	if (!f || f->type != V_STRING) {
		answer_error(f ? "field \"bitmap\" must be a string (hex bytes)" : "missing field \"bitmap\"");
		return;
	}
	hexlen = strlen(f->text);
	len = ((u64)num_pages + 63) / 64 * 8;
	if (hexlen % 2 || hexlen / 2 > len) {
		answer_errorf("field \"bitmap\" must be an even number of hex digits, at most %" PRIu64
			      " bytes for num_pages %u", len, num_pages);
		return;
	}
	for (size_t i = 0; i < hexlen; i++) {
		if (hex_digit(f->text[i]) < 0) {
			answer_error("field \"bitmap\" must be hex digits");
			return;
		}
	}
	if (!ensure_vm())
		return;
	if (len == 0) {
		buf = (unsigned char *)empty;
	} else if (len <= (1 << 20)) {
		buf = calloc(1, (size_t)len);
	} else {
		buf = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		mapped = true;
		if (buf == MAP_FAILED)
			buf = NULL;
	}
	if (!buf) {
		answer_errorf("cannot allocate a %" PRIu64 "-byte bitmap buffer: %s", len, strerror(errno));
		return;
	}
	for (size_t i = 0; i < hexlen / 2; i++)
		buf[i] = (unsigned char)(hex_digit(f->text[2 * i]) << 4 | hex_digit(f->text[2 * i + 1]));
	clr.slot = slot;
	clr.first_page = first_page;
	clr.num_pages = num_pages;
	clr.dirty_bitmap = buf;
	r = ioctl(vm_fd, KVM_CLEAR_DIRTY_LOG, &clr) ? errno : 0;
	if (mapped)
		munmap(buf, (size_t)len);
	else if (len)
		free(buf);
	answer_ioctl(r);
}

static void do_enable_cap(const struct request *req)
{
	struct kvm_enable_cap cap = { 0 };
	const struct field *f = find_field(req, "cap");
	char err[256];
	u64 args0;
	u32 flags;
	bool ring = false;
	int r;

	if (!f || f->type != V_STRING) {
		answer_error(f ? "field \"cap\" must be a string" : "missing field \"cap\"");
		return;
	}
	if (!strcmp(f->text, "MANUAL_DIRTY_LOG_PROTECT2")) {
		cap.cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2;
	} else if (!strcmp(f->text, "DIRTY_LOG_RING")) {
		cap.cap = MS_KVM_CAP_DIRTY_LOG_RING;
		ring = true;
	} else if (!strcmp(f->text, "DIRTY_LOG_RING_ACQ_REL")) {
		cap.cap = MS_KVM_CAP_DIRTY_LOG_RING_ACQ_REL;
		ring = true;
	} else {
		answer_errorf("enable_cap: only MANUAL_DIRTY_LOG_PROTECT2, DIRTY_LOG_RING and "
			      "DIRTY_LOG_RING_ACQ_REL are known, not \"%.64s\"", f->text);
		return;
	}
	if (!get_u64(req, "args0", &args0, err, sizeof(err)) ||
	    !get_u32(req, "flags", &flags, err, sizeof(err))) {
		answer_error(err);
		return;
	}
	if (!ensure_vm())
		return;
	cap.flags = flags;
	cap.args[0] = args0;
	r = ioctl(vm_fd, KVM_ENABLE_CAP, &cap) ? errno : 0;
	if (!r && ring)
		dr_enabled(args0);
	answer_ioctl(r);
}

/* The ops of this file for handle_line: true if op was one of them (and answered). */
static bool vw_dispatch(const char *op, const struct request *req)
{
	if (!strcmp(op, "write"))
		do_write(req);
	else if (!strcmp(op, "clear_dirty_log"))
		do_clear_dirty_log(req);
	else if (!strcmp(op, "enable_cap"))
		do_enable_cap(req);
	else
		return false;
	return true;
}
