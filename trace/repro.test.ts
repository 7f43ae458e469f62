import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROFILES, SOURCE_PROFILES } from '../model/profiles.js';
import { kvmUsable } from '../sut/kvm-driver.js';
import { reproC, reproSteps, reproText } from './repro.js';

const TRACE = 'test/ground-truth/kernel-handpicked.jsonl';
const profile = PROFILES['x86_64-nosmm']!;
const lines = (text: string): string[] => text.split('\n');

describe('repro', () => {
  it('text format lists kernel-style calls with the deciding rule', async () => {
    const { steps } = await reproSteps(
      lines(
        [
          '{"op":"set_user_memory_region","slot":0,"flags":0,"guest_phys_addr":"0x0","memory_size":"0x2000","userspace_addr":"0x7f0000000000"}',
          '{"op":"set_user_memory_region","slot":1,"flags":0,"guest_phys_addr":"0x1000","memory_size":"0x1000","userspace_addr":"0x7f0000000000"}',
        ].join('\n'),
      ),
      profile,
      'inline',
    );
    const text = reproText(steps);
    expect(text).toContain('1. KVM_SET_USER_MEMORY_REGION(slot=0x0');
    expect(text).toContain('-> EEXIST   [MS-OVL-01]');
    expect(text).toContain('-> 0   [MS-CRT-02]');
  });

  // Every request of the 6.8+ memory API (spec/28, spec/80), under a profile that offers SW_PROTECTED VMs.
  const memoryApi = [
    '{"op":"check_extension","cap":"GUEST_MEMFD","fd":"system"}',
    '{"op":"reset","vm_type":7}',
    '{"op":"reset","vm_type":1}',
    '{"op":"check_extension","cap":"MULTI_ADDRESS_SPACE","fd":"vm"}',
    '{"op":"create_guest_memfd","size":"0x10000","flags":"0x2"}',
    '{"op":"create_guest_memfd","size":"0x10000","flags":"0x0"}',
    '{"op":"set_user_memory_region2","slot":0,"flags":4,"guest_phys_addr":"0x0","memory_size":"0x2000","userspace_addr":"0x7f0000000000","guest_memfd_offset":"0x0","guest_memfd":0}',
    '{"op":"set_user_memory_region2","slot":1,"flags":4,"guest_phys_addr":"0x10000","memory_size":"0x1000","userspace_addr":"0x7f0000000000","guest_memfd_offset":"0x1000","guest_memfd":0}',
    '{"op":"set_user_memory_region2","slot":2,"flags":4,"guest_phys_addr":"0x20000","memory_size":"0x1000","userspace_addr":"0x7f0000000000","guest_memfd_offset":"0x0","guest_memfd":"other_vm"}',
    '{"op":"set_user_memory_region2","slot":2,"flags":4,"guest_phys_addr":"0x20000","memory_size":"0x1000","userspace_addr":"0x7f0000000000","guest_memfd_offset":"0x0","guest_memfd":"memfd"}',
    '{"op":"set_user_memory_region2","slot":2,"flags":4,"guest_phys_addr":"0x20000","memory_size":"0x1000","userspace_addr":"0x7f0000000000","guest_memfd_offset":"0x0","guest_memfd":"closed"}',
    '{"op":"set_user_memory_region2","slot":3,"flags":0,"guest_phys_addr":"0x30000","memory_size":"0x1000","userspace_addr":"0x7f0000000000"}',
    '{"op":"set_memory_attributes","address":"0x0","size":"0x2000","attributes":"0x8","flags":"0x0"}',
    '{"op":"set_user_memory_region","slot":4,"flags":1,"guest_phys_addr":"0x40000","memory_size":"0x1000","userspace_addr":"0x7f0000000000"}',
    '{"op":"get_dirty_log","slot":4}',
    '{"op":"set_user_memory_region2","slot":0,"flags":4,"guest_phys_addr":"0x0","memory_size":"0x0","userspace_addr":"0x7f0000000000","guest_memfd_offset":"0x0","guest_memfd":0}',
  ].join('\n');
  const swProtected = SOURCE_PROFILES['linux-7.3-x86_64-sw-protected']!;

  it('a C reproducer of every memory API request: v2 struct, handle table, other_vm, memfd, closed fd, attributes, capabilities, typed KVM_CREATE_VM', async () => {
    const { steps } = await reproSteps(lines(memoryApi), swProtected, 'memory-api');
    const c = reproC(steps, 'memory-api');
    for (const needle of [
      'struct kvm_userspace_memory_region2 {',
      'KVM_SET_USER_MEMORY_REGION2 _IOW(KVMIO, 0x49, struct kvm_userspace_memory_region2)',
      'KVM_CREATE_GUEST_MEMFD _IOWR(KVMIO, 0xd4, struct kvm_create_guest_memfd)',
      'KVM_SET_MEMORY_ATTRIBUTES _IOW(KVMIO, 0xd2, struct kvm_memory_attributes)',
      '#ifndef KVM_CAP_GUEST_MEMFD_FLAGS\n#define KVM_CAP_GUEST_MEMFD_FLAGS 244',
      '.op = OP_RESET, .line = 2, .typed = 1, .vm_type = 7, .want = EINVAL',
      '.op = OP_RESET, .line = 3, .typed = 1, .vm_type = 1, .want = 0',
      '.op = OP_CAP, .line = 1, .cap = KVM_CAP_GUEST_MEMFD, .on_vm = 0, .want = 1,',
      '.op = OP_CAP, .line = 4, .cap = KVM_CAP_MULTI_ADDRESS_SPACE, .on_vm = 1, .want = 1,',
      '.op = OP_CREATE_GMEM, .line = 5, .a = 0x10000ULL, .b = 0x2ULL, .want = EINVAL',
      '.fd_kind = FD_HANDLE, .handle = 0, .want = 0,',
      '.fd_kind = FD_HANDLE, .handle = 0, .want = EEXIST,',
      '.fd_kind = FD_OTHER_VM, .want = EINVAL',
      '.fd_kind = FD_MEMFD, .want = EINVAL',
      '.fd_kind = FD_CLOSED, .want = EBADF',
      '.op = OP_ATTRS, .line = 13, .a = 0x0ULL, .b = 0x2000ULL, .c = 0x8ULL, .d = 0x0ULL, .want = 0',
    ]) {
      expect(c).toContain(needle);
    }
    expect(c).not.toContain('(no ioctl; skipped)');
  });

  const rings = [
    '{"op":"check_extension","cap":"DIRTY_LOG_RING","fd":"vm"}',
    '{"op":"enable_cap","cap":"DIRTY_LOG_RING","args0":"0x800","flags":0}',
    '{"op":"enable_cap","cap":"DIRTY_LOG_RING_ACQ_REL","args0":"0x1000","flags":1}',
    '{"op":"enable_cap","cap":"DIRTY_LOG_RING","args0":"0x1000","flags":0}',
    '{"op":"reset_dirty_rings"}',
    '{"op":"set_user_memory_region","slot":0,"flags":1,"guest_phys_addr":"0x0","memory_size":"0x4000","userspace_addr":"0x7f0000000000"}',
    '{"op":"get_dirty_log","slot":0}',
    '{"op":"clear_dirty_log","slot":0,"first_page":"0x0","num_pages":4,"bitmap":"0f"}',
    '{"op":"write","as_id":0,"gpa":"0x0"}',
    '{"op":"harvest_dirty_ring"}',
    '{"op":"reset_dirty_rings"}',
    '{"op":"reset"}',
    '{"op":"write","as_id":0,"gpa":"0x0"}',
    '{"op":"enable_cap","cap":"DIRTY_LOG_RING","args0":"0x1000","flags":0}',
    '{"op":"reset_dirty_rings"}',
    '{"op":"enable_cap","cap":"MANUAL_DIRTY_LOG_PROTECT2","args0":"0x1","flags":0}',
    '{"op":"set_user_memory_region","slot":1,"flags":1,"guest_phys_addr":"0x10000","memory_size":"0x40000","userspace_addr":"0x7f0000100000"}',
    '{"op":"clear_dirty_log","slot":1,"first_page":"0x0","num_pages":64,"bitmap":"ffffffffffffffff"}',
  ].join('\n');

  it('a C reproducer of the dirty-ring requests: KVM_ENABLE_CAP of all three caps, KVM_CLEAR_DIRTY_LOG, KVM_RESET_DIRTY_RINGS, KVM_CREATE_VCPU for a first write; writes and harvests not issued', async () => {
    const { steps } = await reproSteps(lines(rings), PROFILES['x86_64']!, 'rings');
    const c = reproC(steps, 'rings');
    for (const needle of [
      '#ifndef KVM_RESET_DIRTY_RINGS\n#define KVM_RESET_DIRTY_RINGS _IO(KVMIO, 0xc7)',
      '#define KVM_CLEAR_DIRTY_LOG _IOWR(KVMIO, 0xc0, struct kvm_clear_dirty_log)',
      '#ifndef KVM_CAP_DIRTY_LOG_RING_ACQ_REL\n#define KVM_CAP_DIRTY_LOG_RING_ACQ_REL 223',
      'Guest writes and harvests of the dirty ring are not issued: the reproducer runs no vCPU.',
      '.op = OP_ENABLE_CAP, .line = 2, .cap = KVM_CAP_DIRTY_LOG_RING, .flags = 0x0, .a = 0x800ULL, .want = EINVAL,',
      '.op = OP_ENABLE_CAP, .line = 3, .cap = KVM_CAP_DIRTY_LOG_RING_ACQ_REL, .flags = 0x1, .a = 0x1000ULL, .want = 0,',
      '.op = OP_ENABLE_CAP, .line = 16, .cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, .flags = 0x0, .a = 0x1ULL, .want = 0,',
      '.op = OP_RESET_RINGS, .line = 5, .is_count = 1, .want = 0,',
      '.op = OP_CLEAR_LOG, .line = 8, .slot = 0x0, .a = 0x0ULL, .b = 4ULL, .bits = "0f", .want = ENXIO,',
      '.op = OP_VCPU, .line = 9, .want = 0,',
      'trace line 10: {"op":"harvest_dirty_ring"} (no ioctl; skipped)',
      // After a write the kernel's count cannot be the model's: only success is checked.
      '.op = OP_RESET_RINGS, .line = 11, .is_count = 1, .any_count = 1, .want = 1,',
      '.op = OP_VCPU, .line = 13, .want = 0,',
      '.op = OP_ENABLE_CAP, .line = 14, .cap = KVM_CAP_DIRTY_LOG_RING, .flags = 0x0, .a = 0x1000ULL, .want = EINVAL,',
      '.op = OP_RESET_RINGS, .line = 15, .want = EINVAL,',
      '.op = OP_CLEAR_LOG, .line = 18, .slot = 0x1, .a = 0x0ULL, .b = 64ULL, .bits = "ffffffffffffffff", .want = 0,',
    ]) {
      expect(c).toContain(needle);
    }
    // One KVM_CREATE_VCPU per VM, at its first write.
    expect(c.match(/OP_VCPU, \.line/g)).toHaveLength(2);
  });

  const cc = spawnSync(process.env['CC'] ?? 'cc', ['--version']).status === 0;
  describe.skipIf(!cc)(`C reproducers compile${cc ? '' : ' (skipped: no C compiler)'}`, () => {
    // A <linux/kvm.h> that already has the 6.8+ definitions, as uapi has them: the generated guards must step aside.
    const newHeader = `#include_next <linux/kvm.h>
#ifndef KVM_SET_USER_MEMORY_REGION2
struct kvm_userspace_memory_region2 { __u32 slot; __u32 flags; __u64 guest_phys_addr; __u64 memory_size; __u64 userspace_addr;
\t__u64 guest_memfd_offset; __u32 guest_memfd; __u32 pad1; __u64 pad2[14]; };
#define KVM_SET_USER_MEMORY_REGION2 _IOW(KVMIO, 0x49, struct kvm_userspace_memory_region2)
#define KVM_MEM_GUEST_MEMFD (1UL << 2)
struct kvm_memory_attributes { __u64 address; __u64 size; __u64 attributes; __u64 flags; };
#define KVM_SET_MEMORY_ATTRIBUTES _IOW(KVMIO, 0xd2, struct kvm_memory_attributes)
struct kvm_create_guest_memfd { __u64 size; __u64 flags; __u64 reserved[6]; };
#define KVM_CREATE_GUEST_MEMFD _IOWR(KVMIO, 0xd4, struct kvm_create_guest_memfd)
#define KVM_CAP_USER_MEMORY2 231
#define KVM_CAP_MEMORY_ATTRIBUTES 233
#define KVM_CAP_GUEST_MEMFD 234
#define KVM_CAP_VM_TYPES 235
#endif
`;
    for (const header of ['the host', 'a 6.8+']) {
      it(`the memory API reproducer compiles with -Wall -Werror against ${header} <linux/kvm.h>${kvmUsable().ok ? '' : ', and without /dev/kvm exits 4 (skipped)'}`, async () => {
        const dir = mkdtempSync(join(tmpdir(), 'repro-api-'));
        const { steps } = await reproSteps(lines(memoryApi), swProtected, 'memory-api');
        const src = join(dir, 'memory-api.c');
        writeFileSync(src, reproC(steps, 'memory-api'));
        const include: string[] = [];
        if (header !== 'the host') {
          mkdirSync(join(dir, 'inc', 'linux'), { recursive: true });
          writeFileSync(join(dir, 'inc', 'linux', 'kvm.h'), newHeader);
          include.push('-I', join(dir, 'inc'));
        }
        const bin = join(dir, 'memory-api');
        execFileSync(process.env['CC'] ?? 'cc', ['-O1', '-Wall', '-Werror', ...include, '-o', bin, src]);
        if (!kvmUsable().ok) expect(spawnSync(bin, { encoding: 'utf8' }).status).toBe(4);
      });
    }

    // A <linux/kvm.h> older than the rings (5.10's has KVM_CLEAR_DIRTY_LOG, not KVM_RESET_DIRTY_RINGS): the guards define what it lacks.
    const oldHeader = `#include_next <linux/kvm.h>
#undef KVM_RESET_DIRTY_RINGS
#undef KVM_CAP_DIRTY_LOG_RING
#undef KVM_CAP_DIRTY_LOG_RING_ACQ_REL
`;
    for (const header of ['the host', 'a pre-ring']) {
      it(`the dirty-ring reproducer compiles with -Wall -Werror against ${header} <linux/kvm.h>${kvmUsable().ok ? '' : ', and without /dev/kvm exits 4 (skipped)'}`, async () => {
        const dir = mkdtempSync(join(tmpdir(), 'repro-rings-'));
        const { steps } = await reproSteps(lines(rings), PROFILES['x86_64']!, 'rings');
        const src = join(dir, 'rings.c');
        writeFileSync(src, reproC(steps, 'rings'));
        const include: string[] = [];
        if (header !== 'the host') {
          mkdirSync(join(dir, 'inc', 'linux'), { recursive: true });
          writeFileSync(join(dir, 'inc', 'linux', 'kvm.h'), oldHeader);
          include.push('-I', join(dir, 'inc'));
        }
        const bin = join(dir, 'rings');
        execFileSync(process.env['CC'] ?? 'cc', ['-O1', '-Wall', '-Werror', ...include, '-o', bin, src]);
        if (!kvmUsable().ok) expect(spawnSync(bin, { encoding: 'utf8' }).status).toBe(4);
      });
    }
  });

  const usable = kvmUsable();
  const why = !usable.ok ? usable.reason : !cc ? 'no C compiler' : '';
  describe.skipIf(why !== '')(`C reproducers against /dev/kvm${why === '' ? '' : ` (skipped: ${why})`}`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'repro-'));
    const build = async (trace: string, name: string): Promise<string> => {
      const { steps } = await reproSteps(lines(trace), profile, name);
      const src = join(dir, `${name}.c`);
      writeFileSync(src, reproC(steps, name));
      const bin = join(dir, name);
      execFileSync(process.env['CC'] ?? 'cc', ['-O1', '-Wall', '-Werror', '-o', bin, src]);
      return bin;
    };

    it('the reproducer of a kernel-recorded trace passes', async () => {
      const bin = await build(readFileSync(TRACE, 'utf8'), 'clean');
      const r = spawnSync(bin, { encoding: 'utf8' });
      expect(r.stdout).toMatch(/^\d+ steps, all as expected$/m);
      expect(r.status).toBe(0);
    });

    it('the reproducer of a tampered trace fails at the tampered step', async () => {
      const text = readFileSync(TRACE, 'utf8').split('\n');
      const at = text.findIndex((l) => l.includes('"expect":{"errno":"EEXIST"}'));
      expect(at).toBeGreaterThan(0);
      text[at] = text[at]!.replace('"expect":{"errno":"EEXIST"}', '"expect":{"ret":0}');
      const bin = await build(text.join('\n'), 'tampered');
      const r = spawnSync(bin, { encoding: 'utf8' });
      expect(r.status).toBe(1);
      expect(r.stdout).toContain(`(trace line ${at + 1}) diverged`);
      expect(r.stdout).toContain('returned EEXIST, expected 0');
    });
  });
});
