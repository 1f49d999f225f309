// CLIPImageProcessor: settings from preprocessor_config.json, and a batch of decoded images turned
// into the model's pixels [batch, 3, S, S] on the GPU (resize + centre crop, or a training augmentation).

import type { GpuContext } from '../gpu/context';
import type { Tensor } from '../gpu/tensor';
import { centerCropBox, preprocessImage, uploadRgba, type CropBox } from '../kernels/preprocess';
import { ModelFileError } from './safetensors';

export interface PreprocessorConfig {
  size: number;
  mean: readonly number[];
  std: readonly number[];
}

export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;

/** Reads crop size, mean and std; absent file or fields fall back to CLIP's values at the model's image size. */
export function parsePreprocessorConfig(json: string | undefined, imageSize: number): PreprocessorConfig {
  if (json === undefined) return { size: imageSize, mean: CLIP_MEAN, std: CLIP_STD };
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(json);
  } catch (error) {
    throw new ModelFileError(`is not valid JSON (${(error as Error).message})`, 'preprocessor_config.json');
  }
  const crop = raw.crop_size;
  const size = typeof crop === 'number' ? crop : typeof crop === 'object' && crop ? Number((crop as { height?: number }).height) : imageSize;
  const mean = Array.isArray(raw.image_mean) ? raw.image_mean.map(Number) : [...CLIP_MEAN];
  const std = Array.isArray(raw.image_std) ? raw.image_std.map(Number) : [...CLIP_STD];
  if (size !== imageSize) {
    throw new ModelFileError(`crop size ${size} differs from the model's image size ${imageSize}`, 'preprocessor_config.json');
  }
  if (mean.length !== 3 || std.length !== 3 || std.some((s) => !(s > 0))) {
    throw new ModelFileError('image_mean and image_std must have 3 values, std positive', 'preprocessor_config.json');
  }
  return { size, mean, std };
}

/** A decoded image: RGBA8 pixels, row-major. */
export interface RgbaImage {
  rgba: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
}

/** Per-image crop and flip; the default is CLIP's evaluation crop. */
export type CropChoice = (image: RgbaImage, index: number) => { box: CropBox; flip: boolean };

export const evaluationCrop = (size: number): CropChoice => (image) => ({ box: centerCropBox(image.width, image.height, size), flip: false });

/** Uploads and preprocesses images into a new [batch, 3, S, S] tensor. */
export function preprocessBatch(ctx: GpuContext, images: readonly RgbaImage[], config: PreprocessorConfig, crop: CropChoice = evaluationCrop(config.size)): Tensor {
  const pixels = ctx.tensor([images.length, 3, config.size, config.size], 'pixel_values');
  images.forEach((image, index) => {
    const source = uploadRgba(ctx, image.rgba, image.width, image.height);
    const { box, flip } = crop(image, index);
    preprocessImage(ctx, source, pixels, index, { size: config.size, box, flip, mean: config.mean, std: config.std });
    ctx.memory.release(source.buffer); // destroyed once the recorded commands are submitted
  });
  return pixels;
}
