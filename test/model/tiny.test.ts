import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkTensors, expectedTensors, parseClipConfig } from '../../src/model/config';
import { decodeTensor, ModelFileError, parseSafetensorsHeader } from '../../src/model/safetensors';
import { makeTinyClip, TINY_CLIP_DEFAULTS } from '../../src/model/tiny';
import { BASE_SYMBOLS } from '../../src/model/tokenizer';
import { openSafetensorsFile, readModelDirectory, writeModelDirectory } from '../../src/node/files';

const HUB_FILES = ['config.json', 'merges.txt', 'model.safetensors', 'preprocessor_config.json', 'vocab.json'];

function loadTiny(options = {}) {
  const { files } = makeTinyClip(options);
  const weights = files['model.safetensors'] as Uint8Array;
  const header = parseSafetensorsHeader(weights, weights.length, 'model.safetensors');
  const tensor = (name: string) => {
    const entry = header.tensors.get(name)!;
    return decodeTensor(entry, weights.subarray(entry.byteOffset, entry.byteOffset + entry.byteLength));
  };
  return { files, config: parseClipConfig(files['config.json'] as string), header, tensor };
}

/** Files compared byte for byte (vitest's deep equality is slow on a 600 kB array). */
function expectSameFiles(
  actual: Record<string, Uint8Array | string>,
  expected: Record<string, Uint8Array | string>,
): void {
  expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort());
  for (const [name, contents] of Object.entries(expected)) {
    if (typeof contents === 'string') {
      expect(actual[name], name).toBe(contents);
    } else {
      expect(actual[name], name).toBeInstanceOf(Uint8Array);
      expect(Buffer.compare(actual[name] as Uint8Array, contents), name).toBe(0);
    }
  }
}

function stats(values: Float32Array): { mean: number; std: number } {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
  return { mean, std: Math.sqrt(variance) };
}

describe('tiny CLIP', () => {
  const tiny = loadTiny();

  it("has the Hub's files", () => {
    expect(Object.keys(tiny.files).sort()).toEqual(HUB_FILES);
  });

  it('has the documented sizes, different per tower', () => {
    expect(tiny.config).toMatchObject({
      projectionDim: 24,
      text: {
        hiddenSize: 32,
        intermediateSize: 128,
        numHeads: 2,
        numLayers: 2,
        maxPositions: 77,
        vocabSize: 914,
        eosTokenId: 913,
        hiddenAct: 'quick_gelu',
      },
      vision: {
        hiddenSize: 48,
        intermediateSize: 192,
        numHeads: 3,
        numLayers: 3,
        imageSize: 32,
        patchSize: 8,
        hiddenAct: 'quick_gelu',
      },
    });
    const json = JSON.parse(tiny.files['config.json'] as string);
    expect(json).toMatchObject({
      model_type: 'clip',
      architectures: ['CLIPModel'],
      text_config: { bos_token_id: 912, eos_token_id: 913, pad_token_id: 913 },
    });
  });

  it('has every tensor the config implies, plus int64 position_ids that checkTensors ignores', () => {
    expect(() => checkTensors(tiny.header, tiny.config)).not.toThrow();
    const names = new Set(tiny.header.tensors.keys());
    for (const name of expectedTensors(tiny.config).keys()) names.delete(name);
    expect([...names].sort()).toEqual(['text_model.embeddings.position_ids', 'vision_model.embeddings.position_ids']);
    expect(tiny.header.tensors.get('vision_model.embeddings.position_ids')).toMatchObject({
      dtype: 'I64',
      shape: [1, 17],
    });
    expect(tiny.header.metadata).toEqual({ format: 'pt' });
  });

  it("draws weights at transformers' initialisation scales (q and k 4x),  layer norms near 1, biases small but nonzero", () => {
    expect(tiny.tensor('logit_scale')).toEqual(Float32Array.of(Math.fround(Math.log(100))));
    // Matrices of 1,000+ values: the sample mean and std are within a few percent of the drawn ones.
    const drawnWith = (name: string, std: number) => {
      const actual = stats(tiny.tensor(name));
      expect(Math.abs(actual.mean), `${name} mean`).toBeLessThan(0.1 * std);
      expect(actual.std / std, `${name} std`).toBeGreaterThan(0.9);
      expect(actual.std / std, `${name} std`).toBeLessThan(1.1);
    };
    drawnWith('text_model.embeddings.token_embedding.weight', 0.02);
    drawnWith('vision_model.encoder.layers.2.self_attn.q_proj.weight', 4 * 48 ** -0.5 * (2 * 3) ** -0.5); // sharpened (tiny.ts)
    drawnWith('vision_model.encoder.layers.2.self_attn.v_proj.weight', 48 ** -0.5 * (2 * 3) ** -0.5);
    drawnWith('vision_model.encoder.layers.2.self_attn.out_proj.weight', 48 ** -0.5);
    drawnWith('text_model.encoder.layers.1.mlp.fc1.weight', (2 * 32) ** -0.5);
    drawnWith('visual_projection.weight', 48 ** -0.5);
    const small = (values: Float32Array, center: number) =>
      values.every((v) => v !== center && Math.abs(v - center) < 0.1);
    expect(small(tiny.tensor('vision_model.post_layernorm.weight'), 1)).toBe(true);
    expect(small(tiny.tensor('text_model.encoder.layers.0.layer_norm1.weight'), 1)).toBe(true);
    expect(small(tiny.tensor('text_model.encoder.layers.0.mlp.fc2.bias'), 0)).toBe(true);
  });

  it('makes the same bytes for the same options, and other weights for another seed', () => {
    expectSameFiles(makeTinyClip({ seed: undefined }).files, tiny.files);
    const { 'model.safetensors': reseededWeights, ...reseededRest } = makeTinyClip({ seed: 2 }).files;
    const { 'model.safetensors': weights, ...rest } = tiny.files;
    expectSameFiles(reseededRest, rest);
    expect(Buffer.compare(reseededWeights as Uint8Array, weights as Uint8Array)).not.toBe(0);
  });

  it('takes other sizes and writes half-precision weights', () => {
    const small = loadTiny({
      textLayers: 1,
      visionHidden: 32,
      visionHeads: 2,
      imageSize: 16,
      patchSize: 4,
      merges: 50,
      dtype: 'F16',
    });
    expect(small.config.vision).toMatchObject({ hiddenSize: 32, numHeads: 2, imageSize: 16, patchSize: 4 });
    expect(small.config.text.numLayers).toBe(1);
    expect(small.config.text.vocabSize).toBe(512 + 50 + 2);
    expect(() => checkTensors(small.header, small.config)).not.toThrow();
    expect(small.header.tensors.get('text_projection.weight')?.dtype).toBe('F16');
    expect(small.header.tensors.get('vision_model.embeddings.position_embedding.weight')?.shape).toEqual([17, 32]);
  });

  it("lays out the vocabulary as OpenAI's: byte symbols, merges in order, then the specials", () => {
    const vocabJson = tiny.files['vocab.json'] as string;
    const idOf = JSON.parse(vocabJson) as Record<string, number>;
    const lines = (tiny.files['merges.txt'] as string).split('\n');
    expect(lines[0]).toBe('#version: 0.2');
    const merges = lines.slice(1).filter((line) => line !== '');
    expect(merges.length).toBe(TINY_CLIP_DEFAULTS.merges);
    const tokens = [...BASE_SYMBOLS, ...merges.map((m) => m.replace(' ', '')), '<|startoftext|>', '<|endoftext|>'];
    expect(Object.keys(idOf).length).toBe(tokens.length);
    expect(tokens.map((token) => idOf[token])).toEqual(tokens.map((_, id) => id));
    expect(vocabJson.startsWith('{"!":0,"\\"":1,"#":2,')).toBe(true); // in id order, like the Hub's file
  });

  it("has the Hub's CLIPImageProcessor settings at the tiny image size", () => {
    expect(JSON.parse(tiny.files['preprocessor_config.json'] as string)).toEqual({
      crop_size: { height: 32, width: 32 },
      do_center_crop: true,
      do_convert_rgb: true,
      do_normalize: true,
      do_rescale: true,
      do_resize: true,
      image_mean: [0.48145466, 0.4578275, 0.40821073],
      image_processor_type: 'CLIPImageProcessor',
      image_std: [0.26862954, 0.26130258, 0.27577711],
      resample: 3,
      rescale_factor: 1 / 255,
      size: { shortest_edge: 32 },
    });
  });
});

describe('model directories in Node', () => {
  const tiny = loadTiny();
  const dirs: string[] = [];
  afterAll(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));
  const tempDir = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'octoclip-tiny-'));
    dirs.push(dir);
    return dir;
  };

  it('writes and reads back the same files', async () => {
    const dir = join(await tempDir(), 'tiny-clip');
    await writeModelDirectory(dir, tiny.files);
    const read = await readModelDirectory(dir);
    expect(Object.keys(read)).toEqual(HUB_FILES);
    expectSameFiles(read, tiny.files);
  });

  it('reads a safetensors file one tensor at a time', async () => {
    const dir = await tempDir();
    await writeModelDirectory(dir, tiny.files);
    const file = await openSafetensorsFile(join(dir, 'model.safetensors'));
    try {
      expect(file.header).toEqual(tiny.header);
      for (const name of ['logit_scale', 'vision_model.embeddings.patch_embedding.weight']) {
        expect(await file.readTensor(name)).toEqual(tiny.tensor(name));
      }
      await expect(file.readTensor('nope')).rejects.toThrow('model.safetensors: has no tensor nope');
    } finally {
      await file.close();
    }
  });

  it('names the file when its header is cut short', async () => {
    const dir = await tempDir();
    const weights = tiny.files['model.safetensors'] as Uint8Array;
    await writeModelDirectory(dir, { 'cut.safetensors': weights.subarray(0, 100) });
    await expect(openSafetensorsFile(join(dir, 'cut.safetensors'))).rejects.toThrow(ModelFileError);
    await expect(openSafetensorsFile(join(dir, 'cut.safetensors'))).rejects.toThrow(
      /^cut\.safetensors: header length \d+ runs past the end/,
    );
  });
});
