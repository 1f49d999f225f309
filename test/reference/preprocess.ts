// Float64 references for shaders/preprocess.wgsl: the kernel's one-pass resample, and PIL's two-pass
// resample with uint8 rounding after each pass, which the kernel approximates.

const BICUBIC_A = -0.5;
const BICUBIC_SUPPORT = 2;

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

function bicubic(distance: number): number {
  const x = Math.abs(distance);
  if (x < 1) return ((BICUBIC_A + 2) * x - (BICUBIC_A + 3)) * x * x + 1;
  if (x < BICUBIC_SUPPORT) return (((x - 5) * x + 8) * x - 4) * BICUBIC_A;
  return 0;
}

/** One output sample's source taps along one axis, weights normalised to sum 1 (PIL's precompute_coeffs). */
interface Taps {
  first: number;
  weights: number[];
}

function axisTaps(boxStart: number, boxExtent: number, outputSize: number, sourceSize: number): Taps[] {
  const scale = boxExtent / outputSize;
  const stretch = Math.max(scale, 1);
  const support = BICUBIC_SUPPORT * stretch;
  return Array.from({ length: outputSize }, (_, index) => {
    const center = boxStart + (index + 0.5) * scale;
    const first = Math.max(Math.floor(center - support + 0.5), 0);
    const end = Math.min(Math.floor(center + support + 0.5), sourceSize);
    const weights: number[] = [];
    for (let source = first; source < end; source++) weights.push(bicubic((source + 0.5 - center) / stretch));
    const total = weights.reduce((a, b) => a + b, 0);
    return { first, weights: weights.map((w) => w / total) };
  });
}

function channelValue(rgba: ArrayLike<number>, width: number, x: number, y: number, channel: number): number {
  return rgba[(y * width + x) * 4 + channel];
}

/** The kernel's math: the box resampled to outWidth x outHeight in one 2-D pass, in [0, 1], channels first. */
export function resampleBicubic(
  rgba: ArrayLike<number>,
  width: number,
  height: number,
  box: Box,
  outWidth: number,
  outHeight: number,
  flip = false,
): Float64Array {
  const columns = axisTaps(box.x, box.width, outWidth, width);
  const rows = axisTaps(box.y, box.height, outHeight, height);
  const out = new Float64Array(3 * outWidth * outHeight);
  for (let channel = 0; channel < 3; channel++)
    for (let outY = 0; outY < outHeight; outY++)
      for (let outX = 0; outX < outWidth; outX++) {
        const column = columns[flip ? outWidth - 1 - outX : outX];
        const row = rows[outY];
        let sum = 0;
        row.weights.forEach((rowWeight, dy) =>
          column.weights.forEach((columnWeight, dx) => {
            sum += rowWeight * columnWeight * channelValue(rgba, width, column.first + dx, row.first + dy, channel);
          }),
        );
        out[(channel * outHeight + outY) * outWidth + outX] = Math.min(Math.max(sum / 255, 0), 1);
      }
  return out;
}

/** (v - mean) / std per channel of a channels-first [3, H, W] image. */
export function normalize(planes: ArrayLike<number>, mean: readonly number[], std: readonly number[]): Float64Array {
  const plane = planes.length / 3;
  return Float64Array.from(planes, (v, i) => (v - mean[Math.floor(i / plane)]) / std[Math.floor(i / plane)]);
}

/** What preprocessImage writes for one image: [3, size, size]. */
export function preprocess(
  rgba: ArrayLike<number>,
  width: number,
  height: number,
  options: { size: number; box: Box; flip?: boolean; mean: readonly number[]; std: readonly number[] },
): Float64Array {
  const resampled = resampleBicubic(rgba, width, height, options.box, options.size, options.size, options.flip);
  return normalize(resampled, options.mean, options.std);
}

/** Rounds as PIL's fixed-point resampler does: half up, clamped to uint8. */
function toUint8(value: number): number {
  return Math.min(Math.max(Math.floor(value + 0.5), 0), 255);
}

/**
 * PIL's Image.resize(box=..., resample=BICUBIC) on an RGB image: a horizontal pass then a vertical pass, each rounded
 * to uint8 (PIL's fixed-point weights are taken as exact here). Returns [3, outHeight, outWidth] in [0, 1].
 */
export function pilResizeBicubic(
  rgba: ArrayLike<number>,
  width: number,
  height: number,
  box: Box,
  outWidth: number,
  outHeight: number,
): Float64Array {
  const columns = axisTaps(box.x, box.width, outWidth, width);
  const rows = axisTaps(box.y, box.height, outHeight, height);
  const out = new Float64Array(3 * outWidth * outHeight);
  for (let channel = 0; channel < 3; channel++) {
    const horizontal = new Float64Array(height * outWidth);
    for (let y = 0; y < height; y++)
      columns.forEach((column, outX) => {
        let sum = 0;
        column.weights.forEach((w, dx) => (sum += w * channelValue(rgba, width, column.first + dx, y, channel)));
        horizontal[y * outWidth + outX] = toUint8(sum);
      });
    rows.forEach((row, outY) => {
      for (let outX = 0; outX < outWidth; outX++) {
        let sum = 0;
        row.weights.forEach((w, dy) => (sum += w * horizontal[(row.first + dy) * outWidth + outX]));
        out[(channel * outHeight + outY) * outWidth + outX] = toUint8(sum) / 255;
      }
    });
  }
  return out;
}
