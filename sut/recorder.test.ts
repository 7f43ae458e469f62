/**
 * The VMM recorder (sut/recorder/memslot-recorder.c) on a host without /dev/kvm: a stand-in
 * kernel (test/recorder/fake-kvm.c, preloaded after the recorder, /dev/null playing /dev/kvm)
 * answers a tiny VMM's ioctls (test/recorder/vmm-calls.c), and the recorder's lines are checked
 * exactly; then `memslot-oracle record --out F -- CMD` (the built CLI) runs the same VMM.
 * Real QEMU on real KVM is recorded by `npm run kernel-matrix -- --vmm qemu` (test/ground-truth/vmm/).
 * Skipped, with the reason in the title, where there is no C compiler.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRecorder, recorderEnv, sideLogPath } from './recorder.js';
import { packageRoot } from './kvm-driver.js';
import { readTrace, formatProfileLine } from '../trace/trace.js';
import { PROFILES } from '../model/profiles.js';

const cc = spawnSync(process.env['CC'] ?? 'cc', ['--version'], { stdio: 'ignore' });
const noCc = cc.error !== undefined ? `no C compiler (${process.env['CC'] ?? 'cc'})` : null;
const ROOT = packageRoot();
const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
const devNull = statSync('/dev/null');
const KVM_DEV = `${Math.floor(devNull.rdev / 256)}:${devNull.rdev % 256}`;

const EXPECTED_TRACE = [
  '{"op":"check_extension","cap":"NR_MEMSLOTS","fd":"system","expect":{"value":10}}',
  '{"op":"reset","expect":{"ok":true}}',
  '{"op":"check_extension","cap":"GUEST_MEMFD","fd":"vm","expect":{"value":234}}',
  '{"op":"set_user_memory_region","slot":0,"flags":0,"guest_phys_addr":"0x100000","memory_size":"0x200000","userspace_addr":"0x7f0000000000","expect":{"ret":0}}',
  '{"op":"set_user_memory_region","slot":1,"flags":1,"guest_phys_addr":"0x400000","memory_size":"0x1234","userspace_addr":"0x7f0000000000","expect":{"errno":"EINVAL"}}',
  '{"op":"get_dirty_log","slot":7,"expect":{"errno":"ENOENT"}}',
  '{"op":"get_dirty_log","slot":0,"expect":{"ret":0}}',
  '{"op":"clear_dirty_log","slot":0,"first_page":"0x40","num_pages":100,"bitmap":"030080","expect":{"ret":0}}',
  '{"op":"enable_cap","cap":"MANUAL_DIRTY_LOG_PROTECT2","args0":"0x3","flags":0,"expect":{"ret":0}}',
  '{"op":"create_guest_memfd","size":"0x200000","flags":"0x0","expect":{"ret":0}}',
  '{"op":"set_memory_attributes","address":"0x100000","size":"0x1000","attributes":"0x8","flags":"0x0","expect":{"ret":0}}',
  '{"op":"set_user_memory_region2","slot":2,"flags":4,"guest_phys_addr":"0x800000","memory_size":"0x200000","userspace_addr":"0x7f0000000000","guest_memfd_offset":"0x1000","guest_memfd":0,"expect":{"ret":0}}',
  '{"op":"set_user_memory_region2","slot":3,"flags":4,"guest_phys_addr":"0xa00000","memory_size":"0x200000","userspace_addr":"0x7f0000000000","guest_memfd_offset":"0x1000","guest_memfd":"memfd","expect":{"ret":0}}',
  '{"op":"set_user_memory_region2","slot":4,"flags":4,"guest_phys_addr":"0xc00000","memory_size":"0x200000","userspace_addr":"0x7f0000000000","guest_memfd_offset":"0x1000","guest_memfd":"closed","expect":{"ret":0}}',
  '{"op":"set_user_memory_region2","slot":5,"flags":1,"guest_phys_addr":"0xe00000","memory_size":"0x200000","userspace_addr":"0x7f0000000000","expect":{"ret":0}}',
  '{"op":"reset","vm_type":1,"expect":{"errno":"EINVAL"}}',
  '{"op":"reset","expect":{"ok":true}}',
  '{"op":"set_user_memory_region2","slot":0,"flags":4,"guest_phys_addr":"0x100000","memory_size":"0x200000","userspace_addr":"0x7f0000000000","guest_memfd_offset":"0x1000","guest_memfd":"other_vm","expect":{"ret":0}}',
];

const EXPECTED_EXTRA = [
  '{"ioctl":"KVM_CHECK_EXTENSION","vm":0,"fd":"system","cap":999,"ret":999}',
  '{"ioctl":"KVM_ENABLE_CAP","vm":1,"cap":123,"flags":0,"args":["0x1","0x2","0x0","0x0"],"ret":0}',
  '{"vm":1,"not_in_trace":"an older VM","request":{"op":"set_user_memory_region","slot":9,"flags":0,"guest_phys_addr":"0x4000000","memory_size":"0x1000","userspace_addr":"0x7f0000000000"},"ret":0}',
];

const lines = (f: string): string[] =>
  readFileSync(f, 'utf8')
    .split('\n')
    .filter((l) => l !== '');
/** Side-log lines without their pid. */
const withoutPid = (l: string): string => l.replace(/^\{"pid":\d+,/, '{');

describe.skipIf(noCc !== null)(`the VMM recorder (LD_PRELOAD)${noCc === null ? '' : ` [skipped: ${noCc}]`}`, () => {
  let dir: string;
  let lib: string;
  let fake: string;
  let vmm: string;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'recorder-test-'));
    lib = await buildRecorder();
    fake = path.join(dir, 'fake-kvm.so');
    vmm = path.join(dir, 'vmm-calls');
    const c1 = spawnSync('cc', ['-O2', '-shared', '-fPIC', '-o', fake, path.join(ROOT, 'test/recorder/fake-kvm.c'), '-ldl'], { encoding: 'utf8' });
    expect(c1.status, c1.stderr).toBe(0);
    const c2 = spawnSync('cc', ['-O2', '-o', vmm, path.join(ROOT, 'test/recorder/vmm-calls.c')], { encoding: 'utf8' });
    expect(c2.status, c2.stderr).toBe(0);
  });
  afterAll(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('side log: t.jsonl -> t.extra.jsonl; LD_PRELOAD keeps what the caller preloads, after the recorder', () => {
    expect(sideLogPath('/a/t.jsonl')).toBe('/a/t.extra.jsonl');
    expect(sideLogPath('t.log')).toBe('t.log.extra.jsonl');
    expect(recorderEnv('/r.so', 'o', 'x', { LD_PRELOAD: '/f.so' })['LD_PRELOAD']).toBe('/r.so /f.so');
    expect(recorderEnv('/r.so', 'o', 'x', {})['LD_PRELOAD']).toBe('/r.so');
  });

  it('writes each memslot ioctl with the answer (sign-extended CLEAR_DIRTY_LOG included), guest_memfd fds as handles, what a trace cannot hold in the side log', () => {
    const out = path.join(dir, 'direct.jsonl');
    const extra = path.join(dir, 'direct.extra.jsonl');
    const env = { ...recorderEnv(lib, out, extra, { ...process.env, LD_PRELOAD: fake }), MEMSLOT_RECORD_KVM_DEV: KVM_DEV };
    const r = spawnSync(vmm, [], { env, encoding: 'utf8', timeout: 20_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('done\n');
    expect(lines(out)).toEqual(EXPECTED_TRACE);
    expect(lines(extra).map(withoutPid)).toEqual(EXPECTED_EXTRA);
  });

  it('what it writes is a trace the strict parser takes', async () => {
    const text = [formatProfileLine(PROFILES['x86_64']!), ...EXPECTED_TRACE];
    const parsed = [];
    for await (const t of readTrace(text, 'recorded')) parsed.push(t);
    expect(parsed).toHaveLength(EXPECTED_TRACE.length + 1);
  });

  it('passes calls through untouched without MEMSLOT_RECORD_OUT', () => {
    const env: NodeJS.ProcessEnv = { ...process.env, LD_PRELOAD: `${lib} ${fake}`, MEMSLOT_RECORD_KVM_DEV: KVM_DEV };
    delete env['MEMSLOT_RECORD_OUT'];
    delete env['MEMSLOT_RECORD_EXTRA'];
    const r = spawnSync(vmm, [], { env, encoding: 'utf8', timeout: 20_000 });
    expect(r.status, r.stderr).toBe(0);
  });

  it('record --out F --profile P -- CMD: the profile line first, then the recording, replayed with coverage and the VMM checks', () => {
    const out = path.join(dir, 'cli.jsonl');
    const env = { ...process.env, LD_PRELOAD: fake, MEMSLOT_RECORD_KVM_DEV: KVM_DEV };
    const r = spawnSync(process.execPath, [CLI, 'record', '--out', out, '--profile', 'x86_64', '--', vmm], { env, encoding: 'utf8', timeout: 60_000 });
    // The stand-in kernel is no kernel: its NR_MEMSLOTS answer (10) disagrees with the model.
    expect(r.status, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toContain(`record: ${vmm} exited with status 0`);
    expect(r.stdout).toMatch(/\n\d+ steps, \d+ mismatches/);
    expect(r.stdout).toMatch(/\ncoverage: \d+ of \d+ rules exercised/);
    expect(r.stdout).toContain('VMM checks:');
    const got = lines(out);
    expect(got[0]).toBe(formatProfileLine(PROFILES['x86_64']!));
    expect(got.slice(1)).toEqual(EXPECTED_TRACE);
    expect(lines(sideLogPath(out)).map(withoutPid)).toEqual(EXPECTED_EXTRA);
  });

  it('record: a VMM after -- excludes --sut and random-request options; a missing command or --out is a usage error', () => {
    const run = (...args: string[]): ReturnType<typeof spawnSync> =>
      spawnSync(process.execPath, [CLI, 'record', ...args], { encoding: 'utf8', timeout: 30_000 });
    expect(run('--out', path.join(dir, 'x.jsonl'), '--sut', 'kvm', '--', 'true').status).toBe(2);
    expect(run('--out', path.join(dir, 'x.jsonl'), '--seed', '3', '--', 'true').status).toBe(2);
    expect(run('--out', path.join(dir, 'x.jsonl'), '--').status).toBe(2);
    expect(run('--', 'true').status).toBe(2);
  });

  it('record -- CMD with a command that fails: exit 2, the trace still written', () => {
    const out = path.join(dir, 'false.jsonl');
    const r = spawnSync(process.execPath, [CLI, 'record', '--out', out, '--profile', 'x86_64', '--', 'false'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(2);
    expect(r.stdout).toContain('false exited with status 1');
    expect(lines(out)).toHaveLength(1);
  });
});
