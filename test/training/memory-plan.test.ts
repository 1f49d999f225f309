// The memory planner against the allocator: on the tiny CLIP, the planned peak of a training step
// equals ctx.memory.peak measured over a real step, to the byte, for batch sizes, class counts, text
// chunks, Block-LoRA and LoRA, one tower or both, and the Trainer itself (AdamW moments, accumulation);
// and an allocation added to the engine is planned without a change to the planner.

import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { AdapterSet } from '../../src/adapters/block-lora';
import { defaultAdapterSettings, type AdapterSettings } from '../../src/adapters/settings';
import { GpuContext, GpuError } from '../../src/gpu/context';
import { ClipModel } from '../../src/model/clip';
import { expectedTensors, parseClipConfig } from '../../src/model/config';
import { makeTinyClip } from '../../src/model/tiny';
import { promptFor } from '../../src/common/prompts';
import { createNodeGpuContext } from '../../src/node/gpu';
import {
  BUDGET_IN_LARGEST_BUFFERS,
  choosePassSizes,
  deviceMemoryOf,
  planTrainingMemory,
  TrainingDoesNotFitError,
  type TrainingMemoryOptions,
} from '../../src/training/memory-plan';
import { frozenClassFeatures, trainMicroBatch, type StepOptions } from '../../src/training/step';
import { defaultTrainSettings } from '../../src/common/recipe';
import { Trainer } from '../../src/training/trainer';
import { randomArray } from '../helpers/random';
import { loadTinyModel, tinyModelFiles } from '../helpers/tiny-model';

const tinyConfig = parseClipConfig(makeTinyClip().files['config.json'] as string);
const CLASS_NAMES = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];

// Each case gets a device of its own: the attention backward keeps a scratch buffer per device at the
// largest size it has seen, so a shared device would carry one case's scratch into the next.
let open: GpuContext | null = null;
afterEach(() => {
  open?.destroy();
  open = null;
});

async function tinySetup(): Promise<{ ctx: GpuContext; model: ClipModel }> {
  const ctx = await createNodeGpuContext();
  open = ctx;
  const { model } = await loadTinyModel(ctx);
  return { ctx, model };
}

interface Case {
  name: string;
  batch: number;
  classes: number;
  textChunk: number;
  adapter: (model: ClipModel) => Partial<AdapterSettings>;
}

/** Runs one micro-batch as the Trainer would (class features cached when the text tower has no adapters). */
async function runMicroBatch(ctx: GpuContext, model: ClipModel, adapters: AdapterSet, c: Case): Promise<void> {
  const size = model.config.vision.imageSize;
  const classes = model.tokenize(CLASS_NAMES.slice(0, c.classes).map((name) => promptFor(name)));
  const options: StepOptions = { dropoutSeed: 5, training: true, accumulationSteps: 1, textChunk: c.textChunk };
  const cached = adapters.hasTower('text') ? null : frozenClassFeatures(model, classes, options);
  const pixels = ctx.tensor([c.batch, 3, size, size], 'pixels', randomArray(c.batch * 3 * size * size, 3, 2));
  const labels = Array.from({ length: c.batch }, (_, i) => i % c.classes);
  await trainMicroBatch(model, adapters, pixels, labels, classes, options, cached);
  pixels.destroy();
  cached?.destroy();
}

function promptTokens(model: ClipModel, classes: number): number {
  return Math.max(...model.tokenize(CLASS_NAMES.slice(0, classes).map((name) => promptFor(name))).eotIndex) + 1;
}

function expectExact(planned: number, measured: number, label: string): void {
  expect(planned, `${label}: planned ${planned} bytes, measured ${measured} (off by ${planned - measured})`).toBe(
    measured,
  );
}

/** A real Trainer's second step (the first grows the attention scratch), or its plan. */
async function trainerPeak(model: ClipModel, settings: AdapterSettings, classes: number): Promise<number> {
  const { ctx } = model;
  const adapters = AdapterSet.create(ctx, model.config, settings, { random: () => 0.5 });
  const images = Array.from({ length: 6 }, (_, i) => {
    const [width, height] = [40 + i, 36];
    return { rgba: Uint8Array.from({ length: width * height * 4 }, (_, k) => (k * (i + 7)) % 256), width, height };
  });
  const train = defaultTrainSettings(1, { iterations: 3, batchSize: 4, microBatchSize: 2, textChunk: 2 });
  const trainer = new Trainer(
    model,
    adapters,
    CLASS_NAMES.slice(0, classes),
    { images, labels: images.map((_, i) => i % classes) },
    train,
  );
  await trainer.trainStep();
  ctx.memory.resetPeak();
  await trainer.trainStep();
  const peak = ctx.memory.peak;
  trainer.destroy();
  adapters.destroy();
  return peak;
}

function trainerPlan(model: ClipModel, settings: AdapterSettings, classes: number) {
  return planTrainingMemory(model.config, {
    batchSize: 4,
    microBatchSize: 2,
    classes,
    adapter: settings,
    textChunk: 2,
    optimizer: 'adamw',
    textPromptTokens: promptTokens(model, classes),
  });
}

const CASES: Case[] = [
  {
    name: 'Block-LoRA r=2 n=2 on q, k, v of both towers, batch 1, 3 classes',
    batch: 1,
    classes: 3,
    textChunk: 3,
    adapter: () => ({}),
  },
  {
    name: 'Block-LoRA r=4 n=2 on every matrix, batch 4, 10 classes in chunks of 4',
    batch: 4,
    classes: 10,
    textChunk: 4,
    adapter: () => ({ rank: 4, blocks: 2, targets: ['q_proj', 'k_proj', 'v_proj', 'out_proj', 'fc1', 'fc2'] }),
  },
  {
    name: 'LoRA r=2, batch 4, 3 classes in chunks of 2',
    batch: 4,
    classes: 3,
    textChunk: 2,
    adapter: () => ({ method: 'lora', rank: 2 }),
  },
  {
    name: 'vision-only Block-LoRA (class features cached), batch 4, 10 classes in chunks of 3',
    batch: 4,
    classes: 10,
    textChunk: 3,
    adapter: (model) => ({ layers: { vision: Array.from({ length: model.config.vision.numLayers }, (_, i) => i) } }),
  },
  {
    name: 'text-only Block-LoRA, batch 1, 10 classes in one chunk',
    batch: 1,
    classes: 10,
    textChunk: 10,
    adapter: (model) => ({ layers: { text: Array.from({ length: model.config.text.numLayers }, (_, i) => i) } }),
  },
];

describe('planTrainingMemory', () => {
  // The dry run needs the WebGPU globals (GPUBufferUsage, ...) as all engine code does, not a device.
  beforeAll(async () => {
    Object.assign(globalThis, (await import('webgpu')).globals);
  });

  for (const c of CASES) {
    it(`predicts the measured peak: ${c.name}`, async () => {
      const { ctx, model } = await tinySetup();
      const settings = defaultAdapterSettings(model.config, c.adapter(model));
      const adapters = AdapterSet.create(ctx, model.config, settings, { random: () => 0.25 });
      adapters.allocateGradients();
      await runMicroBatch(ctx, model, adapters, c); // compiles the pipelines, grows the attention scratch
      ctx.memory.resetPeak();
      await runMicroBatch(ctx, model, adapters, c);
      await ctx.sync();
      const plan = await planTrainingMemory(model.config, {
        batchSize: c.batch,
        microBatchSize: c.batch,
        classes: c.classes,
        adapter: settings,
        textChunk: c.textChunk,
        optimizer: 'sgd',
        textPromptTokens: promptTokens(model, c.classes),
      });
      expectExact(plan.peakBytes, ctx.memory.peak, c.name);
      adapters.destroy();
    });
  }

  it('predicts the peak of Trainer steps: AdamW, batch 4 in micro-batches of 2, LoRA r=8 n=4 on both towers', async () => {
    const { model } = await tinySetup();
    const classes = 5;
    const settings = defaultAdapterSettings(model.config, { rank: 8, blocks: 4 });
    const measured = await trainerPeak(model, settings, classes);
    expectExact((await trainerPlan(model, settings, classes)).peakBytes, measured, 'Trainer');
  });

  it('plans an allocation added to the engine, with no change to the planner', async () => {
    const { model } = await tinySetup();
    const classes = 5;
    const settings = defaultAdapterSettings(model.config);
    const before = await trainerPlan(model, settings, classes);
    // The vision backward's scratch gains a 1 MiB buffer, freed with it: more than the tiny step's peak
    // holds in activations, so the peak moves there.
    const extraElements = 1 << 18;
    const tensor = GpuContext.prototype.tensor;
    vi.spyOn(GpuContext.prototype, 'tensor').mockImplementation(function (this: GpuContext, shape, label, data) {
      const made = tensor.call(this, shape, label, data);
      if (label !== 'vision.backward.d_gelu') return made;
      const extra = tensor.call(this, [extraElements], 'vision.backward.extra');
      const destroy = made.destroy.bind(made);
      made.destroy = () => {
        destroy();
        extra.destroy();
      };
      return made;
    });
    try {
      const measured = await trainerPeak(model, settings, classes);
      const after = await trainerPlan(model, settings, classes);
      expectExact(after.peakBytes, measured, 'with the extra buffer');
      expect(after.peakBytes).toBeGreaterThan(before.peakBytes);
      expect(after.breakdown['vision backward']).toBeGreaterThanOrEqual(4 * extraElements);
    } finally {
      vi.restoreAllMocks();
    }
  });

  it('breaks the peak down into parts that add up to it', async () => {
    const config = tinyConfig;
    const plan = await planTrainingMemory(config, {
      batchSize: 8,
      microBatchSize: 4,
      classes: 10,
      adapter: defaultAdapterSettings(config),
      textChunk: 4,
    });
    const total = Object.values(plan.breakdown).reduce((a, b) => a + b, 0);
    expect(total).toBe(plan.peakBytes);
    expect(plan.breakdown['uniform arena']).toBe(1 << 20);
    expect(plan.breakdown['optimizer moments']).toBe(2 * plan.breakdown['adapter gradients']);
  });

  it('refuses a batch that is not a multiple of the micro-batch', async () => {
    const config = tinyConfig;
    await expect(
      planTrainingMemory(config, {
        batchSize: 6,
        microBatchSize: 4,
        classes: 3,
        adapter: defaultAdapterSettings(config),
        textChunk: 3,
      }),
    ).rejects.toThrow(RangeError);
  });
});

describe('choosePassSizes', () => {
  beforeAll(async () => {
    Object.assign(globalThis, (await import('webgpu')).globals);
  });

  const config = tinyConfig;
  const unlimited = { maxBufferSize: Number.MAX_SAFE_INTEGER, maxStorageBufferBindingSize: Number.MAX_SAFE_INTEGER };
  const wanted: TrainingMemoryOptions = {
    batchSize: 8,
    microBatchSize: 8,
    classes: 10,
    adapter: defaultAdapterSettings(config),
    textChunk: 4,
  };

  it('keeps the passes wanted when they fit, with their plan', async () => {
    const chosen = await choosePassSizes(config, wanted, { limits: unlimited, budgetBytes: Number.MAX_SAFE_INTEGER });
    expect(chosen).toEqual({ microBatchSize: 8, textChunk: 4, plan: await planTrainingMemory(config, wanted) });
  });

  it('chooses the largest micro-batch within the budget', async () => {
    for (const microBatchSize of [4, 2, 1]) {
      const { peakBytes } = await planTrainingMemory(config, { ...wanted, microBatchSize });
      const chosen = await choosePassSizes(config, wanted, { limits: unlimited, budgetBytes: peakBytes });
      expect([chosen.microBatchSize, chosen.textChunk, chosen.plan.peakBytes]).toEqual([microBatchSize, 4, peakBytes]);
    }
  });

  it('halves the text chunk when no micro-batch fits with it', async () => {
    // The text tower alone carries adapters: a chunk of 10 prompts outweighs an image.
    const textOnly: TrainingMemoryOptions = {
      ...wanted,
      batchSize: 2,
      microBatchSize: 2,
      textChunk: 10,
      adapter: defaultAdapterSettings(config, { layers: { text: [0, 1] } }),
    };
    const fitting = await planTrainingMemory(config, { ...textOnly, microBatchSize: 1, textChunk: 5 });
    expect((await planTrainingMemory(config, { ...textOnly, microBatchSize: 1 })).peakBytes).toBeGreaterThan(
      fitting.peakBytes,
    );
    const chosen = await choosePassSizes(config, textOnly, { limits: unlimited, budgetBytes: fitting.peakBytes });
    expect([chosen.microBatchSize, chosen.textChunk]).toEqual([1, 5]);
  });

  it("keeps every buffer within the device's binding limit", async () => {
    // Vision fc1 holds 13,056 bytes per image; the largest weight (the token embedding) 116,992.
    const limits = { ...unlimited, maxStorageBufferBindingSize: 150_000 };
    const options = { ...wanted, batchSize: 16, microBatchSize: 16 };
    await expect(planTrainingMemory(config, { ...options, limits })).rejects.toThrow(GpuError);
    const chosen = await choosePassSizes(config, options, { limits, budgetBytes: Number.MAX_SAFE_INTEGER });
    expect([chosen.microBatchSize, chosen.textChunk]).toEqual([8, 4]);
  });

  it('says what falls short when nothing fits', async () => {
    const tooSmall = choosePassSizes(config, wanted, { limits: unlimited, budgetBytes: 1 << 20 });
    await expect(tooSmall).rejects.toThrow(TrainingDoesNotFitError);
    await expect(tooSmall).rejects.toThrow(
      /micro-batch of 1 and a text chunk of 1: its peak of \d+ bytes is over the budget of 1048576/,
    );
  });

  it('keeps a micro-batch the user chose, and says so when it does not fit', async () => {
    const { peakBytes } = await planTrainingMemory(config, { ...wanted, microBatchSize: 4 });
    const kept = await choosePassSizes(
      config,
      { ...wanted, microBatchSize: 4 },
      { limits: unlimited, budgetBytes: Number.MAX_SAFE_INTEGER },
      { keepMicroBatch: true },
    );
    expect([kept.microBatchSize, kept.textChunk]).toEqual([4, 4]);
    const overBudget = choosePassSizes(
      config,
      { ...wanted, microBatchSize: 4 },
      { limits: unlimited, budgetBytes: peakBytes - 1 },
      { keepMicroBatch: true },
    );
    await expect(overBudget).rejects.toThrow(/even with a micro-batch of 4 and a text chunk of 1/);
  });

  it('budgets twice the largest buffer unless given a budget', () => {
    expect(deviceMemoryOf(unlimited).budgetBytes).toBe(BUDGET_IN_LARGEST_BUFFERS * unlimited.maxBufferSize);
    expect(deviceMemoryOf({ ...unlimited, maxBufferSize: 2 ** 30 }).budgetBytes).toBe(2 * 2 ** 30);
    expect(deviceMemoryOf(unlimited, 12345).budgetBytes).toBe(12345);
    expect(() => deviceMemoryOf(unlimited, -1)).toThrow(RangeError);
  });

  it('refuses bad settings instead of searching', async () => {
    await expect(
      choosePassSizes(config, { ...wanted, microBatchSize: 3 }, { limits: unlimited, budgetBytes: 1 << 30 }),
    ).rejects.toThrow(RangeError);
  });
});

describe('weights in half precision (f16-storage)', () => {
  beforeAll(async () => {
    Object.assign(globalThis, (await import('webgpu')).globals);
  });

  /** The large frozen weights: nn.Linear's (q, k, v, out, fc1, fc2, both projections), the patch convolution, the token table. */
  const HALF =
    /_proj\.weight$|\.fc[12]\.weight$|^(visual|text)_projection\.weight$|patch_embedding\.weight$|token_embedding\.weight$/;

  /** The weights' bytes on the GPU, from the config: whole u32 words (at least 16 bytes) per tensor, q/k/v as planes 256 bytes apart. */
  function weightBytes(half: boolean): number {
    let total = 0;
    for (const [name, shape] of expectedTensors(tinyConfig)) {
      const bytes = shape.reduce((a, b) => a * b, 1) * (half && HALF.test(name) ? 2 : 4);
      const plane = /\.self_attn\.[qkv]_proj\./.test(name);
      total += plane ? Math.ceil(bytes / 256) * 256 : Math.max(16, Math.ceil(bytes / 4) * 4);
    }
    return total;
  }

  it('plans the large weights in two bytes instead of four, to the byte, as loading them in f16 allocates', async () => {
    const options: TrainingMemoryOptions = {
      batchSize: 2,
      microBatchSize: 2,
      classes: 3,
      adapter: defaultAdapterSettings(tinyConfig),
      textChunk: 3,
    };
    const full = await planTrainingMemory(tinyConfig, options);
    const half = await planTrainingMemory(tinyConfig, { ...options, weightStorage: 'f16' });
    expect(full.breakdown.weights).toBe(weightBytes(false));
    expect(half.breakdown.weights).toBe(weightBytes(true));
    // Only the weights change: every other holder is planned alike.
    expect(half.peakBytes).toBe(full.peakBytes - (weightBytes(false) - weightBytes(true)));

    const ctx = await createNodeGpuContext();
    open = ctx;
    const before = ctx.memory.current;
    const files = tinyModelFiles();
    const model = await ClipModel.load(ctx, files, { weightStorage: 'f16' });
    expect(ctx.memory.current - before).toBe(weightBytes(true));
    model.destroy();
  });
});
