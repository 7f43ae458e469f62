/**
 * Lookups (spec/30-lookup.md): MS-LKP-01 .. MS-LKP-11, on a two-address-space VM with
 * aliased host ranges, a READONLY slot, an internal slot and INVALID copies.
 */
import { describe, expect, it } from 'vitest';
import {
  KVM_MEMSLOT_INVALID,
  createVm,
  gfnRangeMemslots,
  gfnToHva,
  gfnToMemslot,
  gfnToMemslotApproxCandidates,
  hvaRangeMemslots,
  idToMemslot,
  isVisibleGfn,
  setInternalMemslot,
  setUserMemoryRegion,
  vcpuAsId,
  vcpuGfnToMemslot,
  type VmState,
} from '../../model/index.js';
import { IMPLEMENTATIONS, type ConcurrentMemslotImpl } from '../../impl/index.js';
import { L510, NOSMM, PAGE, X86, at, applyOk, build, del, memslot, pages, region, slotNr } from './helpers.js';

const HA = 0x7f00_0000_0000n;
const HB = 0x7f00_1000_0000n;
const HC = 0x7f00_2000_0000n;
const APIC = 32765;

// Address space 0: slot 1 [0x100, 0x104) at HA; slot 2 [0x200, 0x204) at HA + 0x2000 (its host
// range overlaps slot 1's last two pages); slot 3 [0x300, 0x302) READONLY at HB; the APIC access
// page (internal) at gfn 0xfee00, host HC. Address space 1: slot 1 [0x500, 0x504) at HA (aliases
// slot 1 of address space 0) and the APIC access page.
const S1 = memslot(0, 1, 0x100n, 4n, HA);
const S2 = memslot(0, 2, 0x200n, 4n, HA + 0x2000n);
const S3 = memslot(0, 3, 0x300n, 2n, HB, 2);
const T1 = memslot(1, 1, 0x500n, 4n, HA);
const A0 = memslot(0, APIC, 0xfee00n, 1n, HC);
const A1 = memslot(1, APIC, 0xfee00n, 1n, HC);

function fixture(): VmState {
  const vm = build(X86, [
    region(1, pages(0x100n), pages(4n), HA),
    region(2, pages(0x200n), pages(4n), HA + 0x2000n),
    region(3, pages(0x300n), pages(2n), HB, 2),
    region(slotNr(1, 1), pages(0x500n), pages(4n), HA),
  ]);
  return setInternalMemslot(vm, APIC, 0xfee0_0000n, PAGE, HC).state;
}
const vm = fixture();
/** The state readers see between the two publishes of a DELETE of `slot`: its INVALID copy. */
function invalidWindow(slot: number): VmState {
  const s = setUserMemoryRegion(vm, del(slot));
  expect(s.result.ok).toBe(true);
  return at(s.published, 0);
}

describe('[MS-LKP-01] by id', () => {
  it('[MS-LKP-01] id_to_memslot finds each slot by (address space, id), internal ones included', () => {
    expect(idToMemslot(vm, 0, 1)).toEqual(S1);
    expect(idToMemslot(vm, 0, 3)).toEqual(S3);
    expect(idToMemslot(vm, 1, 1)).toEqual(T1);
    expect(idToMemslot(vm, 0, APIC)).toEqual(A0);
    expect(idToMemslot(vm, 1, APIC)).toEqual(A1);
  });
  it('[MS-LKP-01] id_to_memslot returns none for an id absent from that address space', () => {
    expect(idToMemslot(vm, 0, 9)).toBeNull();
    expect(idToMemslot(vm, 1, 2)).toBeNull();
    expect(idToMemslot(createVm(NOSMM), 0, 0)).toBeNull();
  });
  it('[MS-LKP-01] during a DELETE the INVALID copy is still found by id', () => {
    expect(idToMemslot(invalidWindow(1), 0, 1)).toEqual({ ...S1, flags: KVM_MEMSLOT_INVALID });
  });
});

describe('[MS-LKP-02] by gfn, exact', () => {
  it('[MS-LKP-02] the first and last gfn of a slot find it; the gfns just outside find none', () => {
    expect(gfnToMemslot(vm, 0, 0x100n)).toEqual(S1);
    expect(gfnToMemslot(vm, 0, 0x103n)).toEqual(S1);
    expect(gfnToMemslot(vm, 0, 0xffn)).toBeNull();
    expect(gfnToMemslot(vm, 0, 0x104n)).toBeNull();
    expect(gfnToMemslot(vm, 0, 0x301n)).toEqual(S3);
  });
  it('[MS-LKP-02] lookups stay in their address space; internal slots are found', () => {
    expect(gfnToMemslot(vm, 1, 0x100n)).toBeNull();
    expect(gfnToMemslot(vm, 1, 0x503n)).toEqual(T1);
    expect(gfnToMemslot(vm, 0, 0x500n)).toBeNull();
    expect(gfnToMemslot(vm, 0, 0xfee00n)).toEqual(A0);
    expect(gfnToMemslot(vm, 1, 0xfee00n)).toEqual(A1);
  });
  it('[MS-LKP-02] gfn 0 and gfn 2^64 - 1 on an empty VM find none', () => {
    expect(gfnToMemslot(createVm(NOSMM), 0, 0n)).toBeNull();
    expect(gfnToMemslot(createVm(NOSMM), 0, (1n << 64n) - 1n)).toBeNull();
  });
});

describe('[MS-LKP-03] by gfn, approx', () => {
  it('[MS-LKP-03] a gfn inside a slot has exactly that slot as its answer', () => {
    expect(gfnToMemslotApproxCandidates(vm, 0, 0x101n)).toEqual([S1]);
  });
  it('[MS-LKP-03] a gfn in a hole may get either neighbour: the nearest below and the nearest above', () => {
    expect(gfnToMemslotApproxCandidates(vm, 0, 0x150n)).toEqual([S1, S2]);
    expect(gfnToMemslotApproxCandidates(vm, 0, 0x104n)).toEqual([S1, S2]);
    expect(gfnToMemslotApproxCandidates(vm, 0, 0x1ffn)).toEqual([S1, S2]);
    expect(gfnToMemslotApproxCandidates(vm, 0, 0x400n)).toEqual([S3, A0]);
  });
  it('[MS-LKP-03] below every slot the only neighbour is the first; above every slot, the last', () => {
    expect(gfnToMemslotApproxCandidates(vm, 0, 0n)).toEqual([S1]);
    expect(gfnToMemslotApproxCandidates(vm, 0, 0xfee01n)).toEqual([A0]);
    expect(gfnToMemslotApproxCandidates(vm, 1, 0x4ffn)).toEqual([T1]);
  });
  it('[MS-LKP-03] an empty address space has no answer', () => {
    expect(gfnToMemslotApproxCandidates(createVm(X86), 1, 0x100n)).toEqual([]);
  });
});

describe('[MS-LKP-04] by gfn range', () => {
  const ids = (start: bigint, end: bigint, asId = 0) => gfnRangeMemslots(vm, asId, start, end).map((s) => s.id);
  it('[MS-LKP-04] a range starting inside one slot and ending inside the next yields both, ascending', () => {
    expect(ids(0x102n, 0x201n)).toEqual([1, 2]);
  });
  it('[MS-LKP-04] a range touching the end of one slot and the start of the next yields neither', () => {
    expect(ids(0x104n, 0x200n)).toEqual([]);
    expect(ids(0x103n, 0x200n)).toEqual([1]);
    expect(ids(0x104n, 0x201n)).toEqual([2]);
  });
  it('[MS-LKP-04] the whole gfn space yields every slot once, ascending by base gfn, internal ones included', () => {
    expect(gfnRangeMemslots(vm, 0, 0n, (1n << 64n) - 1n)).toEqual([S1, S2, S3, A0]);
    expect(gfnRangeMemslots(vm, 1, 0n, (1n << 64n) - 1n)).toEqual([T1, A1]);
  });
  it('[MS-LKP-04] the last page alone yields its slot; a reversed range yields nothing', () => {
    expect(ids(0x301n, 0x302n)).toEqual([3]);
    expect(ids(0x200n, 0x100n)).toEqual([]);
  });
  it('[MS-LKP-04] an empty range [g, g) yields the slot strictly containing g (base_gfn < end and base_gfn + npages > start), nothing at a slot base', () => {
    // As kvm_memslot_iter_start() + kvm_memslot_iter_is_valid(): the slot at or below start is
    // kept when it ends after start, and yielded when its base is below end.
    expect(ids(0x101n, 0x101n)).toEqual([1]);
    expect(ids(0x100n, 0x100n)).toEqual([]);
    expect(ids(0x104n, 0x104n)).toEqual([]);
  });
  it.each(Object.entries(IMPLEMENTATIONS))(
    '[MS-LKP-04] an empty range [g, g) inside a slot: the slot for g > base_gfn, nothing for g == base_gfn, in the model and %s',
    (name, make) => {
      // kvm_memslot_iter_is_valid() needs base_gfn < end (6.12.117 include/linux/kvm_host.h:1189-1199).
      const impl = make(NOSMM);
      const r = region(1, pages(0x100n), pages(4n), HA);
      expect(impl.setUserMemoryRegion(r).ok).toBe(true);
      const m = build(NOSMM, [r]);
      for (const [g, want] of [
        [0x100n, []],
        [0x101n, [1]],
        [0x103n, [1]],
        [0x104n, []],
      ] as const) {
        expect(
          gfnRangeMemslots(m, 0, g, g).map((s) => s.id),
          `model, [${g}, ${g})`,
        ).toEqual(want);
        expect(
          impl.gfnRangeMemslots(0, g, g).map((s) => s.id),
          `${name}, [${g}, ${g})`,
        ).toEqual(want);
      }
    },
  );
  it('[MS-LKP-04] slots created in descending order still come out ascending', () => {
    const v = build(NOSMM, [region(3, 0x30_0000n, PAGE, HA), region(2, 0x20_0000n, PAGE, HA), region(1, 0x10_0000n, PAGE, HA)]);
    expect(gfnRangeMemslots(v, 0, 0n, 0x1000n).map((s) => s.id)).toEqual([1, 2, 3]);
  });
});

describe('[MS-LKP-05] by hva range', () => {
  it('[MS-LKP-05] host ranges overlapping across slots and address spaces: every hit, with its clamped gfn range', () => {
    expect(hvaRangeMemslots(vm, HA + 0x3000n, HA + 0x5000n)).toEqual([
      { asId: 0, id: 1, gfnStart: 0x103n, gfnEnd: 0x104n },
      { asId: 0, id: 2, gfnStart: 0x201n, gfnEnd: 0x203n },
      { asId: 1, id: 1, gfnStart: 0x503n, gfnEnd: 0x504n },
    ]);
  });
  it('[MS-LKP-05] an unaligned range rounds the gfn start down and the gfn end up', () => {
    expect(hvaRangeMemslots(vm, HA + 0x1800n, HA + 0x2800n)).toEqual([
      { asId: 0, id: 1, gfnStart: 0x101n, gfnEnd: 0x103n },
      { asId: 0, id: 2, gfnStart: 0x200n, gfnEnd: 0x201n },
      { asId: 1, id: 1, gfnStart: 0x501n, gfnEnd: 0x503n },
    ]);
  });
  it('[MS-LKP-05] a range starting exactly at a slot host end misses it; one ending exactly at a host start misses it', () => {
    expect(hvaRangeMemslots(vm, HA + 0x4000n, HA + 0x5000n)).toEqual([{ asId: 0, id: 2, gfnStart: 0x202n, gfnEnd: 0x203n }]);
    expect(hvaRangeMemslots(vm, HB - PAGE, HB)).toEqual([]);
  });
  it('[MS-LKP-05] one byte at the end of a slot hits its last page', () => {
    expect(hvaRangeMemslots(vm, HB + 0x1fffn, HB + 0x2000n)).toEqual([{ asId: 0, id: 3, gfnStart: 0x301n, gfnEnd: 0x302n }]);
  });
  it('[MS-LKP-05] internal slots are walked in every address space', () => {
    expect(hvaRangeMemslots(vm, HC, HC + 1n)).toEqual([
      { asId: 0, id: APIC, gfnStart: 0xfee00n, gfnEnd: 0xfee01n },
      { asId: 1, id: APIC, gfnStart: 0xfee00n, gfnEnd: 0xfee01n },
    ]);
  });
  it('[MS-LKP-05] the whole host space yields every slot ordered by (as_id, id), each clamped to itself', () => {
    const all = hvaRangeMemslots(vm, 0n, (1n << 64n) - 1n);
    expect(all.map((h) => [h.asId, h.id, h.gfnStart, h.gfnEnd])).toEqual([
      [0, 1, 0x100n, 0x104n],
      [0, 2, 0x200n, 0x204n],
      [0, 3, 0x300n, 0x302n],
      [0, APIC, 0xfee00n, 0xfee01n],
      [1, 1, 0x500n, 0x504n],
      [1, APIC, 0xfee00n, 0xfee01n],
    ]);
  });
  it('[MS-LKP-05] an empty (end = start) or reversed range yields nothing', () => {
    expect(hvaRangeMemslots(vm, HA, HA)).toEqual([]);
    expect(hvaRangeMemslots(vm, HA + 0x1000n, HA)).toEqual([]);
  });
});

describe('[MS-LKP-06][MS-LKP-07] vCPU lookups', () => {
  it('[MS-LKP-06] x86_64: a vCPU in SMM looks up address space 1, otherwise address space 0', () => {
    expect(vcpuAsId(vm, true)).toBe(1);
    expect(vcpuAsId(vm, false)).toBe(0);
    expect(vcpuGfnToMemslot(vm, true, 0x500n)).toEqual(T1);
    expect(vcpuGfnToMemslot(vm, false, 0x500n)).toBeNull();
    expect(vcpuGfnToMemslot(vm, true, 0x100n)).toBeNull();
    expect(vcpuGfnToMemslot(vm, false, 0x100n)).toEqual(S1);
  });
  it('[MS-LKP-06] x86_64-nosmm: one address space, so SMM or not the vCPU looks up address space 0', () => {
    const v = build(NOSMM, [region(1, pages(0x100n), PAGE, HA)]);
    expect(vcpuAsId(v, true)).toBe(0);
    expect(vcpuGfnToMemslot(v, true, 0x100n)).toEqual(memslot(0, 1, 0x100n, 1n, HA));
  });
  it('[MS-LKP-07] across CREATE, MOVE, FLAGS_ONLY, DELETE and the INVALID window, a vCPU answers as gfn_to_memslot on its address space', () => {
    const states: VmState[] = [vm];
    let v = vm;
    for (const r of [
      region(4, pages(0x600n), PAGE, HB),
      region(1, pages(0x900n), pages(4n), HA),
      region(2, pages(0x200n), pages(4n), HA + 0x2000n, 1),
      region(slotNr(1, 1), pages(0x100n), pages(4n), HA),
      del(2),
    ]) {
      const s = setUserMemoryRegion(v, r);
      expect(s.result.ok).toBe(true);
      states.push(...s.published);
      v = s.state;
    }
    const gfns = [0x100n, 0x101n, 0x200n, 0x203n, 0x500n, 0x600n, 0x901n, 0xfee00n];
    for (const st of states) {
      for (const inSmm of [false, true]) {
        for (const gfn of gfns) expect(vcpuGfnToMemslot(st, inSmm, gfn)).toEqual(gfnToMemslot(st, inSmm ? 1 : 0, gfn));
      }
    }
    // The cached answer for gfn 0x101 before the MOVE is not reused after it.
    expect(vcpuGfnToMemslot(vm, false, 0x101n)).toEqual(S1);
    expect(vcpuGfnToMemslot(v, false, 0x101n)).toBeNull();
    expect(vcpuGfnToMemslot(v, false, 0x901n)).toEqual({ ...S1, baseGfn: 0x900n });
    expect(vcpuGfnToMemslot(v, true, 0x101n)).toEqual({ ...T1, baseGfn: 0x100n });
  });
});

describe('[MS-LKP-08] visibility', () => {
  it('[MS-LKP-08] a gfn in a user slot is visible; the gfns around it are not', () => {
    expect(isVisibleGfn(vm, 0, 0x100n)).toBe(true);
    expect(isVisibleGfn(vm, 0, 0x301n)).toBe(true);
    expect(isVisibleGfn(vm, 0, 0xffn)).toBe(false);
    expect(isVisibleGfn(vm, 0, 0x104n)).toBe(false);
  });
  it('[MS-LKP-08] internal slots are never visible, in either address space', () => {
    expect(isVisibleGfn(vm, 0, 0xfee00n)).toBe(false);
    expect(isVisibleGfn(vm, 1, 0xfee00n)).toBe(false);
  });
  it('[MS-LKP-08] the INVALID copy published during a DELETE is not visible, but is still found by gfn', () => {
    const w = invalidWindow(1);
    expect(gfnToMemslot(w, 0, 0x101n)).toEqual({ ...S1, flags: KVM_MEMSLOT_INVALID });
    expect(isVisibleGfn(w, 0, 0x101n)).toBe(false);
    expect(isVisibleGfn(w, 0, 0x201n)).toBe(true);
  });
  it('[MS-LKP-08] the INVALID copy published during a MOVE hides the old range; after it the new range is visible', () => {
    const s = setUserMemoryRegion(vm, region(1, pages(0x900n), pages(4n), HA));
    expect(s.result).toEqual({ ok: true, change: 'MOVE', rule: 'MS-MOV-01' });
    const w = at(s.published, 0);
    expect(isVisibleGfn(w, 0, 0x101n)).toBe(false);
    expect(isVisibleGfn(w, 0, 0x901n)).toBe(false);
    expect(isVisibleGfn(s.state, 0, 0x101n)).toBe(false);
    expect(isVisibleGfn(s.state, 0, 0x901n)).toBe(true);
  });
  it('[MS-LKP-08] visibility is per address space', () => {
    expect(isVisibleGfn(vm, 1, 0x500n)).toBe(true);
    expect(isVisibleGfn(vm, 1, 0x100n)).toBe(false);
  });
});

describe('[MS-LKP-09][MS-LKP-10][MS-LKP-11] gfn to hva', () => {
  it('[MS-LKP-09] a gfn with no slot gives KVM_HVA_ERR_BAD for reads and writes', () => {
    expect(gfnToHva(vm, 0, 0x104n, false)).toEqual({ ok: false, error: 'KVM_HVA_ERR_BAD' });
    expect(gfnToHva(vm, 0, 0x104n, true)).toEqual({ ok: false, error: 'KVM_HVA_ERR_BAD' });
  });
  it('[MS-LKP-09] a gfn whose slot is the INVALID copy gives KVM_HVA_ERR_BAD', () => {
    const w = invalidWindow(1);
    expect(gfnToHva(w, 0, 0x101n, false)).toEqual({ ok: false, error: 'KVM_HVA_ERR_BAD' });
    expect(gfnToHva(w, 0, 0x101n, true)).toEqual({ ok: false, error: 'KVM_HVA_ERR_BAD' });
  });
  it('[MS-LKP-09] an INVALID READONLY slot written: KVM_HVA_ERR_BAD decides before KVM_HVA_ERR_RO_BAD', () => {
    expect(gfnToHva(invalidWindow(3), 0, 0x300n, true)).toEqual({ ok: false, error: 'KVM_HVA_ERR_BAD' });
  });
  it('[MS-LKP-10] a write to a READONLY slot gives KVM_HVA_ERR_RO_BAD', () => {
    expect(gfnToHva(vm, 0, 0x300n, true)).toEqual({ ok: false, error: 'KVM_HVA_ERR_RO_BAD' });
    expect(gfnToHva(vm, 0, 0x301n, true)).toEqual({ ok: false, error: 'KVM_HVA_ERR_RO_BAD' });
  });
  it('[MS-LKP-11][MS-LKP-10] a read of a READONLY slot gives its host address', () => {
    expect(gfnToHva(vm, 0, 0x301n, false)).toEqual({ ok: true, hva: HB + PAGE });
  });
  it('[MS-LKP-11] the host address is userspace_addr + (gfn - base_gfn) * PAGE_SIZE, for reads and writes', () => {
    expect(gfnToHva(vm, 0, 0x100n, true)).toEqual({ ok: true, hva: HA });
    expect(gfnToHva(vm, 0, 0x103n, false)).toEqual({ ok: true, hva: HA + 0x3000n });
    expect(gfnToHva(vm, 0, 0x202n, true)).toEqual({ ok: true, hva: HA + 0x4000n });
    expect(gfnToHva(vm, 1, 0x502n, true)).toEqual({ ok: true, hva: HA + 0x2000n });
  });
  it('[MS-LKP-11] internal slots translate too (translation does not check visibility)', () => {
    expect(gfnToHva(vm, 0, 0xfee00n, true)).toEqual({ ok: true, hva: HC });
    expect(gfnToHva(vm, 1, 0xfee00n, false)).toEqual({ ok: true, hva: HC });
  });
  it('[MS-LKP-11] after a MOVE the same gfn offset maps to the same host page', () => {
    const moved = applyOk(vm, region(1, pages(0x900n), pages(4n), HA));
    expect(gfnToHva(moved, 0, 0x902n, false)).toEqual({ ok: true, hva: HA + 0x2000n });
    expect(gfnToHva(moved, 0, 0x102n, false)).toEqual({ ok: false, error: 'KVM_HVA_ERR_BAD' });
  });
});

// The random sequences send ids up to 0xffff but rarely, and never a negative or fractional
// one (a caller of the library can): both implementations against the model.
describe.each(Object.entries(IMPLEMENTATIONS))('[MS-LKP-01] ids outside every table, %s implementation', (_name, make) => {
  it.each([NOSMM, X86, L510])('[MS-LKP-01] id_to_memslot() of an id no table holds is none, as the model says ($name)', (p) => {
    const impl = make(p) as ConcurrentMemslotImpl;
    const vm = setUserMemoryRegion(createVm(p), region(0, 0n, PAGE, 0x7f00_0000_0000n)).state;
    expect(impl.setUserMemoryRegion(region(0, 0n, PAGE, 0x7f00_0000_0000n)).ok).toBe(true);
    for (const id of [-1, 0.5, p.memSlotsNum, 0xffff, 0x10000, Number.NaN]) {
      expect(idToMemslot(vm, 0, id), `model, id ${id}`).toBeNull();
      expect(impl.idToMemslot(0, id), `id ${id}`).toBeNull();
      const reader = impl.srcuReadLock(0);
      expect(reader.idToMemslot(id), `reader, id ${id}`).toBeNull();
      impl.srcuReadUnlock(reader);
    }
    expect(impl.idToMemslot(0, 0)?.id).toBe(0);
  });
});
