/**
 * A quick differential check of both implementations against the model: random request
 * sequences (small gfns so that collisions happen, invalid requests on purpose, internal
 * slots, dirty logs) interleaved with every lookup, under every built-in profile. After each
 * step the observable state (slots, generation, nr_memslot_pages) must equal the model's.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as model from '../model/index.js';
import { PROFILES, type Profile } from '../model/profiles.js';
import {
  KVM_MEM_LOG_DIRTY_PAGES,
  KVM_MEM_READONLY,
  PAGE_SIZE,
  U64_MAX,
  type Memslot,
  type MemoryRegion,
  type SetResult,
  type SetOutcome,
} from '../model/types.js';
import { IMPLEMENTATIONS } from '../impl/index.js';
import type { MemslotImpl } from '../impl/interface.js';

type Op =
  | { readonly kind: 'set'; readonly mem: MemoryRegion }
  | { readonly kind: 'modify'; readonly pick: number; readonly how: Modify; readonly gfn: bigint; readonly flags: number }
  | { readonly kind: 'internal'; readonly which: number; readonly gfn: bigint; readonly pages: bigint; readonly hva: bigint }
  | { readonly kind: 'dirtyLog'; readonly asId: number; readonly id: number }
  | {
      readonly kind: 'lookup';
      readonly asId: number;
      readonly id: number;
      readonly gfn: bigint;
      readonly width: bigint;
      readonly hva: bigint;
      readonly hvaWidth: bigint;
      readonly vcpu: number;
      readonly inSmm: boolean;
      readonly write: boolean;
    };

type Modify = 'move' | 'flags' | 'same' | 'delete' | 'resize' | 'uaddr' | 'readonly';

function opArb(p: Profile): fc.Arbitrary<Op> {
  const asId = fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: 0, max: p.addressSpaces - 1 }) },
    { weight: 1, arbitrary: fc.constantFrom(p.addressSpaces, 0xffff) },
  );
  const id = fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: 0, max: 4 }) },
    { weight: 1, arbitrary: fc.constantFrom(p.userMemSlots - 1, p.userMemSlots, p.memSlotsNum - 1, p.memSlotsNum, 0xffff) },
  );
  const flags = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(0, KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY, KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY) },
    { weight: 1, arbitrary: fc.constantFrom(4, 8, 1 << 16, 0x8000_0000) },
  );
  const gfn = fc.bigInt(0n, 24n);
  const maxGfn = p.maxGfn ?? (1n << 40n) - 1n;
  const gpa = fc.oneof(
    { weight: 12, arbitrary: gfn.map((g) => g * PAGE_SIZE) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(1n, PAGE_SIZE + 7n, (maxGfn - 1n) * PAGE_SIZE, maxGfn * PAGE_SIZE, (maxGfn + 1n) * PAGE_SIZE, U64_MAX - PAGE_SIZE + 1n),
    },
  );
  const size = fc.oneof(
    { weight: 12, arbitrary: fc.bigInt(0n, 5n).map((n) => n * PAGE_SIZE) },
    { weight: 1, arbitrary: fc.constantFrom(PAGE_SIZE - 1n, (p.maxNrPages + 1n) * PAGE_SIZE, p.maxNrPages * PAGE_SIZE, 2n * PAGE_SIZE + 1n) },
  );
  const uaddr = fc.oneof(
    { weight: 12, arbitrary: fc.bigInt(0n, 8n).map((n) => 0x10_0000n + n * PAGE_SIZE) },
    { weight: 1, arbitrary: fc.constantFrom(0n, 3n, p.userAddrMax - PAGE_SIZE, p.userAddrMax, U64_MAX - PAGE_SIZE + 1n) },
  );
  const set = fc.record({ asId, id, flags, gpa, size, uaddr }).map(({ asId, id, flags, gpa, size, uaddr }): Op => ({
    kind: 'set',
    mem: { slot: asId * 0x1_0000 + id, flags, guestPhysAddr: gpa, memorySize: size, userspaceAddr: uaddr },
  }));
  const modify = fc.record({
    kind: fc.constant('modify' as const),
    pick: fc.nat(),
    how: fc.constantFrom<Modify>('move', 'move', 'flags', 'flags', 'same', 'delete', 'delete', 'resize', 'uaddr', 'readonly'),
    gfn,
    flags,
  });
  const internal = fc.record({
    kind: fc.constant('internal' as const),
    which: fc.integer({ min: 0, max: p.memSlotsNum - p.userMemSlots }),
    gfn,
    pages: fc.bigInt(0n, 3n),
    hva: fc.oneof(
      fc.bigInt(0n, 8n).map((n) => 0x10_0000n + n * PAGE_SIZE),
      fc.constant(5n),
    ),
  });
  const dirtyLog = fc.record({ kind: fc.constant('dirtyLog' as const), asId, id });
  const lookup = fc.record({
    kind: fc.constant('lookup' as const),
    asId: fc.integer({ min: 0, max: p.addressSpaces - 1 }),
    id,
    gfn: fc.bigInt(0n, 32n),
    width: fc.bigInt(-1n, 12n),
    hva: fc.bigInt(0x10_0000n - 2n * PAGE_SIZE, 0x10_0000n + 16n * PAGE_SIZE),
    hvaWidth: fc.bigInt(-PAGE_SIZE, 8n * PAGE_SIZE),
    vcpu: fc.integer({ min: 0, max: 2 }),
    inSmm: fc.boolean(),
    write: fc.boolean(),
  });
  return fc.oneof(
    { weight: 6, arbitrary: set },
    { weight: 5, arbitrary: modify },
    { weight: 1, arbitrary: internal },
    { weight: 1, arbitrary: dirtyLog },
    { weight: 5, arbitrary: lookup },
  );
}

/** The model's answer without its evidence. */
function outcome(r: SetResult): SetOutcome {
  return r.ok ? { ok: true, change: r.change } : { ok: false, errno: r.errno };
}

/** A request that changes an existing slot of the model (or, deliberately, breaks a rule). */
function modifyRequest(slot: Memslot, how: Modify, gfn: bigint, flags: number): MemoryRegion {
  const base: MemoryRegion = {
    slot: slot.asId * 0x1_0000 + slot.id,
    flags: slot.flags,
    guestPhysAddr: slot.baseGfn * PAGE_SIZE,
    memorySize: slot.npages * PAGE_SIZE,
    userspaceAddr: slot.userspaceAddr,
  };
  switch (how) {
    case 'move':
      return { ...base, guestPhysAddr: gfn * PAGE_SIZE };
    case 'flags':
      return { ...base, flags: slot.flags ^ KVM_MEM_LOG_DIRTY_PAGES };
    case 'same':
      return base;
    case 'delete':
      return { ...base, memorySize: 0n, flags: flags & (KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY) };
    case 'resize':
      return { ...base, memorySize: base.memorySize + PAGE_SIZE };
    case 'uaddr':
      return { ...base, userspaceAddr: base.userspaceAddr + PAGE_SIZE };
    case 'readonly':
      return { ...base, flags: slot.flags ^ KVM_MEM_READONLY };
  }
}

interface Checked {
  checkStructures(): void;
}

function compareState(p: Profile, vm: model.VmState, impl: MemslotImpl): void {
  for (let asId = 0; asId < p.addressSpaces; asId++) {
    expect(impl.slots(asId)).toEqual(model.memslots(vm, asId));
    expect(impl.generation(asId)).toBe(model.space(vm, asId).generation);
  }
  expect(impl.nrMemslotPages()).toBe(vm.nrMemslotPages);
  (impl as unknown as Checked).checkStructures();
}

function runOps(p: Profile, impl: MemslotImpl, ops: readonly Op[]): void {
  impl.reset();
  let vm = model.createVm(p);
  compareState(p, vm, impl);
  for (const op of ops) {
    switch (op.kind) {
      case 'set': {
        const step = model.setUserMemoryRegion(vm, op.mem);
        expect(impl.setUserMemoryRegion(op.mem)).toEqual(outcome(step.result));
        vm = step.state;
        break;
      }
      case 'modify': {
        const all = vm.spaces.flatMap((s) => model.memslots(vm, s.asId));
        if (all.length === 0) break;
        const mem = modifyRequest(all[op.pick % all.length]!, op.how, op.gfn, op.flags);
        const step = model.setUserMemoryRegion(vm, mem);
        expect(impl.setUserMemoryRegion(mem)).toEqual(outcome(step.result));
        vm = step.state;
        break;
      }
      case 'internal': {
        const id = p.userMemSlots + op.which;
        const gpa = op.gfn * PAGE_SIZE;
        const size = op.pages * PAGE_SIZE;
        const step = model.setInternalMemslot(vm, id, gpa, size, op.hva);
        expect(impl.setInternalMemslot(id, gpa, size, op.hva)).toEqual(outcome(step.result));
        vm = step.state;
        break;
      }
      case 'dirtyLog': {
        const slot = op.asId * 0x1_0000 + op.id;
        const r = model.getDirtyLog(vm, slot).result;
        expect(impl.getDirtyLog(slot)).toEqual(r.ok ? { ok: true, bitmap: r.bitmap } : { ok: false, errno: r.errno });
        break;
      }
      case 'lookup': {
        const { asId, gfn } = op;
        expect(impl.idToMemslot(asId, op.id)).toEqual(model.idToMemslot(vm, asId, op.id));
        expect(impl.gfnToMemslot(asId, gfn)).toEqual(model.gfnToMemslot(vm, asId, gfn));
        const approx = impl.gfnToMemslotApprox(asId, gfn);
        const candidates = model.gfnToMemslotApproxCandidates(vm, asId, gfn);
        if (candidates.length === 0) expect(approx).toBeNull();
        else expect(candidates).toContainEqual(approx);
        const end = gfn + op.width;
        expect(impl.gfnRangeMemslots(asId, gfn, end)).toEqual(model.gfnRangeMemslots(vm, asId, gfn, end));
        const hvaEnd = op.hva + op.hvaWidth;
        expect(impl.hvaRangeMemslots(op.hva, hvaEnd)).toEqual(model.hvaRangeMemslots(vm, op.hva, hvaEnd));
        expect(impl.vcpuGfnToMemslot(op.vcpu, op.inSmm, gfn)).toEqual(model.vcpuGfnToMemslot(vm, op.inSmm, gfn));
        expect(impl.isVisibleGfn(asId, gfn)).toBe(model.isVisibleGfn(vm, asId, gfn));
        expect(impl.gfnToHva(asId, gfn, op.write)).toEqual(model.gfnToHva(vm, asId, gfn, op.write));
        // A second vCPU lookup right away exercises the per-vCPU cache hit path.
        expect(impl.vcpuGfnToMemslot(op.vcpu, op.inSmm, gfn)).toEqual(model.vcpuGfnToMemslot(vm, op.inSmm, gfn));
        break;
      }
    }
    compareState(p, vm, impl);
    model.checkInvariants(p, {
      spaces: Array.from({ length: p.addressSpaces }, (_, asId) => ({
        asId,
        generation: impl.generation(asId),
        slots: impl.slots(asId),
      })),
      nrMemslotPages: impl.nrMemslotPages(),
    });
  }
}

describe('implementations vs model', () => {
  for (const [implName, factory] of Object.entries(IMPLEMENTATIONS)) {
    for (const p of Object.values(PROFILES)) {
      const ids = '[MS-VAL-01][MS-OVL-01][MS-MOV-01][MS-FLG-01][MS-DEL-02][MS-GEN-03][MS-INT-03][MS-LKP-07]';
      it(`${ids} ${implName} agrees with the model under ${p.name}`, () => {
        const impl = factory(p);
        expect(impl.profile).toBe(p);
        const ops = fc.array(opArb(p), { maxLength: 60, size: 'max' });
        fc.assert(
          fc.property(ops, (ops) => runOps(p, impl, ops)),
          { numRuns: 40 },
        );
      });
    }
  }
});
