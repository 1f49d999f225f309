// An octoclip adapter file with random, non-zero A and B for a model's checkpoint (no GPU needed), so that
// it changes what the model computes.

import {
  adaptedMatrices,
  adapterMetadata,
  encodeAdapterFile,
  type AdapterTensors,
} from '../../src/adapters/adapter-file';
import { checkpointFingerprint } from '../../src/adapters/merge';
import { defaultAdapterSettings } from '../../src/adapters/settings';
import { parseClipConfig } from '../../src/model/config';
import { mulberry32 } from './random';

export function randomAdapterFile(
  modelId: string,
  files: Record<string, Uint8Array | string>,
  classNames: string[],
  options: { template?: string; seed?: number; metrics?: Record<string, unknown> } = {},
): Uint8Array {
  const config = parseClipConfig(files['config.json'] as string);
  const checkpoint = files['model.safetensors'] as Uint8Array;
  const fingerprint = checkpointFingerprint([{ name: 'model.safetensors', bytes: checkpoint }]);
  const settings = defaultAdapterSettings(config, { rank: 4, blocks: 2 });
  const meta = adapterMetadata(
    settings,
    { template: options.template ?? 'a photo of a {}.', classPrompts: {} },
    { id: modelId, weights: { fingerprint } },
    classNames,
    { shots: 4 },
    options.metrics ?? {},
  );
  const next = mulberry32(options.seed ?? 7);
  const random = (count: number) => Float32Array.from({ length: count }, () => 0.3 * (next() - 0.5));
  const tensors: AdapterTensors = new Map();
  for (const { tower, target, aName, bName } of adaptedMatrices(meta)) {
    const { hiddenSize, intermediateSize } = config[tower];
    const [dIn, dOut] = [
      target === 'fc2' ? intermediateSize : hiddenSize,
      target === 'fc1' ? intermediateSize : hiddenSize,
    ];
    tensors.set(aName, { shape: [2, dIn], data: random(2 * dIn) });
    tensors.set(bName, { shape: [2, dOut, 2], data: random(4 * dOut) });
  }
  return encodeAdapterFile(meta, tensors);
}
