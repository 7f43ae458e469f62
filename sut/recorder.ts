/**
 * The VMM recorder: `sut/recorder/memslot-recorder.c`, an LD_PRELOAD library compiled on first
 * use into the cache like the driver (sut/kvm-driver.ts), and the environment that makes a
 * command run under it.
 */
import { buildCached } from './kvm-driver.js';

/** The recorder's source, relative to the package root. */
export const RECORDER_SOURCE = 'sut/recorder/memslot-recorder.c';

/** Compiles the recorder (if not cached) and resolves with the shared library's path. */
export function buildRecorder(): Promise<string> {
  return buildCached({ source: RECORDER_SOURCE, name: 'memslot-recorder', suffix: '.so', flags: ['-shared', '-fPIC'], libs: ['-ldl', '-lpthread'] });
}

/** The side log beside a trace: `t.jsonl` -> `t.extra.jsonl` (any other name gets `.extra.jsonl` appended). */
export function sideLogPath(out: string): string {
  return out.endsWith('.jsonl') ? `${out.slice(0, -'.jsonl'.length)}.extra.jsonl` : `${out}.extra.jsonl`;
}

/**
 * The environment of a command recorded into `out` (appended to) and `extra`: the library
 * first in LD_PRELOAD, before whatever the caller preloads.
 */
export function recorderEnv(lib: string, out: string, extra: string, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const pre = env['LD_PRELOAD'];
  return {
    ...env,
    LD_PRELOAD: pre === undefined || pre.trim() === '' ? lib : `${lib} ${pre}`,
    MEMSLOT_RECORD_OUT: out,
    MEMSLOT_RECORD_EXTRA: extra,
  };
}
