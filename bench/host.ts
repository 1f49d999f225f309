// What a training step costs the host, apart from the GPU's arithmetic: the engine's own JavaScript per
// step (a dry run of a ViT-B/32 batch-2 step: every dispatch checked and packed, nothing sent to a
// GPU, so a real step's CPU time above it is the WebGPU implementation's), and the WebGPU objects a
// step after the first makes on a real device (storage buffers, bind groups) against its dispatches.

import { AdapterSet } from '../src/adapters/block-lora';
import { defaultAdapterSettings } from '../src/adapters/settings';
import { defaultTrainSettings } from '../src/common/recipe';
import type { GpuContext } from '../src/gpu/context';
import { dryRun } from '../src/training/memory-plan';
import { Trainer } from '../src/training/trainer';
import type { BenchModel } from './clip-models';
import { vitB32Config } from './clip-models';

export interface HostCost {
  /** Median CPU milliseconds of the engine's JavaScript per ViT-B/32 batch-2 step (dry run, 7 rounds of 20 steps). */
  engineMsPerB32Step: number;
  /** On the real device, one tiny batch-4 step after two: */
  tinyStep: { dispatches: number; storageBuffersMade: number; bindGroupsMade: number };
}

function trainerFor(bench: Pick<BenchModel, 'model'>, batch: number): { trainer: Trainer; adapters: AdapterSet } {
  const { model } = bench;
  const { config } = model;
  const adapters = AdapterSet.create(model.ctx, config, defaultAdapterSettings(config), { random: () => 0.5 });
  const size = config.vision.imageSize;
  const images = Array.from({ length: batch }, () => ({
    rgba: new Uint8Array(size * size * 4).fill(90),
    width: size,
    height: size,
  }));
  const settings = defaultTrainSettings(1, { batchSize: batch, microBatchSize: batch });
  const classNames = ['cat', 'dog', 'car', 'tree'];
  const labels = images.map((_, i) => i % classNames.length);
  return { trainer: new Trainer(model, adapters, classNames, { images, labels }, settings), adapters };
}

async function engineMsPerStep(): Promise<number> {
  let median = 0;
  await dryRun(vitB32Config(), {}, async (model) => {
    const { trainer, adapters } = trainerFor({ model }, 2);
    for (let i = 0; i < 5; i++) await trainer.trainStep();
    const rounds: number[] = [];
    for (let round = 0; round < 7; round++) {
      const cpu = process.cpuUsage();
      for (let i = 0; i < 20; i++) await trainer.trainStep();
      const used = process.cpuUsage(cpu);
      rounds.push((used.user + used.system) / 1000 / 20);
    }
    median = rounds.sort((a, b) => a - b)[3];
    trainer.destroy();
    adapters.destroy();
  });
  return median;
}

async function objectsPerStep(ctx: GpuContext, tiny: BenchModel): Promise<HostCost['tinyStep']> {
  const { trainer, adapters } = trainerFor(tiny, 4);
  try {
    for (let i = 0; i < 2; i++) await trainer.trainStep();
    const counts = { dispatches: 0, storageBuffersMade: 0, bindGroupsMade: 0 };
    const { device } = ctx;
    const { createBuffer, createBindGroup } = device;
    const pass = GPUComputePassEncoder.prototype;
    const { dispatchWorkgroups } = pass;
    device.createBuffer = (descriptor) => {
      if (descriptor.usage & GPUBufferUsage.STORAGE) counts.storageBuffersMade++;
      return createBuffer.call(device, descriptor);
    };
    device.createBindGroup = (descriptor) => {
      counts.bindGroupsMade++;
      return createBindGroup.call(device, descriptor);
    };
    pass.dispatchWorkgroups = function (...grid) {
      counts.dispatches++;
      return dispatchWorkgroups.apply(this, grid);
    };
    try {
      await trainer.trainStep();
      return counts;
    } finally {
      device.createBuffer = createBuffer;
      device.createBindGroup = createBindGroup;
      pass.dispatchWorkgroups = dispatchWorkgroups;
    }
  } finally {
    trainer.destroy();
    adapters.destroy();
  }
}

export async function measureHostCost(ctx: GpuContext, tiny: BenchModel): Promise<HostCost> {
  return { engineMsPerB32Step: await engineMsPerStep(), tinyStep: await objectsPerStep(ctx, tiny) };
}

export function printHostCost({ engineMsPerB32Step, tinyStep }: HostCost): void {
  console.log(
    `engine JavaScript per ViT-B/32 batch-2 step (dry run, CPU ms, median of 7 x 20): ${engineMsPerB32Step.toFixed(1)}`,
  );
  console.log(
    `tiny batch-4 step after two: ${tinyStep.dispatches} dispatches, ${tinyStep.storageBuffersMade} storage buffers made (its images' uploads), ${tinyStep.bindGroupsMade} bind groups made`,
  );
}
