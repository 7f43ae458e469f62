/**
 * The SRCU bookkeeping both implementations share (srcu.ts), on its own: which readers a grace
 * period waits for, when a waiting writer wakes, and the misuse it refuses. The concurrency
 * suite drives it through whole implementations; here each decision is pinned directly.
 */
import { describe, expect, it } from 'vitest';
import type { Gfn, Memslot } from '../../model/index.js';
import { NOSMM, memslot } from '../../test/rules/helpers.js';
import { Readers, Srcu, drainSteps } from './srcu.js';
import type { SyncPoint, WriterSteps } from '../interface.js';

describe('Srcu', () => {
  it('[MS-ATM-01] a grace period waits only for readers of its address space that entered before the publish', () => {
    const srcu = new Srcu(2);
    const before = srcu.lock(0);
    expect(before).toEqual({ asId: 0, epoch: 0 });
    const other = srcu.lock(1);
    const epoch = srcu.publish(0);
    expect(epoch).toBe(1);
    const after = srcu.lock(0);
    expect(after).toEqual({ asId: 0, epoch: 1 });
    const point: SyncPoint = { asId: 0, epoch };
    expect(srcu.readersBefore(point)).toBe(true);
    srcu.unlock(before);
    // The reader of address space 1 and the one that entered after the publish do not count.
    expect(srcu.readersBefore(point)).toBe(false);
    expect(srcu.readersBefore({ asId: 1, epoch: 1 })).toBe(true);
    srcu.unlock(other);
    srcu.unlock(after);
  });

  it('[MS-ATM-01] readers are counted: the grace period is over when the last of several leaves', () => {
    const srcu = new Srcu(1);
    const a = srcu.lock(0);
    const b = srcu.lock(0);
    const point = { asId: 0, epoch: srcu.publish(0) };
    srcu.unlock(a);
    expect(srcu.readersBefore(point)).toBe(true);
    srcu.unlock(b);
    expect(srcu.readersBefore(point)).toBe(false);
    expect(() => srcu.unlock(b)).toThrow('srcu_read_unlock() without a reader of as 0 at epoch 0');
  });

  it('[MS-ATM-01] publishes count per address space', () => {
    const srcu = new Srcu(2);
    expect([srcu.publish(0), srcu.publish(0), srcu.publish(1)]).toEqual([1, 2, 1]);
    expect(srcu.lock(0).epoch).toBe(2);
    expect(srcu.lock(1).epoch).toBe(1);
    expect(() => srcu.lock(2)).toThrow(new RangeError('address space 2 has no SRCU state'));
    expect(() => srcu.publish(-1)).toThrow(new RangeError('address space -1 has no SRCU state'));
  });

  it('[MS-ATM-01] a waiting writer wakes when its last reader leaves, and not before; another writer keeps waiting', async () => {
    const srcu = new Srcu(2);
    const r0 = srcu.lock(0);
    const r0b = srcu.lock(0);
    const r1 = srcu.lock(1);
    const p0 = { asId: 0, epoch: srcu.publish(0) };
    const p1 = { asId: 1, epoch: srcu.publish(1) };
    const woke: string[] = [];
    const w0 = srcu.gracePeriod(p0).then(() => woke.push('as0'));
    const w1 = srcu.gracePeriod(p1).then(() => woke.push('as1'));
    srcu.unlock(r0);
    await Promise.resolve();
    expect(woke).toEqual([]);
    srcu.unlock(r0b);
    await w0;
    expect(woke).toEqual(['as0']);
    srcu.unlock(r1);
    await w1;
    expect(woke).toEqual(['as0', 'as1']);
    // Nothing to wait for: resolved at once.
    await srcu.gracePeriod({ asId: 0, epoch: srcu.publish(0) });
  });

  it('[MS-ATM-01] a writer that cannot sleep refuses to wait for a reader from before its publish', () => {
    const srcu = new Srcu(1);
    const r = srcu.lock(0);
    const point = { asId: 0, epoch: srcu.publish(0) };
    expect(() => srcu.gracePeriodNow(point)).toThrow('synchronize_srcu() for as 0 while a reader from before the publish is inside: deadlock');
    srcu.unlock(r);
    expect(() => srcu.gracePeriodNow(point)).not.toThrow();
  });

  it('[MS-ATM-01] drainSteps runs a writer through each of its publishes and returns its answer', () => {
    const srcu = new Srcu(1);
    const seen: number[] = [];
    function* writer(): WriterSteps<string> {
      for (let i = 0; i < 3; i++) {
        const epoch = srcu.publish(0);
        seen.push(epoch);
        yield { asId: 0, epoch };
      }
      return 'done';
    }
    expect(drainSteps(writer(), srcu)).toBe('done');
    expect(seen).toEqual([1, 2, 3]);
    const r = srcu.lock(0);
    expect(() => drainSteps(writer(), srcu)).toThrow(/deadlock/);
    srcu.unlock(r);
  });
});

describe('Readers', () => {
  const S = memslot(0, 1, 0x10n, 2n, 0x40_0000n);
  /** A set is just a generation and one slot here. */
  interface FakeSet {
    generation: bigint;
    slot: Memslot | null;
  }
  const lookups = {
    generation: (set: FakeSet) => set.generation,
    idToMemslot: (set: FakeSet, id: number) => (set.slot?.id === id ? set.slot : null),
    gfnToMemslot: (set: FakeSet, gfn: Gfn) => (set.slot !== null && gfn >= set.slot.baseGfn && gfn < set.slot.baseGfn + set.slot.npages ? set.slot : null),
    vcpuGfnToMemslot: (set: FakeSet, vcpu: number, gfn: Gfn) => (vcpu === 7 ? lookups.gfnToMemslot(set, gfn) : null),
  };

  it('[MS-ATM-01][MS-LKP-08][MS-LKP-09] a reader answers from the set it entered with, through the shared lookups', () => {
    const srcu = new Srcu(1);
    const readers = new Readers<FakeSet>(NOSMM, lookups);
    const set: FakeSet = { generation: 4n, slot: S };
    const reader = readers.lock(srcu, 0, set);
    expect([reader.asId, reader.epoch]).toEqual([0, 0]);
    expect(reader.generation()).toBe(4n);
    expect(reader.idToMemslot(1)).toBe(S);
    expect(reader.idToMemslot(2)).toBeNull();
    expect(reader.gfnToMemslot(0x11n)).toBe(S);
    expect(reader.gfnToHva(0x11n, true)).toEqual({ ok: true, hva: 0x40_1000n });
    expect(reader.gfnToHva(0x12n, false)).toEqual({ ok: false, error: 'KVM_HVA_ERR_BAD' });
    expect(reader.isVisibleGfn(0x10n)).toBe(true);
    expect(reader.isVisibleGfn(0x12n)).toBe(false);
    expect(reader.vcpuGfnToMemslot(7, 0x10n)).toBe(S);
    expect(reader.vcpuGfnToMemslot(6, 0x10n)).toBeNull();
    // A generation read later sees the same set object change (bit 63 dropped).
    set.generation = 5n;
    expect(reader.generation()).toBe(5n);
    readers.unlock(srcu, reader);
  });

  it('[MS-ATM-01] a reader that left cannot look up or leave again; leaving ends its read section', () => {
    const srcu = new Srcu(1);
    const readers = new Readers<FakeSet>(NOSMM, lookups);
    const reader = readers.lock(srcu, 0, { generation: 1n, slot: S });
    const point = { asId: 0, epoch: srcu.publish(0) };
    expect(srcu.readersBefore(point)).toBe(true);
    readers.unlock(srcu, reader);
    expect(srcu.readersBefore(point)).toBe(false);
    const after = 'as 0: memslot lookup after srcu_read_unlock()';
    expect(() => reader.generation()).toThrow(after);
    expect(() => reader.idToMemslot(1)).toThrow(after);
    expect(() => reader.gfnToMemslot(0x10n)).toThrow(after);
    expect(() => reader.gfnToHva(0x10n, false)).toThrow(after);
    expect(() => reader.isVisibleGfn(0x10n)).toThrow(after);
    expect(() => reader.vcpuGfnToMemslot(7, 0x10n)).toThrow(after);
    expect(() => readers.unlock(srcu, reader)).toThrow('as 0: srcu_read_unlock() of a reader that is not inside');
  });
});
