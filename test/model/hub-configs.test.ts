// config.json sizes out of bounds, the Hub checkpoints octoclip offers by name, and preprocessor_config.json
// in every form transformers writes: each form read, each refusal naming its field.

import { describe, expect, it } from 'vitest';
import { CONFIG_LIMITS, expectedTensors, parseClipConfig, visionTokenCount } from '../../src/model/config';
import { downloadBytes, KNOWN_CLIP_MODELS, knownClipConfig, parameterCount } from '../../src/training/known-models';
import { CLIP_MEAN, CLIP_STD, parsePreprocessorConfig } from '../../src/model/preprocessor';

describe('config.json bounds', () => {
  it('refuses a billion layers before anything is allocated, naming the field', () => {
    expect(() => parseClipConfig({ model_type: 'clip', text_config: { num_hidden_layers: 1e9 } })).toThrow(
      'config.json: text_config.num_hidden_layers is 1000000000, more than the 128 octoclip accepts (no CLIP is that large: is the file corrupt?)',
    );
  });

  it('refuses every size field just over its limit, in either tower, and accepts it at the limit', () => {
    const towerFields = ['hidden_size', 'intermediate_size', 'num_attention_heads', 'num_hidden_layers'];
    const cases: [string, object, string][] = [
      ['projection_dim', { projection_dim: CONFIG_LIMITS.projection_dim + 1 }, 'projection_dim'],
      ['vocab_size', { text_config: { vocab_size: CONFIG_LIMITS.vocab_size + 1 } }, 'text_config.vocab_size'],
      [
        'max_position_embeddings',
        { text_config: { max_position_embeddings: CONFIG_LIMITS.max_position_embeddings + 1 } },
        'text_config.max_position_embeddings',
      ],
      ['image_size', { vision_config: { image_size: CONFIG_LIMITS.image_size + 1 } }, 'vision_config.image_size'],
      ['patch_size', { vision_config: { patch_size: CONFIG_LIMITS.patch_size + 1 } }, 'vision_config.patch_size'],
      ...towerFields.flatMap((field): [string, object, string][] => [
        [field, { text_config: { [field]: CONFIG_LIMITS[field] + 1 } }, `text_config.${field}`],
        [field, { vision_config: { [field]: CONFIG_LIMITS[field] + 1 } }, `vision_config.${field}`],
      ]),
    ];
    for (const [field, json, named] of cases) {
      expect(() => parseClipConfig({ model_type: 'clip', ...json })).toThrow(
        `${named} is ${CONFIG_LIMITS[field] + 1}, more than the ${CONFIG_LIMITS[field]} octoclip accepts`,
      );
    }
    expect(
      parseClipConfig({ model_type: 'clip', text_config: { num_hidden_layers: CONFIG_LIMITS.num_hidden_layers } }).text
        .numLayers,
    ).toBe(128);
  });

  it('refuses too many image tokens and a layer_norm_eps outside (0, 1)', () => {
    expect(() => parseClipConfig({ model_type: 'clip', vision_config: { image_size: 2048, patch_size: 8 } })).toThrow(
      'vision_config.image_size 2048 in 8 px patches makes 65537 image tokens, more than the 4097 octoclip accepts',
    );
    expect(() => parseClipConfig({ model_type: 'clip', vision_config: { layer_norm_eps: 0 } })).toThrow(
      'vision_config.layer_norm_eps must be above 0 and below 1, got 0',
    );
    expect(() => parseClipConfig({ model_type: 'clip', text_config: { layer_norm_eps: 5 } })).toThrow(
      'text_config.layer_norm_eps must be above 0 and below 1, got 5',
    );
  });
});

describe('the CLIP checkpoints octoclip offers', () => {
  const byRepo = new Map(KNOWN_CLIP_MODELS.map((model) => [model.repo, knownClipConfig(model)]));

  it('has the Hub configurations: image tokens, widths, depths and parameter counts', () => {
    const summary = [...byRepo].map(([repo, config]) => ({
      repo,
      imageTokens: visionTokenCount(config.vision),
      vision: [config.vision.numLayers, config.vision.hiddenSize, config.vision.numHeads, config.vision.patchSize],
      text: [config.text.numLayers, config.text.hiddenSize, config.text.numHeads],
      projection: config.projectionDim,
      parameters: parameterCount(config),
    }));
    expect(summary).toEqual([
      {
        repo: 'openai/clip-vit-base-patch32',
        imageTokens: 50,
        vision: [12, 768, 12, 32],
        text: [12, 512, 8],
        projection: 512,
        parameters: 151_277_313,
      },
      {
        repo: 'openai/clip-vit-base-patch16',
        imageTokens: 197,
        vision: [12, 768, 12, 16],
        text: [12, 512, 8],
        projection: 512,
        parameters: 149_620_737,
      },
      {
        repo: 'openai/clip-vit-large-patch14',
        imageTokens: 257,
        vision: [24, 1024, 16, 14],
        text: [12, 768, 12],
        projection: 768,
        parameters: 427_616_513,
      },
      {
        repo: 'openai/clip-vit-large-patch14-336',
        imageTokens: 577,
        vision: [24, 1024, 16, 14],
        text: [12, 768, 12],
        projection: 768,
        parameters: 427_944_193,
      },
      {
        repo: 'laion/CLIP-ViT-B-32-laion2B-s34B-b79K',
        imageTokens: 50,
        vision: [12, 768, 12, 32],
        text: [12, 512, 8],
        projection: 512,
        parameters: 151_277_313,
      },
      {
        repo: 'laion/CLIP-ViT-L-14-laion2B-s32B-b82K',
        imageTokens: 257,
        vision: [24, 1024, 16, 14],
        text: [12, 768, 12],
        projection: 768,
        parameters: 427_616_513,
      },
    ]);
    // The Hub's F32 model.safetensors: 605 MB for ViT-B/32, 1.71 GB for ViT-L/14.
    expect(downloadBytes(byRepo.get('openai/clip-vit-large-patch14')!)).toBe(1_710_466_052);
  });

  it('names every tensor with the shape of the Hub checkpoints (ViT-L/14 at 336 px)', () => {
    const tensors = expectedTensors(byRepo.get('openai/clip-vit-large-patch14-336')!);
    expect(tensors.get('vision_model.embeddings.position_embedding.weight')).toEqual([577, 1024]);
    expect(tensors.get('vision_model.embeddings.patch_embedding.weight')).toEqual([1024, 3, 14, 14]);
    expect(tensors.get('vision_model.encoder.layers.23.mlp.fc1.weight')).toEqual([4096, 1024]);
    expect(tensors.get('visual_projection.weight')).toEqual([768, 1024]);
    expect(tensors.get('text_projection.weight')).toEqual([768, 768]);
  });

  it("reads LAION's activation as the config states it", () => {
    const laion = byRepo.get('laion/CLIP-ViT-L-14-laion2B-s32B-b82K')!;
    expect([laion.text.hiddenAct, laion.vision.hiddenAct]).toEqual(['gelu', 'gelu']);
    expect(byRepo.get('openai/clip-vit-large-patch14')!.vision.hiddenAct).toBe('quick_gelu');
  });
});

describe('preprocessor_config.json', () => {
  const parse = (json: object, imageSize = 224) => parsePreprocessorConfig(JSON.stringify(json), imageSize);
  const CLIP = { size: 224, mean: [...CLIP_MEAN], std: [...CLIP_STD] };

  it('reads size and crop_size as numbers or objects, the way each transformers version wrote them', () => {
    const forms = [
      {
        crop_size: 224,
        size: 224,
        do_center_crop: true,
        do_normalize: true,
        do_resize: true,
        feature_extractor_type: 'CLIPFeatureExtractor',
        resample: 3,
      },
      {
        crop_size: { height: 224, width: 224 },
        size: { shortest_edge: 224 },
        do_rescale: true,
        rescale_factor: 1 / 255,
        do_convert_rgb: true,
        image_processor_type: 'CLIPImageProcessor',
      },
      { crop_size: 224, size: { shortest_edge: 224 } },
      { crop_size: { height: 224, width: 224 }, size: 224, do_convert_rgb: false },
      {},
    ];
    for (const form of forms) expect(parse(form), JSON.stringify(form)).toEqual(CLIP);
    expect(parsePreprocessorConfig(undefined, 336)).toEqual({ ...CLIP, size: 336 });
    expect(parse({ crop_size: 336, size: 336 }, 336).size).toBe(336);
  });

  /** What the GPU kernel computes from the resampled value v = byte / 255, against transformers' formula per byte. */
  function expectTransformersPixels(json: object, transformers: (byte: number, channel: number) => number) {
    const { mean, std } = parse(json);
    for (const byte of [0, 1, 77, 128, 254, 255]) {
      for (let c = 0; c < 3; c++) expect((byte / 255 - mean[c]) / std[c]).toBeCloseTo(transformers(byte, c), 10);
    }
  }

  it('folds do_rescale, rescale_factor and do_normalize into the kernel’s mean and std exactly', () => {
    const mean = [0.5, 0.25, 0.125];
    const std = [0.2, 0.3, 0.4];
    expectTransformersPixels({ image_mean: mean, image_std: std }, (b, c) => (b / 255 - mean[c]) / std[c]);
    expectTransformersPixels({ image_mean: mean, image_std: std, do_rescale: false }, (b, c) => (b - mean[c]) / std[c]);
    expectTransformersPixels(
      { image_mean: mean, image_std: std, rescale_factor: 1 / 127.5 },
      (b, c) => (b / 127.5 - mean[c]) / std[c],
    );
    expectTransformersPixels({ do_normalize: false }, (b) => b / 255);
    expectTransformersPixels({ do_normalize: false, do_rescale: false }, (b) => b);
    expectTransformersPixels({ image_mean: 0.5, image_std: 0.5 }, (b) => (b / 255 - 0.5) / 0.5);
  });

  it('refuses what the kernel cannot honour, naming the field', () => {
    const refuse = (json: object, message: string) =>
      expect(() => parse(json)).toThrow(`preprocessor_config.json: ${message}`);
    refuse(
      { resample: 2 },
      "resample 2 (BILINEAR) is not supported: octoclip resamples with PIL's BICUBIC (3), as CLIP does",
    );
    refuse({ do_resize: false }, 'do_resize is false');
    refuse({ do_center_crop: false }, 'do_center_crop is false');
    refuse({ size: { height: 224, width: 224 } }, 'size {"height", "width"} resizes without keeping the aspect ratio');
    refuse({ size: { longest_edge: 224 } }, 'size must be a number or {"shortest_edge": N}');
    refuse({ size: 256, crop_size: 224 }, 'size.shortest_edge 256 differs from crop_size 224');
    refuse({ crop_size: { height: 224, width: 192 } }, 'crop_size 224x192 is not square');
    refuse({ crop_size: 336, size: 336 }, "crop_size 336 differs from the model's image size 224");
    refuse({ do_normalize: 'yes' }, 'do_normalize must be true or false, got "yes"');
    refuse({ rescale_factor: 0 }, 'rescale_factor must be a positive number, got 0');
    refuse({ image_mean: [0.5, 0.5] }, 'image_mean must be 3 numbers (red, green, blue), got [0.5,0.5]');
    refuse({ image_std: [1, 0, 1] }, 'image_std must be positive');
    expect(() => parsePreprocessorConfig('{', 224)).toThrow('preprocessor_config.json: is not valid JSON');
  });
});
