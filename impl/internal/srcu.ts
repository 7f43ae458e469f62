/**
 * The read side of memslot publishing (spec/45-atomicity.md): SRCU bookkeeping shared by both
 * implementations, and the driver that runs a writer synchronously.
 *
 * A reader enters (srcu_read_lock()), dereferences the active set of one address space and
 * keeps using that set until it leaves (srcu_read_unlock()). A writer publishes a set and then
 * waits, before it touches the set it replaced or finishes the generation, until every reader
 * that entered before the publish has left (synchronize_srcu_expedited()).
 *
 * The kernel has one `kvm->srcu` per VM, so its grace period waits for readers of every
 * address space; this one counts readers per address space, which is all that [MS-ATM-01]
 * needs: a publish on one address space changes no set of another.
 *
 * Costs: lock, unlock and publish are O(1); a grace-period check is O(number of distinct
 * publish epochs that still have readers), which is at most 2 while the writer waits for
 * every grace period (readers of the set it published, and of the one before).
 */
import type { MemslotsReader, SyncPoint, WriterSteps } from '../interface.js';
import type { Profile } from '../../model/profiles.js';
import type { Gfn, Memslot } from '../../model/types.js';
import { gfnToHvaMemslot, isVisibleMemslot } from './memslot.js';

/** What srcu_read_lock() hands back: the address space and the publish epoch entered at. */
export interface SrcuToken {
  readonly asId: number;
  /** How many publishes of `asId` happened before this reader entered. */
  readonly epoch: number;
}

interface Waiter {
  readonly point: SyncPoint;
  readonly resolve: () => void;
}

/** Readers per address space, by the publish epoch they entered at. */
export class Srcu {
  /** Publishes so far, per address space. */
  private readonly epochs: number[];
  /** Live readers per address space: epoch -> count (an entry is deleted at 0). */
  private readonly readers: Map<number, number>[];
  /** Writers waiting for a grace period (one at a time: the writer holds slots_lock). */
  private waiters: Waiter[] = [];

  constructor(addressSpaces: number) {
    this.epochs = Array.from({ length: addressSpaces }, () => 0);
    this.readers = Array.from({ length: addressSpaces }, () => new Map<number, number>());
  }

  /** Mirrors: srcu_read_lock(&kvm->srcu), for a reader of `asId`. */
  lock(asId: number): SrcuToken {
    const epoch = this.epochOf(asId);
    const live = this.readers[asId]!;
    live.set(epoch, (live.get(epoch) ?? 0) + 1);
    return { asId, epoch };
  }

  /** Mirrors: srcu_read_unlock(&kvm->srcu, idx). Wakes a writer whose grace period is over. */
  unlock(token: SrcuToken): void {
    const live = this.readers[token.asId]!;
    const n = live.get(token.epoch);
    if (n === undefined) throw new Error(`srcu_read_unlock() without a reader of as ${token.asId} at epoch ${token.epoch}`);
    if (n === 1) live.delete(token.epoch);
    else live.set(token.epoch, n - 1);
    // Stryker disable next-line ConditionalExpression: a fast path; the loop below does nothing then
    if (this.waiters.length === 0) return;
    const still: Waiter[] = [];
    for (const w of this.waiters) {
      if (this.readersBefore(w.point)) still.push(w);
      else w.resolve();
    }
    this.waiters = still;
  }

  /** Counts one publish of `asId` (the rcu_assign_pointer()). @returns the new epoch. */
  publish(asId: number): number {
    const epoch = this.epochOf(asId) + 1;
    this.epochs[asId] = epoch;
    return epoch;
  }

  /** Whether a reader of `point.asId` that entered before the publish `point.epoch` is still inside. */
  readersBefore(point: SyncPoint): boolean {
    for (const epoch of this.readers[point.asId]!.keys()) if (epoch < point.epoch) return true;
    return false;
  }

  /**
   * Resolves once every reader of `point.asId` that entered before the publish has left.
   * Mirrors: synchronize_srcu_expedited(&kvm->srcu), for a writer that may sleep.
   */
  gracePeriod(point: SyncPoint): Promise<void> {
    if (!this.readersBefore(point)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ point, resolve }));
  }

  /**
   * The grace period of a writer that cannot sleep: there must be no reader to wait for. A
   * reader still inside would make the kernel's writer wait forever (a caller that holds a
   * read section while it writes deadlocks), so this throws instead.
   */
  gracePeriodNow(point: SyncPoint): void {
    if (this.readersBefore(point)) {
      throw new Error(`synchronize_srcu() for as ${point.asId} while a reader from before the publish is inside: deadlock`);
    }
  }

  private epochOf(asId: number): number {
    const e = this.epochs[asId];
    if (e === undefined) throw new RangeError(`address space ${asId} has no SRCU state`);
    return e;
  }
}

/**
 * Runs a writer to its end at once, for the synchronous API: each synchronize point must pass
 * immediately (gracePeriodNow() throws when a reader from before the publish is still inside).
 * O(1) per publish.
 * @returns what the writer returns.
 */
export function drainSteps<T>(steps: WriterSteps<T>, srcu: Srcu): T {
  for (;;) {
    const r = steps.next();
    if (r.done === true) return r.value;
    srcu.gracePeriodNow(r.value);
  }
}

/** The lookups a reader makes, on the one set it dereferenced. */
export interface SetReads<S> {
  generation(set: S): bigint;
  idToMemslot(set: S, id: number): Memslot | null;
  gfnToMemslot(set: S, gfn: Gfn): Memslot | null;
  vcpuGfnToMemslot(set: S, vcpu: number, gfn: Gfn): Memslot | null;
}

/** Readers inside a read section, each bound to the set it dereferenced at entry. */
export class Readers<S> {
  private tokens = new WeakMap<MemslotsReader, SrcuToken>();

  constructor(
    private readonly profile: Profile,
    private readonly reads: SetReads<S>,
  ) {}

  /**
   * srcu_read_lock() + srcu_dereference(): `set` is fixed here for the whole read section
   * ([MS-ATM-01]); using the reader after it left throws.
   */
  lock(srcu: Srcu, asId: number, set: S): MemslotsReader {
    const token = srcu.lock(asId);
    const live = (): S => {
      if (!this.tokens.has(reader)) throw new Error(`as ${asId}: memslot lookup after srcu_read_unlock()`);
      return set;
    };
    const r = this.reads;
    const reader: MemslotsReader = {
      asId,
      epoch: token.epoch,
      generation: () => r.generation(live()),
      idToMemslot: (id) => r.idToMemslot(live(), id),
      gfnToMemslot: (gfn) => r.gfnToMemslot(live(), gfn),
      gfnToHva: (gfn, write) => gfnToHvaMemslot(r.gfnToMemslot(live(), gfn), gfn, write),
      isVisibleGfn: (gfn) => isVisibleMemslot(this.profile, r.gfnToMemslot(live(), gfn)),
      vcpuGfnToMemslot: (vcpu, gfn) => r.vcpuGfnToMemslot(live(), vcpu, gfn),
    };
    this.tokens.set(reader, token);
    return reader;
  }

  /** srcu_read_unlock() */
  unlock(srcu: Srcu, reader: MemslotsReader): void {
    const token = this.tokens.get(reader);
    if (token === undefined) throw new Error(`as ${reader.asId}: srcu_read_unlock() of a reader that is not inside`);
    this.tokens.delete(reader);
    srcu.unlock(token);
  }
}
