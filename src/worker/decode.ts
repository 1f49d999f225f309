// Images from Blobs to the RGBA pixels the engine preprocesses on the GPU, decoded in the worker with
// the browser's image decoders (createImageBitmap, then an OffscreenCanvas to read the pixels).

import type { RgbaImage } from '../model/preprocessor';

export class ImageDecodeError extends Error {
  override name = 'ImageDecodeError';
}

/**
 * Training crops at most 1/0.08 of an image's area down to the model's size, so pixels beyond twice the
 * model's size on the short side add little; capping there keeps a batch of phone photos (12 MP, 48 MB
 * of RGBA each) in tens of megabytes.
 */
const MAX_SHORT_SIDE_FACTOR = 2;

/** A file's image as PIL reads images for CLIP: no colour-profile conversion, straight (not premultiplied) alpha. */
export async function imageBitmapOf(blob: Blob, name: string): Promise<ImageBitmap> {
  try {
    return await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch {
    throw new ImageDecodeError(
      `${name} could not be decoded: it is not an image this browser can read, or the file is damaged.`,
    );
  }
}

/** The bitmap's RGBA pixels, read through an OffscreenCanvas (the bitmap stays open). */
export function pixelsOf(bitmap: ImageBitmap): RgbaImage {
  const { width, height } = bitmap;
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext('2d', { willReadFrequently: true });
  if (!context) throw new ImageDecodeError('this browser gives no 2D canvas to read pixels with');
  context.drawImage(bitmap, 0, 0);
  return { rgba: context.getImageData(0, 0, width, height).data, width, height };
}

export async function decodeImage(blob: Blob, name: string, modelImageSize: number): Promise<RgbaImage> {
  let bitmap = await imageBitmapOf(blob, name);
  const maxShortSide = MAX_SHORT_SIDE_FACTOR * modelImageSize;
  const scale = Math.min(1, maxShortSide / Math.min(bitmap.width, bitmap.height));
  if (scale < 1) {
    const resized = await createImageBitmap(bitmap, {
      resizeWidth: Math.max(1, Math.round(bitmap.width * scale)),
      resizeHeight: Math.max(1, Math.round(bitmap.height * scale)),
      resizeQuality: 'high',
    });
    bitmap.close();
    bitmap = resized;
  }
  try {
    return pixelsOf(bitmap);
  } finally {
    bitmap.close();
  }
}

/** Decodes images in order, one at a time (a few hundred photos decoded at once would hold gigabytes). */
export async function decodeImages(
  blobs: readonly Blob[],
  names: readonly string[],
  modelImageSize: number,
): Promise<RgbaImage[]> {
  const images: RgbaImage[] = [];
  for (let i = 0; i < blobs.length; i++) images.push(await decodeImage(blobs[i], names[i], modelImageSize));
  return images;
}
