// The MLP activations of CLIP checkpoints on the Hub (config.json's hidden_act): OpenAI's quick_gelu,
// the exact gelu of LAION / OpenCLIP conversions, and gelu's tanh form, each in both towers against the
// float64 reference and through the whole-model gradient check; any other value refused.

import { describe, expect, it } from 'vitest';
import { defaultAdapterSettings } from '../../src/adapters/settings';
import { parseClipConfig, type ClipConfig } from '../../src/model/config';
import { expectClose } from '../helpers/compare';
import { gradientCheck } from '../helpers/gradient-check';
import { useGpu } from '../helpers/gpu';
import { randomArray } from '../helpers/random';
import { loadTinyModel } from '../helpers/tiny-model';
import * as reference from '../reference/clip';

const ctx = await useGpu();

describe('hidden_act in config.json', () => {
  const tower = { hidden_size: 8, intermediate_size: 16, num_attention_heads: 2, num_hidden_layers: 1 };
  const configWith = (text: object, vision: object) =>
    parseClipConfig({
      model_type: 'clip',
      text_config: { ...tower, ...text },
      vision_config: { ...tower, image_size: 8, patch_size: 4, ...vision },
    });

  it("reads each tower's, quick_gelu when absent (transformers' default)", () => {
    const config = configWith({ hidden_act: 'gelu_new' }, {});
    expect([config.text.hiddenAct, config.vision.hiddenAct]).toEqual(['gelu_new', 'quick_gelu']);
    for (const act of ['quick_gelu', 'gelu', 'gelu_new', 'gelu_pytorch_tanh'])
      expect(configWith({}, { hidden_act: act }).vision.hiddenAct).toBe(act);
  });

  it('refuses any other activation, naming the field and what octoclip computes', () => {
    const supported = 'octoclip computes quick_gelu, gelu, gelu_new, gelu_pytorch_tanh';
    expect(() => configWith({ hidden_act: 'relu' }, {})).toThrow(
      `config.json: text_config.hidden_act "relu" is not supported: ${supported}`,
    );
    expect(() => configWith({}, { hidden_act: 'gelu_fast' })).toThrow(
      `vision_config.hidden_act "gelu_fast" is not supported: ${supported}`,
    );
  });
});

/** 1e-4 relative to the feature vector's scale, as in clip.test.ts. */
function expectFeaturesClose(actual: Float32Array, expected: Float64Array, label: string) {
  const scale = Math.max(...Array.from(expected, Math.abs));
  expectClose(actual, expected, { rtol: 1e-4, atol: 1e-4 * scale, label });
}

const withQuickGelu = (config: ClipConfig): ClipConfig => ({
  ...config,
  text: { ...config.text, hiddenAct: 'quick_gelu' },
  vision: { ...config.vision, hiddenAct: 'quick_gelu' },
});

for (const hiddenAct of ['gelu', 'gelu_new'] as const) {
  describe(`a tiny CLIP with hidden_act ${hiddenAct}`, async () => {
    const { model, weights } = await loadTinyModel(ctx, { hiddenAct });
    const { config } = model;

    it('computes both towers as the float64 reference does', async () => {
      const batch = 2;
      const size = config.vision.imageSize;
      const pixelData = randomArray(batch * 3 * size * size, 13, 2);
      const pixels = ctx.tensor([batch, 3, size, size], 'pixels', pixelData);
      const tokens = model.tokenize(['a photo of a cat.', 'zero']);
      const [image, text] = await ctx.readMany([model.imageFeatures(pixels, batch), model.textFeatures(tokens)]);
      const expectedImage = reference.imageFeatures(config, weights, pixelData, batch);
      const expectedText = reference.textFeatures(config, weights, tokens.ids, tokens.eotIndex);
      expectFeaturesClose(image, expectedImage, `${hiddenAct} image features`);
      expectFeaturesClose(text, expectedText, `${hiddenAct} text features`);
      // The activation matters at this tolerance: computed as quick_gelu, the features move by 6e-3 of
      // their scale, 60 times the tolerance above.
      const asQuickGelu = reference.imageFeatures(withQuickGelu(config), weights, pixelData, batch);
      const scale = Math.max(...Array.from(expectedImage, Math.abs));
      expect(Math.max(...expectedImage.map((v, i) => Math.abs(v - asQuickGelu[i])))).toBeGreaterThan(1e-3 * scale);
    });

    it('gives adapter gradients that match finite differences', async () => {
      const targets = ['q_proj', 'k_proj', 'v_proj', 'out_proj', 'fc1', 'fc2'] as const;
      await gradientCheck(
        ctx,
        model,
        weights,
        defaultAdapterSettings(config, { rank: 4, blocks: 2, dropout: 0, targets: [...targets] }),
      );
    });
  });
}
