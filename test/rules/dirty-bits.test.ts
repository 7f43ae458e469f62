/**
 * Chapter 25, the bits: guest writes, KVM_GET_DIRTY_LOG's copy and clear, KVM_CLEAR_DIRTY_LOG
 * and manual protect, one example per rule against the model.
 */
import { describe, expect, it } from 'vitest';
import {
  KVM_MEM_LOG_DIRTY_PAGES,
  KVM_MEM_READONLY,
  LINE_PROFILES,
  PROFILES,
  clearDirtyLog,
  createVm,
  enableManualDirtyLogProtect,
  getDirtyLog,
  guestWrite,
  setUserMemoryRegion,
  type VmState,
} from '../../model/index.js';
import type { RuleId } from '../../spec/rules.js';
import { expectTitleCites } from './helpers.js';

const K73 = LINE_PROFILES['linux-7.3-x86_64']!;
const UADDR = 0x7f00_0000_0000n;
const GPA = 0x10_0000n;

/** Slot 0: 300 pages at GPA, with the given flags (default: dirty logging). */
function vmWithSlot(flags = KVM_MEM_LOG_DIRTY_PAGES, vm: VmState = createVm(K73), npages = 300n): VmState {
  const s = setUserMemoryRegion(vm, { slot: 0, flags, guestPhysAddr: GPA, memorySize: npages << 12n, userspaceAddr: UADDR });
  expect(s.result.ok).toBe(true);
  return s.state;
}

/** The VM after its first write created vCPU 0 (writes change nothing else where no bit is set). */
const withVcpu = (vm: VmState): VmState => ({ ...vm, vcpuCreated: true });

function write(vm: VmState, page: bigint, landed: boolean, rule: RuleId, asId = 0): VmState {
  const w = guestWrite(vm, asId, GPA + (page << 12n) + 0x123n);
  expect(w.result).toEqual({ outcome: landed ? 'ret' : 'mmio', rule });
  return w.state;
}

function bitmap(vm: VmState): [string, VmState] {
  const g = getDirtyLog(vm, 0);
  if (!g.result.ok) throw new Error(`get_dirty_log failed: ${g.result.errno}`);
  return [g.result.bitmap!, g.state];
}

const manual = (vm: VmState, args0: bigint): VmState => enableManualDirtyLogProtect(vm, args0, 0).state;

describe('guest writes', () => {
  it('[MS-WR-01] a write where no slot is, or in the other address space, exits as MMIO and changes nothing', () => {
    const vm = withVcpu(vmWithSlot(KVM_MEM_LOG_DIRTY_PAGES, createVm(PROFILES['x86_64']!)));
    expect(write(vm, 300n, false, 'MS-WR-01')).toBe(vm);
    expect(write(vm, -1n, false, 'MS-WR-01')).toBe(vm);
    expect(write(vm, 5n, false, 'MS-WR-01', 1)).toBe(vm);
    expectTitleCites('MS-WR-01');
  });
  it('[MS-WR-02] a write into a READONLY slot exits as MMIO, even with a bitmap', () => {
    const vm = withVcpu(vmWithSlot(KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY));
    expect(write(vm, 0n, false, 'MS-WR-02')).toBe(vm);
    expect(bitmap(vm)[0]).toBe('');
    expectTitleCites('MS-WR-02');
  });
  it('[MS-WR-03] a write into a logged slot sets its page bit, in the kernel layout (byte k bit j = page 8k + j)', () => {
    let vm = vmWithSlot();
    for (const p of [0n, 9n, 64n, 299n, 9n]) vm = write(vm, p, true, 'MS-WR-03');
    const [hex] = bitmap(vm);
    // page 0 -> byte 0 bit 0; page 9 -> byte 1 bit 1; page 64 -> byte 8 bit 0; page 299 -> byte 37 bit 3.
    expect(hex).toBe('0102000000000000' + '01' + '00'.repeat(28) + '08');
    expectTitleCites('MS-WR-03');
  });
  it('[MS-WR-04] a write into a slot without dirty logging lands and records nothing', () => {
    const vm = withVcpu(vmWithSlot(0));
    expect(write(vm, 3n, true, 'MS-WR-04')).toBe(vm);
    expectTitleCites('MS-WR-04');
  });
});

describe('the bits', () => {
  it('[MS-DLB-01][MS-MAN-03] a fresh bitmap is zeros, or all ones after PROTECT_ENABLE | INITIALLY_SET', () => {
    expect(bitmap(vmWithSlot())[0]).toBe('');
    const [ones] = bitmap(vmWithSlot(KVM_MEM_LOG_DIRTY_PAGES, manual(createVm(K73), 3n)));
    // 300 pages: 37 full bytes and 4 bits of the 38th.
    expect(ones).toBe('ff'.repeat(37) + '0f');
    expectTitleCites('MS-DLB-01');
  });
  it('[MS-DLB-02] without manual protect GET clears what it copied; with PROTECT_ENABLE it does not', () => {
    const [first, after] = bitmap(write(vmWithSlot(), 1n, true, 'MS-WR-03'));
    expect(first).toBe('02');
    expect(bitmap(after)[0]).toBe('');
    const m = write(vmWithSlot(KVM_MEM_LOG_DIRTY_PAGES, manual(createVm(K73), 1n)), 1n, true, 'MS-WR-03');
    const [a, m2] = bitmap(m);
    expect([a, bitmap(m2)[0]]).toEqual(['02', '02']);
    expectTitleCites('MS-DLB-02');
  });
  it('[MS-DLG-06][MS-DLG-08][MS-DLG-07] a MOVE keeps the bits; logging off and on again starts clean; DELETE and re-create starts clean', () => {
    let vm = write(vmWithSlot(), 7n, true, 'MS-WR-03');
    vm = setUserMemoryRegion(vm, { slot: 0, flags: KVM_MEM_LOG_DIRTY_PAGES, guestPhysAddr: 0x1000_0000n, memorySize: 300n << 12n, userspaceAddr: UADDR }).state;
    expect(bitmap(vm)[0]).toBe('80');
    vm = write(vmWithSlot(), 7n, true, 'MS-WR-03');
    vm = setUserMemoryRegion(vm, { slot: 0, flags: 0, guestPhysAddr: GPA, memorySize: 300n << 12n, userspaceAddr: UADDR }).state;
    vm = setUserMemoryRegion(vm, { slot: 0, flags: KVM_MEM_LOG_DIRTY_PAGES, guestPhysAddr: GPA, memorySize: 300n << 12n, userspaceAddr: UADDR }).state;
    expect(bitmap(vm)[0]).toBe('');
    expect(vm.dirtyBits.size).toBe(1);
    expectTitleCites('MS-DLG-06');
  });
});

describe('KVM_CLEAR_DIRTY_LOG', () => {
  const clear = (vm: VmState, slot: number, firstPage: bigint, numPages: number, hex: string): ReturnType<typeof clearDirtyLog> =>
    clearDirtyLog(vm, { slot, firstPage, numPages, bitmap: hex });
  const dirty = (): VmState => {
    let vm = vmWithSlot(KVM_MEM_LOG_DIRTY_PAGES, manual(createVm(K73), 1n));
    for (const p of [0n, 1n, 64n, 65n, 299n]) vm = write(vm, p, true, 'MS-WR-03');
    return vm;
  };
  it('[MS-CLR-01] as_id or id out of bounds fails with EINVAL', () => {
    expect(clear(dirty(), 2 << 16, 0n, 64, '').result).toEqual({ ok: false, errno: 'EINVAL', rule: 'MS-CLR-01' });
    expect(clear(dirty(), 32764, 0n, 64, '').result).toEqual({ ok: false, errno: 'EINVAL', rule: 'MS-CLR-01' });
  });
  it('[MS-CLR-02] first_page not a multiple of 64 fails with EINVAL, before the slot is looked at', () => {
    expect(clear(dirty(), 5, 32n, 64, '').result).toEqual({ ok: false, errno: 'EINVAL', rule: 'MS-CLR-02' });
  });
  it('[MS-CLR-03] no slot, or no bitmap, fails with ENOENT', () => {
    expect(clear(dirty(), 5, 0n, 64, '').result).toEqual({ ok: false, errno: 'ENOENT', rule: 'MS-CLR-03' });
    expect(clear(vmWithSlot(0), 0, 0n, 64, '').result).toEqual({ ok: false, errno: 'ENOENT', rule: 'MS-CLR-03' });
  });
  it('[MS-CLR-04] a range past the end, or a count not a multiple of 64 that stops short of the end, fails with EINVAL', () => {
    expect(clear(dirty(), 0, 320n, 0, '').result).toMatchObject({ rule: 'MS-CLR-04' });
    expect(clear(dirty(), 0, 256n, 45, '').result).toMatchObject({ rule: 'MS-CLR-04' });
    expect(clear(dirty(), 0, 0n, 63, '').result).toMatchObject({ rule: 'MS-CLR-04' });
    // The exemption: 44 pages from 256 end exactly at the slot's end (300).
    expect(clear(dirty(), 0, 256n, 44, '').result).toEqual({ ok: true, rule: 'MS-CLR-05' });
    expect(clear(dirty(), 0, 256n, 0, '').result).toEqual({ ok: true, rule: 'MS-CLR-05' });
  });
  it('[MS-CLR-05] clears only the bits the buffer sets, within the range, word by word from first_page', () => {
    const c = clear(dirty(), 0, 64n, 64, '0300000000000000');
    expect(c.result).toEqual({ ok: true, rule: 'MS-CLR-05' });
    expect(bitmap(c.state)[0]).toBe('0300000000000000' + '00' + '00'.repeat(28) + '08');
    // The end of the slot: the 44-page tail clears page 299 (bit 43 of the word from 256).
    const tail = clear(dirty(), 0, 256n, 44, '0000000000080000');
    expect(bitmap(tail.state)[0]).toBe('0300000000000000' + '03');
  });
});

describe('KVM_ENABLE_CAP(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2)', () => {
  it('[MS-MAN-01] flags not 0 fail with EINVAL', () => {
    expect(enableManualDirtyLogProtect(createVm(K73), 1n, 1).result).toEqual({ ok: false, errno: 'EINVAL', rule: 'MS-MAN-01' });
  });
  it('[MS-MAN-02] INITIALLY_SET alone, or any other bit, fails with EINVAL', () => {
    for (const a of [2n, 4n, 5n, 7n, 1n << 63n])
      expect(enableManualDirtyLogProtect(createVm(K73), a, 0).result).toMatchObject({ errno: 'EINVAL', rule: 'MS-MAN-02' });
  });
  it('[MS-MAN-03] 0, 1 and 3 succeed and set the bits; 0 turns manual protect off again', () => {
    for (const a of [0n, 1n, 3n]) {
      const s = enableManualDirtyLogProtect(createVm(K73), a, 0);
      expect(s.result).toEqual({ ok: true, rule: 'MS-MAN-03' });
      expect(s.state.manualProtect).toBe(Number(a));
    }
    expect(manual(manual(createVm(K73), 3n), 0n).manualProtect).toBe(0);
  });
});
