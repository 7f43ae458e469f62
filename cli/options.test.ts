/** The one integer parser of the command lines (cli/, bench/, kernel-matrix/), and the seed option. */
import { describe, expect, it } from 'vitest';
import { intOption, seedOption } from './options.js';
import { UsageError } from './usage.js';

describe('intOption', () => {
  it('takes decimal integers within its bounds, and the default when the option is absent', () => {
    expect(intOption('n', undefined, 7)).toBe(7);
    expect(intOption('n', '0', 7)).toBe(0);
    expect(intOption('n', '32764', 0, 3, 32764)).toBe(32764);
  });

  it('turns away anything else with a UsageError naming the option and the value', () => {
    for (const [v, min, max] of [
      ['-1', 0, undefined],
      ['1e3', 0, undefined],
      ['0x10', 0, undefined],
      ['', 0, undefined],
      ['2', 3, 32764],
      ['32765', 3, 32764],
      ['9007199254740993', 0, undefined],
    ] as const) {
      expect(() => intOption('n', v, 0, min, max)).toThrow(UsageError);
    }
    expect(() => intOption('max-steps', '0', 1, 1)).toThrow('--max-steps 0: must be an integer >= 1');
    expect(() => intOption('n', '5', 0, 10, 20)).toThrow('--n 5: must be an integer from 10 to 20');
  });
});

describe('seedOption', () => {
  it("keeps seeds to fast-check's 32 bits, and draws one in range when none is given", () => {
    expect(seedOption('2147483647')).toBe(0x7fff_ffff);
    expect(() => seedOption('2147483648')).toThrow(UsageError);
    for (let i = 0; i < 100; i++) {
      const s = seedOption(undefined);
      expect(Number.isInteger(s) && s >= 0 && s <= 0x7fff_ffff).toBe(true);
    }
  });
});
