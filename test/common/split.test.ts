// The held-out-fraction split ("use my images"): per class, seeded, the same shuffle as the few-shot split.

import { describe, expect, it } from 'vitest';
import { fewShotSplit, holdoutSplit } from '../../src/common/split';

/** 20 images of class 0, 7 of class 1, 2 of class 2, 1 of class 3, interleaved. */
const labels = [...Array.from({ length: 20 }, () => 0), ...Array.from({ length: 7 }, () => 1), 2, 2, 3].map(
  (_, i, all) => all[(i * 7) % all.length],
);

const count = (indices: number[], label: number) => indices.filter((i) => labels[i] === label).length;

describe('holdoutSplit', () => {
  it('holds out the fraction of each class (rounded, at least one), trains on the rest, and warns of a lone image', () => {
    const split = holdoutSplit(labels, 0.15, 1, ['a', 'b', 'c', 'd']);
    expect([0, 1, 2, 3].map((label) => count(split.heldOut, label))).toEqual([3, 1, 1, 0]);
    expect([0, 1, 2, 3].map((label) => count(split.support, label))).toEqual([17, 6, 1, 1]);
    expect([...split.support, ...split.heldOut].sort((x, y) => x - y)).toEqual(labels.map((_, i) => i));
    expect(split.warnings).toEqual([
      'class "d" has 1 image: it is used for training and none is held out for evaluation',
    ]);
  });

  it("is seeded, and trains on the start of the few-shot split's order", () => {
    expect(holdoutSplit(labels, 0.3, 4)).toEqual(holdoutSplit(labels, 0.3, 4));
    expect(holdoutSplit(labels, 0.3, 4).support).not.toEqual(holdoutSplit(labels, 0.3, 5).support);
    // 20 images, 30% held out: 14 train, the same 14 that 14 shots take.
    const classZero = (indices: number[]) => indices.filter((i) => labels[i] === 0);
    expect(classZero(holdoutSplit(labels, 0.3, 4).support)).toEqual(classZero(fewShotSplit(labels, 14, 4).support));
  });

  it('refuses a fraction outside (0, 1)', () => {
    for (const holdout of [0, 1, -0.1, Number.NaN])
      expect(() => holdoutSplit(labels, holdout, 1)).toThrow(/held-out fraction must be between 0 and 1/);
  });
});
