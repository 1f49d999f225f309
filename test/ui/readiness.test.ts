// What keeps a run from starting (src/ui/readiness.ts): each check on its own, and none when all is well.

import { describe, expect, it } from 'vitest';
import { trainingProblems, type ReadinessInput } from '../../src/ui/readiness';
import { splitDataset } from '../../src/ui/split';
import type { DatasetImage } from '../../src/ui/stores/dataset';
import type { LoadedModel } from '../../src/worker/protocol';

const model = { id: 'local/tiny', fingerprint: 'f', weightBytes: 1 } as LoadedModel;
const ready = {
  status: 'ready',
  plan: {
    trainableParameters: 1,
    peakBytes: 1,
    breakdown: {},
    microBatchSize: 4,
    textChunk: 2,
    budgetBytes: 2,
    precision: { precision: 'f32', reason: 'as set' },
  },
} as const;
const cat = { id: 'c-cat', name: 'cat', position: 0 };
const dog = { id: 'c-dog', name: 'dog', position: 1 };
const bird = { id: 'c-bird', name: 'bird', position: 2 };

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

function checks(overrides: Partial<ReadinessInput> & { counts?: Record<string, number> }): string[] {
  const classes = overrides.classes ?? [cat, dog];
  const all = images(overrides.counts ?? { 'c-cat': 6, 'c-dog': 6 });
  const input: ReadinessInput = {
    model,
    classes,
    images: all,
    split: splitDataset(classes, all, { shots: 4 }, 1),
    plan: ready,
    elsewhere: null,
    ...overrides,
  };
  return trainingProblems(input).map((problem) => problem.check);
}

describe('trainingProblems', () => {
  it('finds none when a model, two classes with held-out images and good settings are there', () => {
    expect(checks({})).toEqual([]);
  });

  it('names each problem that stops a run', () => {
    expect(checks({ model: null, plan: { status: 'none', reason: '' } })).toEqual(['model']);
    expect(checks({ classes: [cat], counts: { 'c-cat': 6 } })).toEqual(['classes']);
    expect(checks({ classes: [cat, dog, bird] })).toEqual(['empty-classes']);
    expect(checks({ counts: { 'c-cat': 6, 'c-dog': 1 } })).toEqual(['no-held-out']);
    expect(checks({ plan: { status: 'invalid', message: 'Blocks (n = 3) must divide the rank (r = 2).' } })).toEqual([
      'settings',
    ]);
    expect(
      checks({
        plan: {
          status: 'does-not-fit',
          message: "The planned GPU memory is over this device's limits even with one image per pass.",
        },
      }),
    ).toEqual(['memory']);
    expect(checks({ plan: { status: 'planning' } })).toEqual(['planning']);
    expect(checks({ elsewhere: { step: 3, iterations: 10, stepsPerSecond: null, secondsLeft: null } })).toEqual([
      'elsewhere',
    ]);
  });

  it('says which classes and where to fix them', () => {
    const classes = [cat, dog, bird];
    const all = images({ 'c-cat': 1, 'c-dog': 6 });
    const problems = trainingProblems({
      model,
      classes,
      images: all,
      split: splitDataset(classes, all, { shots: 4 }, 1),
      plan: ready,
      elsewhere: null,
    });
    expect(problems.map((p) => p.text)).toEqual([
      '“bird” has no images.',
      '“cat” has one image, which trains: none is held out to evaluate the adapter on.',
    ]);
    expect(problems.every((p) => p.fix?.href === '#/dataset')).toBe(true);
  });
});
