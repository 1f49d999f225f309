import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/common/random';
import { fewShotSplit } from '../../src/common/split';
import { BatchSampler, type BatchSamplerState } from '../../src/training/sampler';

/** The published sfc32 (PractRand's reference, as commonly ported to JavaScript), written independently. */
function referenceSfc32(a: number, b: number, c: number, d: number): () => number {
  return () => {
    a |= 0;
    b |= 0;
    c |= 0;
    d |= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
}

const draw = (rng: Rng, count: number) => Array.from({ length: count }, () => rng.nextUint32());

describe('Rng', () => {
  it('is sfc32', () => {
    for (const state of [[1, 2, 3, 4], [0xffffffff, 0x80000000, 0x12345678, 0], new Rng(7).state()]) {
      const reference = referenceSfc32(state[0], state[1], state[2], state[3]);
      expect(draw(Rng.fromState(state), 1000)).toEqual(Array.from({ length: 1000 }, reference));
    }
  });

  it('gives the same stream for a seed on every run and platform (pinned: checkpoints depend on it)', () => {
    expect(draw(new Rng(0), 4)).toEqual([631763361, 3975692431, 1159954231, 3673616784]);
    expect(draw(new Rng(42), 4)).toEqual([711443877, 4108565297, 3446547455, 1749897078]);
    expect(draw(Rng.derive(42, 7), 2)).toEqual([2493317342, 3253500701]);
  });

  it('gives unrelated streams for nearby seeds and for derived streams', () => {
    const generators = [new Rng(0), new Rng(1), Rng.derive(0, 0), Rng.derive(0, 1), Rng.derive(1, 0)];
    const streams = generators.map((rng) => draw(rng, 8));
    expect(new Set(streams.flat()).size).toBe(streams.flat().length);
    // Large and negative seeds are distinct seeds too (64-bit two's complement).
    expect(draw(new Rng(2 ** 40), 4)).not.toEqual(draw(new Rng(0), 4));
    expect(draw(new Rng(-1), 4)).not.toEqual(draw(new Rng(2 ** 32 - 1), 4));
  });

  it('saves and restores its state exactly, through JSON', () => {
    const rng = new Rng(123);
    draw(rng, 17);
    const saved = JSON.parse(JSON.stringify(rng.state())) as number[];
    const restored = Rng.fromState(saved);
    expect(draw(restored, 100)).toEqual(draw(rng, 100));
    expect(() => Rng.fromState([1, 2, 3])).toThrow(RangeError);
    expect(() => Rng.fromState([1, 2, 3, 2 ** 32])).toThrow(RangeError);
    expect(() => new Rng(0.5)).toThrow(RangeError);
  });

  it('draws uniform numbers in [0, 1) and unbiased integers', () => {
    const rng = new Rng(5);
    const counts = new Array<number>(6).fill(0);
    let sum = 0;
    const n = 60_000;
    for (let i = 0; i < n; i++) {
      const x = rng.next();
      expect(x >= 0 && x < 1).toBe(true);
      sum += x;
      counts[rng.nextInt(6)]++;
    }
    // Mean within ~5 standard errors (sd of U(0,1) is 0.289); counts within ~5 sd of n/6.
    expect(Math.abs(sum / n - 0.5)).toBeLessThan((5 * 0.289) / Math.sqrt(n));
    for (const count of counts) expect(Math.abs(count - n / 6)).toBeLessThan(5 * Math.sqrt((n * 5) / 36));
    expect(() => rng.nextInt(0)).toThrow(RangeError);
  });

  it('shuffles into a permutation', () => {
    const items = Array.from({ length: 50 }, (_, i) => i);
    const shuffled = new Rng(9).shuffle([...items]);
    expect(shuffled).not.toEqual(items);
    expect([...shuffled].sort((a, b) => a - b)).toEqual(items);
  });
});

describe('fewShotSplit', () => {
  // 3 classes: 10, 6 and 20 images, in mixed order.
  const labels = new Rng(99).shuffle([
    ...new Array<number>(10).fill(0),
    ...new Array<number>(6).fill(1),
    ...new Array<number>(20).fill(2),
  ]);
  const countByClass = (indices: number[]) => [0, 1, 2].map((c) => indices.filter((i) => labels[i] === c).length);

  it('gives each class `shots` training images and holds out the rest', () => {
    const split = fewShotSplit(labels, 4, 1);
    expect(countByClass(split.support)).toEqual([4, 4, 4]);
    expect(countByClass(split.heldOut)).toEqual([6, 2, 16]);
    expect([...split.support, ...split.heldOut].sort((a, b) => a - b)).toEqual(labels.map((_, i) => i));
    expect(split.support).toEqual([...split.support].sort((a, b) => a - b));
    expect(split.warnings).toEqual([]);
  });

  it('is deterministic for a seed and differs between seeds', () => {
    expect(fewShotSplit(labels, 4, 1)).toEqual(fewShotSplit(labels, 4, 1));
    expect(fewShotSplit(labels, 4, 1).support).not.toEqual(fewShotSplit(labels, 4, 2).support);
  });

  it('nests: for one seed, the 2-shot set is inside the 4-shot set, and one class does not move another', () => {
    const two = new Set(fewShotSplit(labels, 2, 3).support);
    const four = new Set(fewShotSplit(labels, 4, 3).support);
    for (const index of two) expect(four.has(index)).toBe(true);
    // Dropping class 2 leaves the split of classes 0 and 1 unchanged.
    const withoutClass2 = labels.map((label) => (label === 2 ? -1 : label));
    const kept = labels.flatMap((label, i) => (label === 2 ? [] : [i]));
    const sub = fewShotSplit(
      kept.map((i) => withoutClass2[i]),
      4,
      3,
    );
    expect(sub.support.map((j) => kept[j])).toEqual(fewShotSplit(labels, 4, 3).support.filter((i) => labels[i] !== 2));
  });

  it('gives small classes all but one image, a single image to training, and says so', () => {
    const small = [0, 0, 0, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2];
    const split = fewShotSplit(small, 8, 0, ['cat', 'dog', 'eel']);
    const count = (indices: number[], c: number) => indices.filter((i) => small[i] === c).length;
    expect([0, 1, 2].map((c) => count(split.support, c))).toEqual([2, 1, 8]);
    expect([0, 1, 2].map((c) => count(split.heldOut, c))).toEqual([1, 0, 1]);
    expect(split.warnings).toEqual([
      'class "cat" has 3 images, fewer than 8 shots + 1 held out: 2 train, 1 is held out',
      'class "dog" has 1 image: it is used for training and none is held out for evaluation',
    ]);
    expect(fewShotSplit([0, 0], 2, 0).warnings).toEqual([
      'class 0 has 2 images, fewer than 2 shots + 1 held out: 1 train, 1 is held out',
    ]);
  });

  it('refuses bad shots and labels', () => {
    expect(() => fewShotSplit([0, 1], 0, 0)).toThrow(RangeError);
    expect(() => fewShotSplit([0, 1.5], 1, 0)).toThrow(/labels\[1\]/);
  });
});

describe('BatchSampler', () => {
  const items = Array.from({ length: 10 }, (_, i) => 100 + i);
  const take = (sampler: BatchSampler, count: number) => Array.from({ length: count }, () => sampler.nextBatch());

  it('visits every item once per epoch, in batches, in a new order each epoch', () => {
    const sampler = new BatchSampler(items, 4, 11);
    expect(sampler.batchesPerEpoch).toBe(3);
    const epochs = [0, 1, 2].map((epoch) => {
      expect(sampler.epoch).toBe(epoch);
      const batches = take(sampler, 3);
      expect(batches.map((batch) => batch.length)).toEqual([4, 4, 2]);
      const order = batches.flat();
      expect([...order].sort((a, b) => a - b)).toEqual(items);
      return order;
    });
    expect(new Set(epochs.map((order) => order.join())).size).toBe(3);
    expect(sampler.epoch).toBe(3);
  });

  it('is deterministic for a seed', () => {
    expect(take(new BatchSampler(items, 3, 5), 12)).toEqual(take(new BatchSampler(items, 3, 5), 12));
    expect(take(new BatchSampler(items, 3, 5), 4)).not.toEqual(take(new BatchSampler(items, 3, 6), 4));
  });

  it('drops short last batches with dropLast', () => {
    const sampler = new BatchSampler(items, 4, 1, { dropLast: true });
    expect(sampler.batchesPerEpoch).toBe(2);
    const batches = take(sampler, 6);
    expect(batches.every((batch) => batch.length === 4)).toBe(true);
    expect(sampler.epoch).toBe(3);
    expect(() => new BatchSampler(items, 11, 1, { dropLast: true })).toThrow(RangeError);
  });

  it('gives one whole-set batch when the batch is larger than the set', () => {
    const sampler = new BatchSampler([3, 1, 2], 32, 0);
    expect(take(sampler, 3).map((batch) => [...batch].sort())).toEqual([
      [1, 2, 3],
      [1, 2, 3],
      [1, 2, 3],
    ]);
  });

  // Stop after k batches (mid-epoch, at an epoch boundary, several epochs in), save through JSON, restore:
  // the resumed sampler draws exactly what the uninterrupted one draws.
  for (const stopAfter of [0, 1, 2, 3, 7, 9]) {
    it(`resumes identically after ${stopAfter} batches`, () => {
      const uninterrupted = new BatchSampler(items, 4, 21);
      const expected = take(uninterrupted, stopAfter + 10).slice(stopAfter);

      const first = new BatchSampler(items, 4, 21);
      take(first, stopAfter);
      const saved = JSON.parse(JSON.stringify(first.state())) as BatchSamplerState;
      const resumed = BatchSampler.restore(items, saved);
      expect(resumed.epoch).toBe(first.epoch);
      expect(take(resumed, 10)).toEqual(expected);
      // Saving does not disturb the original either.
      expect(take(first, 10)).toEqual(expected);
    });
  }

  it('refuses to restore onto other items or a damaged state', () => {
    const state = new BatchSampler(items, 4, 1).state();
    expect(() => BatchSampler.restore(items.slice(1), state)).toThrow(/support set changed/);
    expect(() => BatchSampler.restore([...items].reverse(), state)).toThrow(/support set changed/);
    expect(() => BatchSampler.restore(items, { ...state, cursor: 3 })).toThrow(/invalid position/);
    expect(() => BatchSampler.restore(items, { ...state, epochStartRng: [1, 2] as never })).toThrow(RangeError);
  });

  it('refuses bad arguments', () => {
    expect(() => new BatchSampler([], 4, 0)).toThrow(RangeError);
    expect(() => new BatchSampler(items, 0, 0)).toThrow(RangeError);
    expect(() => new BatchSampler([0.5], 1, 0)).toThrow(RangeError);
  });
});
