// Writes the hand-picked request list (JSON Lines, no expect) to stdout. The kernel's
// answers are recorded with:
//   node test/ground-truth/handpicked-requests.mjs > /tmp/handpicked.jsonl
//   memslot-oracle replay /tmp/handpicked.jsonl --sut kvm --record test/ground-truth/kernel-handpicked.jsonl
// Each group starts from a fresh VM. Sizes stay small: an accepted slot of 2^31-1 pages costs
// the kernel about 21 GB (measured), so that edge is probed only on the rejected side here.
const out = [];
const hex = (v) => '0x' + BigInt(v).toString(16);
const U = 0x7f0000000000n;
const set = (slot, flags, gpa, size, uaddr) =>
  out.push({ op: 'set_user_memory_region', slot, flags, guest_phys_addr: hex(gpa), memory_size: hex(size), userspace_addr: hex(uaddr) });
const dirty = (slot) => out.push({ op: 'get_dirty_log', slot });
const reset = () => out.push({ op: 'reset' });
const P = 0x1000n;

// Ids and address spaces.
reset();
for (const slot of [0, 1, 32762, 32763, 32764, 32765, 32766, 32767, 65535, 0x10000, 0x10001, 0x17ffc, 0x1ffff, 0x20000, 0xffff0000, 0xffff7ffc, 0xffffffff]) {
  set(slot, 0, BigInt(slot & 0xffff) * 0x10000n + 0x100000000n, P, U + BigInt(slot & 0xffff) * P);
  dirty(slot);
}
// Every flag bit alone on the v1 ioctl, on a fresh id each time, then delete.
reset();
for (let bit = 0; bit < 32; bit++) {
  set(100 + bit, (1 << bit) >>> 0, BigInt(bit) * 0x200000n, 0x200000n, U);
  dirty(100 + bit);
}
for (let bit = 0; bit < 32; bit++) set(100 + bit, 0, 0n, 0n, 0n);
// Alignment of size, gpa, uaddr; for creates and for deletes.
reset();
for (const [gpa, size, uaddr] of [
  [0x1000n, 0x1001n, U],
  [0x1000n, 0xfffn, U],
  [0x1000n, 0x800n, U],
  [0x1001n, 0x1000n, U],
  [0x1800n, 0x1000n, U],
  [0x1000n, 0x1000n, U + 1n],
  [0x1000n, 0x1000n, U + 0x800n],
  [0x1001n, 0x1001n, U + 1n],
])
  set(1, 0, gpa, size, uaddr);
set(1, 0, 0x1000n, 0x1000n, U);
set(1, 0, 0x1001n, 0n, U);
set(1, 0, 0x1000n, 0n, U + 1n);
set(1, 8, 0x1000n, 0n, U);
set(1, 2, 0x5000n, 0n, 0n); // delete with READONLY and another gpa: success
set(1, 0, 0x1000n, 0n, U); // now missing: EINVAL
// The user address limit and u64 wrap of userspace_addr + memory_size.
reset();
const LIM = 0x7ffffffff000n;
for (const [uaddr, size] of [
  [LIM - P, P],
  [LIM, P],
  [LIM - 2n * P, 2n * P],
  [LIM - P, 2n * P],
  [0x800000000000n, P],
  [0xfffffffffffff000n, 0x2000n],
  [0xfffffffffffff000n, P],
  [0n, P],
]) {
  set(2, 0, 0x10000n, size, uaddr);
  set(2, 0, 0x10000n, 0n, 0n);
}
set(3, 0, 0x20000n, P, U);
set(3, 0, 0n, 0n, LIM);
set(3, 0, 0x20000n, P, U);
set(3, 0, 0n, 0n, LIM + P);
// Guest address wrap, max gfn, page-count limit (rejected side only).
reset();
const MAXGFN = (1n << 40n) - 1n;
for (const [gpa, size] of [
  [0xfffffffffffff000n, 0x2000n],
  [0xfffffffffffff000n, P],
  [MAXGFN << 12n, P],
  [(MAXGFN + 1n) << 12n, P],
  [(MAXGFN - 1n) << 12n, 2n * P],
  [(MAXGFN - 1n) << 12n, 3n * P],
  [1n << 52n, P],
  [(1n << 52n) - P, P],
  [0n, (1n << 31n) << 12n],
  [0n, ((1n << 31n) + 5n) << 12n],
  [0n, 0xfffffffffffff000n],
]) {
  set(4, 0, gpa, size, U);
  set(4, 0, 0n, 0n, 0n);
}
// Overlap shapes against slot 10 at gfn 0x100..0x1ff.
reset();
set(10, 0, 0x100000n, 0x100000n, U);
const shapes = [
  [0xff000n, P],
  [0xff000n, 2n * P],
  [0x100000n, P],
  [0x1ff000n, P],
  [0x1ff000n, 2n * P],
  [0x200000n, P],
  [0x80000n, 0x80000n],
  [0x80000n, 0x81000n],
  [0x150000n, 0x10000n],
  [0x0n, 0x400000n],
  [0x100000n, 0x100000n],
];
for (const [gpa, size] of shapes) {
  set(11, 0, gpa, size, U);
  set(11, 0, 0n, 0n, 0n);
}
// Overlap is checked before the max gfn: a slot that overlaps and ends past it.
set(12, 0, MAXGFN << 12n, P, U);
set(13, 0, MAXGFN << 12n, 2n * P, U);
set(13, 0, (MAXGFN + 1n) << 12n, P, U);
// Modify: uaddr change, resize, READONLY toggle, identical, flags, move, move onto own range, move past max gfn.
reset();
set(20, 1, 0x400000n, 0x200000n, U);
dirty(20);
set(20, 1, 0x400000n, 0x200000n, U + P);
set(20, 1, 0x400000n, 0x201000n, U);
set(20, 3, 0x400000n, 0x200000n, U);
set(20, 1, 0x400000n, 0x200000n, U);
set(20, 0, 0x400000n, 0x200000n, U);
dirty(20);
set(20, 1, 0x400000n, 0x200000n, U);
dirty(20);
set(20, 1, 0x3ff000n, 0x200000n, U);
dirty(20);
set(20, 1, 0x400000n, 0x200000n, U);
set(20, 0, 0x500000n, 0x200000n, U);
dirty(20);
set(20, 1, 0x400000n, 0x200000n, U);
dirty(20);
set(20, 1, (MAXGFN - 0x1ffn) << 12n, 0x200000n, U);
set(20, 1, (MAXGFN - 0x1fen) << 12n, 0x200000n, U);
dirty(20);
set(20, 1, 0x400000n, 0x200000n, U);
set(21, 2, 0x800000n, P, U);
set(21, 0, 0x800000n, P, U);
set(21, 2, 0x801000n, P, U);
dirty(21);
set(21, 3, 0x801000n, P, U);
dirty(21);
set(21, 0, 0n, 0n, 0n);
set(21, 0, 0x800000n, P, U);
dirty(21);
// Delete and re-create, move by -4096 and back (set_memory_region_test.c shapes).
reset();
set(10, 0, 0xc0000000n, 0x200000n, U);
set(10, 0, 0xc0000000n - P, 0x200000n, U);
set(10, 0, 0xc0000000n, 0x200000n, U);
set(10, 0, 0n, 0n, 0n);
set(10, 0, 0n, 0n, 0n);
set(10, 0, 0xc0000000n, 0x200000n, U);
// Host ranges may alias: same uaddr for two slots.
set(30, 0, 0x10000000n, 0x10000n, U);
set(31, 0, 0x20000000n, 0x10000n, U);
set(32, 0, 0x30000000n, 0x10000n, U + 0x8000n);
// The first ids of a full address space, adjacency chains.
reset();
for (let i = 0; i < 40; i++) set(i, i % 2, BigInt(i) * 0x10000n, 0x10000n, U + BigInt(i) * 0x10000n);
for (let i = 0; i < 40; i += 3) set(i, 0, 0n, 0n, 0n);
for (let i = 0; i < 40; i += 3) set(i, 0, BigInt(i) * 0x10000n + P, 0x10000n, U);
for (let i = 0; i < 40; i++) dirty(i);
for (const l of out) process.stdout.write(JSON.stringify(l) + '\n');
