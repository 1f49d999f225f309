// A small seeded pseudo-random generator whose whole state is four 32-bit words, so a training run can
// checkpoint it and resume drawing exactly the same numbers. The generator is sfc32 (Chris Doty-Humphrey's
// Small Fast Counting generator, PractRand-clean, period at least 2^32 thanks to its counter word), seeded
// through the murmur3 finaliser so that nearby seeds (0, 1, 2, ...) give unrelated streams.
// Plain 32-bit integer arithmetic: identical on every JavaScript engine, in a browser and in Node.

const GOLDEN_GAMMA = 0x9e3779b9;
const TWO_POW_32 = 2 ** 32;
/** Outputs thrown away after seeding, so the first numbers drawn do not echo the seed mixing. */
const WARM_UP_DRAWS = 12;

/**
 * Stream ids for `Rng.derive(seed, id)`, one per use of a run's seed, so that no two uses draw the same
 * numbers and a change in how many numbers one use draws leaves the others alone.
 */
export const RNG_STREAM = {
  /** fewShotSplit (with the class label as a second id). */
  fewShotSplit: 1,
  /** BatchSampler's epoch shuffles. */
  batches: 2,
  /** The trainer's own draws (augmentation, dropout seeds). */
  training: 3,
  /** The adapters' random initialisation (A_s), the same in the CLI and the studio. */
  adapterInit: 4,
} as const;

/** A saved `Rng` state: four unsigned 32-bit words. */
export type RngState = [number, number, number, number];

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /**
   * `seed` is any safe integer (negative ones included: they are taken as 64-bit two's complement).
   * Equal seeds give equal streams on every platform.
   */
  constructor(seed: number) {
    [this.a, this.b, this.c, this.d] = seedState(seedWords(seed, 'seed'));
  }

  /**
   * An independent stream for one purpose, e.g. `Rng.derive(seed, STREAM_SAMPLER)` or
   * `Rng.derive(seed, STREAM_SPLIT, classLabel)`: changing how many numbers one stream draws never shifts
   * another. Each stream id is an unsigned 32-bit integer.
   */
  static derive(seed: number, ...stream: number[]): Rng {
    const words = seedWords(seed, 'seed');
    for (const id of stream) {
      if (!Number.isInteger(id) || id < 0 || id >= TWO_POW_32) {
        throw new RangeError(`Rng.derive: stream id ${id} is not an unsigned 32-bit integer`);
      }
      words.push(id);
    }
    return Rng.fromState(seedState(words));
  }

  /** Restores a generator saved with `state()`; it continues exactly where the saved one was. */
  static fromState(state: readonly number[]): Rng {
    if (state.length !== 4 || !state.every((word) => Number.isInteger(word) && word >= 0 && word < TWO_POW_32)) {
      throw new RangeError(`Rng.fromState: expected four unsigned 32-bit integers, got ${JSON.stringify(state)}`);
    }
    const rng = Object.create(Rng.prototype) as Rng;
    [rng.a, rng.b, rng.c, rng.d] = state;
    return rng;
  }

  /** The whole state (a copy): JSON-serialisable, for `Rng.fromState`. */
  state(): RngState {
    return [this.a >>> 0, this.b >>> 0, this.c >>> 0, this.d >>> 0];
  }

  /** A uniform unsigned 32-bit integer. */
  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** A uniform number in [0, 1), a multiple of 2^-32. */
  next(): number {
    return this.nextUint32() / TWO_POW_32;
  }

  /** A uniform integer in [0, n), without modulo bias; 1 <= n <= 2^32. */
  nextInt(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO_POW_32) {
      throw new RangeError(`Rng.nextInt: n must be an integer in [1, 2^32], got ${n}`);
    }
    // Reject the top partial copy of [0, n) so every residue is equally likely.
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /** Shuffles `items` in place (Fisher-Yates) and returns it. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const held = items[i];
      items[i] = items[j];
      items[j] = held;
    }
    return items;
  }
}

function seedWords(seed: number, what: string): number[] {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`Rng: ${what} must be a safe integer, got ${seed}`);
  return [seed >>> 0, Math.floor(seed / TWO_POW_32) >>> 0];
}

/** The murmur3 32-bit finaliser: a bijection on uint32 with full avalanche. */
function fmix32(x: number): number {
  let h = x | 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function seedState(words: readonly number[]): RngState {
  let h = 0x243f6a88;
  for (const word of words) h = fmix32((h + GOLDEN_GAMMA + fmix32(word)) | 0);
  // splitmix32 expansion of the absorbed seed into the four state words.
  const state: number[] = [];
  for (let i = 0; i < 4; i++) {
    h = (h + GOLDEN_GAMMA) | 0;
    state.push(fmix32(h));
  }
  const rng = Rng.fromState(state);
  for (let i = 0; i < WARM_UP_DRAWS; i++) rng.nextUint32();
  return rng.state();
}
