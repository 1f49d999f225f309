// The GPU memory a training step will need, predicted without a GPU: the allocations of the code that
// runs the step (Trainer, trainMicroBatch, TowerRun, ClipEncoder, the attention kernel's scratch),
// replayed in the same order on a byte counter that tracks what is alive, as ctx.memory does.
//
// Keep in step with: src/gpu/context.ts (uniform arena, tensor and staging sizes), src/adapters/block-lora.ts
// (adapter tensors), src/training/optimizer.ts (moments), src/training/trainer.ts (cached class features), src/training/step.ts,
// src/model/{vision,text,tower-run,encoder}.ts and src/kernels/attention.ts. test/training/memory-plan.test.ts
// compares the plan with ctx.memory.peak of real steps.

import type { AdapterSettings, Tower } from '../adapters/settings';
import { adapterLayout, validateAdapterSettings } from '../adapters/settings';
import { expectedTensors, visionTokenCount, type ClipConfig } from '../model/config';

export interface TrainingMemoryOptions {
  /** Images per optimizer step (a multiple of microBatchSize). */
  batchSize: number;
  /** Images per forward/backward pass: what the activations scale with. */
  microBatchSize: number;
  classes: number;
  adapter: AdapterSettings;
  /** Classes per text-tower chunk. */
  textChunk: number;
  /** AdamW keeps two moments per adapter parameter; SGD none. Default 'adamw'. */
  optimizer?: 'adamw' | 'sgd';
  /** Tokens of the text pass, up to the end-of-text token (the longest prompt of a chunk). Default 8: 'a photo of a {}.' with a one-token name. */
  textPromptTokens?: number;
}

export interface MemoryPlan {
  /** What ctx.memory.peak reaches during a training step (after the first: see planStepMemory). */
  peakBytes: number;
  /** The bytes alive at the peak, by what holds them; the values add up to peakBytes. */
  breakdown: Record<string, number>;
}

/** Prompt length of 'a photo of a {}.' for a one-token class name: start, a, photo, of, a, name, '.', end. */
export const DEFAULT_PROMPT_TOKENS = 8;

/** GpuContext's uniform arena (UNIFORM_ARENA_BYTES in src/gpu/context.ts). */
const UNIFORM_ARENA_BYTES = 1 << 20;
/** ctx.tensor never makes a buffer smaller than this (bindings of size 0 are invalid). */
const MIN_TENSOR_BYTES = 16;
const F32 = 4;
/** BlockSumTable (src/kernels/block_lora.ts): a vec4u per adapted matrix. */
const BLOCK_SUM_TABLE_ENTRY_BYTES = 16;

/**
 * Peak GPU bytes of a training step of the Trainer with these settings: frozen weights, adapters with
 * their gradients and optimizer moments, the uniform arena, the micro-batch's pixels, and everything a
 * step allocates while it runs. Image decoding buffers (one image at a time, before the step) are not
 * counted: they depend on the images' sizes and are alive only while nothing else of the step is.
 */
export function planTrainingMemory(config: ClipConfig, options: TrainingMemoryOptions): MemoryPlan {
  const { batchSize, microBatchSize } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1 || !Number.isInteger(microBatchSize) || microBatchSize < 1) {
    throw new RangeError(`batch size (${batchSize}) and micro-batch size (${microBatchSize}) must be positive integers`);
  }
  if (batchSize % microBatchSize !== 0) {
    throw new RangeError(`batch size ${batchSize} must be a multiple of the micro-batch size ${microBatchSize}`);
  }
  validateAdapterSettings(options.adapter, config);
  const trains = (tower: Tower) => hasTower(options.adapter, tower);
  return planStepMemory(config, {
    microBatchSize,
    classes: options.classes,
    textChunk: options.textChunk,
    textPromptTokens: options.textPromptTokens,
    optimizer: options.optimizer ?? 'adamw',
    adapter: options.adapter,
    backward: { vision: trains('vision'), text: trains('text') },
    cachedClassFeatures: !trains('text'),
  });
}

export interface StepMemoryOptions {
  microBatchSize: number;
  classes: number;
  textChunk: number;
  textPromptTokens?: number;
  optimizer: 'adamw' | 'sgd';
  /** null: no adapter anywhere. */
  adapter: AdapterSettings | null;
  /**
   * Towers whose activations are recorded and back-propagated through every layer from the lowest adapted
   * one (from layer 0 without adapters). The Trainer does this for the towers that carry adapters.
   */
  backward: Record<Tower, boolean>;
  /** The class features are computed once before training (the Trainer does this when the text tower has no adapters). */
  cachedClassFeatures: boolean;
}

/**
 * planTrainingMemory with every part of the step chosen explicitly, for the benchmarks' reference points:
 * a frozen forward (no adapter, no backward, class features computed in the step) and a forward and
 * backward through both towers without adapters.
 *
 * The plan is of a step after the first: the attention backward keeps one d(q·k) scratch buffer per
 * device, grown to the largest attention seen, so from the second step on it is alive throughout.
 */
export function planStepMemory(config: ClipConfig, options: StepMemoryOptions): MemoryPlan {
  const { microBatchSize, classes, textChunk } = options;
  for (const [name, value] of Object.entries({ microBatchSize, classes, textChunk })) {
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  const promptTokens = options.textPromptTokens ?? DEFAULT_PROMPT_TOKENS;
  if (!Number.isInteger(promptTokens) || promptTokens < 1 || promptTokens > config.text.maxPositions) {
    throw new RangeError(`textPromptTokens must be an integer from 1 to ${config.text.maxPositions}, got ${promptTokens}`);
  }
  if (options.adapter) validateAdapterSettings(options.adapter, config);
  return new StepPlanner(config, { ...options, textPromptTokens: promptTokens }).plan();
}

/** What ctx.memory counts, by what holds the bytes (the keys of MemoryPlan.breakdown). */
type Holder =
  | 'uniform arena'
  | 'weights'
  | 'adapters'
  | 'adapter gradients'
  | 'optimizer moments'
  | 'attention backward scratch'
  | 'cached class features'
  | 'pixels'
  | 'vision activations'
  | 'vision backward'
  | 'text activations'
  | 'text backward'
  | 'features, logits and loss'
  | 'readback staging';

interface Allocation {
  bytes: number;
  holder: Holder;
}

/** A byte counter with ctx.memory's rules: current and peak, and what was alive at the peak. */
class AllocationTrace {
  private readonly live = new Set<Allocation>();
  private current = 0;
  private peak = 0;
  private peakBreakdown: Partial<Record<Holder, number>> = {};

  /** A ctx.tensor of `elements` f32 values (never under 16 bytes). */
  tensor(holder: Holder, elements: number): Allocation {
    return this.buffer(holder, Math.max(MIN_TENSOR_BYTES, elements * F32));
  }

  /** A raw buffer of exactly `bytes` (the uniform arena, readback staging). */
  buffer(holder: Holder, bytes: number): Allocation {
    const allocation = { bytes, holder };
    this.live.add(allocation);
    this.current += bytes;
    if (this.current > this.peak) {
      this.peak = this.current;
      this.peakBreakdown = {};
      for (const { bytes: size, holder: owner } of this.live) this.peakBreakdown[owner] = (this.peakBreakdown[owner] ?? 0) + size;
    }
    return allocation;
  }

  free(...allocations: (Allocation | null | undefined)[]): void {
    for (const allocation of allocations) {
      if (!allocation) continue;
      if (!this.live.delete(allocation)) throw new Error('memory plan: an allocation was freed twice');
      this.current -= allocation.bytes;
    }
  }

  result(): MemoryPlan {
    return { peakBytes: this.peak, breakdown: { ...this.peakBreakdown } as Record<string, number> };
  }
}

/** Sizes of one pass of a tower's encoder (EncoderShape). */
interface PassShape {
  batch: number;
  seqLen: number;
}

/** A TowerRun's allocations that outlive its constructor. */
interface RunAllocations {
  tensors: Allocation[];
  head: Allocation[];
  features: Allocation | null;
}

class StepPlanner {
  private readonly trace = new AllocationTrace();
  private readonly blockRank: number;

  constructor(
    private readonly config: ClipConfig,
    private readonly options: StepMemoryOptions & { textPromptTokens: number },
  ) {
    const adapter = options.adapter;
    this.blockRank = adapter ? adapter.rank / adapter.blocks : 0;
  }

  plan(): MemoryPlan {
    const { trace, options } = this;
    this.persistentState();
    // Trainer.trainStep: the class features of a text tower without adapters, once, before the first micro-batch.
    if (options.cachedClassFeatures) this.frozenClassFeatures();
    // The micro-batch's pixels (preprocessBatch), alive for the whole of trainMicroBatch.
    const { imageSize } = this.config.vision;
    const pixels = trace.tensor('pixels', options.microBatchSize * 3 * imageSize * imageSize);
    this.trainMicroBatch();
    trace.free(pixels);
    return trace.result();
  }

  // ---- what lives as long as the device or the Trainer --------------------------------------

  private persistentState(): void {
    const { trace, config, options } = this;
    trace.buffer('uniform arena', UNIFORM_ARENA_BYTES);
    for (const shape of expectedTensors(config).values()) trace.tensor('weights', product(shape));
    const adapter = options.adapter;
    if (adapter) {
      this.adapterTensors(adapter);
    }
    // The attention backward's d(q·k) scratch, at the largest attention probabilities of the step.
    const probs = [this.options.backward.vision ? this.probsSize('vision', this.visionPass()) : 0];
    if (this.options.backward.text) probs.push(this.probsSize('text', this.textPass(Math.min(options.textChunk, options.classes))));
    if (Math.max(...probs) > 0) trace.tensor('attention backward scratch', Math.max(...probs));
  }

  /** AdapterSet.create (flat parameters, the block sums and their table), allocateGradients, AdapterOptimizer's AdamW moments. */
  private adapterTensors(adapter: AdapterSettings): void {
    const { trace } = this;
    const { matrices, elements, sumElements } = adapterLayout(this.config, adapter);
    trace.tensor('adapters', elements);
    if (adapter.blocks > 1 && matrices.length > 0) { // with n = 1 the sum is B itself
      trace.tensor('adapters', sumElements);
      trace.buffer('adapters', BLOCK_SUM_TABLE_ENTRY_BYTES * matrices.length);
    }
    trace.tensor('adapter gradients', elements);
    if (this.options.optimizer === 'adamw') for (let i = 0; i < 2; i++) trace.tensor('optimizer moments', elements);
  }

  // ---- src/training/step.ts ------------------------------------------------------------------

  private trainMicroBatch(): void {
    const { trace, options } = this;
    const batch = options.microBatchSize;
    const classes = options.classes;
    const dim = this.config.projectionDim;
    const head: Holder = 'features, logits and loss';

    const visionRun = this.visionForward(options.backward.vision);
    const imageNormalized = trace.tensor(head, batch * dim);
    const imageNorms = trace.tensor(head, batch);

    let textFeatures: Allocation | null = null;
    let textNormalized: Allocation | null = null;
    let textNorms: Allocation | null = null;
    if (!options.cachedClassFeatures) {
      textFeatures = this.textFeaturesChunked(head, options.adapter);
      textNormalized = trace.tensor(head, classes * dim);
      textNorms = trace.tensor(head, classes);
    }

    const logits = trace.tensor(head, batch * classes);
    const probs = trace.tensor(head, batch * classes);
    const losses = trace.tensor(head, batch);
    const labels = trace.tensor(head, batch);
    const dLogits = trace.tensor(head, batch * classes);
    const dImageNormalized = options.backward.vision ? trace.tensor(head, batch * dim) : null;
    const dTextNormalized = options.backward.text ? trace.tensor(head, classes * dim) : null;

    if (options.backward.vision) {
      const dImage = trace.tensor(head, batch * dim);
      this.towerBackward('vision', visionRun, this.visionPass());
      trace.free(dImage);
    } else {
      this.destroyRun(visionRun);
    }

    if (options.backward.text && !options.cachedClassFeatures) {
      const dText = trace.tensor(head, classes * dim);
      for (let start = 0; start < classes; start += options.textChunk) {
        const count = Math.min(classes, start + options.textChunk) - start;
        const run = this.textForward(count, true, options.adapter);
        const dChunk = trace.tensor(head, count * dim);
        this.towerBackward('text', run, this.textPass(count));
        trace.free(run.features, dChunk);
      }
      trace.free(dText);
    }

    // ctx.readMany([losses, probs]): staging buffers of the tensors' exact byte lengths.
    const staging = [trace.buffer('readback staging', batch * F32), trace.buffer('readback staging', batch * classes * F32)];
    trace.free(...staging);
    trace.free(visionRun.features, imageNormalized, imageNorms, logits, probs, losses, labels, dLogits, dImageNormalized, dTextNormalized);
    trace.free(textFeatures, textNorms, textNormalized);
  }

  /** textFeaturesChunked: every class prompt, chunk by chunk, without keeping activations. */
  private textFeaturesChunked(holder: Holder, adapter: AdapterSettings | null): Allocation {
    const { trace, options } = this;
    const dim = this.config.projectionDim;
    const all = trace.tensor(holder, options.classes * dim);
    for (let start = 0; start < options.classes; start += options.textChunk) {
      const run = this.textForward(Math.min(options.classes, start + options.textChunk) - start, false, adapter);
      trace.free(run.features);
    }
    return all;
  }

  /** frozenClassFeatures: the chunked text pass without adapters, normalised; the Trainer keeps the result. */
  private frozenClassFeatures(): void {
    const { trace, options } = this;
    const dim = this.config.projectionDim;
    const features = this.textFeaturesChunked('cached class features', null);
    trace.tensor('cached class features', options.classes * dim); // model.normalize: the output, kept
    const norms = trace.tensor('cached class features', options.classes);
    trace.free(norms, features);
  }

  // ---- src/model/vision.ts, text.ts ----------------------------------------------------------

  private visionPass(): PassShape {
    return { batch: this.options.microBatchSize, seqLen: visionTokenCount(this.config.vision) };
  }

  private textPass(prompts: number): PassShape {
    return { batch: prompts, seqLen: this.options.textPromptTokens };
  }

  private visionForward(record: boolean): RunAllocations {
    const { trace, config } = this;
    const { hiddenSize: d, patchSize } = config.vision;
    const shape = this.visionPass();
    const holder: Holder = 'vision activations';
    const run = this.towerRun('vision', shape, record, this.options.adapter);
    const patches = shape.batch * (shape.seqLen - 1);
    const patchPixels = trace.tensor(holder, patches * 3 * patchSize * patchSize);
    const patchFeatures = trace.tensor(holder, patches * d);
    const embeddings = trace.tensor(holder, shape.batch * shape.seqLen * d);
    trace.free(patchPixels, patchFeatures);
    const stats = [trace.tensor(holder, shape.batch * shape.seqLen), trace.tensor(holder, shape.batch * shape.seqLen)];
    trace.free(embeddings, ...stats);
    return this.poolAndProject('vision', run, shape.batch, record);
  }

  private textForward(prompts: number, record: boolean, adapter: AdapterSettings | null): RunAllocations {
    const { trace } = this;
    const shape = this.textPass(prompts);
    const run = this.towerRun('text', shape, record, adapter);
    trace.free(trace.tensor('text activations', shape.batch * shape.seqLen)); // input_ids
    return this.poolAndProject('text', run, shape.batch, record);
  }

  /** The pooled token -> layer norm -> projection head of either tower, and TowerRun.finish. */
  private poolAndProject(tower: Tower, run: RunAllocations, batch: number, record: boolean): RunAllocations {
    const { trace } = this;
    const d = this.config[tower].hiddenSize;
    const holder = activationsOf(tower);
    const rows = trace.tensor(holder, batch);
    const pooled = trace.tensor(holder, batch * d);
    const pooledNorm = trace.tensor(holder, batch * d);
    const mean = trace.tensor(holder, batch);
    const rstd = trace.tensor(holder, batch);
    run.features = trace.tensor('features, logits and loss', batch * this.config.projectionDim);
    trace.free(pooledNorm);
    run.head = [rows, pooled, mean, rstd];
    if (!record) this.destroyRun(run);
    return run;
  }

  /** tower.backward and TowerRun.backwardEncoder: from the features' gradient down to the lowest adapted layer. */
  private towerBackward(tower: Tower, run: RunAllocations, shape: PassShape): void {
    const { trace } = this;
    const d = this.config[tower].hiddenSize;
    const holder = backwardOf(tower);
    const dPooledNorm = trace.tensor(holder, shape.batch * d);
    const dPooled = trace.tensor(holder, shape.batch * d);
    const dLast = trace.tensor(holder, shape.batch * shape.seqLen * d);
    trace.free(dPooledNorm, dPooled);
    const scratch = this.backwardScratch(tower, shape);
    const dInput = trace.tensor(holder, shape.batch * shape.seqLen * d);
    trace.free(...scratch, dLast, dInput);
    this.destroyRun(run);
  }

  // ---- src/model/tower-run.ts, encoder.ts ----------------------------------------------------

  /** The TowerRun constructor: residual stream, the shared transient set, and per-layer activations (one set without recording). */
  private towerRun(tower: Tower, shape: PassShape, record: boolean, adapter: AdapterSettings | null): RunAllocations {
    const { trace } = this;
    const tc = this.config[tower];
    const holder = activationsOf(tower);
    const rows = shape.batch * shape.seqLen;
    const tensors: Allocation[] = [];
    const residuals = record ? tc.numLayers + 1 : Math.min(2, tc.numLayers + 1);
    for (let i = 0; i < residuals; i++) tensors.push(trace.tensor(holder, rows * tc.hiddenSize));
    // allocateTransient: out_proj output, quick_gelu, fc2 output, the two layer norms' outputs
    tensors.push(trace.tensor(holder, rows * tc.hiddenSize), trace.tensor(holder, rows * tc.intermediateSize), trace.tensor(holder, rows * tc.hiddenSize));
    tensors.push(trace.tensor(holder, rows * tc.hiddenSize), trace.tensor(holder, rows * tc.hiddenSize));
    if (record) for (let layer = 0; layer < tc.numLayers; layer++) tensors.push(...this.layerActivations(tower, shape, layer, adapter));
    else tensors.push(...this.layerActivations(tower, shape, 'every', adapter));
    return { tensors, head: [], features: null };
  }

  /** ClipEncoder.allocateActivations for one layer. */
  private layerActivations(tower: Tower, shape: PassShape, layer: number | 'every', adapter: AdapterSettings | null): Allocation[] {
    const { trace } = this;
    const tc = this.config[tower];
    const holder = activationsOf(tower);
    const rows = shape.batch * shape.seqLen;
    const d = tc.hiddenSize;
    const tensors: Allocation[] = [];
    const layers = adapter?.layers[tower] ?? [];
    const hasLayer = layer === 'every' ? layers.length > 0 : layers.includes(layer); // AdapterSet.hasTower / get
    const adapted = adapter && hasLayer ? adapter.targets.length : 0;
    for (let i = 0; i < adapted; i++) tensors.push(trace.tensor(holder, rows * this.blockRank)); // lora_u
    // q, k, v, attention, residual_mid: [rows, d]; two layer-norm statistics each [rows]; probs; fc1.
    for (let i = 0; i < 5; i++) tensors.push(trace.tensor(holder, rows * d));
    for (let i = 0; i < 4; i++) tensors.push(trace.tensor(holder, rows));
    tensors.push(trace.tensor(holder, this.probsSize(tower, shape)), trace.tensor(holder, rows * tc.intermediateSize));
    return tensors;
  }

  /** ClipEncoder.allocateScratch: one du per block rank among the set's adapters, then the activation gradients. */
  private backwardScratch(tower: Tower, shape: PassShape): Allocation[] {
    const { trace } = this;
    const tc = this.config[tower];
    const holder = backwardOf(tower);
    const rows = shape.batch * shape.seqLen;
    const tensors: Allocation[] = [];
    if (this.adapterCount() > 0) tensors.push(trace.tensor(holder, rows * this.blockRank));
    tensors.push(trace.tensor(holder, rows * tc.intermediateSize), trace.tensor(holder, rows * tc.intermediateSize));
    for (let i = 0; i < 5; i++) tensors.push(trace.tensor(holder, rows * tc.hiddenSize)); // d_layer_norm, d_attention, dq, dk, dv
    return tensors;
  }

  /** TowerRun.destroy / releaseActivations: everything but the features, which the caller frees. */
  private destroyRun(run: RunAllocations): void {
    this.trace.free(...run.tensors.splice(0), ...run.head.splice(0));
  }

  private probsSize(tower: Tower, shape: PassShape): number {
    return shape.batch * this.config[tower].numHeads * shape.seqLen * shape.seqLen;
  }

  private adapterCount(): number {
    const adapter = this.options.adapter;
    if (!adapter) return 0;
    return ((adapter.layers.text?.length ?? 0) + (adapter.layers.vision?.length ?? 0)) * adapter.targets.length;
  }
}

/** AdapterSet.hasTower, from the settings alone. */
function hasTower(settings: AdapterSettings, tower: Tower): boolean {
  return (settings.layers[tower]?.length ?? 0) > 0 && settings.targets.length > 0;
}

function activationsOf(tower: Tower): Holder {
  return tower === 'vision' ? 'vision activations' : 'text activations';
}

function backwardOf(tower: Tower): Holder {
  return tower === 'vision' ? 'vision backward' : 'text backward';
}

function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
