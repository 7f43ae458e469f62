/**
 * A short live differential check: random sequences from the suite's generators, sent to the
 * running kernel through /dev/kvm and compared with the model. A fresh seed every run (printed,
 * so a failure can be re-run with `memslot-oracle record --sut kvm --seed S`).
 */
import { describe, expect, it } from 'vitest';
import { PROFILES, profileDiff } from '../../model/profiles.js';
import { answerText, requestText } from '../../trace/trace.js';
import { kvmUsable } from '../../sut/kvm-driver.js';
import { SutClient } from '../../sut/protocol.js';
import { record } from './record.js';

const usable = kvmUsable();

describe.skipIf(!usable.ok)(`live differential check against /dev/kvm${usable.ok ? '' : ` (skipped: ${usable.reason})`}`, () => {
  it('[MS-VAL-02][MS-VAL-07][MS-OVL-01][MS-MOV-01][MS-FLG-01][MS-DEL-01][MS-DLG-04] the kernel and the model agree on fresh random sequences', async () => {
    const seed = Math.floor(Math.random() * 0x7fff_ffff);
    console.log(`live kvm check: seed ${seed} (rerun: memslot-oracle record --sut kvm --seed ${seed} --sequences 30 --steps 120 --out FILE)`);
    const sut = await SutClient.start('kvm');
    try {
      // The host reports the profile our spec pins: one address space, 6.18 switches.
      expect(profileDiff(sut.hello.profile!, PROFILES['x86_64-nosmm']!)).toBeNull();
      const lines: string[] = [];
      const summary = await record({ sut, profile: sut.hello.profile!, seed, sequences: 30, steps: 120, wide: false, write: (l) => lines.push(l) });
      const detail = summary.first
        .map((m) => `line ${m.line}: ${requestText(m.request)} sut ${answerText(m.sut)} model ${answerText(m.model)} [${m.rule}]`)
        .join('\n');
      expect(summary.requests).toBeGreaterThan(200);
      expect(summary.mismatches, `seed ${seed}\n${detail}`).toBe(0);
    } finally {
      await sut.close();
    }
  }, 60_000);
});
