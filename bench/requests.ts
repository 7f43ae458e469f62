/**
 * Random small-state request streams for the oracle's throughput: at most 8 user slots in a
 * 256-page guest range, so every request is cheap for the model and the answers cover
 * successes and the common errors (EEXIST, EINVAL, ENOENT) alike.
 */
import * as model from '../model/index.js';
import { KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY, PAGE_SHIFT, type Profile } from '../model/index.js';
import { modelStep } from '../trace/execute.js';
import type { Request, TraceLine } from '../trace/trace.js';
import { prng } from './layout.js';

export const SMALL_STATE_SLOTS = 8;
const GFN_RANGE = 256;
const HVA_BASE = 0x7f00_0000_0000n;

/** `count` requests drawn from a fixed seed (deterministic). */
export function smallStateRequests(count: number, seed: number): Request[] {
  const rnd = prng(seed);
  const int = (n: number): number => Math.floor(rnd() * n);
  const out: Request[] = [];
  for (let i = 0; i < count; i++) {
    const r = rnd();
    if (r < 0.5) {
      const id = int(SMALL_STATE_SLOTS);
      const pages = BigInt(1 + int(8));
      const deleting = rnd() < 0.3;
      const flags = [0, 0, KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY][int(4)]!;
      out.push({
        op: 'set_user_memory_region',
        region: {
          slot: id,
          flags,
          guestPhysAddr: BigInt(int(GFN_RANGE)) << PAGE_SHIFT,
          memorySize: deleting ? 0n : pages << PAGE_SHIFT,
          // One host range per id, so that re-issues can be MOVEs and FLAGS_ONLY changes.
          userspaceAddr: HVA_BASE + (BigInt(id) << 24n),
        },
      });
    } else if (r < 0.6) {
      out.push({ op: 'get_dirty_log', slot: int(SMALL_STATE_SLOTS + 2) });
    } else if (r < 0.8) {
      out.push({ op: 'gfn_to_memslot', asId: 0, gfn: BigInt(int(GFN_RANGE + 8)) });
    } else if (r < 0.9) {
      const start = HVA_BASE + (BigInt(int(SMALL_STATE_SLOTS)) << 24n) + (BigInt(int(8)) << PAGE_SHIFT);
      out.push({ op: 'hva_to_memslots', start, end: start + (BigInt(1 + int(4)) << PAGE_SHIFT) });
    } else if (r < 0.95) {
      out.push({ op: 'get_slots', asId: 0 });
    } else {
      out.push({ op: 'get_generation', asId: 0 });
    }
  }
  return out;
}

/**
 * The requests as trace lines with the model's answers as `expect`, so that a replay compares
 * every answer (and must find no mismatch).
 */
export function traceWithExpect(profile: Profile, requests: readonly Request[]): TraceLine[] {
  let vm = model.createVm(profile);
  return requests.map((request, i) => {
    const m = modelStep(vm, request);
    vm = m.state;
    return { kind: 'request', line: i + 1, request, expect: m.answer };
  });
}

/** Trace lines as the async stream `replay()` reads. */
export async function* streamOf(lines: readonly TraceLine[]): AsyncGenerator<TraceLine> {
  for (const t of lines) yield t;
}
