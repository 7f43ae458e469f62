/**
 * The named invariants (spec/50-invariants.md): for each MS-INV rule, a crafted bad state
 * makes checkInvariants throw InvariantError with that rule, and good states pass.
 */
import { describe, expect, it } from 'vitest';
import {
  InvariantError,
  KVM_MEMSLOT_INVALID,
  checkInvariants,
  createVm,
  observableState,
  setInternalMemslot,
  setUserMemoryRegion,
  type Memslot,
  type ObservableState,
  type Profile,
  type VmState,
} from '../../model/index.js';
import type { RuleId } from '../../spec/rules.js';
import { L510, NOSMM, PAGE, SLOT0, X86, at, build, del, memslot, region, slotNr } from './helpers.js';

const H = 0x7f00_0000_0000n;

/** A state of one address space per slot list, with the page count the slots add up to (unless given). */
function state(spacesSlots: readonly (readonly Memslot[])[], generations?: readonly bigint[], nr?: bigint): ObservableState {
  const spaces = spacesSlots.map((slots, asId) => ({ asId, generation: generations?.[asId] ?? BigInt(asId), slots }));
  return { spaces, nrMemslotPages: nr ?? spacesSlots.flat().reduce((a, s) => a + s.npages, 0n) };
}

/** checkInvariants throws InvariantError citing `rule`. */
function expectBroken(p: Profile, now: ObservableState, rule: RuleId, before?: ObservableState): void {
  let thrown: unknown;
  try {
    checkInvariants(p, now, before);
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(InvariantError);
  const err = thrown as InvariantError;
  expect(err.rule).toBe(rule);
  expect(err.message.startsWith(`[${rule}]`)).toBe(true);
}

describe('good states pass', () => {
  it('[MS-INV-01][MS-INV-02][MS-INV-03][MS-INV-04][MS-INV-05][MS-INV-06][MS-INV-07] fresh VMs of every built-in profile pass', () => {
    for (const p of [NOSMM, X86, L510]) checkInvariants(p, observableState(createVm(p)));
  });
  it('[MS-INV-01][MS-INV-02][MS-INV-04][MS-INV-05][MS-INV-07] every state between requests of a mixed x86_64 run passes, generations never decreasing', () => {
    let vm: VmState = createVm(X86);
    const requests = [
      SLOT0,
      { ...SLOT0, slot: slotNr(1, 0) },
      region(1, 0x30_0000n, PAGE, H, 1),
      region(2, 0xf_f000n, PAGE, H), // adjacent below slot 0
      { ...SLOT0, flags: 1 },
      { ...SLOT0, guestPhysAddr: 0x40_0000n, flags: 1 }, // overlaps slot 1: EEXIST
      { ...SLOT0, guestPhysAddr: 0x1000_0000n, flags: 1 },
      { ...SLOT0, guestPhysAddr: 1n << 52n }, // reverted MOVE
      del(1),
      del(slotNr(1, 0)),
    ];
    for (const r of requests) {
      const s = setUserMemoryRegion(vm, r);
      checkInvariants(X86, observableState(s.state), observableState(vm));
      vm = s.state;
    }
    const withApic = setInternalMemslot(vm, 32765, 0xfee0_0000n, PAGE, H).state;
    checkInvariants(X86, observableState(withApic), observableState(vm));
  });
  it('[MS-INV-01][MS-INV-02] the same id and the same gfns in two address spaces, and adjacent slots, pass', () => {
    const a = memslot(0, 1, 0x100n, 4n, H);
    const b = memslot(0, 2, 0x104n, 4n, H);
    checkInvariants(X86, state([[a, b], [{ ...a, asId: 1 }]]));
  });
});

describe('[MS-INV-01] unique ids', () => {
  it('[MS-INV-01] two slots with id 1 in one address space throw MS-INV-01', () => {
    expectBroken(NOSMM, state([[memslot(0, 1, 0x100n, 1n, H), memslot(0, 1, 0x200n, 1n, H)]]), 'MS-INV-01');
  });
});

describe('[MS-INV-02] disjoint ranges', () => {
  it('[MS-INV-02] overlapping gfn ranges throw MS-INV-02', () => {
    expectBroken(NOSMM, state([[memslot(0, 1, 0x100n, 4n, H), memslot(0, 2, 0x103n, 1n, H)]]), 'MS-INV-02');
  });
  it('[MS-INV-02] two slots at the same base gfn throw MS-INV-02', () => {
    expectBroken(NOSMM, state([[memslot(0, 1, 0x100n, 1n, H), memslot(0, 2, 0x100n, 1n, H)]]), 'MS-INV-02');
  });
  it('[MS-INV-02] disjoint slots listed out of gfn order throw MS-INV-02', () => {
    expectBroken(NOSMM, state([[memslot(0, 2, 0x200n, 1n, H), memslot(0, 1, 0x100n, 1n, H)]]), 'MS-INV-02');
  });
  it('[MS-INV-02] an overlap in address space 1 alone throws MS-INV-02', () => {
    expectBroken(X86, state([[], [memslot(1, 1, 0x100n, 4n, H), memslot(1, 2, 0x101n, 1n, H)]]), 'MS-INV-02');
  });
});

describe('[MS-INV-03] non-empty', () => {
  it('[MS-INV-03] a slot of 0 pages throws MS-INV-03', () => {
    expectBroken(NOSMM, state([[memslot(0, 1, 0x100n, 0n, H)]]), 'MS-INV-03');
  });
});

describe('[MS-INV-04] generations', () => {
  it('[MS-INV-04] x86_64: an odd generation in address space 0 throws MS-INV-04', () => {
    expectBroken(X86, state([[], []], [3n, 1n]), 'MS-INV-04');
  });
  it('[MS-INV-04] x86_64: an even generation in address space 1 throws MS-INV-04', () => {
    expectBroken(X86, state([[], []], [0n, 2n]), 'MS-INV-04');
  });
  it('[MS-INV-04] a generation that went down (4 -> 2) throws MS-INV-04; an unchanged one passes', () => {
    expectBroken(X86, state([[], []], [2n, 1n]), 'MS-INV-04', state([[], []], [4n, 1n]));
    checkInvariants(X86, state([[], []], [4n, 1n]), state([[], []], [4n, 1n]));
  });
  it('[MS-INV-04] with one address space every generation is congruent; only a decrease breaks it', () => {
    checkInvariants(NOSMM, state([[]], [7n]));
    expectBroken(NOSMM, state([[]], [6n]), 'MS-INV-04', state([[]], [7n]));
  });
});

describe('[MS-INV-05] page count', () => {
  it('[MS-INV-05] a page count one above the sum of npages throws MS-INV-05', () => {
    expectBroken(NOSMM, state([[memslot(0, 1, 0x100n, 4n, H)]], undefined, 5n), 'MS-INV-05');
  });
  it('[MS-INV-05] x86_64: a page count that leaves out address space 1 (or internal slots) throws MS-INV-05', () => {
    const apic = (asId: number) => memslot(asId, 32765, 0xfee00n, 1n, H);
    expectBroken(X86, state([[memslot(0, 1, 0x100n, 4n, H), apic(0)], [apic(1)]], undefined, 5n), 'MS-INV-05');
    checkInvariants(X86, state([[memslot(0, 1, 0x100n, 4n, H), apic(0)], [apic(1)]]));
  });
  it('[MS-INV-05] a crafted model state whose nrMemslotPages lags a real slot throws MS-INV-05', () => {
    const vm = build(NOSMM, [SLOT0]);
    expectBroken(NOSMM, { ...observableState(vm), nrMemslotPages: 0n }, 'MS-INV-05');
  });
});

describe('[MS-INV-06] no stale INVALID', () => {
  it('[MS-INV-06] the intermediate state a DELETE publishes (the INVALID copy) is not a stable state: MS-INV-06', () => {
    const s = setUserMemoryRegion(build(NOSMM, [SLOT0]), del(0));
    expectBroken(NOSMM, observableState(at(s.published, 0)), 'MS-INV-06');
    checkInvariants(NOSMM, observableState(s.state));
  });
  it('[MS-INV-06] a crafted slot with KVM_MEMSLOT_INVALID throws MS-INV-06', () => {
    expectBroken(NOSMM, state([[memslot(0, 1, 0x100n, 1n, H, KVM_MEMSLOT_INVALID)]]), 'MS-INV-06');
  });
});

describe('[MS-INV-07] bitmap iff dirty logging', () => {
  it('[MS-INV-07] LOG_DIRTY_PAGES without a bitmap throws MS-INV-07', () => {
    expectBroken(NOSMM, state([[memslot(0, 1, 0x100n, 1n, H, 1, null)]]), 'MS-INV-07');
  });
  it('[MS-INV-07] a bitmap without LOG_DIRTY_PAGES throws MS-INV-07', () => {
    expectBroken(NOSMM, state([[memslot(0, 1, 0x100n, 1n, H, 2, 3)]]), 'MS-INV-07');
  });
  it('[MS-INV-07] with a dirty ring a logged slot may lack a bitmap, but a bitmap still needs the flag', () => {
    checkInvariants(NOSMM, { ...state([[memslot(0, 1, 0x100n, 1n, H, 1, null)]]), dirtyRing: true });
    expectBroken(NOSMM, { ...state([[memslot(0, 1, 0x100n, 1n, H, 2, 3)]]), dirtyRing: true }, 'MS-INV-07');
  });
});
