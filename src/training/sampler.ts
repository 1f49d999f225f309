// Which images train and which are held out (a seeded few-shot split), and the order training visits them
// (shuffled batches, reshuffled every epoch). Both are deterministic for a seed, and the batch sampler's
// state can be saved in a checkpoint so that a resumed run draws exactly the batches an uninterrupted
// run would have drawn.

import { Rng, RNG_STREAM, type RngState } from './random';

export interface FewShotSplit {
  /** Indices into `labels` used for training, ascending. */
  support: number[];
  /** Indices into `labels` kept for evaluation, ascending. */
  heldOut: number[];
  /** One line per class that had too few images for `shots` training images plus one held out. */
  warnings: string[];
}

/**
 * Splits a labelled dataset into `shots` training images per class and the rest held out.
 *
 * Each class's images are shuffled by a generator derived from (`seed`, class label) and the first `shots`
 * train. So a class's split does not depend on the other classes, and for one seed the 4-shot support set
 * of a class is contained in its 8-shot support set.
 *
 * A class with `shots` images or fewer cannot give `shots` and still keep one for evaluation: it gives all
 * but one to training (and holds one out), and a class with a single image trains on it and holds out none.
 * Each such class adds a line to `warnings`.
 *
 * `labels[i]` is image i's class, an integer >= 0; `classNames[label]` (optional) names classes in warnings.
 */
export function fewShotSplit(labels: readonly number[], shots: number, seed: number, classNames?: readonly string[]): FewShotSplit {
  if (!Number.isInteger(shots) || shots < 1) throw new RangeError(`fewShotSplit: shots must be a positive integer, got ${shots}`);
  const byClass = new Map<number, number[]>();
  labels.forEach((label, index) => {
    if (!Number.isInteger(label) || label < 0) {
      throw new RangeError(`fewShotSplit: labels[${index}] is ${label}, expected a non-negative integer`);
    }
    let members = byClass.get(label);
    if (!members) byClass.set(label, (members = []));
    members.push(index);
  });

  const support: number[] = [];
  const heldOut: number[] = [];
  const warnings: string[] = [];
  for (const label of [...byClass.keys()].sort((x, y) => x - y)) {
    const members = Rng.derive(seed, RNG_STREAM.fewShotSplit, label).shuffle(byClass.get(label) ?? []);
    const count = members.length;
    const take = count > shots ? shots : Math.max(1, count - 1);
    support.push(...members.slice(0, take));
    heldOut.push(...members.slice(take));
    if (take < shots) {
      const name = classNames?.[label] !== undefined ? `class "${classNames[label]}"` : `class ${label}`;
      warnings.push(
        count === 1
          ? `${name} has 1 image: it is used for training and none is held out for evaluation`
          : `${name} has ${count} images, fewer than ${shots} shots + 1 held out: ${take} train, 1 is held out`,
      );
    }
  }
  const ascending = (x: number, y: number) => x - y;
  return { support: support.sort(ascending), heldOut: heldOut.sort(ascending), warnings };
}

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
    if (!items.every(Number.isSafeInteger)) throw new RangeError('BatchSampler: items must be integers (image indices)');
    if (this.dropLast && items.length < batchSize) {
      throw new RangeError(`BatchSampler: dropLast with ${items.length} items and batches of ${batchSize} leaves no batch at all`);
    }
    this.items = [...items];
    this.rng = Rng.derive(seed, RNG_STREAM.batches);
    this.epochStartRng = this.rng.state();
    this.beginEpoch();
  }

  /** Continues a sampler saved with `state()`, over the same `items` (checked). */
  static restore(items: readonly number[], state: BatchSamplerState): BatchSampler {
    if (state.version !== 1) throw new RangeError(`BatchSampler.restore: unknown state version ${String(state.version)}`);
    if (state.itemCount !== items.length || state.itemsHash !== hashItems(items)) {
      throw new RangeError(
        `BatchSampler.restore: the saved state was for ${state.itemCount} other items; ` +
          'the support set changed (other data, shots or seed?)',
      );
    }
    const sampler = new BatchSampler(items, state.batchSize, 0, { dropLast: state.dropLast });
    const { cursor, batchSize } = state;
    const validCursor = Number.isInteger(cursor) && cursor >= 0 && cursor < sampler.batchesPerEpoch * batchSize && cursor % batchSize === 0;
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
