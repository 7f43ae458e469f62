/** The profile a SUT is modelled with: its hello's, or an explicit one that must agree with it. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LINE_PROFILES, profileToJson } from '../model/profiles.js';
import { SutClient } from './protocol.js';
import { SutError } from './child.js';

const K73 = LINE_PROFILES['linux-7.3-x86_64']!;

/** A SUT (a script file) that says hello with `profile` and answers nothing else. */
function helloSut(profile: Record<string, unknown>): string {
  const hello = JSON.stringify({ protocol: 1, name: 'hello-only', ops: ['reset', 'set_user_memory_region', 'get_dirty_log'], profile });
  const file = join(mkdtempSync(join(tmpdir(), 'hello-sut-')), 'sut.cjs');
  writeFileSync(file, `require('node:readline').createInterface({ input: process.stdin }).on('line', () => console.log(${JSON.stringify(hello)}));\n`);
  return `${process.execPath} ${file}`;
}

describe('resolveProfile', () => {
  it('takes write_drops_mappings from the SUT even when --profile names a kernel line, which says false', async () => {
    const sut = await SutClient.start(helloSut({ ...profileToJson(K73), write_drops_mappings: true }));
    try {
      const p = sut.resolveProfile(K73, K73);
      expect(p.writeDropsMappings).toBe(true);
      expect({ ...p, writeDropsMappings: false }).toEqual(K73);
    } finally {
      await sut.close();
    }
  });
  it('refuses an explicit profile that differs from the declared one in a kernel field, naming it', async () => {
    const sut = await SutClient.start(helloSut({ ...profileToJson(K73), dirty_ring_rsvd_entries: 576 }));
    try {
      expect(() => sut.resolveProfile(K73, K73)).toThrow(SutError);
      expect(() => sut.resolveProfile(K73, K73)).toThrow(/field "dirty_ring_rsvd_entries" is 64 in --profile but 576/);
    } finally {
      await sut.close();
    }
  });
});
