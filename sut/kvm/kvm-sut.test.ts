/**
 * The real-kernel driver (kvm-sut.c) against this machine's /dev/kvm. The expected answers are
 * the "Measured behaviour" tables of kernel-memslots.md (Linux 6.18, x86-64, one address space).
 * Skipped, with the reason in the title, where /dev/kvm or a C compiler is unavailable.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChildSut, SutError } from '../child.js';
import { OPS } from '../../trace/trace.js';
import { PROFILES, profileToJson } from '../../model/profiles.js';
import { buildKvmDriver, cacheDir, kvmDriverPath, kvmDriverSource, kvmUsable, packageRoot } from '../kvm-driver.js';

const usable = kvmUsable();

const LOG_DIRTY = 1;
const READONLY = 2;
const MiB = 0x100000n;

const hex = (v: bigint): string => `0x${v.toString(16)}`;

describe.skipIf(!usable.ok)('kvm-sut on the real kernel', () => {
  let sut: ChildSut;

  beforeAll(async () => {
    sut = await ChildSut.start([await kvmDriverPath()], { timeoutMs: 10_000 });
  });
  afterAll(async () => {
    await sut?.close();
  });

  async function ask(line: string): Promise<unknown> {
    return (await sut.requestLine(line)).value;
  }

  function set(slot: number, flags: number, gpa: bigint, size: bigint, uaddr: bigint): Promise<unknown> {
    return ask(
      JSON.stringify({
        op: 'set_user_memory_region',
        slot,
        flags,
        guest_phys_addr: hex(gpa),
        memory_size: hex(size),
        userspace_addr: hex(uaddr),
      }),
    );
  }

  const dirtyLog = (slot: number): Promise<unknown> => ask(JSON.stringify({ op: 'get_dirty_log', slot }));
  const reset = async (): Promise<void> => expect(await ask('{"op":"reset"}')).toEqual({ ok: true });
  const OK = { ret: 0 };
  const EINVAL = { errno: 'EINVAL' };
  const EEXIST = { errno: 'EEXIST' };
  const ENOENT = { errno: 'ENOENT' };
  /** A successful GET of a clean bitmap (spec/80: the bitmap in the answer). */
  const CLEAN = { ret: 0, bitmap: '' };
  const lists = async (op: string): Promise<boolean> => ((await sut.request({ op: 'hello', protocol: 1 })).value as { ops: string[] }).ops.includes(op);

  it('hello reports the probed profile', async () => {
    const reply = await sut.request({ op: 'hello', protocol: 1 });
    const v = reply.value as Record<string, unknown>;
    expect(v['protocol']).toBe(1);
    expect(v['name']).toMatch(/^linux-kvm \d+\.\d+/);
    // The four of protocol v1, then optional ops where they work (the memory API where the
    // kernel has it; write, clear_dirty_log, enable_cap where the driver's probe worked).
    const ops = v['ops'] as string[];
    expect(ops.slice(0, 4)).toEqual(['hello', 'reset', 'set_user_memory_region', 'get_dirty_log']);
    for (const op of ops.slice(4)) expect([...OPS, 'reset_vm_type']).toContain(op);
    // Our hosts' kernel (6.18) is x86_64-nosmm, every field (spec/60), the memory API's included;
    // write_drops_mappings is the driver's own (its write deletes a code slot, which zaps all mappings).
    expect(v['profile']).toEqual({ ...JSON.parse(JSON.stringify(profileToJson(PROFILES['x86_64-nosmm']!))), write_drops_mappings: true });
  });

  it('answers slot-id, address-space and flag checks as measured', async () => {
    await reset();
    expect(await set(32763, 0, 0n, 0x1000n, 0n)).toEqual(OK);
    expect(await set(32764, 0, MiB, 0x1000n, 0n)).toEqual(EINVAL);
    expect(await set(0x10000, 0, MiB, 0x1000n, 0n)).toEqual(EINVAL); // as_id 1
    expect(await set(0x20000, 0, MiB, 0x1000n, 0n)).toEqual(EINVAL); // as_id 2
    expect(await set(1, 4, MiB, 0x1000n, 0n)).toEqual(EINVAL); // GUEST_MEMFD on v1
    expect(await set(1, 8, MiB, 0x1000n, 0n)).toEqual(EINVAL);
    expect(await set(5, 0, 0n, 0n, 0n)).toEqual(EINVAL); // delete of a missing slot
  });

  it('answers address limits as measured', async () => {
    await reset();
    expect(await set(0, 0, (1n << 52n) - 0x1000n, 0x1000n, 0n)).toEqual(OK); // ends at 2^52
    expect(await set(1, 0, 1n << 52n, 0x1000n, 0n)).toEqual(EINVAL); // starts at 2^52
    expect(await set(2, 0, MiB, 0x1000n, 0x7fffffffe000n)).toEqual(OK); // ends at 0x7ffffffff000
    expect(await set(3, 0, 2n * MiB, 0x2000n, 0x7fffffffe000n)).toEqual(EINVAL);
    expect(await set(4, 0, 0n, 0x7fffffffn << 12n, 0n)).toEqual(EEXIST); // passes the page limit
    expect(await set(4, 0, 0n, 0x80000000n << 12n, 0n)).toEqual(EINVAL); // 2^31 pages
  });

  it('answers overlap, modify and delete rules as measured', async () => {
    await reset();
    expect(await set(0, 0, 1n * MiB, 2n * MiB, 0x10000000n)).toEqual(OK);
    expect(await set(0, 0, 1n * MiB, 2n * MiB, 0x10000000n)).toEqual(OK); // identical re-issue
    expect(await set(1, 0, 2n * MiB, 2n * MiB, 0x20000000n)).toEqual(EEXIST); // overlap
    expect(await set(1, 0, 3n * MiB, 2n * MiB, 0x10000000n)).toEqual(OK); // adjacent, aliased hva
    expect(await set(0, READONLY, 1n * MiB, 2n * MiB, 0x10000000n)).toEqual(EINVAL); // RO toggle
    expect(await set(0, 0, 1n * MiB, 1n * MiB, 0x10000000n)).toEqual(EINVAL); // resize
    expect(await set(0, 0, 1n * MiB, 2n * MiB, 0x30000000n)).toEqual(EINVAL); // new uaddr
    expect(await set(0, 0, 0x100000n - 0x1000n, 2n * MiB, 0x10000000n)).toEqual(OK); // move onto itself
    expect(await set(0, READONLY, 0x123000n, 0n, 0x5000n)).toEqual(OK); // delete, any gpa/RO
    expect(await set(0, 0, 0n, 0n, 0n)).toEqual(EINVAL); // already gone
  });

  it('answers get_dirty_log as measured', async () => {
    await reset();
    expect(await dirtyLog(0)).toEqual(ENOENT); // no slot
    expect(await set(0, 0, 0n, 16n * MiB, 0n)).toEqual(OK);
    expect(await dirtyLog(0)).toEqual(ENOENT); // no LOG_DIRTY_PAGES
    expect(await set(0, LOG_DIRTY, 0n, 16n * MiB, 0n)).toEqual(OK); // FLAGS_ONLY
    expect(await dirtyLog(0)).toEqual(CLEAN);
    expect(await set(1, LOG_DIRTY, 16n * MiB, 0x1000n, 0n)).toEqual(OK);
    expect(await dirtyLog(1)).toEqual(CLEAN);
    expect(await dirtyLog(32764)).toEqual(EINVAL);
    expect(await dirtyLog(0x10000)).toEqual(EINVAL);
    await reset();
    expect(await dirtyLog(0)).toEqual(ENOENT); // reset dropped everything
  });

  it('[MS-WR-01][MS-WR-02][MS-WR-03][MS-WR-04][MS-DLB-02][MS-CLR-05][MS-MAN-03] writes through a vCPU set the bits GET and CLEAR see', async (ctx) => {
    if (!(await lists('write'))) ctx.skip();
    await reset();
    const write = (as_id: number, gpa: bigint): Promise<unknown> => ask(JSON.stringify({ op: 'write', as_id, gpa: hex(gpa) }));
    const base = 0x7e00_0000_0000n;
    expect(await set(0, LOG_DIRTY, MiB, 0x20_0000n, base)).toEqual(OK);
    expect(await write(0, MiB + 0x123n)).toEqual(OK);
    expect(await write(0, MiB + 0x9fffn)).toEqual(OK);
    expect(await dirtyLog(0)).toEqual({ ret: 0, bitmap: '0102' }); // pages 0 and 9
    expect(await dirtyLog(0)).toEqual(CLEAN); // get-and-clear
    expect(await write(0, 0x5000_0000n)).toEqual({ exit: 'mmio' }); // no slot
    expect(await set(1, READONLY, 4n * MiB, 0x1000n, base + 0x100_0000n)).toEqual(OK);
    expect(await write(0, 4n * MiB)).toEqual({ exit: 'mmio' }); // read-only
    expect(await set(2, 0, 5n * MiB, 0x1000n, base + 0x200_0000n)).toEqual(OK);
    expect(await write(0, 5n * MiB)).toEqual(OK); // plain
    expect(await set(3, LOG_DIRTY, 1n << 32n, 0x2000n, base + 0x300_0000n)).toEqual(OK);
    expect(await write(0, (1n << 32n) + 0x1001n)).toEqual(OK); // 64-bit mode
    expect(await dirtyLog(3)).toEqual({ ret: 0, bitmap: '02' });
    if (await lists('enable_cap')) {
      expect(await ask(JSON.stringify({ op: 'enable_cap', cap: 'MANUAL_DIRTY_LOG_PROTECT2', args0: '0x1', flags: 0 }))).toEqual(OK);
      expect(await write(0, MiB)).toEqual(OK);
      expect(await dirtyLog(0)).toEqual({ ret: 0, bitmap: '01' });
      expect(await dirtyLog(0)).toEqual({ ret: 0, bitmap: '01' }); // manual: GET does not clear
      expect(await ask(JSON.stringify({ op: 'clear_dirty_log', slot: 0, first_page: '0x0', num_pages: 64, bitmap: '01' }))).toEqual(OK);
      expect(await dirtyLog(0)).toEqual(CLEAN);
      expect(await ask(JSON.stringify({ op: 'clear_dirty_log', slot: 0, first_page: '0x1', num_pages: 64, bitmap: '' }))).toEqual(EINVAL);
    }
    expect(await write(0, 1n << 60n)).toHaveProperty('error'); // beyond the vCPU's physical address bits
  });

  it('ignores extra fields and answers bad requests with an error line', async () => {
    await reset();
    const req = {
      op: 'set_user_memory_region',
      slot: 0,
      flags: 0,
      guest_phys_addr: '4096',
      memory_size: '0X1000',
      userspace_addr: '0x0',
      expect: { ret: 0, note: 'nested {"x"}', list: [1, 2] },
    };
    expect(await sut.request(req)).toMatchObject({ value: OK });
    const errorOf = async (line: string): Promise<string> => {
      const v = (await ask(line)) as { error?: unknown };
      expect(typeof v.error).toBe('string');
      return v.error as string;
    };
    expect(await errorOf('{"op":"frobnicate"}')).toContain('frobnicate');
    expect(await errorOf('not json')).toMatch(/JSON object/);
    expect(await errorOf('{"op":"get_dirty_log","slot":-1}')).toMatch(/slot.*negative/);
    expect(await errorOf('{"op":"get_dirty_log","slot":1.5}')).toMatch(/slot.*integer/);
    expect(await errorOf('{"op":"get_dirty_log","slot":4294967296}')).toMatch(/slot.*2\^32-1/);
    expect(await errorOf('{"op":"get_dirty_log"}')).toMatch(/missing field "slot"/);
    expect(
      await errorOf('{"op":"set_user_memory_region","slot":0,"flags":0,"guest_phys_addr":"0x10000000000000000","memory_size":"0","userspace_addr":"0"}'),
    ).toMatch(/guest_phys_addr/);
    expect(await errorOf('{"op":"set_user_memory_region","slot":0,"flags":0,"guest_phys_addr":"0","memory_size":4096,"userspace_addr":"0"}')).toMatch(
      /memory_size.*string/,
    );
    expect(await errorOf('{"op":"hello","protocol":2}')).toMatch(/protocol/);
    // Still in step after all that.
    expect(await set(0, 0, 0x1000n, 0x1000n, 0n)).toEqual(OK);
  });

  it('exits with status 0 at the end of its input', async () => {
    const r = spawnSync(await kvmDriverPath(), [], { input: '{"op":"reset"}\n', encoding: 'utf8', timeout: 5000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('{"ok":true}\n');
    expect(r.stderr).toBe('');
  });
});

if (!usable.ok) {
  it.skip(`kvm-sut on the real kernel: ${usable.reason}`, () => {});
}

describe('kvm-driver build', () => {
  const saved = { CC: process.env['CC'], cache: process.env['MEMSLOT_ORACLE_CACHE'] };
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'memslot-oracle-cache-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  function withEnv<T>(cc: string | undefined, fn: () => Promise<T>): Promise<T> {
    process.env['MEMSLOT_ORACLE_CACHE'] = dir;
    if (cc === undefined) delete process.env['CC'];
    else process.env['CC'] = cc;
    return fn().finally(() => {
      for (const [k, v] of [
        ['CC', saved.CC],
        ['MEMSLOT_ORACLE_CACHE', saved.cache],
      ] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    });
  }

  it('finds the C source from the package root and picks the cache folder', () => {
    expect(existsSync(path.join(packageRoot(), 'package.json'))).toBe(true);
    expect(kvmDriverSource()).toBe(path.join(packageRoot(), 'sut', 'kvm', 'kvm-sut.c'));
    expect(cacheDir({ MEMSLOT_ORACLE_CACHE: '/a', XDG_CACHE_HOME: '/b' })).toBe('/a');
    expect(cacheDir({ XDG_CACHE_HOME: '/b' })).toBe(path.join('/b', 'memslot-oracle'));
    expect(cacheDir({})).toMatch(/\.cache[\\/]memslot-oracle$/);
  });

  it('names the cached driver by the hash of kvm-sut.c and the files it #includes (dirty-ring.inc.c, vcpu-write.inc.c)', async (ctx) => {
    if (spawnSync('cc', ['--version']).error !== undefined) ctx.skip();
    const { createHash } = await import('node:crypto');
    const { readFileSync } = await import('node:fs');
    const src = path.join(packageRoot(), 'sut', 'kvm');
    const hash = createHash('sha256')
      .update(readFileSync(path.join(src, 'kvm-sut.c')))
      .update(readFileSync(path.join(src, 'dirty-ring.inc.c')))
      .update(readFileSync(path.join(src, 'vcpu-write.inc.c')))
      .digest('hex')
      .slice(0, 12);
    const own = mkdtempSync(path.join(tmpdir(), 'memslot-oracle-cache-'));
    const before = process.env['MEMSLOT_ORACLE_CACHE'];
    process.env['MEMSLOT_ORACLE_CACHE'] = own;
    try {
      expect(path.basename(await buildKvmDriver())).toBe(`kvm-sut-${hash}`);
    } finally {
      if (before === undefined) delete process.env['MEMSLOT_ORACLE_CACHE'];
      else process.env['MEMSLOT_ORACLE_CACHE'] = before;
      rmSync(own, { recursive: true, force: true });
    }
  });

  it('reports a missing compiler as a setup error', async () => {
    const e = await withEnv('/nonexistent/cc', () => buildKvmDriver()).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SutError);
    expect((e as SutError).kind).toBe('setup');
    expect((e as SutError).message).toMatch(/no C compiler.*set CC/);
  });

  it.skipIf(!usable.ok)('reports a compile failure with the compiler stderr, and caches a good build', async () => {
    const e = await withEnv('cc -include /nonexistent/memslot.h', () => buildKvmDriver()).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SutError);
    expect((e as SutError).message).toMatch(/compiling .*kvm-sut\.c .*failed.*nonexistent\/memslot\.h/);
    const built = await withEnv(undefined, () => buildKvmDriver());
    expect(path.basename(built)).toMatch(/^kvm-sut-[0-9a-f]{12}$/);
    expect(await withEnv(undefined, () => buildKvmDriver())).toBe(built);
    expect(readdirSync(dir)).toEqual([path.basename(built)]); // no temporary files left
  });
});
