import { describe, expect, it } from 'vitest';
import { PROFILES } from '../model/profiles.js';
import { replay } from './replay.js';
import { InputError, readTrace } from './trace.js';

const X86 = PROFILES['x86_64']!;
const internal = (id: number, size: string): string =>
  `{"op":"set_internal_memslot","id":${id},"guest_phys_addr":"0x0","memory_size":"${size}","userspace_addr":"0x7e0000000000"}`;

describe('replay: internal requests no kernel caller can make are input defects', () => {
  it('a set_internal_memslot with memory_size above u32 is refused, naming the line and the field', async () => {
    // __x86_set_memory_region() takes `u32 size` (7.3.4 arch/x86/kvm/x86.c:9963-9964).
    for (const size of ['0x100000000', '0x80000000000']) {
      const run = replay(readTrace(['{"op":"reset"}', internal(32764, size)]), { profile: X86 });
      await expect(run).rejects.toThrow(InputError);
      await expect(run).rejects.toMatchObject({ line: 2, field: 'memory_size' });
      await expect(run).rejects.toThrow('__x86_set_memory_region() takes a u32 size: at most 0xffffffff');
    }
  });
  it('memory_size 0xfffff000, the largest page-aligned u32, replays', async () => {
    const summary = await replay(readTrace(['{"op":"reset"}', internal(32764, '0xfffff000')]), { profile: X86 });
    expect(summary.steps).toBe(2);
    expect(summary.mismatches).toBe(0);
  });
});

describe('replay: answers the protocol cannot carry are input defects', () => {
  it('a get_dirty_log of an INITIALLY_SET 2^31-page slot (a bit past 2^27) is refused, naming the line and the field', async () => {
    const lines = [
      '{"op":"reset"}',
      '{"op":"enable_cap","cap":"MANUAL_DIRTY_LOG_PROTECT2","args0":"0x3","flags":0}',
      '{"op":"set_user_memory_region","slot":0,"flags":1,"guest_phys_addr":"0x0","memory_size":"0x7ffff000000","userspace_addr":"0x0"}',
      '{"op":"get_dirty_log","slot":0}',
    ];
    const run = replay(readTrace(lines), { profile: X86 });
    await expect(run).rejects.toThrow(InputError);
    await expect(run).rejects.toMatchObject({ line: 4, field: 'slot' });
    // A slot of 2^27 pages is exchanged whole.
    const small = lines.map((l) => l.replace('0x7ffff000000', '0x8000000000'));
    const summary = await replay(readTrace(small), { profile: X86 });
    expect(summary.steps).toBe(4);
  });
});
