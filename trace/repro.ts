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
  /** For get_dirty_log: the slot's page count in the model (to size the bitmap), else 0. */
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
    if (t.request.op === 'get_dirty_log') {
      const r = t.request;
      if (r.slot >>> 16 < vm.profile.addressSpaces) npages = model.findSlot(vm, r.slot >>> 16, r.slot & 0xffff)?.npages ?? 0n;
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

/** A standalone C program that replays the kernel-facing steps against /dev/kvm. */
export function reproC(steps: readonly ReproStep[], source: string): string {
  const rows: string[] = [];
  let maxPages = 64n;
  let skipped = 0;
  for (const s of steps) {
    const want = s.expect.kind === 'errno' ? s.expect.errno : s.expect.kind === 'ret' || s.expect.kind === 'ok' ? '0' : null;
    const comment = `/* ${String(s.n).padStart(3)}: trace line ${s.line}${s.rule === null ? '' : `, ${s.rule}`} */`;
    const row = match(s.request)
      .with({ op: 'reset' }, () => `{ OP_RESET, ${s.line}, 0, 0, 0, 0, 0, 0, "0" },`)
      .with(
        { op: 'set_user_memory_region' },
        ({ region: m }) =>
          `{ OP_SET, ${s.line}, ${h(BigInt(m.slot))}, ${h(BigInt(m.flags))}, ${h(m.guestPhysAddr)}ULL, ${h(m.memorySize)}ULL, ${h(m.userspaceAddr)}ULL, ${want === '0' ? '0' : want}, "${want}" },`,
      )
      .with({ op: 'get_dirty_log' }, ({ slot }) => {
        if (s.npages > maxPages) maxPages = s.npages;
        return `{ OP_DIRTY_LOG, ${s.line}, ${h(BigInt(slot))}, 0, 0, 0, 0, ${want === '0' ? '0' : want}, "${want}" },`;
      })
      .otherwise(() => null);
    if (row === null || want === null) {
      skipped++;
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
#include <unistd.h>
#include <linux/kvm.h>

${errnoDefs}

#define KSFT_SKIP 4

enum op { OP_RESET, OP_SET, OP_DIRTY_LOG };

struct step {
\tenum op op;
\tint line;		/* line of the trace */
\tuint32_t slot, flags;
\tuint64_t guest_phys_addr, memory_size, userspace_addr;
\tint want;		/* 0 for success, else the errno expected */
\tconst char *want_name;
};

static const struct step steps[] = {
${rows.join('\n')}
};

static int create_vm(int kvm)
{
\tint vm = ioctl(kvm, KVM_CREATE_VM, 0);

\tif (vm < 0) {
\t\tperror("KVM_CREATE_VM");
\t\texit(KSFT_SKIP);
\t}
\treturn vm;
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
\tint kvm, vm;

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
\tvm = create_vm(kvm);

\tfor (size_t i = 0; i < nsteps; i++) {
\t\tconst struct step *s = &steps[i];
\t\tint r = 0, err = 0;

\t\tif (s->op == OP_RESET) {
\t\t\tclose(vm);
\t\t\tvm = create_vm(kvm);
\t\t\tcontinue;
\t\t}
\t\tif (s->op == OP_SET) {
\t\t\tstruct kvm_userspace_memory_region region = {
\t\t\t\t.slot = s->slot,
\t\t\t\t.flags = s->flags,
\t\t\t\t.guest_phys_addr = s->guest_phys_addr,
\t\t\t\t.memory_size = s->memory_size,
\t\t\t\t.userspace_addr = s->userspace_addr,
\t\t\t};
\t\t\tr = ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region);
\t\t} else {
\t\t\tstruct kvm_dirty_log log = { .slot = s->slot, .dirty_bitmap = bitmap };
\t\t\tr = ioctl(vm, KVM_GET_DIRTY_LOG, &log);
\t\t}
\t\terr = r < 0 ? errno : 0;
\t\tif (err != s->want) {
\t\t\tif (s->op == OP_SET)
\t\t\t\tprintf("step %zu (trace line %d) diverged: KVM_SET_USER_MEMORY_REGION(slot=0x%x, flags=0x%x, guest_phys_addr=0x%llx, memory_size=0x%llx, userspace_addr=0x%llx)",
\t\t\t\t       i + 1, s->line, s->slot, s->flags, (unsigned long long)s->guest_phys_addr,
\t\t\t\t       (unsigned long long)s->memory_size, (unsigned long long)s->userspace_addr);
\t\t\telse
\t\t\t\tprintf("step %zu (trace line %d) diverged: KVM_GET_DIRTY_LOG(slot=0x%x)", i + 1, s->line, s->slot);
\t\t\tprintf(" returned %s, expected %s\\n", err ? errno_name(err) : "0", s->want_name);
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
