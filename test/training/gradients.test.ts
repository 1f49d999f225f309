// Whole-model gradient check: the adapter gradients of one training step (both towers, every target
// matrix) against central finite differences of the float64 reference loss, on the tiny CLIP.

import { describe, it } from 'vitest';
import { defaultAdapterSettings } from '../../src/adapters/settings';
import { gradientCheck } from '../helpers/gradient-check';
import { useGpu } from '../helpers/gpu';
import { loadTinyModel } from '../helpers/tiny-model';

const ctx = await useGpu();
const { model, weights } = await loadTinyModel(ctx);
const { config } = model;
describe('adapter gradients through both towers', () => {
  it('Block-LoRA (r = 4, n = 2) on q, k, v, out_proj, fc1, fc2 matches finite differences', async () => {
    await gradientCheck(
      ctx,
      model,
      weights,
      defaultAdapterSettings(config, {
        rank: 4,
        blocks: 2,
        dropout: 0,
        targets: ['q_proj', 'k_proj', 'v_proj', 'out_proj', 'fc1', 'fc2'],
      }),
    );
  });

  it('LoRA (r = 2) on q, k, v matches finite differences', async () => {
    await gradientCheck(ctx, model, weights, defaultAdapterSettings(config, { method: 'lora', rank: 2, dropout: 0 }));
  });
});
