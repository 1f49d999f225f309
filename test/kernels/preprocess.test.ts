import { describe, expect, it } from 'vitest';
import {
  centerCropBox,
  preprocessImage,
  randomResizedCropBox,
  uploadRgba,
  type CropBox,
} from '../../src/kernels/preprocess';
import { expectClose } from '../helpers/compare';
import { useGpu } from '../helpers/gpu';
import { mulberry32 } from '../helpers/random';
import * as reference from '../reference/preprocess';

const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD = [0.26862954, 0.26130258, 0.27577711];
// One 8-bit level after normalisation, for the channel with the smallest std (the largest step).
const LEVEL = 1 / 255 / Math.min(...CLIP_STD);

// GPU vs the float64 one-pass reference on random bytes, the worst case for rounding: f32 tap centres and weights
// are off by ~1e-7 relative, which moves a sample by up to ~1e-5 on noise; 1e-4 is under 1% of an 8-bit level.
const KERNEL_TOLERANCE = { rtol: 0, atol: 1e-4 };
// The one-pass kernel vs PIL's two passes on a smooth image: PIL rounds to uint8 after the horizontal pass (0.5 level,
// amplified by at most the vertical filter's absolute weight sum, 1.25 for a = -0.5) and after the vertical pass (0.5
// level): 1.125 levels at worst.
const PIL_TOLERANCE = { rtol: 0, atol: 1.25 * LEVEL };

const ctx = await useGpu();

function randomRgba(width: number, height: number, seed: number): Uint8Array {
  const next = mulberry32(seed);
  return Uint8Array.from({ length: width * height * 4 }, () => Math.floor(next() * 256));
}

/** Gentle waves well inside [0, 255]: no hard edges, so the bicubic filter never overshoots. */
function smoothRgba(width: number, height: number): Uint8Array {
  const rgba = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const at = (y * width + x) * 4;
      rgba[at] = Math.round(128 + 100 * Math.sin(x / 9) * Math.cos(y / 7));
      rgba[at + 1] = Math.round(128 + 90 * Math.cos((x + y) / 11));
      rgba[at + 2] = Math.round(60 + (150 * x) / Math.max(width - 1, 1));
      rgba[at + 3] = 255;
    }
  return rgba;
}

/** Runs preprocessImage into slot batch - 1 of a zeroed [batch, 3, size, size] tensor and reads the whole tensor. */
async function preprocessOnGpu(
  rgba: Uint8Array,
  width: number,
  height: number,
  batch: number,
  options: { size: number; box: CropBox; flip?: boolean },
): Promise<{ slot: Float32Array; others: Float32Array }> {
  const source = uploadRgba(ctx, rgba, width, height);
  const out = ctx.tensor([batch, 3, options.size, options.size], 'pixels');
  ctx.zero(out);
  preprocessImage(ctx, source, out, batch - 1, { ...options, mean: CLIP_MEAN, std: CLIP_STD });
  const values = await ctx.read(out);
  ctx.memory.release(source.buffer);
  out.destroy();
  const slotStart = (batch - 1) * 3 * options.size * options.size;
  return { slot: values.subarray(slotStart), others: values.subarray(0, slotStart) };
}

describe('preprocessImage', () => {
  const cases: {
    name: string;
    width: number;
    height: number;
    batch: number;
    size: number;
    box: CropBox;
    flip?: boolean;
  }[] = [
    { name: '1x1 image upscaled', width: 1, height: 1, batch: 1, size: 4, box: centerCropBox(1, 1, 4) },
    { name: '7x5 centre crop upscaled', width: 7, height: 5, batch: 3, size: 16, box: centerCropBox(7, 5, 16) },
    {
      name: '7x5 centre crop upscaled, flipped',
      width: 7,
      height: 5,
      batch: 1,
      size: 16,
      box: centerCropBox(7, 5, 16),
      flip: true,
    },
    {
      name: '64x48 centre crop downscaled, flipped',
      width: 64,
      height: 48,
      batch: 3,
      size: 16,
      box: centerCropBox(64, 48, 16),
      flip: true,
    },
    { name: '64x48 centre crop upscaled', width: 64, height: 48, batch: 1, size: 80, box: centerCropBox(64, 48, 80) },
    {
      name: 'box at the top-left corner',
      width: 64,
      height: 48,
      batch: 1,
      size: 8,
      box: { x: 0, y: 0, width: 20, height: 13.5 },
    },
    {
      name: 'box at the bottom-right corner',
      width: 64,
      height: 48,
      batch: 3,
      size: 8,
      box: { x: 44, y: 30, width: 20, height: 18 },
    },
    {
      name: 'fractional box, flipped',
      width: 64,
      height: 48,
      batch: 1,
      size: 12,
      box: { x: 10.25, y: 3.7, width: 40.5, height: 30.1 },
      flip: true,
    },
    {
      name: 'one-column box on the right edge',
      width: 64,
      height: 48,
      batch: 1,
      size: 6,
      box: { x: 63, y: 0, width: 1, height: 48 },
    },
  ];
  for (const { name, width, height, batch, size, box, flip } of cases) {
    it(`${name}: matches the float64 reference (batch slot ${batch - 1} of ${batch})`, async () => {
      // Random alpha too: the kernel must ignore it.
      const rgba = randomRgba(width, height, width * 1000 + size);
      const { slot, others } = await preprocessOnGpu(rgba, width, height, batch, { size, box, flip });
      const expected = reference.preprocess(rgba, width, height, { size, box, flip, mean: CLIP_MEAN, std: CLIP_STD });
      expectClose(slot, expected, { ...KERNEL_TOLERANCE, label: name });
      expect(
        others.every((v) => v === 0),
        'other batch slots untouched',
      ).toBe(true);
    });
  }

  for (const { name, width, height, size } of [
    { name: '64x48 downscaled', width: 64, height: 48, size: 16 },
    { name: '7x5 upscaled', width: 7, height: 5, size: 16 },
  ]) {
    it(`${name}, smooth image: within ${PIL_TOLERANCE.atol.toFixed(4)} (1.25 levels) of PIL's two-pass uint8 resample`, async () => {
      const rgba = smoothRgba(width, height);
      const box = centerCropBox(width, height, size);
      const { slot } = await preprocessOnGpu(rgba, width, height, 1, { size, box });
      const pil = reference.normalize(
        reference.pilResizeBicubic(rgba, width, height, box, size, size),
        CLIP_MEAN,
        CLIP_STD,
      );
      expectClose(slot, pil, { ...PIL_TOLERANCE, label: `${name} vs PIL` });
    });
  }

  it('rejects a box leaving the image, a wrong output shape and a batch index out of range', () => {
    const source = uploadRgba(ctx, new Uint8Array(7 * 5 * 4), 7, 5);
    const out = ctx.tensor([2, 3, 4, 4], 'pixels');
    const options = { size: 4, mean: CLIP_MEAN, std: CLIP_STD };
    expect(() =>
      preprocessImage(ctx, source, out, 0, { ...options, box: { x: 1, y: 0, width: 6.5, height: 5 } }),
    ).toThrow(/box \(x 1, y 0, 6.5x5\) is empty or leaves the 7x5 image/);
    expect(() => preprocessImage(ctx, source, out, 0, { ...options, size: 5, box: centerCropBox(7, 5, 5) })).toThrow(
      /pixels has shape \[2, 3, 4, 4\], expected \[batch, 3, 5, 5\]/,
    );
    expect(() => preprocessImage(ctx, source, out, 2, { ...options, box: centerCropBox(7, 5, 4) })).toThrow(
      /batchIndex 2 is outside/,
    );
    ctx.memory.release(source.buffer);
    out.destroy();
  });
});

describe('uploadRgba', () => {
  it('tracks the buffer in ctx.memory and checks the byte count', () => {
    const before = ctx.memory.current;
    const source = uploadRgba(ctx, new Uint8ClampedArray(7 * 5 * 4), 7, 5);
    expect(ctx.memory.current - before).toBe(7 * 5 * 4);
    ctx.memory.release(source.buffer);
    expect(ctx.memory.current).toBe(before);
    expect(() => uploadRgba(ctx, new Uint8Array(10), 7, 5)).toThrow(/7x5 RGBA needs 140 bytes, got 10/);
  });
});

describe('float64 references', () => {
  it('the PIL-style reference reproduces Pillow 12.3 Image.resize(BICUBIC, box) exactly', () => {
    // Pixel values (37x + 91y + 53c) mod 256: rough, so both uint8 roundings and the overshoot clamps matter.
    const width = 7;
    const height = 5;
    const rgba = Uint8Array.from({ length: width * height * 4 }, (_, i) => {
      const channel = i % 4;
      const pixel = Math.floor(i / 4);
      return channel === 3 ? 255 : ((pixel % width) * 37 + Math.floor(pixel / width) * 91 + channel * 53) % 256;
    });
    // Interleaved RGB bytes from Pillow 12.3.0: img.resize(size, Image.BICUBIC, box, reducing_gap=None).tobytes().
    const pillowOutputs = [
      {
        box: { x: 1.5, y: 0.5, width: 4.5, height: 4.25 },
        outWidth: 5,
        outHeight: 4,
        bytes: [
          101, 165, 153, 144, 202, 93, 180, 200, 140, 195, 111, 158, 95, 147, 74, 141, 85, 99, 68, 135, 58, 113, 139,
          103, 132, 75, 155, 58, 115, 200, 81, 72, 146, 54, 118, 206, 96, 167, 191, 146, 212, 63, 191, 237, 106, 138,
          208, 165, 185, 168, 77, 170, 55, 107, 45, 103, 79, 83, 134, 116,
        ],
      },
      {
        box: { x: 0, y: 0, width: 7, height: 5 },
        outWidth: 3,
        outHeight: 2,
        bytes: [95, 124, 133, 130, 157, 134, 133, 127, 139, 110, 136, 149, 116, 129, 121, 126, 140, 130],
      },
    ];
    for (const { box, outWidth, outHeight, bytes } of pillowOutputs) {
      const planes = reference.pilResizeBicubic(rgba, width, height, box, outWidth, outHeight);
      const plane = outWidth * outHeight;
      const channelsFirst = Float64Array.from(
        { length: 3 * plane },
        (_, i) => bytes[(i % plane) * 3 + Math.floor(i / plane)] / 255,
      );
      expectClose(planes, channelsFirst, { rtol: 0, atol: 1e-12, label: `Pillow ${outWidth}x${outHeight}` });
    }
  });

  it('resampling the centre-crop box equals resizing the shortest side then cropping', () => {
    // 64x48 to 16: the long side resizes to int(16 * 64 / 48) = 21 and the crop starts at column (21 - 16) // 2 = 2.
    const rgba = randomRgba(64, 48, 3);
    const resized = reference.resampleBicubic(rgba, 64, 48, { x: 0, y: 0, width: 64, height: 48 }, 21, 16);
    const cropped = Float64Array.from({ length: 3 * 16 * 16 }, (_, i) => {
      const channel = Math.floor(i / 256);
      return resized[(channel * 16 + Math.floor((i % 256) / 16)) * 21 + 2 + (i % 16)];
    });
    const viaBox = reference.resampleBicubic(rgba, 64, 48, centerCropBox(64, 48, 16), 16, 16);
    expectClose(viaBox, cropped, { rtol: 0, atol: 1e-12, label: 'box vs resize then crop' });
  });
});

describe('centerCropBox', () => {
  it('landscape, portrait and square images, as transformers computes them', () => {
    // 640x480 to 224: the long side resizes to int(224 * 640 / 480) = 298 and the crop starts at 37.
    expect(centerCropBox(640, 480, 224)).toEqual({ x: (37 * 640) / 298, y: 0, width: (224 * 640) / 298, height: 480 });
    expect(centerCropBox(480, 640, 224)).toEqual({ x: 0, y: (37 * 640) / 298, width: 480, height: (224 * 640) / 298 });
    expect(centerCropBox(300, 300, 224)).toEqual({ x: 0, y: 0, width: 300, height: 300 });
    // Upscaling: 7x5 to 16 resizes to 22x16 and crops from column 3.
    expect(centerCropBox(7, 5, 16)).toEqual({ x: (3 * 7) / 22, y: 0, width: (16 * 7) / 22, height: 5 });
  });
});

describe('randomResizedCropBox', () => {
  const scale: [number, number] = [0.08, 1];
  const ratio: [number, number] = [3 / 4, 4 / 3];

  it('gives integer boxes inside the image whose area and aspect ratio were in range before rounding', () => {
    for (const [width, height] of [
      [640, 480],
      [64, 48],
      [300, 500],
    ]) {
      for (let seed = 0; seed < 200; seed++) {
        const { x, y, width: w, height: h } = randomResizedCropBox(width, height, mulberry32(seed), scale, ratio);
        expect([x, y, w, h].every(Number.isInteger)).toBe(true);
        expect(x >= 0 && y >= 0 && w >= 1 && h >= 1 && x + w <= width && y + h <= height).toBe(true);
        // The sides were rounded to integers, so the unrounded crop lay within half a pixel of each side.
        const areaFractionRange = [
          ((w - 0.5) * (h - 0.5)) / (width * height),
          ((w + 0.5) * (h + 0.5)) / (width * height),
        ];
        const ratioRange = [(w - 0.5) / (h + 0.5), (w + 0.5) / (h - 0.5)];
        expect(
          areaFractionRange[1] >= scale[0] && areaFractionRange[0] <= scale[1],
          `area of ${w}x${h} in ${width}x${height}`,
        ).toBe(true);
        expect(ratioRange[1] >= ratio[0] && ratioRange[0] <= ratio[1], `ratio of ${w}x${h}`).toBe(true);
      }
    }
  });

  it('is deterministic for a seed and varies across seeds', () => {
    const boxes = Array.from({ length: 20 }, (_, seed) => randomResizedCropBox(640, 480, mulberry32(seed)));
    expect(Array.from({ length: 20 }, (_, seed) => randomResizedCropBox(640, 480, mulberry32(seed)))).toEqual(boxes);
    expect(new Set(boxes.map((b) => JSON.stringify(b))).size).toBeGreaterThan(15);
  });

  it('falls back to the centred box of the nearest allowed ratio when no attempt fits', () => {
    // In a 400x20 strip, any crop of at least 8% of the area with ratio <= 4/3 is taller than 20 px.
    expect(randomResizedCropBox(400, 20, mulberry32(1))).toEqual({ x: 186, y: 0, width: 27, height: 20 });
    expect(randomResizedCropBox(20, 400, mulberry32(1))).toEqual({ x: 0, y: 186, width: 20, height: 27 });
  });
});
