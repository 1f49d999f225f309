// Frozen linear weights stored in half precision (weightStorage 'f16') on the tiny CLIP. The model then
// computes exactly the float64 reference with those weights rounded to half, in f32 arithmetic: the
// features agree with that reference as closely as the f32 model agrees with its own (1e-4 relative),
// and the whole-model gradient check passes. Against the unrounded weights they differ by the rounding
// (2^-11 relative per weight), which the last test measures.

import { describe, expect, it } from 'vitest';
import { defaultAdapterSettings } from '../../src/adapters/settings';
import { ClipModel } from '../../src/model/clip';
import { ModelFileError, parseSafetensorsHeader } from '../../src/model/safetensors';
import { byteSourceFromBytes } from '../../src/model/weights';
import { expectClose } from '../helpers/compare';
import { gradientCheck } from '../helpers/gradient-check';
import { useGpu } from '../helpers/gpu';
import { randomArray } from '../helpers/random';
import { tinyModelFiles, weightMap } from '../helpers/tiny-model';
import * as reference from '../reference/clip';
import { HALF_WEIGHTS, withHalfWeights } from '../reference/half';

const ctx = await useGpu();
const files = tinyModelFiles();
const model = await ClipModel.load(ctx, files, { weightStorage: 'f16' });
const { config } = model;
const weights = weightMap(files.safetensors);

const rounded = withHalfWeights(weights);

const size = config.vision.imageSize;
const pixelData = randomArray(2 * 3 * size * size, 11, 2);
const prompts = ['a photo of a cat.', 'zero', 'a photo of a seven.'];

function expectFeaturesClose(actual: Float32Array, expected: Float64Array, rtol: number, label: string) {
  const scale = Math.max(...Array.from(expected, Math.abs));
  expectClose(actual, expected, { rtol, atol: rtol * scale, label });
}

async function features() {
  const pixels = ctx.tensor([2, 3, size, size], 'pixels', pixelData);
  const tokens = model.tokenize(prompts);
  const image = model.imageFeatures(pixels, 2);
  const text = model.textFeatures(tokens);
  const [imageValues, textValues] = await ctx.readMany([image, text]);
  [pixels, image, text].forEach((t) => t.destroy());
  return { image: imageValues, text: textValues, tokens };
}

describe('frozen weights in half precision', () => {
  it('store the linear weights in half: their bytes halve, nothing else changes', async () => {
    const full = await ClipModel.load(ctx, tinyModelFiles());
    const halfNames = [...weights.keys()].filter((name) => HALF_WEIGHTS.test(name));
    expect(halfNames.length).toBe(6 * (config.vision.numLayers + config.text.numLayers) + 4);
    for (const name of weights.keys()) {
      if (name === 'logit_scale' || name.endsWith('position_ids')) continue;
      expect(model.weights.get(name).type, name).toBe(HALF_WEIGHTS.test(name) ? 'f16' : 'f32');
    }
    const halfBytes = halfNames.reduce((sum, name) => sum + 2 * weights.get(name)!.length, 0);
    expect(model.weights.byteLength).toBe(full.weights.byteLength - halfBytes);
    expect(model.weights.weightStorage).toBe('f16');
    full.destroy();
  });

  it('image and text features match the float64 reference with the weights rounded to half', async () => {
    const { image, text, tokens } = await features();
    expectFeaturesClose(image, reference.imageFeatures(config, rounded, pixelData, 2), 1e-4, 'image features');
    expectFeaturesClose(
      text,
      reference.textFeatures(config, rounded, tokens.ids, tokens.eotIndex),
      1e-4,
      'text features',
    );
  });

  it('adapter gradients of a training step match finite differences of that reference', async () => {
    await gradientCheck(ctx, model, rounded, defaultAdapterSettings(config, { rank: 4, blocks: 2, dropout: 0 }));
  });

  it("refuse a checkpoint holding a weight beyond half precision's range, naming the tensor and the file", async () => {
    const name = 'vision_model.encoder.layers.0.mlp.fc1.weight';
    const bytes = files.safetensors.slice();
    const entry = parseSafetensorsHeader(bytes, bytes.length).tensors.get(name)!;
    new DataView(bytes.buffer, bytes.byteOffset + entry.byteOffset).setFloat32(0, 70000, true);
    const withLargeWeight = { ...files, weights: byteSourceFromBytes('model.safetensors', bytes) };
    const refused = await ClipModel.load(ctx, withLargeWeight, { weightStorage: 'f16' }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ModelFileError);
    expect((refused as Error).message).toMatch(
      `model.safetensors: tensor ${name} holds 70000, beyond half precision's range (±65504): load this model in f32`,
    );
    (await ClipModel.load(ctx, withLargeWeight)).destroy(); // in f32 the same checkpoint loads
  });

  it('differ from the f32 model by the rounding of the weights, no more', async () => {
    const { image, tokens } = await features();
    const exact = reference.imageFeatures(config, weights, pixelData, 2);
    const scale = Math.max(...Array.from(exact, Math.abs));
    const difference = Math.max(...Array.from(image, (v, i) => Math.abs(v - exact[i]))) / scale;
    // Each weight is off by at most 2^-12 relative (half an ulp of 10 fraction bits); through the tiny
    // model's layers the features move by 4e-4 of their scale: more than the 1e-4 agreement with the
    // rounded reference above (so that comparison could tell the two apart), and no more than that.
    expect(difference).toBeGreaterThan(1e-4);
    expect(difference).toBeLessThan(2e-3);
    expect(tokens.ids.length).toBe(prompts.length);
  });
});
