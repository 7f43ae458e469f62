/**
 * [MS-GMS-05] [MS-GMS-06] [MS-GMS-02] [MS-VAL-01] guest_memfd slots are immutable: every request
 * on one but a delete fails, an identical re-issue included (MS-NOP-01 does not hold for them).
 * Re-issue it as it is, move it, add dirty logging, drop KVM_MEM_GUEST_MEMFD (v2 and v1), or
 * re-issue it with v1; or add KVM_MEM_GUEST_MEMFD to an ordinary slot.
 */
import fc from 'fast-check';
import { KVM_MEM_GUEST_MEMFD, KVM_MEM_LOG_DIRTY_PAGES, PAGE_SHIFT, U64_MAX, type MemoryRegion2 } from '../../model/index.js';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { pickArb, type ArbConfig } from '../arbitraries.js';
import { TargetCommand, gmemSlots, regionOf, userSlots } from './common.js';

export type GmemModify = 'reissue' | 'move' | 'log' | 'drop-flag' | 'v1-reissue' | 'v1-drop-flag' | 'add-flag';

export class ModifyGmemSlot extends TargetCommand {
  constructor(
    readonly pick: number,
    readonly how: GmemModify,
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    const bound = gmemSlots(m);
    const live = this.how === 'add-flag' || bound.length === 0 ? userSlots(m) : bound;
    const t = live[this.pick % live.length]!;
    const r = regionOf(t);
    const v2 = (x: Partial<MemoryRegion2>): Op => ({
      kind: 'set2',
      region: { ...r, guestMemfd: t.gmem?.file ?? 'closed', guestMemfdOffset: (t.gmem?.pgoff ?? 0n) << PAGE_SHIFT, ...x },
    });
    const noGmem = (r.flags & ~KVM_MEM_GUEST_MEMFD) >>> 0;
    switch (this.how) {
      case 'reissue':
        return v2({});
      case 'move':
        return v2({ guestPhysAddr: ((t.baseGfn + t.npages) << PAGE_SHIFT) & U64_MAX });
      case 'log':
        return v2({ flags: (r.flags | KVM_MEM_LOG_DIRTY_PAGES) >>> 0 });
      case 'drop-flag':
        return v2({ flags: noGmem });
      case 'v1-reissue':
        return { kind: 'set', region: r };
      case 'v1-drop-flag':
        return { kind: 'set', region: { ...r, flags: noGmem } };
      case 'add-flag':
        return v2({ flags: (r.flags | KVM_MEM_GUEST_MEMFD) >>> 0 });
    }
  }

  toString(): string {
    return `modify_gmem(${this.how === 'add-flag' ? 'slot' : 'bound slot'}[${this.pick}], ${this.how})`;
  }
}

export function modifyGmemSlotArb(_c: ArbConfig): fc.Arbitrary<ModifyGmemSlot> {
  const how = fc.constantFrom<GmemModify>(
    'reissue',
    'reissue',
    'move',
    'log',
    'drop-flag',
    'drop-flag',
    'v1-reissue',
    'v1-drop-flag',
    'v1-drop-flag',
    'add-flag',
    'add-flag',
  );
  return fc.tuple(pickArb, how).map(([p, h]) => new ModifyGmemSlot(p, h));
}
