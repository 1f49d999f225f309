// Closeness checks that report the worst element, so a failing kernel test says where and by how much.

import { expect } from 'vitest';

/** Asserts |actual - expected| <= atol + rtol * |expected| element-wise. */
export function expectClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  { rtol, atol, label = 'values' }: { rtol: number; atol: number; label?: string },
): void {
  expect(actual.length, `${label}: length`).toBe(expected.length);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (!Number.isFinite(a) || excess > worstExcess) {
      worst = i;
      worstExcess = Number.isFinite(a) ? excess : Infinity;
      if (!Number.isFinite(a)) break;
    }
  }
  if (worst >= 0) {
    expect.fail(`${label}[${worst}] = ${actual[worst]}, expected ${expected[worst]} (rtol ${rtol}, atol ${atol})`);
  }
}
