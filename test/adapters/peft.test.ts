import { describe, expect, it } from 'vitest';
import { adaptedMatrices, type AdapterMetadata, type AdapterTensors } from '../../src/adapters/adapter-file';
import { scalingFor } from '../../src/adapters/settings';
import {
  loraAlphaFor,
  PEFT_CLASSES_FILE,
  PeftImportError,
  parsePeftClasses,
  peftExportFiles,
  peftPythonRecipe,
  toPeft,
  type PeftLoraConfig,
} from '../../src/adapters/peft';
import { decodeTensor, parseSafetensorsHeader } from '../../src/model/safetensors';
import { mulberry32, randomArray } from '../helpers/random';

const HIDDEN = 6;
const MLP = 10;

function meta(overrides: Partial<AdapterMetadata> = {}): AdapterMetadata {
  const rank = overrides.rank ?? 8;
  const alpha = overrides.alpha ?? 1;
  const scalingRule = overrides.scalingRule ?? 'alpha/sqrt(r)';
  return {
    method: 'block-lora',
    rank,
    blocks: 4,
    alpha,
    scalingRule,
    scaling: scalingFor(scalingRule, alpha, rank),
    dropout: 0.25,
    targets: ['q_proj', 'k_proj', 'v_proj', 'fc1', 'fc2'],
    layers: { text: [0, 1], vision: [2] },
    baseModel: 'openai/clip-vit-base-patch32',
    baseModelFingerprint: 'fnv1a64:0000000000000001',
    classNames: ['cat', 'dog'],
    promptTemplate: 'a photo of a {}.',
    training: {},
    metrics: {},
    ...overrides,
  };
}

/**
 * Random adapter tensors. With `dyadic`, values are multiples of 2^-12 in [-1, 1], so sums of blocks are exact
 * in f32 and the exported delta W can be compared for exact equality; otherwise arbitrary f32 values.
 */
function tensorsFor(m: AdapterMetadata, seed: number, dyadic: boolean): AdapterTensors {
  const blockRank = m.rank / m.blocks;
  const next = mulberry32(seed);
  const dyadicValue = () => Math.round((2 * next() - 1) * 4096) / 4096;
  const values = (count: number) =>
    dyadic ? Float32Array.from({ length: count }, dyadicValue) : randomArray(count, Math.floor(next() * 1e9));
  const tensors: AdapterTensors = new Map();
  for (const { target, aName, bName } of adaptedMatrices(m)) {
    const dIn = target === 'fc2' ? MLP : HIDDEN;
    const dOut = target === 'fc1' ? MLP : HIDDEN;
    tensors.set(aName, { shape: [blockRank, dIn], data: values(blockRank * dIn) });
    tensors.set(bName, { shape: [m.blocks, dOut, blockRank], data: values(m.blocks * dOut * blockRank) });
  }
  return tensors;
}

/** delta W [dOut, dIn] = scale * B [dOut, k] A [k, dIn], in float64. */
function deltaW(
  scale: number,
  b: ArrayLike<number>,
  a: ArrayLike<number>,
  dOut: number,
  k: number,
  dIn: number,
): Float64Array {
  const out = new Float64Array(dOut * dIn);
  for (let o = 0; o < dOut; o++) {
    for (let i = 0; i < dIn; i++) {
      let sum = 0;
      for (let j = 0; j < k; j++) sum += b[o * k + j] * a[j * dIn + i];
      out[o * dIn + i] = scale * sum;
    }
  }
  return out;
}

/** Block-LoRA's own delta W: s (sum_i B_i) A_s with the blocks summed in float64. */
function blockLoraDeltaW(m: AdapterMetadata, tensors: AdapterTensors, aName: string, bName: string): Float64Array {
  const a = tensors.get(aName)!;
  const b = tensors.get(bName)!;
  const [blocks, dOut, k] = b.shape;
  const bSum = new Float64Array(dOut * k);
  for (let i = 0; i < blocks; i++) for (let j = 0; j < dOut * k; j++) bSum[j] += b.data[i * dOut * k + j];
  return deltaW(m.scaling, bSum, a.data, dOut, k, a.shape[1]);
}

function readPeft(m: AdapterMetadata, tensors: AdapterTensors) {
  const files = toPeft(m, tensors);
  const bytes = files['adapter_model.safetensors'];
  const header = parseSafetensorsHeader(bytes, bytes.length);
  const weights = new Map(
    [...header.tensors.values()].map((entry) => [
      entry.name,
      {
        shape: entry.shape,
        data: decodeTensor(entry, bytes.subarray(entry.byteOffset, entry.byteOffset + entry.byteLength)),
      },
    ]),
  );
  const configText = files['adapter_config.json'];
  return { config: JSON.parse(configText) as PeftLoraConfig, weights, metadata: header.metadata, configText };
}

/** PEFT's delta W for one module: (lora_alpha / r) * lora_B lora_A. */
function peftDeltaW(
  config: PeftLoraConfig,
  weights: ReturnType<typeof readPeft>['weights'],
  path: string,
): Float64Array {
  const a = weights.get(`base_model.model.${path}.lora_A.weight`)!;
  const b = weights.get(`base_model.model.${path}.lora_B.weight`)!;
  expect(a.shape[0]).toBe(config.r);
  expect(b.shape[1]).toBe(config.r);
  return deltaW(config.lora_alpha / config.r, b.data, a.data, b.shape[0], config.r, a.shape[1]);
}

describe('toPeft', () => {
  it('exports exactly the same delta W (dyadic values: exact float64 equality)', () => {
    for (const m of [
      meta(),
      meta({ rank: 6, blocks: 2, alpha: 3 }),
      meta({ rank: 12, blocks: 4, scalingRule: 'alpha/r', alpha: 7 }),
    ]) {
      const tensors = tensorsFor(m, 1, true);
      const { config, weights } = readPeft(m, tensors);
      expect(config.r).toBe(m.rank / m.blocks);
      expect(config.lora_alpha / config.r).toBe(m.scaling);
      for (const { path, aName, bName } of adaptedMatrices(m)) {
        expect(peftDeltaW(config, weights, path)).toEqual(blockLoraDeltaW(m, tensors, aName, bName));
      }
    }
  });

  it('exports the same delta W for arbitrary f32 values, up to the one f32 rounding of sum_i B_i', () => {
    const m = meta();
    const tensors = tensorsFor(m, 2, false);
    const { config, weights } = readPeft(m, tensors);
    for (const { path, aName, bName } of adaptedMatrices(m)) {
      const expected = blockLoraDeltaW(m, tensors, aName, bName);
      const actual = peftDeltaW(config, weights, path);
      // |sum B| <= 4 and |A| <= 1 over k = 2 terms: the rounding moves each entry by at most ~2 * 4 * 2^-24 * s.
      actual.forEach((value, i) => expect(Math.abs(value - expected[i])).toBeLessThan(1e-6));
    }
  });

  it('writes lora_A = A_s and lora_B = sum_i B_i under PEFT key names, and LoRA (n = 1) unchanged', () => {
    const m = meta({ method: 'lora', blocks: 1, rank: 2 });
    const tensors = tensorsFor(m, 3, false);
    const { weights, metadata } = readPeft(m, tensors);
    expect(metadata).toEqual({ format: 'pt' });
    expect(weights.size).toBe(2 * adaptedMatrices(m).length);
    const a = weights.get('base_model.model.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight')!;
    const b = weights.get('base_model.model.text_model.encoder.layers.0.self_attn.q_proj.lora_B.weight')!;
    expect(a.shape).toEqual([2, HIDDEN]);
    expect(b.shape).toEqual([HIDDEN, 2]);
    expect(a.data).toEqual(tensors.get('text_model.encoder.layers.0.self_attn.q_proj.block_lora_A')!.data);
    expect(b.data).toEqual(tensors.get('text_model.encoder.layers.0.self_attn.q_proj.block_lora_B')!.data);
    expect(weights.get('base_model.model.vision_model.encoder.layers.2.mlp.fc1.lora_B.weight')!.shape).toEqual([
      MLP,
      2,
    ]);
    expect(weights.get('base_model.model.vision_model.encoder.layers.2.mlp.fc2.lora_A.weight')!.shape).toEqual([
      2,
      MLP,
    ]);
  });

  it('writes a PEFT LoraConfig', () => {
    const m = meta();
    const { config, configText } = readPeft(m, tensorsFor(m, 4, false));
    expect(config).toEqual({
      alpha_pattern: {},
      base_model_name_or_path: 'openai/clip-vit-base-patch32',
      bias: 'none',
      fan_in_fan_out: false,
      inference_mode: true,
      init_lora_weights: true,
      layers_pattern: null,
      layers_to_transform: null,
      lora_alpha: loraAlphaFor(m.scaling, 2),
      lora_dropout: 0.25,
      modules_to_save: null,
      peft_type: 'LORA',
      r: 2,
      rank_pattern: {},
      revision: null,
      target_modules: adaptedMatrices(m).map((matrix) => matrix.path),
      task_type: null,
      use_rslora: false,
    });
    expect(config.target_modules).toContain('text_model.encoder.layers.1.self_attn.k_proj');
    expect(config.target_modules).toContain('vision_model.encoder.layers.2.mlp.fc2');
    expect(config.target_modules).toHaveLength(15);
    // Sorted keys, two-space indent, trailing newline: as PEFT's save_pretrained writes it.
    expect(Object.keys(JSON.parse(configText))).toEqual(Object.keys(config).sort());
    expect(configText.endsWith('}\n')).toBe(true);
  });

  it('refuses an invalid adapter', () => {
    const m = meta();
    const tensors = tensorsFor(m, 5, false);
    tensors.delete(adaptedMatrices(m)[0].bName);
    expect(() => toPeft(m, tensors)).toThrow(/^toPeft: tensor .* is missing$/);
  });
});

describe('classes.json', () => {
  it("carries the classes and prompt, and the adapter's name and metrics when it has them", () => {
    const bare = meta();
    const files = peftExportFiles(bare, tensorsFor(bare, 1, true));
    expect(JSON.parse(files[PEFT_CLASSES_FILE] as string)).toEqual({
      class_names: ['cat', 'dog'],
      prompt_template: 'a photo of a {}.',
    });
    const named = meta({ name: 'Pets', metrics: { zeroShotAccuracy: 0.5, heldOutAccuracy: 0.75 } });
    const text = peftExportFiles(named, tensorsFor(named, 1, true))[PEFT_CLASSES_FILE] as string;
    expect(parsePeftClasses(text)).toEqual({
      class_names: ['cat', 'dog'],
      prompt_template: 'a photo of a {}.',
      name: 'Pets',
      metrics: { zeroShotAccuracy: 0.5, heldOutAccuracy: 0.75 },
    });
  });

  it('refuses a name or metrics of the wrong kind, saying which', () => {
    const classes = { class_names: ['cat', 'dog'], prompt_template: 'a {}' };
    const parse = (extra: object) => () => parsePeftClasses(JSON.stringify({ ...classes, ...extra }));
    expect(parse({ name: 3 })).toThrow(PeftImportError);
    expect(parse({ name: ' ' })).toThrow('"name" that is not a non-empty string');
    expect(parse({ metrics: [0.5] })).toThrow('"metrics" that are not a JSON object');
    expect(parse({ metrics: null })).toThrow('"metrics" that are not a JSON object');
  });
});

describe('loraAlphaFor', () => {
  it('makes lora_alpha / r the scaling: exactly when a float64 allows, else within one step and the same float32', () => {
    const next = mulberry32(7);
    let inexact = 0;
    const trials = 20_000;
    for (let trial = 0; trial < trials; trial++) {
      const r = 1 + Math.floor(next() * 64);
      const scaling = trial % 2 ? next() * 10 : (1 + Math.floor(next() * 32)) / Math.sqrt(1 + Math.floor(next() * 64));
      const peftScaling = loraAlphaFor(scaling, r) / r;
      expect(Math.fround(peftScaling)).toBe(Math.fround(scaling));
      if (peftScaling !== scaling) {
        inexact++;
        // One float64 step: 2^-52 relative at most.
        expect(Math.abs(peftScaling - scaling)).toBeLessThanOrEqual(scaling * 2 ** -52);
      }
    }
    // Powers of two are always exact.
    for (const r of [1, 2, 4, 8, 16, 32]) expect(loraAlphaFor(1 / Math.sqrt(3 * r), r) / r).toBe(1 / Math.sqrt(3 * r));
    expect(inexact / trials).toBeLessThan(0.2);
  });
});

describe('peftPythonRecipe', () => {
  it('loads the export with PeftModel.from_pretrained on the base CLIPModel', () => {
    const recipe = peftPythonRecipe(
      {
        baseModel: 'openai/clip-vit-base-patch16',
        classNames: ['golden_retriever', 'say "hi"'],
        promptTemplate: 'a photo of a {}.',
      },
      'out/peft',
    );
    expect(recipe).toContain('from transformers import CLIPModel, CLIPProcessor');
    expect(recipe).toContain('from peft import PeftModel');
    expect(recipe).toContain('base = "openai/clip-vit-base-patch16"');
    expect(recipe).toContain('model = PeftModel.from_pretrained(CLIPModel.from_pretrained(base), "out/peft").eval()');
    expect(recipe).toContain('class_names = ["golden_retriever","say \\"hi\\""]');
  });
});
