// The studio's split of its dataset (src/ui/split.ts) is fewShotSplit's, by image id.

import { describe, expect, it } from 'vitest';
import { fewShotSplit, holdoutSplit } from '../../src/common/split';
import { splitDataset } from '../../src/ui/split';
import type { DatasetImage } from '../../src/ui/stores/dataset';

const classes = [
  { id: 'c-cat', name: 'cat', position: 0 },
  { id: 'c-dog', name: 'dog', position: 1 },
];

function images(counts: Record<string, number>): DatasetImage[] {
  return Object.entries(counts).flatMap(([classId, count]) =>
    Array.from({ length: count }, (_, i) => ({
      id: `${classId}-${i}`,
      classId,
      name: `${i}.png`,
      width: 8,
      height: 8,
      thumbnailUrl: '',
    })),
  );
}

describe('splitDataset', () => {
  it('gives each class its shots and holds out the rest, as fewShotSplit does', () => {
    const all = images({ 'c-cat': 6, 'c-dog': 5 });
    const split = splitDataset(classes, all, { shots: 4 }, 7);
    const labels = all.map((image) => (image.classId === 'c-cat' ? 0 : 1));
    const expected = fewShotSplit(labels, 4, 7);
    expect(split.support.imageIds).toEqual(expected.support.map((i) => all[i].id));
    expect(split.heldOut.imageIds).toEqual(expected.heldOut.map((i) => all[i].id));
    expect(split.support.labels).toEqual(expected.support.map((i) => labels[i]));
    expect(split.counts).toEqual([
      { classId: 'c-cat', train: 4, heldOut: 2 },
      { classId: 'c-dog', train: 4, heldOut: 1 },
    ]);
    expect(split.roles.get(split.heldOut.imageIds[0])).toBe('held-out');
    expect(split.warnings).toEqual([]);
  });

  it('warns about a class with too few images, and splits nothing for invalid shots', () => {
    const all = images({ 'c-cat': 2, 'c-dog': 8 });
    expect(splitDataset(classes, all, { shots: 4 }, 1).warnings).toEqual([
      'class "cat" has 2 images, fewer than 4 shots + 1 held out: 1 train, 1 is held out',
    ]);
    expect(splitDataset(classes, all, { shots: 0 }, 1).support.imageIds).toEqual([]);
    expect(splitDataset(classes, all, { shots: 2.5 }, 1).support.imageIds).toEqual([]);
  });

  it("holds out a fraction of each class, as holdoutSplit (the CLI's --holdout) does", () => {
    const all = images({ 'c-cat': 7, 'c-dog': 10 });
    const split = splitDataset(classes, all, { shots: 4, holdout: 0.3 }, 5);
    const labels = all.map((image) => (image.classId === 'c-cat' ? 0 : 1));
    const expected = holdoutSplit(labels, 0.3, 5);
    expect(split.heldOut.imageIds).toEqual(expected.heldOut.map((i) => all[i].id));
    expect(split.counts).toEqual([
      { classId: 'c-cat', train: 5, heldOut: 2 },
      { classId: 'c-dog', train: 7, heldOut: 3 },
    ]);
    expect(splitDataset(classes, all, { shots: 4, holdout: 1 }, 5).support.imageIds).toEqual([]);
  });

  it('ignores images of classes it is not given', () => {
    const split = splitDataset(classes.slice(0, 1), images({ 'c-cat': 3, 'c-dog': 3 }), { shots: 1 }, 1);
    expect([...split.support.imageIds, ...split.heldOut.imageIds].every((id) => id.startsWith('c-cat'))).toBe(true);
  });
});
