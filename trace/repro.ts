/**
 * Reproducers: a trace turned into something a maintainer can run without this project: a C program in the style of the kernel's KVM
 * selftests, a vitest file for a TypeScript implementation, or a readable list.
 *
 * The expected answer of each step is the trace's `expect` where it has one (a counterexample
 * trace carries the model's answers there), else the model's own answer.
 */
import { match } from 'ts-pattern';
import * as model from '../model/index.js';
import { ERRNO_ALIASES, ERRNO_NUMBERS } from '../model/errno.js';
import { RULES, type RuleId } from '../spec/rules.js';
import { modelStep, requestDefect } from './execute.js';
import { InputError, answerText, readTrace, requestText, type Answer, type Request } from './trace.js';

export interface ReproStep {
  readonly n: number;
  readonly line: number;
  readonly request: Request;
  readonly expect: Answer;
  /** The rule that decided the model's answer, when the spec decides it. */
  readonly rule: RuleId | null;
  /** For get_dirty_log and clear_dirty_log: the slot's page count in the model (to size the bitmap), else 0. */
  readonly npages: bigint;
}

/** Reads a trace and pairs every request with its expected answer. */
export async function reproSteps(
  lines: AsyncIterable<string> | Iterable<string>,
  profile: model.Profile,
  source: string,
): Promise<{ profile: model.Profile; steps: ReproStep[] }> {
  let vm = model.createVm(profile);
  let first: model.Profile | null = null;
  const steps: ReproStep[] = [];
  for await (const t of readTrace(lines, source)) {
    if (t.kind === 'profile') {
      if (steps.length === 0 && first === null) first = t.profile;
      vm = model.createVm(t.profile);
      steps.push({ n: steps.length + 1, line: t.line, request: { op: 'reset' }, expect: { kind: 'ok' }, rule: null, npages: 0n });
      continue;
    }
    const defect = requestDefect(vm, t.request);
    if (defect !== null) throw new InputError(t.line, defect.field, defect.message, source);
    let npages = 0n;
    if (t.request.op === 'get_dirty_log' || t.request.op === 'clear_dirty_log') {
      const slot = t.request.op === 'get_dirty_log' ? t.request.slot : t.request.clear.slot;
      if (slot >>> 16 < vm.profile.addressSpaces) npages = model.findSlot(vm, slot >>> 16, slot & 0xffff)?.npages ?? 0n;
    }
    const m = modelStep(vm, t.request);
    vm = m.state;
    steps.push({ n: steps.length + 1, line: t.line, request: t.request, expect: t.expect ?? m.answer, rule: m.rule, npages });
  }
  return { profile: first ?? profile, steps };
}

const h = (v: bigint): string => `0x${v.toString(16)}`;

/** A kernel-style one-line rendering of a request. */
export function callText(r: Request): string {
  return match(r)
    .with({ op: 'reset' }, ({ vmType }) => (vmType === undefined ? 'KVM_CREATE_VM (fresh VM)' : `KVM_CREATE_VM(type=${vmType}) (fresh VM)`))
    .with(
      { op: 'set_user_memory_region2' },
      ({ region: m }) =>
        `KVM_SET_USER_MEMORY_REGION2(slot=${h(BigInt(m.slot))} /*as ${m.slot >>> 16} id ${m.slot & 0xffff}*/, flags=${h(BigInt(m.flags))}, guest_phys_addr=${h(m.guestPhysAddr)}, memory_size=${h(m.memorySize)}, userspace_addr=${h(m.userspaceAddr)}, guest_memfd_offset=${h(m.guestMemfdOffset)}, guest_memfd=${typeof m.guestMemfd === 'number' ? `gmem#${m.guestMemfd}` : m.guestMemfd})`,
    )
    .with({ op: 'create_guest_memfd' }, ({ size, flags }) => `KVM_CREATE_GUEST_MEMFD(size=${h(size)}, flags=${h(flags)})`)
    .with(
      { op: 'set_memory_attributes' },
      (x) => `KVM_SET_MEMORY_ATTRIBUTES(address=${h(x.address)}, size=${h(x.size)}, attributes=${h(x.attributes)}, flags=${h(x.flags)})`,
    )
    .with({ op: 'check_extension' }, ({ cap, fd }) => `KVM_CHECK_EXTENSION(KVM_CAP_${cap}) on ${fd === 'vm' ? 'the VM fd' : '/dev/kvm'}`)
    .with(
      { op: 'clear_dirty_log' },
      ({ clear: c }) =>
        `KVM_CLEAR_DIRTY_LOG(slot=${h(BigInt(c.slot))}, first_page=${h(c.firstPage)}, num_pages=${c.numPages}, bitmap=${c.bitmap === '' ? '0' : c.bitmap})`,
    )
    .with({ op: 'enable_cap' }, ({ cap, args0, flags }) => `KVM_ENABLE_CAP(KVM_CAP_${cap}, args[0]=${h(args0)}, flags=${h(BigInt(flags))})`)
    .with({ op: 'write' }, ({ asId, gpa }) => `guest write of one byte at gpa ${h(gpa)} (vCPU in address space ${asId})`)
    .with({ op: 'harvest_dirty_ring' }, () => "harvest of vCPU 0's dirty ring (entries flagged KVM_DIRTY_GFN_F_RESET)")
    .with({ op: 'reset_dirty_rings' }, () => 'KVM_RESET_DIRTY_RINGS')
    .with(
      { op: 'set_user_memory_region' },
      ({ region: m }) =>
        `KVM_SET_USER_MEMORY_REGION(slot=${h(BigInt(m.slot))} /*as ${m.slot >>> 16} id ${m.slot & 0xffff}*/, flags=${h(BigInt(m.flags))}, guest_phys_addr=${h(m.guestPhysAddr)}, memory_size=${h(m.memorySize)}, userspace_addr=${h(m.userspaceAddr)})`,
    )
    .with({ op: 'get_dirty_log' }, ({ slot }) => `KVM_GET_DIRTY_LOG(slot=${h(BigInt(slot))})`)
    .with({ op: 'set_internal_memslot' }, (x) => `__x86_set_memory_region(id=${x.id}, gpa=${h(x.guestPhysAddr)}, size=${h(x.memorySize)})`)
    .with({ op: 'get_slots' }, ({ asId }) => `memslots of address space ${asId}`)
    .with({ op: 'get_generation' }, ({ asId }) => `generation of address space ${asId}`)
    .with({ op: 'gfn_to_memslot' }, ({ asId, gfn }) => `gfn_to_memslot(as ${asId}, gfn ${h(gfn)})`)
    .with({ op: 'hva_to_memslots' }, ({ start, end }) => `hva range [${h(start)}, ${h(end)})`)
    .exhaustive();
}

function answerShort(a: Answer): string {
  return match(a)
    .with({ kind: 'ret' }, () => '0')
    .with({ kind: 'ok' }, () => 'ok')
    .with({ kind: 'errno' }, ({ errno }) => errno)
    .otherwise((x) => answerText(x));
}

export function reproText(steps: readonly ReproStep[]): string {
  return steps
    .map((s) => {
      const why = s.rule === null ? '' : `   [${s.rule}] ${RULES[s.rule]}`;
      return `${String(s.n).padStart(3)}. ${callText(s.request)}\n     -> ${answerShort(s.expect)}${why}`;
    })
    .join('\n');
}

/** A C string literal of `text`. */
function cString(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** The C `fd_kind` and handle of a v2 request's `guest_memfd`. */
function fdFields(ref: model.GmemRef): string {
  if (typeof ref === 'number') return `.fd_kind = FD_HANDLE, .handle = ${ref}`;
  return `.fd_kind = ${ref === 'other_vm' ? 'FD_OTHER_VM' : ref === 'memfd' ? 'FD_MEMFD' : 'FD_CLOSED'}`;
}

/** Definitions a host's <linux/kvm.h> older than 6.8 lacks, each guarded (uapi linux/kvm.h of 7.3). */
const V2_DEFINITIONS = `#ifndef KVM_SET_USER_MEMORY_REGION2
struct kvm_userspace_memory_region2 {
\t__u32 slot;
\t__u32 flags;
\t__u64 guest_phys_addr;
\t__u64 memory_size;
\t__u64 userspace_addr;
\t__u64 guest_memfd_offset;
\t__u32 guest_memfd;
\t__u32 pad1;
\t__u64 pad2[14];
};
#define KVM_SET_USER_MEMORY_REGION2 _IOW(KVMIO, 0x49, struct kvm_userspace_memory_region2)
#endif
#ifndef KVM_CREATE_GUEST_MEMFD
struct kvm_create_guest_memfd {
\t__u64 size;
\t__u64 flags;
\t__u64 reserved[6];
};
#define KVM_CREATE_GUEST_MEMFD _IOWR(KVMIO, 0xd4, struct kvm_create_guest_memfd)
#endif
#ifndef KVM_SET_MEMORY_ATTRIBUTES
struct kvm_memory_attributes {
\t__u64 address;
\t__u64 size;
\t__u64 attributes;
\t__u64 flags;
};
#define KVM_SET_MEMORY_ATTRIBUTES _IOW(KVMIO, 0xd2, struct kvm_memory_attributes)
#endif
#ifndef KVM_MEM_GUEST_MEMFD
#define KVM_MEM_GUEST_MEMFD (1UL << 2)
#endif
#ifndef KVM_CLEAR_DIRTY_LOG
struct kvm_clear_dirty_log {
\t__u32 slot;
\t__u32 num_pages;
\t__u64 first_page;
\tunion {
\t\tvoid *dirty_bitmap;
\t\t__u64 padding2;
\t};
};
#define KVM_CLEAR_DIRTY_LOG _IOWR(KVMIO, 0xc0, struct kvm_clear_dirty_log)
#endif
#ifndef KVM_RESET_DIRTY_RINGS
#define KVM_RESET_DIRTY_RINGS _IO(KVMIO, 0xc7)
#endif
${Object.entries(model.CAPS)
  .map(([name, n]) => `#ifndef KVM_CAP_${name}\n#define KVM_CAP_${name} ${n}\n#endif`)
  .join('\n')}`;

/** A standalone C program that replays the kernel-facing steps against /dev/kvm. */
export function reproC(steps: readonly ReproStep[], source: string): string {
  const rows: string[] = [];
  let maxPages = 64n;
  let maxHandles = 1;
  // Whether the current VM has had a write (its vCPU exists) or a harvest: the pushes they make
  // do not happen here, so a later KVM_RESET_DIRTY_RINGS is checked for success only.
  let vcpu = false;
  let pushed = false;
  for (const s of steps) {
    if (s.request.op === 'reset' && (s.request.vmType === undefined || s.expect.kind !== 'errno')) vcpu = pushed = false;
    if (s.request.op === 'write' || s.request.op === 'harvest_dirty_ring') pushed = true;
    if (s.request.op === 'write' && !vcpu) {
      // The VM's first write creates vCPU 0 (its ring too): MS-RNG-06 then refuses a ring.
      vcpu = true;
      const call = cString(`KVM_CREATE_VCPU(0) for the VM's first write (${callText(s.request)}; the write itself is not issued)`);
      rows.push(
        `\t/* ${String(s.n).padStart(3)}: trace line ${s.line}, vCPU 0 */ { .op = OP_VCPU, .line = ${s.line}, .want = 0, .want_name = "0", .call = ${call} },`,
      );
      continue;
    }
    const want =
      s.expect.kind === 'errno'
        ? s.expect.errno
        : s.expect.kind === 'ret' || s.expect.kind === 'ok'
          ? '0'
          : s.expect.kind === 'value'
            ? String(s.expect.value)
            : s.expect.kind === 'count'
              ? String(s.expect.count)
              : null;
    const comment = `/* ${String(s.n).padStart(3)}: trace line ${s.line}${s.rule === null ? '' : `, ${s.rule}`} */`;
    const w = want === null ? '' : `.want = ${want}, .want_name = "${want}", `;
    const call = `.call = ${cString(callText(s.request))}`;
    const row = match(s.request)
      .with({ op: 'reset' }, ({ vmType }) =>
        vmType === undefined
          ? `{ .op = OP_RESET, .line = ${s.line}, ${w}${call} },`
          : `{ .op = OP_RESET, .line = ${s.line}, .typed = 1, .vm_type = ${vmType}, ${w}${call} },`,
      )
      .with(
        { op: 'set_user_memory_region' },
        ({ region: m }) =>
          `{ .op = OP_SET, .line = ${s.line}, .slot = ${h(BigInt(m.slot))}, .flags = ${h(BigInt(m.flags))}, .a = ${h(m.guestPhysAddr)}ULL, .b = ${h(m.memorySize)}ULL, .c = ${h(m.userspaceAddr)}ULL, ${w}${call} },`,
      )
      .with({ op: 'set_user_memory_region2' }, ({ region: m }) => {
        if (typeof m.guestMemfd === 'number' && m.guestMemfd + 1 > maxHandles) maxHandles = m.guestMemfd + 1;
        return `{ .op = OP_SET2, .line = ${s.line}, .slot = ${h(BigInt(m.slot))}, .flags = ${h(BigInt(m.flags))}, .a = ${h(m.guestPhysAddr)}ULL, .b = ${h(m.memorySize)}ULL, .c = ${h(m.userspaceAddr)}ULL, .d = ${h(m.guestMemfdOffset)}ULL, ${fdFields(m.guestMemfd)}, ${w}${call} },`;
      })
      .with({ op: 'get_dirty_log' }, ({ slot }) => {
        if (s.npages > maxPages) maxPages = s.npages;
        return `{ .op = OP_DIRTY_LOG, .line = ${s.line}, .slot = ${h(BigInt(slot))}, ${w}${call} },`;
      })
      .with({ op: 'create_guest_memfd' }, ({ size, flags }) => {
        maxHandles++;
        return `{ .op = OP_CREATE_GMEM, .line = ${s.line}, .a = ${h(size)}ULL, .b = ${h(flags)}ULL, ${w}${call} },`;
      })
      .with(
        { op: 'set_memory_attributes' },
        (x) =>
          `{ .op = OP_ATTRS, .line = ${s.line}, .a = ${h(x.address)}ULL, .b = ${h(x.size)}ULL, .c = ${h(x.attributes)}ULL, .d = ${h(x.flags)}ULL, ${w}${call} },`,
      )
      .with(
        { op: 'check_extension' },
        ({ cap, fd }) => `{ .op = OP_CAP, .line = ${s.line}, .cap = KVM_CAP_${cap}, .on_vm = ${fd === 'vm' ? 1 : 0}, ${w}${call} },`,
      )
      .with(
        { op: 'enable_cap' },
        ({ cap, args0, flags }) =>
          `{ .op = OP_ENABLE_CAP, .line = ${s.line}, .cap = KVM_CAP_${cap}, .flags = ${h(BigInt(flags))}, .a = ${h(args0)}ULL, ${w}${call} },`,
      )
      .with({ op: 'clear_dirty_log' }, ({ clear: c }) => {
        if (s.npages > maxPages) maxPages = s.npages;
        return `{ .op = OP_CLEAR_LOG, .line = ${s.line}, .slot = ${h(BigInt(c.slot))}, .a = ${h(c.firstPage)}ULL, .b = ${c.numPages}ULL, .bits = ${cString(c.bitmap)}, ${w}${call} },`;
      })
      .with(
        { op: 'reset_dirty_rings' },
        () =>
          `{ .op = OP_RESET_RINGS, .line = ${s.line}, ${s.expect.kind !== 'count' ? '' : pushed ? '.is_count = 1, .any_count = 1, ' : '.is_count = 1, '}${w}${call} },`,
      )
      .otherwise(() => null);
    if (row === null || want === null) {
      rows.push(`\t/* ${String(s.n).padStart(3)}: trace line ${s.line}: ${requestText(s.request).replace(/\*\//g, '* /')} (no ioctl; skipped) */`);
      continue;
    }
    rows.push(`\t${comment} ${row}`);
  }
  const bitmapBytes = ((maxPages + 63n) / 64n) * 8n;
  // The errnos the steps expect, each defined in case the C library lacks the name.
  const errnos = [...new Set(steps.flatMap((s) => (s.expect.kind === 'errno' ? [s.expect.errno] : [])))].sort();
  const errnoDefs = errnos.map((name) => `#ifndef ${name}\n#define ${name} ${ERRNO_NUMBERS[name]}\n#endif`).join('\n');
  return `// SPDX-License-Identifier: MIT
/*
 * Reproducer generated by memslot-oracle from ${source.replace(/\*\//g, '* /')}.
 * Each step issues one ioctl and checks its result against the expected answer
 * (the memslot-oracle model's, per the rule named in the comment).
 *
 * Guest writes and harvests of the dirty ring are not issued: the reproducer runs no vCPU.
 * A VM's first write becomes KVM_CREATE_VCPU(0), as the protocol's write creates vCPU 0 (so a
 * later ring enable fails as MS-RNG-06 says); a KVM_RESET_DIRTY_RINGS after a write or a
 * harvest is checked for success only, its count depending on pushes that do not happen here.
 *
 * Build and run (as a user who can open /dev/kvm):
 *   cc -O2 -Wall -o repro repro.c && ./repro
 * Exit status: 0 every step as expected, 1 a step diverged, 4 skipped (no /dev/kvm).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/kvm.h>

${V2_DEFINITIONS}

${errnoDefs}

#define KSFT_SKIP 4
#define MAX_HANDLES ${maxHandles}

enum op { OP_RESET, OP_SET, OP_SET2, OP_DIRTY_LOG, OP_CREATE_GMEM, OP_ATTRS, OP_CAP, OP_ENABLE_CAP, OP_CLEAR_LOG, OP_RESET_RINGS, OP_VCPU };
/* What KVM_SET_USER_MEMORY_REGION2 passes as guest_memfd (memslot-oracle spec/80). */
enum fd_kind { FD_NONE, FD_HANDLE, FD_OTHER_VM, FD_MEMFD, FD_CLOSED };

struct step {
\tenum op op;
\tint line;		/* line of the trace */
\tuint32_t slot, flags;
\t/* OP_SET/OP_SET2: guest_phys_addr, memory_size, userspace_addr, guest_memfd_offset;
\t * OP_CREATE_GMEM: size, flags; OP_ATTRS: address, size, attributes, flags;
\t * OP_ENABLE_CAP: args[0]; OP_CLEAR_LOG: first_page, num_pages */
\tuint64_t a, b, c, d;
\tconst char *bits;	/* OP_CLEAR_LOG: the bitmap's bytes in hex, first byte first */
\tint is_count;		/* OP_RESET_RINGS: want is the count returned, not an errno */
\tint any_count;		/* OP_RESET_RINGS: success is enough (the pushes were not made here) */
\tenum fd_kind fd_kind;
\tint handle;		/* FD_HANDLE: the guest_memfd created n-th since the last reset */
\tint typed;		/* OP_RESET: KVM_CREATE_VM with vm_type */
\tuint32_t vm_type;
\tlong cap;
\tint on_vm;		/* OP_CAP: the VM fd, else /dev/kvm */
\tlong want;		/* 0 for success (OP_CAP: the value; OP_RESET_RINGS: the count), else the errno expected */
\tconst char *want_name;
\tconst char *call;
};

static const struct step steps[] = {
${rows.join('\n')}
};

static int kvm, vm = -1, vcpu = -1;
static uint32_t vm_type;
static int gmem[MAX_HANDLES], ngmem;
static int other_vm = -1, other_gmem = -1, memfd = -1;

static void drop_vm(void)
{
\tfor (int i = 0; i < ngmem; i++)
\t\tclose(gmem[i]);
\tngmem = 0;
\tif (other_gmem >= 0)
\t\tclose(other_gmem);
\tif (other_vm >= 0)
\t\tclose(other_vm);
\tother_gmem = other_vm = -1;
\tif (vcpu >= 0)
\t\tclose(vcpu);
\tvcpu = -1;
\tif (vm >= 0)
\t\tclose(vm);
}

/* The hex bytes of bits into buf (at most len bytes). */
static void hex_bytes(const char *bits, unsigned char *buf, size_t len)
{
\tfor (size_t i = 0; bits[2 * i] && bits[2 * i + 1] && i < len; i++) {
\t\tchar byte[3] = { bits[2 * i], bits[2 * i + 1], 0 };

\t\tbuf[i] = (unsigned char)strtoul(byte, NULL, 16);
\t}
}

static int create_gmem(int on, uint64_t size, uint64_t flags)
{
\tstruct kvm_create_guest_memfd gm = { .size = size, .flags = flags };

\treturn ioctl(on, KVM_CREATE_GUEST_MEMFD, &gm);
}

/* The fd a v2 step passes as guest_memfd. */
static uint32_t gmem_fd(const struct step *s)
{
\tswitch (s->fd_kind) {
\tcase FD_HANDLE:
\t\tif (s->handle >= ngmem) {
\t\t\tprintf("trace line %d: guest_memfd handle %d was never created\\n", s->line, s->handle);
\t\t\texit(1);
\t\t}
\t\treturn gmem[s->handle];
\tcase FD_OTHER_VM:
\t\tif (other_gmem < 0) {
\t\t\tother_vm = ioctl(kvm, KVM_CREATE_VM, vm_type);
\t\t\tother_gmem = other_vm < 0 ? -1 : create_gmem(other_vm, 0x200000, 0);
\t\t\tif (other_gmem < 0) {
\t\t\t\tperror("a second VM's guest_memfd");
\t\t\t\texit(KSFT_SKIP);
\t\t\t}
\t\t}
\t\treturn other_gmem;
\tcase FD_MEMFD:
\t\tif (memfd < 0)
\t\t\tmemfd = syscall(SYS_memfd_create, "memslot-oracle", 0);
\t\tif (memfd < 0) {
\t\t\tperror("memfd_create");
\t\t\texit(KSFT_SKIP);
\t\t}
\t\treturn memfd;
\tcase FD_CLOSED:
\t\tfor (int fd = 1023; fd > 2; fd--)
\t\t\tif (fcntl(fd, F_GETFD) < 0 && errno == EBADF)
\t\t\t\treturn fd;
\t\treturn 1023;
\tdefault:
\t\treturn 0xffffffffu;
\t}
}

static const char *errno_name(int e)
{
\tswitch (e) {
${errnos
  .filter((n) => !ERRNO_ALIASES.has(n))
  .map((n) => `\tcase ${n}: return "${n}";`)
  .join('\n')}
\tdefault: return strerror(e);
\t}
}

int main(void)
{
\tsize_t nsteps = sizeof(steps) / sizeof(steps[0]);
\tsize_t bitmap_bytes = ${bitmapBytes}UL;
\tvoid *bitmap;

\tkvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
\tif (kvm < 0) {
\t\tperror("open /dev/kvm");
\t\treturn KSFT_SKIP;
\t}
\tbitmap = mmap(NULL, bitmap_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
\tif (bitmap == MAP_FAILED) {
\t\tperror("mmap");
\t\treturn KSFT_SKIP;
\t}
\tvm = ioctl(kvm, KVM_CREATE_VM, 0);
\tif (vm < 0) {
\t\tperror("KVM_CREATE_VM");
\t\treturn KSFT_SKIP;
\t}

\tfor (size_t i = 0; i < nsteps; i++) {
\t\tconst struct step *s = &steps[i];
\t\tlong r = 0;
\t\tint err = 0;

\t\tswitch (s->op) {
\t\tcase OP_RESET: {
\t\t\tuint32_t type = s->typed ? s->vm_type : 0;
\t\t\tint fresh = ioctl(kvm, KVM_CREATE_VM, type);

\t\t\tif (fresh < 0 && !s->typed) {
\t\t\t\tperror("KVM_CREATE_VM");
\t\t\t\treturn KSFT_SKIP;
\t\t\t}
\t\t\t/* A refused type keeps the previous VM (spec/80). */
\t\t\tif (fresh >= 0) {
\t\t\t\tdrop_vm();
\t\t\t\tvm = fresh;
\t\t\t\tvm_type = type;
\t\t\t}
\t\t\tr = fresh;
\t\t\tbreak;
\t\t}
\t\tcase OP_SET: {
\t\t\tstruct kvm_userspace_memory_region region = {
\t\t\t\t.slot = s->slot, .flags = s->flags, .guest_phys_addr = s->a, .memory_size = s->b, .userspace_addr = s->c,
\t\t\t};
\t\t\tr = ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region);
\t\t\tbreak;
\t\t}
\t\tcase OP_SET2: {
\t\t\tstruct kvm_userspace_memory_region2 region = {
\t\t\t\t.slot = s->slot, .flags = s->flags, .guest_phys_addr = s->a, .memory_size = s->b, .userspace_addr = s->c,
\t\t\t\t.guest_memfd_offset = s->d, .guest_memfd = gmem_fd(s),
\t\t\t};
\t\t\tr = ioctl(vm, KVM_SET_USER_MEMORY_REGION2, &region);
\t\t\tbreak;
\t\t}
\t\tcase OP_DIRTY_LOG: {
\t\t\tstruct kvm_dirty_log log = { .slot = s->slot, .dirty_bitmap = bitmap };
\t\t\tr = ioctl(vm, KVM_GET_DIRTY_LOG, &log);
\t\t\tbreak;
\t\t}
\t\tcase OP_CREATE_GMEM:
\t\t\tr = create_gmem(vm, s->a, s->b);
\t\t\tif (r >= 0 && ngmem < MAX_HANDLES)
\t\t\t\tgmem[ngmem++] = r;
\t\t\tbreak;
\t\tcase OP_ATTRS: {
\t\t\tstruct kvm_memory_attributes attrs = { .address = s->a, .size = s->b, .attributes = s->c, .flags = s->d };
\t\t\tr = ioctl(vm, KVM_SET_MEMORY_ATTRIBUTES, &attrs);
\t\t\tbreak;
\t\t}
\t\tcase OP_ENABLE_CAP: {
\t\t\tstruct kvm_enable_cap cap = { .cap = s->cap, .flags = s->flags, .args = { s->a } };

\t\t\tr = ioctl(vm, KVM_ENABLE_CAP, &cap);
\t\t\tbreak;
\t\t}
\t\tcase OP_CLEAR_LOG: {
\t\t\tstruct kvm_clear_dirty_log log = { .slot = s->slot, .num_pages = (uint32_t)s->b, .first_page = s->a, .dirty_bitmap = bitmap };

\t\t\tmemset(bitmap, 0, strlen(s->bits) / 2 < bitmap_bytes ? strlen(s->bits) / 2 : bitmap_bytes);
\t\t\thex_bytes(s->bits, bitmap, bitmap_bytes);
\t\t\tr = ioctl(vm, KVM_CLEAR_DIRTY_LOG, &log);
\t\t\tbreak;
\t\t}
\t\tcase OP_VCPU:
\t\t\tr = vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
\t\t\tbreak;
\t\tcase OP_RESET_RINGS:
\t\t\tr = ioctl(vm, KVM_RESET_DIRTY_RINGS, 0);
\t\t\tif (r >= 0 && s->is_count && !s->any_count && r != s->want) {
\t\t\t\tprintf("step %zu (trace line %d) diverged: %s returned %ld, expected %s\\n", i + 1, s->line, s->call, r, s->want_name);
\t\t\t\treturn 1;
\t\t\t}
\t\t\tbreak;
\t\tcase OP_CAP:
\t\t\tr = ioctl(s->on_vm ? vm : kvm, KVM_CHECK_EXTENSION, s->cap);
\t\t\tif (r >= 0 && r != s->want) {
\t\t\t\tprintf("step %zu (trace line %d) diverged: %s returned %ld, expected %s\\n", i + 1, s->line, s->call, r, s->want_name);
\t\t\t\treturn 1;
\t\t\t}
\t\t\tbreak;
\t\t}
\t\terr = r < 0 ? errno : 0;
\t\tif (s->op == OP_CAP || s->is_count ? err != 0 : err != s->want) {
\t\t\tprintf("step %zu (trace line %d) diverged: %s returned %s, expected %s\\n", i + 1, s->line, s->call, err ? errno_name(err) : "0", s->want_name);
\t\t\treturn 1;
\t\t}
\t}
\tprintf("%zu steps, all as expected\\n", nsteps);
\treturn 0;
}
`;
}

/** A vitest file that replays the steps against a TypeScript implementation behind the library API. */
export function reproVitest(steps: readonly ReproStep[], profile: model.Profile, source: string): string {
  const lines = steps.map((s) => `  [${s.line}, ${JSON.stringify(requestText(s.request))}, ${JSON.stringify(answerText(s.expect))}],`);
  return `// Generated by memslot-oracle from ${source}: each step's expected answer is the model's.
// Replace \`createImpl\` with your implementation's factory (any MemslotImpl).
import { describe, expect, it } from 'vitest';
import { createScalableImpl, implStep, answerText, parseTraceLine, profileFromJson, type Request } from 'memslot-oracle';

const profileResult = profileFromJson(${JSON.stringify(model.profileToJson(profile))}, ${JSON.stringify(profile.name)});
if (!profileResult.ok) throw new Error(profileResult.error);
const profile = profileResult.profile;
const createImpl = () => createScalableImpl(profile);

/** [trace line, request, expected answer] */
const steps: [number, string, string][] = [
${lines.join('\n')}
];

describe(${JSON.stringify(`reproducer from ${source}`)}, () => {
  it('answers every step as the model does', () => {
    const impl = createImpl();
    for (const [line, request, expected] of steps) {
      const parsed = parseTraceLine(request, line);
      if (parsed === null || parsed.kind !== 'request') throw new Error(\`bad step at line \${line}\`);
      const got = answerText(implStep(impl, parsed.request as Request));
      expect(got, \`trace line \${line}: \${request}\`).toBe(expected);
    }
  });
});
`;
}
