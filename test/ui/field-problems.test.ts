// What a number field accepts, in the words the field and the Train screen's checklist show.

import { describe, expect, it } from 'vitest';
import { rangeProblem } from '../../src/ui/stores/field-problems';

describe('rangeProblem', () => {
  it('accepts the range and names it otherwise', () => {
    const percent = { min: 1, max: 99, integer: true };
    expect([1, 50, 99].map((v) => rangeProblem(v, percent))).toEqual([null, null, null]);
    for (const v of [0, 100, 150, 2.5, Number.NaN, Number.POSITIVE_INFINITY])
      expect(rangeProblem(v, percent), String(v)).toBe('A whole number between 1 and 99.');
    expect(rangeProblem(0, { min: 1, integer: true })).toBe('A whole number at least 1.');
    expect(rangeProblem(-1, { min: 0 })).toBe('A number at least 0.');
    expect(rangeProblem(0.5, { min: 0 })).toBeNull();
    expect(rangeProblem(Number.NaN, {})).toBe('A number.');
  });
});
