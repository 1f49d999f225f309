// CLIPImageProcessor on the GPU, and the training augmentation (shaders/preprocess.wgsl): crop boxes are
// chosen here on the CPU, and the kernel resamples the box with PIL's antialiased bicubic filter.

import type { GpuContext } from '../gpu/context';
import { shaderInterface } from '../gpu/shaders';
import type { Tensor } from '../gpu/tensor';
import { grid1d } from './grid';
import { shapeError } from './shapes';

const SHADER = 'preprocess';
const WORKGROUP_SIZE = shaderInterface(SHADER).constant('WORKGROUP_SIZE');
const RANDOM_CROP_ATTEMPTS = 10;

/** One image's RGBA8 pixels uploaded as a u32-per-pixel storage buffer (little-endian R,G,B,A bytes). */
export interface ImageSource {
  buffer: GPUBuffer;
  width: number;
  height: number;
}

/** Crop box in source pixel coordinates (floats allowed), resampled to size x size. */
export interface CropBox {
  x: number;
  y: number;
  width: number;
  height: number;
}

function checkImageSize(op: string, width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`${op}: image size must be positive integers, got ${width}x${height}`);
  }
}

/**
 * Uploads one image's pixels (for example ImageData.data) to a storage buffer tracked in ctx.memory. The caller
 * releases it with ctx.memory.release(source.buffer) once the preprocessing that reads it has been submitted.
 */
export function uploadRgba(
  ctx: GpuContext,
  rgba: Uint8Array | Uint8ClampedArray,
  width: number,
  height: number,
): ImageSource {
  const op = 'uploadRgba';
  checkImageSize(op, width, height);
  if (rgba.length !== width * height * 4) {
    throw new RangeError(`${op}: ${width}x${height} RGBA needs ${width * height * 4} bytes, got ${rgba.length}`);
  }
  if (rgba.byteLength > ctx.device.limits.maxStorageBufferBindingSize) {
    throw new RangeError(
      `${op}: a ${width}x${height} image needs ${rgba.byteLength} bytes, more than this GPU binds at once ` +
        `(${ctx.device.limits.maxStorageBufferBindingSize}). Downscale it first.`,
    );
  }
  const buffer = ctx.memory.track(
    ctx.device.createBuffer({
      label: `rgba ${width}x${height}`,
      size: rgba.byteLength,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    }),
  );
  // A new buffer: no recorded command reads it yet, so the queue write needs no submit to keep program order.
  ctx.device.queue.writeBuffer(buffer, 0, rgba.buffer, rgba.byteOffset, rgba.byteLength);
  return { buffer, width, height };
}

/**
 * CLIP's eval crop: resize the shortest side to `size` then centre-crop, expressed as a box in source pixels.
 * Follows transformers' CLIPImageProcessor: the long side becomes int(size * long / short) and the crop starts at
 * (resized - size) // 2; resampling this box to size x size gives the same pixels as resizing then cropping.
 */
export function centerCropBox(width: number, height: number, size: number): CropBox {
  checkImageSize('centerCropBox', width, height);
  if (!Number.isInteger(size) || size < 1)
    throw new RangeError(`centerCropBox: size must be a positive integer, got ${size}`);
  const short = Math.min(width, height);
  const long = Math.max(width, height);
  const resizedLong = Math.trunc((size * long) / short);
  const cropStart = Math.floor((resizedLong - size) / 2);
  // Integer products first, so that each coordinate is rounded once and the box never passes the image edge.
  const offset = (cropStart * long) / resizedLong;
  const extent = (size * long) / resizedLong;
  return width <= height ? { x: 0, y: offset, width, height: extent } : { x: offset, y: 0, width: extent, height };
}

/** Python's round(): ties go to the even neighbour (torchvision's crop sizes use it). */
function roundHalfToEven(value: number): number {
  const floor = Math.floor(value);
  if (value - floor !== 0.5) return Math.round(value);
  return floor % 2 === 0 ? floor : floor + 1;
}

/**
 * torchvision RandomResizedCrop box (scale range, ratio 3/4..4/3, 10 attempts then centre fallback) from a seeded
 * random() in [0,1). Draws random numbers in torchvision's order (area, log-ratio, then top, then left), so a
 * generator that matches torch's gives torchvision's boxes. Boxes have integer coordinates.
 */
export function randomResizedCropBox(
  width: number,
  height: number,
  random: () => number,
  scale: [number, number] = [0.08, 1],
  ratio: [number, number] = [3 / 4, 4 / 3],
): CropBox {
  const op = 'randomResizedCropBox';
  checkImageSize(op, width, height);
  if (!(scale[0] > 0 && scale[0] <= scale[1]))
    throw new RangeError(`${op}: scale must be 0 < min <= max, got [${scale}]`);
  if (!(ratio[0] > 0 && ratio[0] <= ratio[1]))
    throw new RangeError(`${op}: ratio must be 0 < min <= max, got [${ratio}]`);
  const uniform = (low: number, high: number) => low + (high - low) * random();
  const area = width * height;
  for (let attempt = 0; attempt < RANDOM_CROP_ATTEMPTS; attempt++) {
    const targetArea = area * uniform(scale[0], scale[1]);
    const aspectRatio = Math.exp(uniform(Math.log(ratio[0]), Math.log(ratio[1])));
    const cropWidth = roundHalfToEven(Math.sqrt(targetArea * aspectRatio));
    const cropHeight = roundHalfToEven(Math.sqrt(targetArea / aspectRatio));
    if (cropWidth > 0 && cropWidth <= width && cropHeight > 0 && cropHeight <= height) {
      const y = Math.floor(random() * (height - cropHeight + 1));
      const x = Math.floor(random() * (width - cropWidth + 1));
      return { x, y, width: cropWidth, height: cropHeight };
    }
  }
  // No attempt fitted: the largest centred box whose aspect ratio is within range.
  const imageRatio = width / height;
  let cropWidth = width;
  let cropHeight = height;
  if (imageRatio < ratio[0]) cropHeight = roundHalfToEven(width / ratio[0]);
  else if (imageRatio > ratio[1]) cropWidth = roundHalfToEven(height * ratio[1]);
  return {
    x: Math.floor((width - cropWidth) / 2),
    y: Math.floor((height - cropHeight) / 2),
    width: cropWidth,
    height: cropHeight,
  };
}

/**
 * Writes out[batchIndex] ([B, 3, size, size] tensor) = normalize(bicubic-resample(crop of source), mean, std),
 * optionally flipped horizontally. Alpha is ignored: RGB is used as stored, not composited over any background.
 *
 * The resampling is PIL's BICUBIC (a = -0.5) with antialiasing, as in Image.resize(box=...): when downscaling, the
 * filter widens by the scale factor; weights are normalised per output pixel; taps outside the image are dropped.
 * PIL filters in two separable passes rounding to uint8 after each; this kernel filters in one pass in f32 and clamps
 * to [0, 1] at the end, so results differ from PIL's by about one 8-bit level at most. Values are divided by 255,
 * then normalised as (v - mean) / std. The box must lie within the image, as PIL requires.
 */
export function preprocessImage(
  ctx: GpuContext,
  source: ImageSource,
  out: Tensor,
  batchIndex: number,
  options: { size: number; box: CropBox; flip?: boolean; mean: readonly number[]; std: readonly number[] },
): void {
  const op = 'preprocessImage';
  const { size, box, flip = false, mean, std } = options;
  const [batch, channels, outHeight, outWidth] = out.shape;
  if (out.shape.length !== 4 || channels !== 3 || outHeight !== size || outWidth !== size) {
    throw shapeError(op, out, `[batch, 3, ${size}, ${size}]`);
  }
  if (!Number.isInteger(batchIndex) || batchIndex < 0 || batchIndex >= batch) {
    throw new RangeError(`${op}: batchIndex ${batchIndex} is outside ${out.label}'s batch of ${batch}`);
  }
  const boxIsInside =
    box.width > 0 &&
    box.height > 0 &&
    box.x >= 0 &&
    box.y >= 0 &&
    box.x + box.width <= source.width &&
    box.y + box.height <= source.height;
  if (!boxIsInside) {
    throw new RangeError(
      `${op}: box (x ${box.x}, y ${box.y}, ${box.width}x${box.height}) is empty or leaves the ${source.width}x${source.height} image`,
    );
  }
  if (mean.length !== 3 || std.length !== 3 || std.some((s) => s === 0)) {
    throw new RangeError(`${op}: mean and std need 3 values each and std no zeros, got [${mean}] and [${std}]`);
  }
  const plane = size * size;
  ctx.dispatch({
    shader: SHADER,
    entry: 'preprocess',
    params: {
      imageWidth: source.width,
      imageHeight: source.height,
      size,
      outOffset: batchIndex * 3 * plane,
      flip,
      boxX: box.x,
      boxY: box.y,
      boxWidth: box.width,
      boxHeight: box.height,
      meanR: mean[0],
      meanG: mean[1],
      meanB: mean[2],
      stdR: std[0],
      stdG: std[1],
      stdB: std[2],
    },
    bindings: { image: source.buffer, out },
    workgroups: grid1d(plane, WORKGROUP_SIZE),
  });
}
