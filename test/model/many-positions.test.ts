// A vision tower with as many positions as ViT-L/14 at 336 px (24 x 24 patches + the class token = 577):
// the tiny CLIP at 96 px in 4 px patches, its image features against the float64 reference.

import { describe, expect, it } from 'vitest';
import { visionTokenCount } from '../../src/model/config';
import { KNOWN_CLIP_MODELS, knownClipConfig } from '../../src/training/known-models';
import { expectClose } from '../helpers/compare';
import { useGpu } from '../helpers/gpu';
import { randomArray } from '../helpers/random';
import { loadTinyModel } from '../helpers/tiny-model';
import * as reference from '../reference/clip';

const ctx = await useGpu();
const { model, weights } = await loadTinyModel(ctx, { imageSize: 96, patchSize: 4 });
const { config } = model;

describe('a vision tower with 577 positions', () => {
  it('has ViT-L/14-336’s token count', () => {
    const large336 = knownClipConfig(KNOWN_CLIP_MODELS.find((m) => m.repo === 'openai/clip-vit-large-patch14-336')!);
    expect(visionTokenCount(config.vision)).toBe(visionTokenCount(large336.vision));
    expect(visionTokenCount(config.vision)).toBe(577);
  });

  it('image features match the float64 reference', async () => {
    const size = config.vision.imageSize;
    const batch = 1;
    const pixels = randomArray(batch * 3 * size * size, 5, 2);
    const features = await ctx.read(model.imageFeatures(ctx.tensor([batch, 3, size, size], 'pixels', pixels), batch));
    const expected = reference.imageFeatures(config, weights, pixels, batch);
    const scale = Math.max(...Array.from(expected, Math.abs));
    expectClose(features, expected, { rtol: 1e-4, atol: 1e-4 * scale, label: '577-position image features' });
  });
});
