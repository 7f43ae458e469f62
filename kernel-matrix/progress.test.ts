/** The kernel matrix's progress: one live line on a terminal, plain lines otherwise. */
import { describe, expect, it } from 'vitest';
import { Progress } from './progress.js';

function sink(isTTY: boolean): { out: NodeJS.WriteStream; text: () => string } {
  let text = '';
  const out = { isTTY, columns: 60, write: (s: string) => ((text += s), true) } as unknown as NodeJS.WriteStream;
  return { out, text: () => text };
}

describe('kernel-matrix progress', () => {
  it('on a terminal: one line rewritten in place, cut to the width; log lines clear it first', () => {
    const s = sink(true);
    const p = new Progress(s.out, true);
    p.status('5.10 npt=1', 'booting (3 s)');
    p.status('5.10 npt=1', 'random steps', 100, 50000);
    p.log('a message');
    p.done();
    expect(s.text()).toBe(
      '\r\x1b[Kkernel-matrix: 5.10 npt=1: booting (3 s)' +
        '\r\x1b[Kkernel-matrix: 5.10 npt=1: random steps 100 of 50000' +
        '\r\x1b[Kkernel-matrix: a message\n\r\x1b[Kkernel-matrix: 5.10 npt=1: random steps 100 of 50000' +
        '\r\x1b[K',
    );
  });

  it('otherwise: a line per phase and about one per 10% of the steps', () => {
    const s = sink(false);
    const p = new Progress(s.out, false);
    p.status('7.3 npt=0', 'booting (1 s)');
    p.status('7.3 npt=0', 'booting (1 s)');
    for (let i = 0; i <= 1000; i += 10) p.status('7.3 npt=0', 'random steps', i, 1000);
    p.status('7.3 npt=0', 'replaying through the model');
    const lines = s.text().trimEnd().split('\n');
    expect(lines[0]).toBe('kernel-matrix: 7.3 npt=0: booting (1 s)');
    expect(lines[1]).toBe('kernel-matrix: 7.3 npt=0: random steps 0 of 1000');
    expect(lines.filter((l) => l.includes('random steps'))).toHaveLength(11);
    expect(lines.at(-1)).toBe('kernel-matrix: 7.3 npt=0: replaying through the model');
    expect(s.text()).not.toContain('\r');
  });
});
