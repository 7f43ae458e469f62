/**
 * Every VMM check (spec/90-vmm-checks.md) fails on a small hand-written trace that shows its
 * defect, and passes on near-misses that differ from it in one respect.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { profileFromJson, PROFILES, type Profile } from '../model/profiles.js';
import { readTrace } from '../trace/trace.js';
import { formatLint, lintTrace, type Finding } from './vmm-lint.js';
import type { VmmCheckId } from '../spec/rules.js';

/** A profile with 8 user ids, so exhaustion shows in a few lines. */
const SMALL: Profile = (() => {
  const p = profileFromJson(
    { address_spaces: 1, user_mem_slots: 8, mem_slots_num: 11, max_gfn: '0xffffffffff', user_addr_max: '0x7ffffffff000', max_nr_pages: '0x7fffffff' },
    'small',
  );
  if (!p.ok) throw new Error(p.error);
  return p.profile;
})();

const h = (v: bigint | number): string => `0x${v.toString(16)}`;
/** A set_user_memory_region line; sizes and addresses in bytes. */
function set(slot: number, gpa: bigint, size: bigint, uaddr: bigint, flags = 0): string {
  return JSON.stringify({ op: 'set_user_memory_region', slot, flags, guest_phys_addr: h(gpa), memory_size: h(size), userspace_addr: h(uaddr) });
}
const del = (slot: number, gpa = 0n): string => set(slot, gpa, 0n, 0n);
const dirty = (slot: number): string => JSON.stringify({ op: 'get_dirty_log', slot });
const reset = JSON.stringify({ op: 'reset' });
const MB = 0x100000n;
const U = 0x7f00_0000_0000n;

async function lint(lines: string[], profile: Profile = SMALL): Promise<readonly Finding[]> {
  return (await lintTrace(readTrace(lines), profile)).findings;
}
const only = (fs: readonly Finding[], id: VmmCheckId): Finding[] => fs.filter((f) => f.check === id);

describe('VMM checks', () => {
  // A 2 MiB slot at 1 MiB split in two halves the way QEMU once did it: delete, create, create.
  const split = [set(0, MB, 2n * MB, U), dirty(0), del(0), set(1, MB, MB, U), set(2, 2n * MB, MB, U + MB)];

  it('[VMM-WIN-01] a split done as delete, create, create leaves the slot unmapped between: the finding names both lines and the gfns', async () => {
    const fs = only(await lint(split), 'VMM-WIN-01');
    expect(fs.map((f) => f.involved.map((i) => [i.line, i.role]))).toEqual([
      [
        [3, 'unmaps (deletes)'],
        [4, 'maps them again'],
      ],
      [
        [3, 'unmaps (deletes)'],
        [5, 'maps them again'],
      ],
    ]);
    expect(fs.map((f) => f.gfns)).toEqual([[{ asId: 0, start: 0x100n, end: 0x200n }], [{ asId: 0, start: 0x200n, end: 0x300n }]]);
    const text = formatLint(fs);
    expect(text).toContain('VMM checks: 2 findings (VMM-WIN-01 x2)');
    expect(text).toContain('gfns: as 0 0x100-0x1ff');
    expect(text).toMatch(/line 3: \{"op":"set_user_memory_region","slot":0,.*\} -> \{"ret":0\}\s+\(unmaps \(deletes\)\)/);
  });

  it('[VMM-WIN-01] a dirty-log read inside the update does not hide it; a READONLY toggle made as delete and create is a window too', async () => {
    expect(only(await lint([set(0, MB, MB, U), del(0), dirty(1), set(0, MB, MB, U)]), 'VMM-WIN-01')).toHaveLength(1);
    expect(only(await lint([set(0, MB, MB, U), del(0), set(0, MB, MB, U, 2)]), 'VMM-WIN-01')).toHaveLength(1);
  });

  it('[VMM-WIN-01] near-misses: a MOVE in one request, a replug at another host address, a remap after a reset, a partial re-create', async () => {
    // One request: the kernel keeps the slot whole (MS-ATM-05); the old range is simply gone.
    expect(only(await lint([set(0, MB, MB, U), set(0, 4n * MB, MB, U), set(1, MB, MB, U + 8n * MB)]), 'VMM-WIN-01')).toEqual([]);
    // Unplug, then plug new memory (another hva): a replacement.
    expect(only(await lint([set(0, MB, MB, U), del(0), set(1, MB, MB, U + 16n * MB)]), 'VMM-WIN-01')).toEqual([]);
    // The run ended (a reset) before the gfns came back.
    expect(only(await lint([set(0, MB, MB, U), del(0), reset, set(0, MB, MB, U)]), 'VMM-WIN-01')).toEqual([]);
    // The memory moved to other gfns by delete and create (a BAR the guest moved), and back later.
    expect(only(await lint([set(0, MB, MB, U), del(0), set(1, 8n * MB, MB, U), del(1), set(2, MB, MB, U)]), 'VMM-WIN-01')).toEqual([]);
    // Never mapped again: a plain unplug.
    expect(only(await lint([set(0, MB, MB, U), del(0), set(1, 8n * MB, MB, U)]), 'VMM-WIN-01')).toEqual([]);
  });

  it('[VMM-IDS-01] an allocator that takes the highest id plus one on every remap leaks the deleted ids', async () => {
    // Remap a BAR three times: delete id n, create id n+1 (Cloud Hypervisor before its fix).
    const lines = [set(0, MB, MB, U), del(0), set(1, MB, MB, U), del(1), set(2, MB, MB, U), del(2), set(3, MB, MB, U)];
    const fs = only(await lint(lines), 'VMM-IDS-01');
    expect(fs).toHaveLength(1);
    expect(fs[0]!.message).toContain('3 id(s) deleted and never created again (0, 1, 2)');
    expect(fs[0]!.message).toContain('climbed past them to 3; 4 fresh id(s) are left below KVM_USER_MEM_SLOTS (8)');
    expect(fs[0]!.involved.map((i) => i.line)).toEqual([2, 3, 4, 6, 7]);
    expect(fs[0]!.gfns[0]).toEqual({ asId: 0, start: 0x100n, end: 0x200n });
  });

  it('[VMM-IDS-01] near-misses: the lowest free id reused (QEMU), a late reuse before the VM ends, a delete with no fresh id after it', async () => {
    expect(only(await lint([set(0, MB, MB, U), del(0), set(0, MB, MB, U), del(0), set(0, MB, MB, U)]), 'VMM-IDS-01')).toEqual([]);
    expect(only(await lint([set(0, MB, MB, U), del(0), set(1, MB, MB, U), set(0, 8n * MB, MB, U)]), 'VMM-IDS-01')).toEqual([]);
    expect(only(await lint([set(0, MB, MB, U), set(1, 8n * MB, MB, U), del(0)]), 'VMM-IDS-01')).toEqual([]);
    // A fresh id below the deleted one does not climb past it.
    expect(only(await lint([set(5, MB, MB, U), del(5), set(1, MB, MB, U)]), 'VMM-IDS-01')).toEqual([]);
  });

  it('[VMM-IDS-02] an allocator that never checks the limit names id 8 of 8 (EINVAL, MS-VAL-02) and an address space the profile lacks', async () => {
    const fs = only(await lint([set(7, MB, MB, U), set(8, 2n * MB, MB, U), set((1 << 16) | 0, 4n * MB, MB, U)]), 'VMM-IDS-02');
    expect(fs.map((f) => [f.involved[0]!.line, f.involved[0]!.answer])).toEqual([
      [2, { kind: 'errno', errno: 'EINVAL' }],
      [3, { kind: 'errno', errno: 'EINVAL' }],
    ]);
    expect(fs[0]!.message).toContain('id 8 is at or past KVM_USER_MEM_SLOTS (8');
    expect(fs[1]!.message).toContain('address space 1');
  });

  it('[VMM-IDS-02] near-miss: id 7 of 8 and both address spaces of x86_64 are fine', async () => {
    expect(only(await lint([set(7, MB, MB, U)]), 'VMM-IDS-02')).toEqual([]);
    expect(only(await lint([set(0, MB, MB, U), set((1 << 16) | 0, MB, MB, U)], PROFILES['x86_64']!), 'VMM-IDS-02')).toEqual([]);
  });

  it('[VMM-REJ-01] an overlapping create issued again while nothing changed must fail again', async () => {
    const fs = only(await lint([set(0, MB, 2n * MB, U), set(1, 2n * MB, MB, U), dirty(0), set(1, 2n * MB, MB, U)]), 'VMM-REJ-01');
    expect(fs).toHaveLength(1);
    expect(fs[0]!.involved.map((i) => [i.line, i.answer])).toEqual([
      [2, { kind: 'errno', errno: 'EEXIST' }],
      [4, { kind: 'errno', errno: 'EEXIST' }],
    ]);
    expect(fs[0]!.gfns).toEqual([{ asId: 0, start: 0x200n, end: 0x300n }]);
  });

  it('[VMM-REJ-01] near-misses: the retry after the conflicting slot was deleted, a corrected retry', async () => {
    expect(only(await lint([set(0, MB, 2n * MB, U), set(1, 2n * MB, MB, U), del(0), set(1, 2n * MB, MB, U)]), 'VMM-REJ-01')).toEqual([]);
    expect(only(await lint([set(0, MB, 2n * MB, U), set(1, 2n * MB, MB, U), set(1, 4n * MB, MB, U)]), 'VMM-REJ-01')).toEqual([]);
  });

  it('[VMM-REJ-02] a rejected create followed by a delete or a dirty-log read of the slot it never made', async () => {
    const rejected = [set(0, MB, 2n * MB, U), set(1, 2n * MB, MB, U + 4n * MB, 1)];
    const a = only(await lint([...rejected, del(1)]), 'VMM-REJ-02');
    expect(a.map((f) => f.involved.map((i) => [i.line, i.role]))).toEqual([
      [
        [2, 'rejected create'],
        [3, 'deletes the slot never created'],
      ],
    ]);
    expect(a[0]!.involved[1]!.answer).toEqual({ kind: 'errno', errno: 'EINVAL' });
    expect(a[0]!.gfns).toEqual([{ asId: 0, start: 0x200n, end: 0x300n }]);
    const b = only(await lint([...rejected, dirty(1)]), 'VMM-REJ-02');
    expect(b.map((f) => f.involved.map((i) => i.line))).toEqual([[2, 3]]);
  });

  it('[VMM-REJ-02] a rejected delete (misaligned gpa, MS-VAL-05) followed by a create on the id as if it were free', async () => {
    const fs = only(await lint([set(0, MB, MB, U), del(0, 0x123n), set(0, 8n * MB, 2n * MB, U + 16n * MB)]), 'VMM-REJ-02');
    expect(fs.map((f) => f.involved.map((i) => [i.line, i.role]))).toEqual([
      [
        [2, 'rejected delete'],
        [3, 'creates as if the id were free'],
      ],
    ]);
    expect(fs[0]!.involved[1]!.answer).toEqual({ kind: 'errno', errno: 'EINVAL' });
  });

  it('[VMM-REJ-02] near-misses: a corrected create after the rejection, a delete after a successful create, a retried delete', async () => {
    expect(only(await lint([set(0, MB, 2n * MB, U), set(1, 2n * MB, MB, U), set(1, 8n * MB, MB, U), del(1)]), 'VMM-REJ-02')).toEqual([]);
    expect(only(await lint([set(1, 2n * MB, MB, U), del(1), dirty(1)]), 'VMM-REJ-02')).toEqual([]);
    expect(only(await lint([set(0, MB, MB, U), del(0, 0x123n), del(0), set(0, 8n * MB, 2n * MB, U)]), 'VMM-REJ-02')).toEqual([]);
  });

  it('[VMM-X86-01] a slot over 0xf977e000..0xffffffff covers the APIC access page and the identity map (Hyperlight issue 1389)', async () => {
    const fs = only(await lint([set(0, 0xf977_e000n, 0x1_0000_0000n - 0xf977_e000n, U)]), 'VMM-X86-01');
    expect(fs.map((f) => f.gfns)).toEqual([[{ asId: 0, start: 0xfee00n, end: 0xfee01n }], [{ asId: 0, start: 0xfffbcn, end: 0xfffbdn }]]);
    expect(fs[0]!.message).toContain("the kernel's APIC access page");
    expect(fs[0]!.message).toContain('issue 1389');
  });

  it('[VMM-X86-01] with the internal slots in the trace: a TSS set at 0xfeffd000 is named, and the model answers EEXIST', async () => {
    const tss = JSON.stringify({ op: 'set_internal_memslot', id: 8, guest_phys_addr: '0xfeffd000', memory_size: '0x3000', userspace_addr: '0x7e0000000000' });
    const fs = only(await lint([tss, set(0, 0xfeff_e000n, 0x1000n, U)]), 'VMM-X86-01');
    expect(fs).toHaveLength(1);
    expect(fs[0]!.involved[0]!.answer).toEqual({ kind: 'errno', errno: 'EEXIST' });
    expect(fs[0]!.message).toContain("kernel's TSS (internal slot id 8;");
  });

  it('[VMM-X86-01] near-misses: slots ending at 0xfedfffff and starting at 0xfee01000, a rejected create over the page, a flags change of a slot already there', async () => {
    expect(only(await lint([set(0, 0xfed0_0000n, 0x10_0000n, U), set(1, 0xfee0_1000n, 0x1000n, U + MB)]), 'VMM-X86-01')).toEqual([]);
    // Misaligned size: EINVAL (MS-VAL-04), no slot made.
    expect(only(await lint([set(0, 0xfee0_0000n, 0x1001n, U)]), 'VMM-X86-01')).toEqual([]);
    const fs = only(await lint([set(0, 0xfee0_0000n, 0x1000n, U), set(0, 0xfee0_0000n, 0x1000n, U, 1)]), 'VMM-X86-01');
    expect(fs.map((f) => f.involved[0]!.line)).toEqual([1]);
  });

  it("[VMM-WIN-01][VMM-X86-01] examples/split.jsonl, the README's lint report, gives exactly what the README shows", async () => {
    const path = new URL('../examples/split.jsonl', import.meta.url);
    const fs = await lint(readFileSync(path, 'utf8').split('\n'), PROFILES['x86_64-nosmm']!);
    const text = formatLint(fs);
    expect(text.split('\n')[0]).toBe('VMM checks: 2 findings (VMM-WIN-01 x1, VMM-X86-01 x1)');
    expect(text).toContain('  gfns: as 0 0x100-0x1ff');
    expect(text).toContain('  gfns: as 0 0xfee00-0xfee00');
    expect(text).toContain("(Intel VMX with an in-kernel LAPIC) the request or the kernel's own create fails with EEXIST");
  });

  it('a clean trace has no finding, and the report says so', async () => {
    const fs = await lint([set(0, 0n, 0xa0000n, U), set(1, MB, 2n * MB, U + MB), set(1, MB, 2n * MB, U + MB, 1), dirty(1), set(1, MB, 2n * MB, U + MB)]);
    expect(fs).toEqual([]);
    expect(formatLint(fs)).toBe('VMM checks: 0 findings');
  });
});
