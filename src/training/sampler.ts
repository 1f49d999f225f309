// The order training visits the support set: shuffled batches, reshuffled every epoch, deterministic
// for a seed. The sampler's state can be saved in a checkpoint so that a resumed run draws exactly the
// batches an uninterrupted run would have drawn. (Which images train at all: fewShotSplit, src/common/split.ts.)

import { Rng, RNG_STREAM, type RngState } from '../common/random';

/** A `BatchSampler`'s position, JSON-serialisable, for checkpoints. */
export interface BatchSamplerState {
  version: 1;
  batchSize: number;
  dropLast: boolean;
  /** Guards against restoring onto other items: their count and a hash of them in order. */
  itemCount: number;
  itemsHash: string;
  /** Epochs begun so far less one: the epoch the next batch comes from (0-based). */
  epoch: number;
  /** Position of the next batch within this epoch's order. */
  cursor: number;
  /** The generator before this epoch's shuffle: the order is recomputed from it on restore. */
  epochStartRng: RngState;
}

export interface BatchSamplerOptions {
  /**
   * Drop each epoch's last batch when it is smaller than `batchSize` (torch's drop_last). Default false:
   * the last batch of an epoch holds the remainder, as CLIP-LoRA's training loader does.
   */
  dropLast?: boolean;
}

/**
 * An endless sequence of batches of `items` (typically a few-shot support set): each epoch visits every item
 * once in a fresh seeded order, cut into batches of `batchSize`.
 */
export class BatchSampler {
  readonly dropLast: boolean;
  private readonly items: readonly number[];
  private rng: Rng;
  private order: number[] = [];
  private epochStartRng: RngState;
  private epochIndex = -1;
  private cursor = 0;

  constructor(
    items: readonly number[],
    readonly batchSize: number,
    seed: number,
    options: BatchSamplerOptions = {},
  ) {
    this.dropLast = options.dropLast ?? false;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new RangeError(`BatchSampler: batchSize must be a positive integer, got ${batchSize}`);
    }
    if (items.length === 0) throw new RangeError('BatchSampler: there are no items to sample');
    if (!items.every(Number.isSafeInteger))
      throw new RangeError('BatchSampler: items must be integers (image indices)');
    if (this.dropLast && items.length < batchSize) {
      throw new RangeError(
        `BatchSampler: dropLast with ${items.length} items and batches of ${batchSize} leaves no batch at all`,
      );
    }
    this.items = [...items];
    this.rng = Rng.derive(seed, RNG_STREAM.batches);
    this.epochStartRng = this.rng.state();
    this.beginEpoch();
  }

  /** Continues a sampler saved with `state()`, over the same `items` (checked). */
  static restore(items: readonly number[], state: BatchSamplerState): BatchSampler {
    if (state.version !== 1)
      throw new RangeError(`BatchSampler.restore: unknown state version ${String(state.version)}`);
    if (state.itemCount !== items.length || state.itemsHash !== hashItems(items)) {
      throw new RangeError(
        `BatchSampler.restore: the saved state was for ${state.itemCount} other items; ` +
          'the support set changed (other data, shots or seed?)',
      );
    }
    const sampler = new BatchSampler(items, state.batchSize, 0, { dropLast: state.dropLast });
    const { cursor, batchSize } = state;
    const validCursor =
      Number.isInteger(cursor) &&
      cursor >= 0 &&
      cursor < sampler.batchesPerEpoch * batchSize &&
      cursor % batchSize === 0;
    if (!Number.isInteger(state.epoch) || state.epoch < 0 || !validCursor) {
      throw new RangeError(`BatchSampler.restore: invalid position (epoch ${state.epoch}, cursor ${state.cursor})`);
    }
    sampler.rng = Rng.fromState(state.epochStartRng);
    sampler.epochIndex = state.epoch - 1;
    sampler.beginEpoch();
    sampler.cursor = state.cursor;
    return sampler;
  }

  /** Batches per epoch: ceil(items / batchSize), or floor with `dropLast`. */
  get batchesPerEpoch(): number {
    const whole = Math.floor(this.items.length / this.batchSize);
    return this.dropLast || this.items.length % this.batchSize === 0 ? whole : whole + 1;
  }

  /** The epoch (0-based) the next batch comes from. */
  get epoch(): number {
    return this.epochIndex;
  }

  /** The next batch of items (a fresh array); a new epoch, freshly shuffled, starts when one is used up. */
  nextBatch(): number[] {
    const batch = this.order.slice(this.cursor, this.cursor + this.batchSize);
    this.cursor += this.batchSize;
    if (this.cursor >= this.batchesPerEpoch * this.batchSize) this.beginEpoch();
    return batch;
  }

  /** The position to save; `BatchSampler.restore(items, state)` continues from here. */
  state(): BatchSamplerState {
    return {
      version: 1,
      batchSize: this.batchSize,
      dropLast: this.dropLast,
      itemCount: this.items.length,
      itemsHash: hashItems(this.items),
      epoch: this.epochIndex,
      cursor: this.cursor,
      epochStartRng: [...this.epochStartRng],
    };
  }

  private beginEpoch(): void {
    this.epochStartRng = this.rng.state();
    this.order = this.rng.shuffle([...this.items]);
    this.epochIndex += 1;
    this.cursor = 0;
  }
}

/** FNV-1a (32-bit) over the items' values, in order. */
function hashItems(items: readonly number[]): string {
  let hash = 0x811c9dc5;
  for (const item of items) {
    for (let shift = 0; shift < 32; shift += 8) {
      hash = Math.imul(hash ^ ((item >>> shift) & 0xff), 0x01000193);
    }
  }
  return (hash >>> 0).toString(16).padStart(8, '0');
}
