// Whole-model gradient check: the adapter gradients of one training step (both towers, the chosen target
// matrices) against central finite differences of the float64 reference loss, on a tiny CLIP.

import { expect } from 'vitest';
import { AdapterSet } from '../../src/adapters/block-lora';
import type { AdapterSettings } from '../../src/adapters/settings';
import type { GpuContext } from '../../src/gpu/context';
import type { ClipModel } from '../../src/model/clip';
import { promptFor } from '../../src/common/prompts';
import { trainMicroBatch } from '../../src/training/step';
import * as reference from '../reference/clip';
import { mulberry32, randomArray } from './random';

/** How far the GPU's loss and gradients may be from the float64 reference's. */
export interface GradientTolerance {
  /** |loss - reference loss|, absolute. */
  loss: number;
  /** The directional derivative, relative. */
  directional: number;
  /** Each coordinate checked, relative (plus a hundredth of it, absolute). */
  coordinate: number;
}

/** f32 forward and backward against float64: agreement to 1e-3 relative is what f32 allows here. */
export const F32_GRADIENT_TOLERANCE: GradientTolerance = { loss: 1e-4, directional: 1e-3, coordinate: 2e-3 };

/**
 * Checks the GPU's adapter gradients of one micro-batch of `model` (whose weights are `weights`) under
 * `settings`, within f32's tolerance unless a model that rounds more (f16 arithmetic) states its own.
 */
export async function gradientCheck(
  ctx: GpuContext,
  model: ClipModel,
  weights: reference.WeightMap,
  settings: AdapterSettings,
  tolerance: GradientTolerance = F32_GRADIENT_TOLERANCE,
): Promise<void> {
  const { config } = model;
  const classNames = ['zero', 'one', 'two'];
  const classes = model.tokenize(classNames.map((c) => promptFor(c)));
  const batch = 2;
  const labels = [2, 0];
  const size = config.vision.imageSize;
  const pixelData = randomArray(batch * 3 * size * size, 21, 2);

  /** Mean cross-entropy of the reference model with the given adapter weights (dropout off). */
  const referenceLoss = (values: Map<string, Float64Array | Float32Array>, paths: string[]): number => {
    const blockRank = settings.rank / settings.blocks;
    const scale = settings.alpha / Math.sqrt(settings.rank);
    const adapters: reference.ReferenceAdapters = new Map(
      paths.map((path) => [
        path,
        {
          a: values.get(`${path}.block_lora_A`)!,
          blocks: values.get(`${path}.block_lora_B`)!,
          blockCount: settings.blocks,
          blockRank,
          scale,
        },
      ]),
    );
    const logits = reference.clipLogits(
      reference.imageFeatures(config, weights, pixelData, batch, adapters),
      reference.textFeatures(config, weights, classes.ids, classes.eotIndex, adapters),
      config.projectionDim,
      Math.log(model.logitScale),
    );
    const count = classNames.length;
    let loss = 0;
    for (let i = 0; i < batch; i++) {
      const row = logits.subarray(i * count, (i + 1) * count);
      const max = Math.max(...row);
      const logSum = Math.log(row.reduce((sum, v) => sum + Math.exp(v - max), 0)) + max;
      loss += logSum - row[labels[i]];
    }
    return loss / batch;
  };

  // Random A and nonzero B (with B = 0, as at initialisation, the gradient of A vanishes).
  const probe = AdapterSet.create(ctx, config, settings, { random: Math.random });
  const initial = new Map<string, Float32Array>();
  let seed = 300;
  for (const { name, tensor } of probe.parameters()) initial.set(name, randomArray(tensor.size, seed++, 0.2));
  const paths = probe.adapters.map((a) => a.path);
  probe.destroy();

  const adapters = AdapterSet.create(ctx, config, settings, { initial });
  adapters.allocateGradients();
  const pixels = ctx.tensor([batch, 3, size, size], 'pixels', pixelData);
  const result = await trainMicroBatch(
    model,
    adapters,
    pixels,
    labels,
    classes,
    { dropoutSeed: 1, training: true, accumulationSteps: 1, textChunk: 2 },
    null,
  );
  const parameters = adapters.parameters();
  const gradients = await ctx.readMany(parameters.map((p) => p.grad!));
  pixels.destroy();
  adapters.destroy();

  const point = new Map<string, Float64Array>([...initial].map(([name, v]) => [name, Float64Array.from(v)]));
  // The GPU loss is the reference loss at the same point.
  expect(Math.abs(result.loss - referenceLoss(point, paths))).toBeLessThan(tolerance.loss);

  // 1. A directional derivative along a random direction covers every parameter at once.
  const epsilon = 1e-4;
  const random = mulberry32(7);
  const direction = new Map(
    parameters.map((p) => [p.name, Float64Array.from({ length: p.tensor.size }, () => 2 * random() - 1)]),
  );
  const shifted = (sign: number) =>
    new Map([...point].map(([name, v]) => [name, v.map((x, i) => x + sign * epsilon * direction.get(name)![i])]));
  const numeric = (referenceLoss(shifted(1), paths) - referenceLoss(shifted(-1), paths)) / (2 * epsilon);
  let analytic = 0;
  parameters.forEach((p, k) => gradients[k].forEach((g, i) => (analytic += g * direction.get(p.name)![i])));
  expect(Math.abs(analytic - numeric)).toBeLessThan(tolerance.directional * Math.abs(numeric) + 1e-5);
  expect(Math.abs(numeric)).toBeGreaterThan(1e-3); // a vanishing derivative would prove nothing

  // 2. Single coordinates, a few per tensor kind, so a wrong gradient in one place cannot hide in the sum.
  for (const [k, p] of parameters.entries()) {
    if (k % 7 !== 0) continue;
    const index = Math.floor(random() * p.tensor.size);
    const at = (delta: number) => {
      const values = new Map(point);
      const copy = Float64Array.from(point.get(p.name)!);
      copy[index] += delta;
      values.set(p.name, copy);
      return referenceLoss(values, paths);
    };
    const coordinate = (at(epsilon) - at(-epsilon)) / (2 * epsilon);
    expect(Math.abs(gradients[k][index] - coordinate), `${p.name}[${index}]`).toBeLessThan(
      tolerance.coordinate * (Math.abs(coordinate) + 1e-2),
    );
  }
}
