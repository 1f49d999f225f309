// The studio's training choices as engine settings (src/worker/training-run.ts): what they expand to,
// and settings that cannot work refused with a sentence for the user.

import { describe, expect, it } from 'vitest';
import { parseClipConfig } from '../../src/model/config';
import { makeTinyClip } from '../../src/model/tiny';
import type { AdapterChoice, TrainChoice } from '../../src/worker/protocol';
import { EngineRefusal } from '../../src/worker/refusal';
import { adapterSettingsFor, trainSettingsFor } from '../../src/worker/training-run';
import { ADAPTER_CHOICE } from '../helpers/choices';

const config = parseClipConfig(makeTinyClip().files['config.json'] as string);
const adapter: AdapterChoice = { ...ADAPTER_CHOICE, rank: 4, towers: ['vision'] };
const training: TrainChoice = {
  shots: 4,
  seed: 3,
  iterations: 10,
  batchSize: 8,
  microBatchSize: 4,
  lr: 1e-3,
  minLr: 1e-6,
  warmupSteps: 0,
  weightDecay: 0.01,
  augment: false,
  evalEvery: 0,
  checkpointEvery: 5,
};

function refusal(work: () => unknown): EngineRefusal {
  try {
    work();
  } catch (error) {
    if (error instanceof EngineRefusal) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('adapterSettingsFor', () => {
  it('adapts every layer of the chosen towers only', () => {
    const settings = adapterSettingsFor(config, adapter);
    expect(settings.layers).toEqual({ vision: [0, 1, 2] });
    expect(settings).toMatchObject({ method: 'block-lora', rank: 4, blocks: 2, targets: ['q_proj', 'v_proj'] });
  });

  it('gives LoRA one block whatever the form said', () => {
    expect(adapterSettingsFor(config, { ...adapter, method: 'lora', blocks: 2 }).blocks).toBe(1);
  });

  it('refuses blocks that do not divide the rank', () => {
    const error = refusal(() => adapterSettingsFor(config, { ...adapter, blocks: 3 }));
    expect(error.kind).toBe('invalid-settings');
    expect(error.message).toBe('Blocks (n = 3) must divide the rank (r = 4).');
  });
});

describe('trainSettingsFor', () => {
  it('keeps the recipe for what the studio does not set', () => {
    expect(trainSettingsFor(training)).toMatchObject({
      iterations: 10,
      batchSize: 8,
      microBatchSize: 4,
      optimizer: 'adamw',
      beta1: 0.9,
      template: 'a photo of a {}.',
    });
  });

  it('refuses a batch that is not a multiple of the micro-batch, and counts below 1', () => {
    expect(refusal(() => trainSettingsFor({ ...training, microBatchSize: 3 })).message).toBe(
      'The batch size (8) must be a multiple of the micro-batch size (3).',
    );
    expect(refusal(() => trainSettingsFor({ ...training, iterations: 0 })).message).toBe(
      'Iterations must be a whole number of at least 1.',
    );
    expect(refusal(() => trainSettingsFor({ ...training, lr: 0 })).message).toBe('The learning rate must be above 0.');
    expect(refusal(() => trainSettingsFor({ ...training, patience: 2 })).message).toMatch(
      /^Early stopping counts held-out evaluations/,
    );
    expect(trainSettingsFor({ ...training, patience: 2, evalEvery: 5 }).evalEvery).toBe(5);
  });
});
