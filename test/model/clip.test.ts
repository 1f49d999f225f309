// The WGSL CLIP against the float64 CPU reference (test/reference/clip.ts) on the tiny CLIP: image
// features, text features and logits agree within 1e-4 relative, with and without adapters.

import { describe, expect, it } from 'vitest';
import { AdapterSet } from '../../src/adapters/block-lora';
import { defaultAdapterSettings } from '../../src/adapters/settings';
import { ClipModel } from '../../src/model/clip';
import { encodeSafetensors, ModelFileError, parseSafetensorsHeader } from '../../src/model/safetensors';
import { byteSourceFromBytes } from '../../src/model/weights';
import { expectClose } from '../helpers/compare';
import { useGpu } from '../helpers/gpu';
import { randomArray } from '../helpers/random';
import { loadTinyModel, tinyModelFiles } from '../helpers/tiny-model';
import * as reference from '../reference/clip';

const ctx = await useGpu();
const { model, weights } = await loadTinyModel(ctx);
const { config } = model;
const dim = config.projectionDim;

/** 1e-4 relative to the feature vector's scale: f32 through a few layers accumulates ~1e-6 relative error. */
function expectFeaturesClose(actual: Float32Array, expected: Float64Array, label: string) {
  const scale = Math.max(...Array.from(expected, Math.abs));
  expectClose(actual, expected, { rtol: 1e-4, atol: 1e-4 * scale, label });
}

const prompts = [
  'a photo of a cat.',
  'a photo of a seven.',
  'zero',
  'a photo of a very very long and unusual class name, with punctuation!',
];

function randomPixels(batch: number, seed: number) {
  const size = config.vision.imageSize;
  const data = randomArray(batch * 3 * size * size, seed, 2);
  return { data, tensor: ctx.tensor([batch, 3, size, size], 'pixels', data) };
}

describe('CLIP forward on the tiny model', () => {
  it('image features match the float64 reference', async () => {
    const pixels = randomPixels(3, 11);
    const features = model.imageFeatures(pixels.tensor, 3);
    const actual = await ctx.read(features);
    expectFeaturesClose(actual, reference.imageFeatures(config, weights, pixels.data, 3), 'image features');
    pixels.tensor.destroy();
    features.destroy();
  });

  it('text features match the float64 reference run over all 77 positions', async () => {
    const tokens = model.tokenize(prompts);
    const features = model.textFeatures(tokens);
    const actual = await ctx.read(features);
    features.destroy();
    expectFeaturesClose(actual, reference.textFeatures(config, weights, tokens.ids, tokens.eotIndex), 'text features');
  });

  it('stopping at end-of-text gives the same features as the full 77-token pass', async () => {
    const tokens = model.tokenize(prompts);
    const short = model.textFeatures(tokens);
    const full = model.textFeatures(tokens, null, { stopAtEndOfText: false });
    const [a, b] = await ctx.readMany([short, full]);
    expect(Math.max(...tokens.eotIndex) + 1).toBeLessThan(77);
    // Same arithmetic on the rows that matter; only the attention reductions' lengths differ.
    expectClose(a, b, { rtol: 1e-5, atol: 1e-6, label: 'early stop vs full' });
    short.destroy();
    full.destroy();
  });

  it('logits match the reference', async () => {
    const pixels = randomPixels(2, 12);
    const tokens = model.tokenize(prompts);
    const image = model.imageFeatures(pixels.tensor, 2);
    const text = model.textFeatures(tokens);
    const [imageNormalized, textNormalized] = [model.normalize(image), model.normalize(text)];
    const logits = model.logits(imageNormalized, textNormalized);
    const actual = await ctx.read(logits);
    const expected = reference.clipLogits(
      reference.imageFeatures(config, weights, pixels.data, 2),
      reference.textFeatures(config, weights, tokens.ids, tokens.eotIndex),
      dim,
      Math.log(model.logitScale),
    );
    // Logits are 100 * cos: 1e-4 relative of 100 is 1e-2.
    expectClose(actual, expected, { rtol: 1e-4, atol: 1e-2, label: 'logits' });
    [pixels.tensor, image, text, imageNormalized, textNormalized, logits].forEach((t) => t.destroy());
  });

  it('adapters on every matrix of both towers match the reference with the same adapter weights', async () => {
    const settings = defaultAdapterSettings(config, {
      rank: 4,
      blocks: 2,
      targets: ['q_proj', 'k_proj', 'v_proj', 'out_proj', 'fc1', 'fc2'],
    });
    let seed = 100;
    const initial = new Map<string, Float32Array>();
    const probe = AdapterSet.create(ctx, config, settings, { random: Math.random });
    for (const { name, tensor } of probe.parameters()) initial.set(name, randomArray(tensor.size, seed++, 0.3));
    probe.destroy();
    const adapters = AdapterSet.create(ctx, config, settings, { initial });
    const referenceAdapters: reference.ReferenceAdapters = new Map(
      adapters.adapters.map((a) => [
        a.path,
        {
          a: initial.get(`${a.path}.block_lora_A`)!,
          blocks: initial.get(`${a.path}.block_lora_B`)!,
          blockCount: 2,
          blockRank: 2,
          scale: adapters.scale,
        },
      ]),
    );
    const pixels = randomPixels(2, 13);
    const tokens = model.tokenize(prompts);
    const imageFeatures = model.imageFeatures(pixels.tensor, 2, adapters);
    const textFeatures = model.textFeatures(tokens, adapters);
    const [image, text] = await ctx.readMany([imageFeatures, textFeatures]);
    expectFeaturesClose(
      image,
      reference.imageFeatures(config, weights, pixels.data, 2, referenceAdapters),
      'adapted image features',
    );
    expectFeaturesClose(
      text,
      reference.textFeatures(config, weights, tokens.ids, tokens.eotIndex, referenceAdapters),
      'adapted text features',
    );
    // The adapters changed the features: the comparison is not vacuous.
    const plain = reference.imageFeatures(config, weights, pixels.data, 2);
    expect(Math.max(...Array.from(image, (v, i) => Math.abs(v - plain[i])))).toBeGreaterThan(1e-2);
    [pixels.tensor, imageFeatures, textFeatures].forEach((t) => t.destroy());
    adapters.destroy();
  });

  it('inference frees every activation it allocated', async () => {
    const before = ctx.memory.current;
    const pixels = randomPixels(2, 14);
    const features = model.imageFeatures(pixels.tensor, 2);
    const text = model.textFeatures(model.tokenize(prompts));
    await ctx.sync();
    [pixels.tensor, features, text].forEach((t) => t.destroy());
    expect(ctx.memory.current).toBe(before);
  });
});

describe('loading refuses broken checkpoints before uploading anything', () => {
  const files = tinyModelFiles();
  const header = parseSafetensorsHeader(files.safetensors, files.safetensors.length);

  async function loadError(bytes: Uint8Array): Promise<string> {
    const before = ctx.memory.current;
    const error = await ClipModel.load(ctx, {
      ...files,
      weights: byteSourceFromBytes('model.safetensors', bytes),
    }).then(
      () => null,
      (e: Error) => e,
    );
    expect(error).toBeInstanceOf(ModelFileError);
    expect(ctx.memory.current).toBe(before);
    return error!.message;
  }

  function rewrite(edit: (tensors: { name: string; shape: number[]; data: Float32Array }[]) => void): Uint8Array {
    const tensors = [...header.tensors.values()]
      .filter((e) => e.dtype === 'F32')
      .map((e) => ({
        name: e.name,
        shape: [...e.shape],
        data: new Float32Array(files.safetensors.slice(e.byteOffset, e.byteOffset + e.byteLength).buffer),
      }));
    edit(tensors);
    return encodeSafetensors(tensors);
  }

  it('a truncated file', async () => {
    expect(await loadError(files.safetensors.subarray(0, files.safetensors.length - 100))).toMatch(
      /model\.safetensors/,
    );
  });

  it('a missing tensor is named', async () => {
    const bytes = rewrite((t) =>
      t.splice(
        t.findIndex((x) => x.name === 'vision_model.encoder.layers.1.mlp.fc1.weight'),
        1,
      ),
    );
    expect(await loadError(bytes)).toMatch(/vision_model\.encoder\.layers\.1\.mlp\.fc1\.weight/);
  });

  it('a wrong shape names the tensor and both shapes', async () => {
    const bytes = rewrite((t) => {
      const entry = t.find((x) => x.name === 'text_projection.weight')!;
      entry.shape = [entry.shape[1], entry.shape[0]];
    });
    expect(await loadError(bytes)).toMatch(/text_projection\.weight.*\[.*\[/);
  });

  it('NaN weights', async () => {
    const bytes = rewrite((t) => t.find((x) => x.name === 'logit_scale')!.data.fill(NaN));
    expect(await loadError(bytes)).toMatch(/logit_scale.*NaN/);
  });

  it('a config that is not CLIP', async () => {
    await expect(
      ClipModel.load(ctx, { ...files, config: JSON.stringify({ model_type: 'bert', hidden_size: 768 }) }),
    ).rejects.toThrow(/not a CLIP/);
  });
});

describe('merging adapters into the frozen weights', () => {
  it('gives the adapted features without adapters, and unmerging restores the weights', async () => {
    const settings = defaultAdapterSettings(config, { rank: 4, blocks: 2, targets: ['q_proj', 'v_proj', 'fc1'] });
    const probe = AdapterSet.create(ctx, config, settings, { random: Math.random });
    const initial = new Map(
      probe.parameters().map(({ name, tensor }, i) => [name, randomArray(tensor.size, 500 + i, 0.3)]),
    );
    probe.destroy();
    const adapters = AdapterSet.create(ctx, config, settings, { initial });
    const pixels = randomPixels(2, 15);
    const tokens = model.tokenize(prompts);
    const adapted = [model.imageFeatures(pixels.tensor, 2, adapters), model.textFeatures(tokens, adapters)];
    const fc1 = model.weights.get('vision_model.encoder.layers.1.mlp.fc1.weight');
    const original = await ctx.read(fc1);

    adapters.merge(model.weights);
    const merged = [model.imageFeatures(pixels.tensor, 2), model.textFeatures(tokens)];
    const [adaptedImage, adaptedText, mergedImage, mergedText] = await ctx.readMany([...adapted, ...merged]);
    // Same math, another summation order: f32 agreement.
    expectClose(mergedImage, adaptedImage, { rtol: 1e-5, atol: 1e-5, label: 'merged image features' });
    expectClose(mergedText, adaptedText, { rtol: 1e-5, atol: 1e-5, label: 'merged text features' });
    expect(Math.max(...(await ctx.read(fc1)).map((v, i) => Math.abs(v - original[i])))).toBeGreaterThan(1e-3);

    adapters.unmerge(model.weights);
    expectClose(await ctx.read(fc1), original, { rtol: 0, atol: 1e-6, label: 'fc1 after unmerge' });
    [pixels.tensor, ...adapted, ...merged].forEach((t) => t.destroy());
    adapters.destroy();
  });
});

describe('adapters on some layers only', () => {
  it('inference and a training step run, and match the reference', async () => {
    // Regression: the inference pass once allocated adapter scratch for layer 0's adapters only.
    const settings = defaultAdapterSettings(config, { rank: 2, blocks: 2, layers: { text: [1], vision: [2] } });
    const probe = AdapterSet.create(ctx, config, settings, { random: Math.random });
    const initial = new Map(
      probe.parameters().map(({ name, tensor }, i) => [name, randomArray(tensor.size, 700 + i, 0.3)]),
    );
    probe.destroy();
    const adapters = AdapterSet.create(ctx, config, settings, { initial });
    const referenceAdapters: reference.ReferenceAdapters = new Map(
      adapters.adapters.map((a) => [
        a.path,
        {
          a: initial.get(`${a.path}.block_lora_A`)!,
          blocks: initial.get(`${a.path}.block_lora_B`)!,
          blockCount: 2,
          blockRank: 1,
          scale: adapters.scale,
        },
      ]),
    );
    const pixels = randomPixels(2, 16);
    const tokens = model.tokenize(prompts);
    const features = [model.imageFeatures(pixels.tensor, 2, adapters), model.textFeatures(tokens, adapters)];
    const [image, text] = await ctx.readMany(features);
    expectFeaturesClose(
      image,
      reference.imageFeatures(config, weights, pixels.data, 2, referenceAdapters),
      'image features, vision layer 2 adapted',
    );
    expectFeaturesClose(
      text,
      reference.textFeatures(config, weights, tokens.ids, tokens.eotIndex, referenceAdapters),
      'text features, text layer 1 adapted',
    );
    [pixels.tensor, ...features].forEach((t) => t.destroy());
    adapters.destroy();
  });
});
