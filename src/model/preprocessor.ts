// CLIPImageProcessor: settings from preprocessor_config.json, and a batch of decoded images turned
// into the model's pixels [batch, 3, S, S] on the GPU (resize + centre crop, or a training augmentation).

import type { GpuContext } from '../gpu/context';
import type { Tensor } from '../gpu/tensor';
import { centerCropBox, preprocessImage, uploadRgba, type CropBox } from '../kernels/preprocess';
import { ModelFileError } from './safetensors';

export interface PreprocessorConfig {
  /** The square the model sees: the shortest side is resized to it, then the centre is cropped. */
  size: number;
  /** Per channel, applied to the resampled value in [0, 1]; rescale_factor and do_normalize folded in. */
  mean: readonly number[];
  std: readonly number[];
}

export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;

/** PIL's BICUBIC, the filter the GPU kernel implements (transformers writes `resample: 3` for CLIP). */
const PIL_BICUBIC = 3;
const PIL_FILTERS = ['NEAREST', 'LANCZOS', 'BILINEAR', 'BICUBIC', 'BOX', 'HAMMING'];
const DEFAULT_RESCALE_FACTOR = 1 / 255;

/**
 * Reads preprocessor_config.json in every form transformers writes (size and crop_size as numbers or objects,
 * the do_* switches, rescale_factor, resample) into what the kernel does: a bicubic resize of the shortest side,
 * a centre crop to the model's image size, and a per-channel affine map. A setting that kernel cannot honour
 * is refused, naming the field. An absent file means CLIP's settings at the model's image size.
 */
export function parsePreprocessorConfig(json: string | undefined, imageSize: number): PreprocessorConfig {
  if (json === undefined) return { size: imageSize, mean: CLIP_MEAN, std: CLIP_STD };
  const fail = (problem: string): never => {
    throw new ModelFileError(problem, 'preprocessor_config.json');
  };
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (error) {
    return fail(`is not valid JSON (${(error as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail('is not a JSON object');
  const fields = raw as Record<string, unknown>;
  const flag = (key: string): boolean => {
    const value = fields[key] ?? true; // CLIPImageProcessor's defaults are all true
    return typeof value === 'boolean' ? value : fail(`${key} must be true or false, got ${JSON.stringify(value)}`);
  };

  if (!flag('do_resize'))
    fail('do_resize is false: octoclip resizes every image to the model’s input, it cannot feed images as they are');
  if (!flag('do_center_crop')) fail('do_center_crop is false: octoclip feeds square centre crops, as CLIP was trained');
  const resample = fields.resample ?? PIL_BICUBIC;
  if (resample !== PIL_BICUBIC) {
    const name = typeof resample === 'number' ? PIL_FILTERS[resample] : undefined;
    fail(
      `resample ${JSON.stringify(resample)}${name ? ` (${name})` : ''} is not supported: octoclip resamples with PIL's BICUBIC (3), as CLIP does`,
    );
  }
  // do_convert_rgb either way: images are decoded to RGB(A) and the alpha channel is dropped, as PIL's convert does.
  flag('do_convert_rgb');

  const shortestEdge = sizeField(fields.size, 'size', imageSize, fail);
  const crop = cropField(fields.crop_size, imageSize, fail);
  if (crop !== imageSize) fail(`crop_size ${crop} differs from the model's image size ${imageSize}`);
  if (shortestEdge !== crop) {
    fail(
      `size.shortest_edge ${shortestEdge} differs from crop_size ${crop}: octoclip resizes the shortest side to the crop size, as CLIP does`,
    );
  }

  const mean = channels(fields.image_mean, 'image_mean', CLIP_MEAN, fail);
  const std = channels(fields.image_std, 'image_std', CLIP_STD, fail);
  if (std.some((s) => !(s > 0))) fail(`image_std must be positive, got ${JSON.stringify(std)}`);
  const rescaleFactor = flag('do_rescale')
    ? positive(fields.rescale_factor ?? DEFAULT_RESCALE_FACTOR, 'rescale_factor', fail)
    : 1;
  const normalize = flag('do_normalize');
  // The kernel maps the 0-255 byte to value = byte / 255; transformers feeds (byte * rescale - mean) / std.
  const scale = 255 * rescaleFactor;
  return {
    size: crop,
    mean: normalize ? mean.map((m) => m / scale) : [0, 0, 0],
    std: normalize ? std.map((s) => s / scale) : [1 / scale, 1 / scale, 1 / scale],
  };
}

/** `size`: a number, or {"shortest_edge": N}; {"height", "width"} would stretch the image and is refused. */
function sizeField(value: unknown, key: string, fallback: number, fail: (problem: string) => never): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value === 'number') return positiveInteger(value, key, fail);
  if (typeof value === 'object' && !Array.isArray(value)) {
    const size = value as Record<string, unknown>;
    if ('shortest_edge' in size) return positiveInteger(size.shortest_edge, `${key}.shortest_edge`, fail);
    if ('height' in size || 'width' in size) {
      return fail(
        `${key} {"height", "width"} resizes without keeping the aspect ratio; octoclip supports {"shortest_edge": N}, as CLIP uses`,
      );
    }
  }
  return fail(`${key} must be a number or {"shortest_edge": N}, got ${JSON.stringify(value)}`);
}

/** `crop_size`: a number, or a square {"height": N, "width": N}. */
function cropField(value: unknown, fallback: number, fail: (problem: string) => never): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value === 'number') return positiveInteger(value, 'crop_size', fail);
  if (typeof value === 'object' && !Array.isArray(value)) {
    const { height, width } = value as Record<string, unknown>;
    const h = positiveInteger(height, 'crop_size.height', fail);
    const w = positiveInteger(width, 'crop_size.width', fail);
    return h === w ? h : fail(`crop_size ${h}x${w} is not square: CLIP's image tower takes square images`);
  }
  return fail(`crop_size must be a number or {"height", "width"}, got ${JSON.stringify(value)}`);
}

function channels(
  value: unknown,
  key: string,
  fallback: readonly number[],
  fail: (problem: string) => never,
): readonly number[] {
  if (value === undefined || value === null) return fallback;
  if (typeof value === 'number' && Number.isFinite(value)) return [value, value, value]; // transformers accepts one value for all three
  if (Array.isArray(value) && value.length === 3 && value.every((v) => typeof v === 'number' && Number.isFinite(v)))
    return value as number[];
  return fail(`${key} must be 3 numbers (red, green, blue), got ${JSON.stringify(value)}`);
}

function positiveInteger(value: unknown, key: string, fail: (problem: string) => never): number {
  return Number.isSafeInteger(value) && (value as number) >= 1
    ? (value as number)
    : fail(`${key} must be a positive integer, got ${JSON.stringify(value)}`);
}

function positive(value: unknown, key: string, fail: (problem: string) => never): number {
  return typeof value === 'number' && value > 0 && Number.isFinite(value)
    ? value
    : fail(`${key} must be a positive number, got ${JSON.stringify(value)}`);
}

/** A decoded image: RGBA8 pixels, row-major. */
export interface RgbaImage {
  rgba: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
}

/** Per-image crop and flip; the default is CLIP's evaluation crop. */
export type CropChoice = (image: RgbaImage, index: number) => { box: CropBox; flip: boolean };

export const evaluationCrop =
  (size: number): CropChoice =>
  (image) => ({ box: centerCropBox(image.width, image.height, size), flip: false });

/** Uploads and preprocesses images into a new [batch, 3, S, S] tensor. */
export function preprocessBatch(
  ctx: GpuContext,
  images: readonly RgbaImage[],
  config: PreprocessorConfig,
  crop: CropChoice = evaluationCrop(config.size),
): Tensor {
  const pixels = ctx.tensor([images.length, 3, config.size, config.size], 'pixel_values');
  images.forEach((image, index) => {
    const source = uploadRgba(ctx, image.rgba, image.width, image.height);
    const { box, flip } = crop(image, index);
    preprocessImage(ctx, source, pixels, index, { size: config.size, box, flip, mean: config.mean, std: config.std });
    ctx.memory.release(source.buffer); // destroyed once the recorded commands are submitted
  });
  return pixels;
}
