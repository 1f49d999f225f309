import { describe, expect, it } from 'vitest';
import {
  checkTensors,
  expectedTensors,
  parseClipConfig,
  visionTokenCount,
  VIT_B_32_CONFIG,
  type ClipConfig,
} from '../../src/model/config';
import {
  encodeSafetensors,
  ModelFileError,
  parseSafetensorsHeader,
  type TensorToEncode,
} from '../../src/model/safetensors';

function parameterCount(config: ClipConfig): number {
  let total = 0;
  for (const shape of expectedTensors(config).values()) total += shape.reduce((a, b) => a * b, 1);
  return total;
}

/** A checkpoint header holding `tensors` (zeros) without building a real-size file's data. */
function headerOf(tensors: Map<string, number[]>, extra: TensorToEncode[] = []) {
  const file = encodeSafetensors([
    ...[...tensors].map(([name, shape]) => ({ name, shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) })),
    ...extra,
  ]);
  return parseSafetensorsHeader(file, file.length);
}

/** A small config whose checkpoint is cheap to build in tests. */
const SMALL = {
  model_type: 'clip',
  projection_dim: 8,
  text_config: {
    hidden_size: 8,
    intermediate_size: 16,
    num_attention_heads: 2,
    num_hidden_layers: 2,
    vocab_size: 20,
    max_position_embeddings: 5,
  },
  vision_config: {
    hidden_size: 12,
    intermediate_size: 24,
    num_attention_heads: 3,
    num_hidden_layers: 1,
    image_size: 8,
    patch_size: 4,
  },
};

describe('CLIP config', () => {
  it("reads openai/clip-vit-base-patch32's config", () => {
    const config = parseClipConfig(JSON.stringify(VIT_B_32_CONFIG));
    expect(config).toEqual({
      projectionDim: 512,
      logitScaleInit: 2.6592,
      text: {
        hiddenSize: 512,
        intermediateSize: 2048,
        numHeads: 8,
        numLayers: 12,
        layerNormEps: 1e-5,
        hiddenAct: 'quick_gelu',
        vocabSize: 49408,
        maxPositions: 77,
        eosTokenId: undefined, // the legacy eos_token_id 2: pool at the highest id
      },
      vision: {
        hiddenSize: 768,
        intermediateSize: 3072,
        numHeads: 12,
        numLayers: 12,
        layerNormEps: 1e-5,
        hiddenAct: 'quick_gelu',
        imageSize: 224,
        patchSize: 32,
      },
    });
    expect(visionTokenCount(config.vision)).toBe(50);
  });

  it('fills missing fields with transformers defaults (the B/32 sizes)', () => {
    expect(parseClipConfig({ model_type: 'clip' })).toEqual(parseClipConfig(VIT_B_32_CONFIG));
    expect(parseClipConfig({ model_type: 'clip', text_config: { hidden_size: null } }).text.hiddenSize).toBe(512);
  });

  it('keeps an explicit end-of-text id', () => {
    expect(parseClipConfig({ model_type: 'clip', text_config: { eos_token_id: 49407 } }).text.eosTokenId).toBe(49407);
  });

  it('accepts a config without model_type that has both towers', () => {
    expect(parseClipConfig({ text_config: {}, vision_config: { patch_size: 16 } }).vision.patchSize).toBe(16);
  });

  it('refuses a config that is not CLIP', () => {
    expect(() => parseClipConfig({ model_type: 'bert', hidden_size: 768 })).toThrow(
      'config.json is not a CLIP checkpoint (model_type: "bert")',
    );
    expect(() =>
      parseClipConfig({ model_type: 'siglip', text_config: {}, vision_config: {} }, 'google/siglip/config.json'),
    ).toThrow('google/siglip/config.json is not a CLIP checkpoint (model_type: "siglip")');
    expect(() => parseClipConfig({ vision_config: {} })).toThrow(
      'config.json is not a CLIP checkpoint (model_type: null)',
    );
    expect(() => parseClipConfig('{"model_type": "clip"')).toThrow(ModelFileError);
    expect(() => parseClipConfig('[]')).toThrow('config.json: not a JSON object');
  });

  it('names a field with a wrong value', () => {
    const refuse = (json: object, message: string) =>
      expect(() => parseClipConfig({ model_type: 'clip', ...json })).toThrow(message);
    refuse(
      { text_config: { hidden_size: '512' } },
      'config.json: text_config.hidden_size must be a positive integer, got "512"',
    );
    refuse(
      { vision_config: { num_hidden_layers: 0 } },
      'vision_config.num_hidden_layers must be a positive integer, got 0',
    );
    refuse({ projection_dim: 1.5 }, 'projection_dim must be a positive integer, got 1.5');
    refuse({ text_config: { eos_token_id: -1 } }, 'text_config.eos_token_id must be a non-negative integer, got -1');
    refuse({ text_config: { layer_norm_eps: 'small' } }, 'text_config.layer_norm_eps must be a number');
    refuse({ text_config: { hidden_act: 7 } }, 'text_config.hidden_act must be a string');
    refuse({ text_config: 'big' }, 'text_config is not an object');
    refuse(
      { text_config: { hidden_size: 100, num_attention_heads: 8 } },
      'text_config.hidden_size 100 is not a multiple of num_attention_heads 8',
    );
    refuse({ vision_config: { image_size: 225 } }, 'vision_config.image_size 225 is not a multiple of patch_size 32');
    refuse(
      { text_config: { vocab_size: 100, eos_token_id: 100 } },
      'text_config.eos_token_id 100 is outside the vocabulary of 100',
    );
  });
});

describe('expected tensors', () => {
  it("lists B/32's 398 tensors and 151,277,313 parameters", () => {
    const config = parseClipConfig(VIT_B_32_CONFIG);
    const tensors = expectedTensors(config);
    expect(tensors.size).toBe(2 + 12 * 16 + 2 + (3 + 2 + 12 * 16 + 2) + 3);
    expect(parameterCount(config)).toBe(151_277_313);
    expect(tensors.get('text_model.embeddings.token_embedding.weight')).toEqual([49408, 512]);
    expect(tensors.get('text_model.embeddings.position_embedding.weight')).toEqual([77, 512]);
    expect(tensors.get('vision_model.embeddings.class_embedding')).toEqual([768]);
    expect(tensors.get('vision_model.embeddings.patch_embedding.weight')).toEqual([768, 3, 32, 32]);
    expect(tensors.get('vision_model.embeddings.position_embedding.weight')).toEqual([50, 768]);
    expect(tensors.get('vision_model.pre_layrnorm.weight')).toEqual([768]);
    expect(tensors.get('vision_model.encoder.layers.11.mlp.fc1.weight')).toEqual([3072, 768]);
    expect(tensors.get('vision_model.encoder.layers.11.mlp.fc1.bias')).toEqual([3072]);
    expect(tensors.get('text_model.encoder.layers.0.self_attn.q_proj.weight')).toEqual([512, 512]);
    expect(tensors.get('text_model.final_layer_norm.bias')).toEqual([512]);
    expect(tensors.get('vision_model.post_layernorm.weight')).toEqual([768]);
    expect(tensors.get('visual_projection.weight')).toEqual([512, 768]);
    expect(tensors.get('text_projection.weight')).toEqual([512, 512]);
    expect(tensors.get('logit_scale')).toEqual([]);
    expect(tensors.has('visual_projection.bias')).toBe(false);
  });

  it('matches the 36,347,393 parameters torchinfo reports for 3-layer towers and a 4,940-token vocabulary', () => {
    const config = parseClipConfig({
      ...VIT_B_32_CONFIG,
      text_config: { ...VIT_B_32_CONFIG.text_config, num_hidden_layers: 3, vocab_size: 4940 },
      vision_config: { ...VIT_B_32_CONFIG.vision_config, num_hidden_layers: 3 },
    });
    expect(parameterCount(config)).toBe(36_347_393);
  });

  it('sizes the vision positions from the patch size (B/16: 197 tokens; L/14: 257)', () => {
    const b16 = parseClipConfig({
      ...VIT_B_32_CONFIG,
      vision_config: { ...VIT_B_32_CONFIG.vision_config, patch_size: 16 },
    });
    expect(expectedTensors(b16).get('vision_model.embeddings.position_embedding.weight')).toEqual([197, 768]);
    const l14 = parseClipConfig({
      model_type: 'clip',
      vision_config: { hidden_size: 1024, num_hidden_layers: 24, num_attention_heads: 16, patch_size: 14 },
    });
    expect(visionTokenCount(l14.vision)).toBe(257);
  });
});

describe('checkTensors', () => {
  const config = parseClipConfig(SMALL);

  it('passes a complete checkpoint and ignores keys the model does not use', () => {
    const header = headerOf(expectedTensors(config), [
      {
        name: 'text_model.embeddings.position_ids',
        shape: [1, 5],
        data: BigInt64Array.of(0n, 1n, 2n, 3n, 4n),
        dtype: 'I64',
      },
      { name: 'some_head.weight', shape: [1], data: new Float32Array(1) },
    ]);
    expect(() => checkTensors(header, config)).not.toThrow();
  });

  it('names the first missing tensor', () => {
    const tensors = expectedTensors(config);
    tensors.delete('vision_model.pre_layrnorm.bias');
    tensors.delete('logit_scale');
    expect(() => checkTensors(headerOf(tensors), config)).toThrow(
      'model.safetensors: vision_model.pre_layrnorm.bias is missing',
    );
  });

  it('names a tensor whose shape the config does not imply', () => {
    const tensors = expectedTensors(config);
    tensors.set('vision_model.encoder.layers.0.mlp.fc1.weight', [12, 24]);
    expect(() => checkTensors(headerOf(tensors), config, 'clip/model.safetensors')).toThrow(
      'clip/model.safetensors: vision_model.encoder.layers.0.mlp.fc1.weight has shape [12, 24], config implies [24, 12]',
    );
  });

  it('refuses a tensor the model needs in a dtype octoclip does not read', () => {
    const tensors = expectedTensors(config);
    tensors.delete('logit_scale');
    const header = headerOf(tensors, [{ name: 'logit_scale', shape: [], data: BigInt64Array.of(5n), dtype: 'I64' }]);
    expect(() => checkTensors(header, config)).toThrow(
      'tensor logit_scale has dtype I64, octoclip reads F32, F16 and BF16',
    );
  });
});
