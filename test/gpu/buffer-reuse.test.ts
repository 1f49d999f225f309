// Tensor buffers are kept when released and handed to the next tensor of the same size, zeroed, so
// that a training step after the first makes no storage buffers and finds its bind groups again;
// kept buffers that nothing takes are destroyed after a few readbacks.

import { describe, expect, it, vi } from 'vitest';
import { AdapterSet } from '../../src/adapters/block-lora';
import { defaultAdapterSettings } from '../../src/adapters/settings';
import { defaultTrainSettings } from '../../src/common/recipe';
import { Trainer } from '../../src/training/trainer';
import { useGpu } from '../helpers/gpu';
import { loadTinyModel } from '../helpers/tiny-model';

const ctx = await useGpu();
const isStorage = (descriptor: GPUBufferDescriptor) => (descriptor.usage & GPUBufferUsage.STORAGE) !== 0;

describe('tensor buffer reuse', () => {
  it('a released buffer comes back zeroed, after the commands that used it, to a tensor of its size', async () => {
    const first = ctx.tensor([5], 'first', Float32Array.of(1, 2, 3, 4, 5));
    expect(await ctx.read(first)).toEqual(Float32Array.of(1, 2, 3, 4, 5));
    const buffer = first.buffer;
    first.destroy();
    const before = ctx.tensor([5], 'made before the release was submitted');
    expect(before.buffer).not.toBe(buffer);
    ctx.submit();
    const again = ctx.tensor([5], 'again');
    expect(again.buffer).toBe(buffer);
    expect(buffer.label).toBe('again');
    expect(await ctx.read(again)).toEqual(new Float32Array(5));
    [before, again].forEach((t) => t.destroy());
  });

  it('destroys a kept buffer that no tensor takes for 16 readbacks', async () => {
    const odd = ctx.tensor([1234], 'odd size');
    const buffer = odd.buffer;
    const destroyed = vi.spyOn(buffer, 'destroy');
    odd.destroy();
    ctx.submit();
    const probe = ctx.tensor([1], 'probe');
    for (let i = 0; i < 16; i++) await ctx.read(probe);
    expect(destroyed).not.toHaveBeenCalled();
    await ctx.read(probe);
    expect(destroyed).toHaveBeenCalledTimes(1);
    expect(ctx.tensor([1234], 'new').buffer).not.toBe(buffer);
    probe.destroy();
  });

  it("a training step after the first makes no storage buffer but its images' and reuses most bind groups", async () => {
    const { model } = await loadTinyModel(ctx);
    const { config } = model;
    const adapters = AdapterSet.create(ctx, config, defaultAdapterSettings(config, {}), { random: Math.random });
    const size = config.vision.imageSize;
    const images = Array.from({ length: 4 }, () => ({
      rgba: new Uint8Array(size * size * 4).fill(90),
      width: size,
      height: size,
    }));
    const settings = defaultTrainSettings(1, { batchSize: 4, microBatchSize: 4 });
    const trainer = new Trainer(model, adapters, ['a', 'b', 'c'], { images, labels: [0, 1, 2, 0] }, settings);
    for (let step = 0; step < 2; step++) await trainer.trainStep();
    const buffers = vi.spyOn(ctx.device, 'createBuffer');
    const bindGroups = vi.spyOn(ctx.device, 'createBindGroup');
    const dispatches = vi.spyOn(GPUComputePassEncoder.prototype, 'dispatchWorkgroups');
    try {
      await trainer.trainStep();
      // Each image's pixels are uploaded in a buffer of their own, the size of the image.
      const made = buffers.mock.calls.filter(([descriptor]) => isStorage(descriptor)).map(([d]) => d.label);
      expect(made).toEqual(images.map(() => `rgba ${size}x${size}`));
      // Tensors that share a label within a step (the text tower's chunks) may swap buffers between steps.
      expect(bindGroups.mock.calls.length).toBeLessThan(dispatches.mock.calls.length / 3);
    } finally {
      [buffers, bindGroups, dispatches].forEach((spy) => spy.mockRestore());
      trainer.destroy();
      adapters.destroy();
    }
    // A destroyed model's buffers are given back, not kept: a tensor of its largest weight's size is new.
    const largest = model.weights.get('text_model.embeddings.token_embedding.weight');
    model.destroy();
    ctx.submit();
    const afterModel = ctx.tensor([largest.size], 'after the model');
    expect(afterModel.buffer).not.toBe(largest.buffer);
    afterModel.destroy();
  });
});
