// The 'f16' precision on the tiny CLIP: weights stored in half, and the linear layers' and attention's
// products in half precision (shader-f16), on a device that offers it (Mesa's lavapipe where there is
// no GPU). Against the float64 reference with the weights rounded to half, what differs is the
// rounding of each product's operands to half and of the products and their partial sums (2^-11
// relative each), added up in f32.

import { describe, expect, it } from 'vitest';
import { defaultAdapterSettings } from '../../src/adapters/settings';
import { PRECISION_NUMERICS } from '../../src/common/recipe';
import type { GpuContext } from '../../src/gpu/context';
import { ClipModel } from '../../src/model/clip';
import { expectClose } from '../helpers/compare';
import { gradientCheck } from '../helpers/gradient-check';
import { useF16Gpu, useGpu } from '../helpers/gpu';
import { randomArray } from '../helpers/random';
import { tinyModelFiles, weightMap } from '../helpers/tiny-model';
import * as reference from '../reference/clip';
import { withHalfWeights } from '../reference/half';

const f16 = await useF16Gpu();
const ctx = await useGpu();
const files = tinyModelFiles();
const weights = weightMap(files.safetensors);
const rounded = withHalfWeights(weights);

describe.skipIf(ctx.hasF16Arithmetic)('the f16 precision on a device without shader-f16', () => {
  it('is refused before any weight is read, saying what to use instead', async () => {
    const refused = await ClipModel.load(ctx, files, PRECISION_NUMERICS.f16).catch((e: unknown) => e);
    expect((refused as Error).message).toBe(
      `f16 arithmetic needs the adapter's shader-f16 feature, which ${ctx.adapterName} does not offer: use f16-storage or f32`,
    );
  });
});

describe.skipIf(typeof f16 === 'string')(
  `the f16 precision${typeof f16 === 'string' ? ` (skipped: ${f16})` : ''}`,
  () => {
    const gpu = f16 as GpuContext;

    it('image and text features match the float64 reference with the weights rounded to half', async () => {
      const model = await ClipModel.load(gpu, tinyModelFiles(), PRECISION_NUMERICS.f16);
      const { config } = model;
      expect([model.weights.weightStorage, model.weights.arithmetic]).toEqual(['f16', 'f16']);
      const size = config.vision.imageSize;
      const pixelData = randomArray(2 * 3 * size * size, 11, 2);
      const pixels = gpu.tensor([2, 3, size, size], 'pixels', pixelData);
      const tokens = model.tokenize(['a photo of a cat.', 'zero', 'a photo of a seven.']);
      const [image, text] = [model.imageFeatures(pixels, 2), model.textFeatures(tokens)];
      const [imageValues, textValues] = await gpu.readMany([image, text]);
      const expected = {
        image: reference.imageFeatures(config, rounded, pixelData, 2),
        text: reference.textFeatures(config, rounded, tokens.ids, tokens.eotIndex),
      };
      for (const [label, actual] of [
        ['image', imageValues],
        ['text', textValues],
      ] as const) {
        const scale = Math.max(...Array.from(expected[label], Math.abs));
        // Every product's operands are rounded to half: through the tiny model the features moved by
        // 7e-4 (image) and 2.5e-3 (text) of their scale on lavapipe, 1.5 and 5 units of half's
        // roundoff, against 1e-4 for f32 arithmetic. 1e-2 holds that with room; a product with a
        // misplaced or unconverted operand moves them by order 1.
        expectClose(actual, expected[label], { rtol: 0, atol: 1e-2 * scale, label: `${label} features` });
      }
      [pixels, image, text].forEach((t) => t.destroy());
      model.destroy();
    });

    it('adapter gradients of a training step match finite differences of that reference', async () => {
      const model = await ClipModel.load(gpu, tinyModelFiles(), PRECISION_NUMERICS.f16);
      const settings = defaultAdapterSettings(model.config, { rank: 4, blocks: 2, dropout: 0 });
      // The loss here is about 20 (logits are 100 times cosines), and f16 puts it 4e-3 off the reference
      // (2e-4 of itself, under one unit of half's roundoff), the directional derivative 5e-3 off and
      // single coordinates up to 4e-3, relative. These tolerances leave 4 to 5 times that; a gradient
      // with a term missing or of the wrong sign is off by order 1.
      await gradientCheck(gpu, model, rounded, settings, { loss: 2e-2, directional: 2e-2, coordinate: 2e-2 });
      model.destroy();
    });
  },
);
