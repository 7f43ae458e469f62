// SPDX-License-Identifier: MIT
/*
 * dirty-ring.inc.c - KVM dirty rings for kvm-sut.c (spec/80 "Optional: dirty bits"). #included
 * by kvm-sut.c before vcpu-write.inc.c, after its KVM helpers (vm_fd, ensure_vm, answer_*).
 *
 *   {"op":"enable_cap","cap":"DIRTY_LOG_RING","args0":"0x1000","flags":0}
 *   {"op":"enable_cap","cap":"DIRTY_LOG_RING_ACQ_REL","args0":"0x1000","flags":0}
 *                                          -> {"ret":0} | {"errno":..}
 *   {"op":"harvest_dirty_ring"}            -> {"entries":[{"slot":N,"offset":"0x.."},..]}
 *   {"op":"reset_dirty_rings"}             -> {"ret":N} | {"errno":..}
 *   {"op":"write",..}                      -> also {"exit":"dirty_ring_full"}
 *
 * enable_cap (vcpu-write.inc.c's do_enable_cap) passes args0 and flags to KVM_ENABLE_CAP on the
 * VM as they are, with cap KVM_CAP_DIRTY_LOG_RING (192) or KVM_CAP_DIRTY_LOG_RING_ACQ_REL
 * (223); nothing is checked here (the kernel takes args[0] as a u32 size and ignores flags).
 * A success remembers the size, (u32)args0, for this VM: the vCPU that the first write
 * creates (vcpu-write.inc.c) then maps its ring right after KVM_CREATE_VCPU, the vcpu fd at
 * offset KVM_DIRTY_LOG_PAGE_OFFSET (64) pages, size bytes, MAP_SHARED, read and write: an
 * array of size / 16 struct kvm_dirty_gfn {u32 flags; u32 slot; u64 offset;}. A reset (a
 * new VM) forgets the size, the mapping and the fetch index.
 *
 * harvest_dirty_ring reads vCPU 0's ring from the driver's fetch index (0 for a new vCPU),
 * entry fetch % entries, as long as the entry's flags (an acquire load) have
 * KVM_DIRTY_GFN_F_DIRTY (bit 0), at most one lap: it takes slot and offset, sets the flags to
 * KVM_DIRTY_GFN_F_RESET (bit 1) with a release store, advances the fetch index, and answers
 * the entries in ring order, slot a number (as_id << 16 | id) and offset a u64 hex string.
 * Without a vCPU or without a ring: {"entries":[]}.
 *
 * reset_dirty_rings is KVM_RESET_DIRTY_RINGS (_IO(KVMIO, 0xc7)) on the VM: {"ret":N} with its
 * non-negative return (the entries the kernel reset), else its errno (EINVAL without a ring;
 * on a kernel without the ioctl, 5.10, whatever it answers). Nothing of the driver changes.
 * The driver dispatches harvest_dirty_ring and reset_dirty_rings on every kernel; hello lists
 * them only where KVM_CAP_DIRTY_LOG_RING is offered (dirty_ring_max_bytes > 0) and write is
 * listed.
 *
 * write: when KVM_RUN returns with KVM_EXIT_DIRTY_RING_FULL (31) the run stops there (no
 * further KVM_RUN), the temporary code slot is deleted as after any run, and the answer is
 * {"exit":"dirty_ring_full"}. In the kernel a push that makes the ring's used count
 * (dirty_index - reset_index) reach soft_limit = entries - (64 + cpu_dirty_log_size) raises
 * KVM_REQ_DIRTY_RING_SOFT_FULL, so the vCPU exits before the faulting write is executed
 * again (the byte does not land, its entry is in the ring); a write while the ring is soft
 * full exits before the guest runs (no entry).
 *
 * hello's profile says "dirty_ring_rsvd_entries" (64 + cpu_dirty_log_size, the entries
 * soft_limit keeps free) and "write_drops_mappings" (true: every write deletes its temporary
 * code slot, and on x86 a slot DELETE zaps every mapping of the VM, KVM_X86_QUIRK_SLOT_ZAP_ALL
 * being on by default; so the next write into a logged page faults and pushes again, a page
 * written twice gives two entries). kvm-sut.c probes the first (run_gmem_probes).
 */

#define DR_KVM_EXIT_DIRTY_RING_FULL	31
#define DR_KVM_DIRTY_LOG_PAGE_OFFSET	64
#define DR_KVM_RESET_DIRTY_RINGS	_IO(KVMIO, 0xc7)
#define DR_F_DIRTY			(1U << 0)
#define DR_F_RESET			(1U << 1)

struct dr_gfn {
	u32 flags;
	u32 slot;
	u64 offset;
};

_Static_assert(sizeof(struct dr_gfn) == 16, "kvm_dirty_gfn is 16 bytes");

/* The ring size the request VM was enabled with (bytes), 0 if none. */
static u32 dr_vm_bytes;

/* vCPU 0's ring, once the vCPU exists; the driver's fetch index. */
static struct {
	struct dr_gfn *gfns;
	u32 bytes;
	u32 fetch;
} dr_ring;

/* Called by do_enable_cap after a successful enable of either ring capability. */
static void dr_enabled(u64 args0)
{
	dr_vm_bytes = (u32)args0;
}

/* Maps the ring of the request VM's new vCPU (vcpu_fd), if the VM has one. */
static bool dr_attach(int vcpu_fd, char *err, size_t errlen)
{
	void *p;

	if (!dr_vm_bytes || dr_ring.gfns)
		return true;
	p = mmap(NULL, dr_vm_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_fd,
		 (off_t)(DR_KVM_DIRTY_LOG_PAGE_OFFSET * PAGE_SIZE));
	if (p == MAP_FAILED) {
		snprintf(err, errlen, "cannot map the vCPU's dirty ring (%u bytes at page %d of the vcpu fd): %s",
			 dr_vm_bytes, DR_KVM_DIRTY_LOG_PAGE_OFFSET, strerror(errno));
		return false;
	}
	dr_ring.gfns = p;
	dr_ring.bytes = dr_vm_bytes;
	dr_ring.fetch = 0;
	return true;
}

/* Called by vw_reset: the VM and its vCPU go. */
static void dr_reset(void)
{
	if (dr_ring.gfns)
		munmap(dr_ring.gfns, dr_ring.bytes);
	dr_ring.gfns = NULL;
	dr_ring.bytes = dr_ring.fetch = 0;
	dr_vm_bytes = 0;
}

static void do_harvest_dirty_ring(void)
{
	u32 n = dr_ring.bytes / sizeof(struct dr_gfn);
	bool first = true;

	fputs("{\"entries\":[", stdout);
	for (u32 i = 0; dr_ring.gfns && n && i < n; i++) {
		struct dr_gfn *e = &dr_ring.gfns[dr_ring.fetch % n];
		u32 slot;
		u64 offset;

		if (!(__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) & DR_F_DIRTY))
			break;
		slot = e->slot;
		offset = e->offset;
		__atomic_store_n(&e->flags, DR_F_RESET, __ATOMIC_RELEASE);
		dr_ring.fetch++;
		printf("%s{\"slot\":%" PRIu32 ",\"offset\":\"0x%" PRIx64 "\"}", first ? "" : ",", slot, offset);
		first = false;
	}
	fputs("]}", stdout);
	end_answer();
}

static void do_reset_dirty_rings(void)
{
	int r;

	if (!ensure_vm())
		return;
	r = ioctl(vm_fd, DR_KVM_RESET_DIRTY_RINGS, 0);
	if (r < 0) {
		answer_ioctl(errno);
		return;
	}
	printf("{\"ret\":%d}", r);
	end_answer();
}

/* The ops of this file for handle_line: true if op was one of them (and answered). */
static bool dr_dispatch(const char *op)
{
	if (!strcmp(op, "harvest_dirty_ring"))
		do_harvest_dirty_ring();
	else if (!strcmp(op, "reset_dirty_rings"))
		do_reset_dirty_rings();
	else
		return false;
	return true;
}
