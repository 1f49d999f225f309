// Decoding image files in Node (the CLI) with sharp (libvips): every supported format and pixel layout comes
// out as 8-bit sRGB RGBA, the layout the browser's canvas and ImageBitmap paths produce, so the rest of the
// engine sees one kind of image.

import { readFile, stat } from 'node:fs/promises';
import sharp, { type Metadata } from 'sharp';

export interface DecodedImage {
  /** width * height * 4 bytes, row-major RGBA, 8 bits per channel, sRGB; alpha straight (not premultiplied). */
  rgba: Uint8Array;
  width: number;
  height: number;
}

/** Format names as sharp reports them; `heif` covers AVIF (the prebuilt libvips decodes AV1 HEIF only). */
export const SUPPORTED_IMAGE_FORMATS = ['png', 'jpeg', 'webp', 'gif', 'tiff', 'heif'] as const;
export type ImageFormat = (typeof SUPPORTED_IMAGE_FORMATS)[number];

/**
 * Default pixel limit: 100 megapixels (e.g. 10,000 x 10,000), past any camera photo a dataset holds, and
 * 400 MB as RGBA. Training resizes every image to the model's 224 x 224 anyway.
 */
export const DEFAULT_MAX_PIXELS = 100_000_000;

/** Files over this size are refused before reading: no image under the pixel limit is this large. */
const MAX_FILE_BYTES = 1024 * 1024 * 1024;

/** libvips aborts a decode running longer than this (a second guard against pathological files). */
const DECODE_TIMEOUT_SECONDS = 120;

export type ImageDecodeProblem =
  | 'unreadable' // the file system refused (missing, a folder, no permission)
  | 'empty'
  | 'unrecognised' // not an image format libvips knows
  | 'unsupported' // an image format octoclip does not accept (SVG, PDF, ...)
  | 'too-large'
  | 'corrupt'; // a known format whose data does not decode (truncated, damaged)

/** An image file that cannot be used. The message names the file and the problem. */
export class ImageDecodeError extends Error {
  constructor(
    readonly path: string,
    readonly problem: ImageDecodeProblem,
    /** The problem in words, without the path: what a dataset report lists next to the file. */
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${path}: ${reason}`, options);
    this.name = 'ImageDecodeError';
  }
}

export interface DecodeImageOptions {
  /** Refuse images with more pixels than this (width x height); default `DEFAULT_MAX_PIXELS`. */
  maxPixels?: number;
}

export interface ImageInfo {
  format: ImageFormat;
  /** After EXIF orientation, as the decoded image will be. */
  width: number;
  height: number;
}

/**
 * Reads only the header: the format and size, or the `ImageDecodeError` that any file that is not an image,
 * empty, of an unsupported format or too large would give. Damaged pixel data is found only by decoding.
 */
export async function probeImageFile(path: string, options: DecodeImageOptions = {}): Promise<ImageInfo> {
  const bytes = await readImageBytes(path);
  return probe(path, bytes, maxPixelsOf(options));
}

/**
 * Decodes an image file into 8-bit sRGB RGBA.
 *
 * Formats: PNG, JPEG, WebP, GIF (the first frame), TIFF (the first page) and AVIF. Grayscale, palette,
 * 16-bit (reduced to the top 8 bits) and CMYK or ICC-profiled images are converted to sRGB; an alpha channel is
 * kept as it is, and opaque images get alpha 255. The EXIF orientation is applied, so width and height are
 * as the image is meant to be viewed.
 *
 * Throws `ImageDecodeError` (naming the file) for an empty or unreadable file, a file that is not an image,
 * an unsupported format, an image over the pixel limit and damaged or truncated data. Recoverable glitches
 * that libjpeg only warns about (e.g. stray bytes between markers) are accepted, as PIL accepts them.
 */
export async function decodeImageFile(path: string, options: DecodeImageOptions = {}): Promise<DecodedImage> {
  const maxPixels = maxPixelsOf(options);
  const bytes = await readImageBytes(path);
  await probe(path, bytes, maxPixels);
  try {
    const { data, info } = await sharp(bytes, {
      failOn: 'error', // truncated or undecodable data fails; libjpeg's warnings do not
      limitInputPixels: maxPixels,
      autoOrient: true,
      pages: 1,
    })
      .timeout({ seconds: DECODE_TIMEOUT_SECONDS })
      .toColourspace('srgb')
      .ensureAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    const { width, height } = info;
    if (info.channels !== 4 || data.length !== width * height * 4) {
      throw new Error(`decoder returned ${info.channels} channels and ${data.length} bytes for ${width} x ${height}`);
    }
    // A copy that owns its ArrayBuffer: transferable to a worker, independent of libvips' buffer.
    return { rgba: new Uint8Array(data), width, height };
  } catch (error) {
    throw classify(path, error);
  }
}

function maxPixelsOf(options: DecodeImageOptions): number {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (!Number.isSafeInteger(maxPixels) || maxPixels < 1)
    throw new RangeError(`maxPixels must be a positive integer, got ${maxPixels}`);
  return maxPixels;
}

async function readImageBytes(path: string): Promise<Buffer> {
  try {
    const { size } = await stat(path);
    if (size === 0) throw new ImageDecodeError(path, 'empty', 'empty file');
    if (size > MAX_FILE_BYTES) {
      throw new ImageDecodeError(path, 'too-large', `file too large (${size} bytes, limit ${MAX_FILE_BYTES})`);
    }
    return await readFile(path);
  } catch (error) {
    if (error instanceof ImageDecodeError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a folder, not a file' : (error as Error).message;
    throw new ImageDecodeError(path, 'unreadable', `cannot read file (${why})`, { cause: error });
  }
}

async function probe(path: string, bytes: Buffer, maxPixels: number): Promise<ImageInfo> {
  // The file may have shrunk to nothing between stat and read.
  if (bytes.length === 0) throw new ImageDecodeError(path, 'empty', 'empty file');
  let metadata: Metadata;
  try {
    metadata = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (error) {
    throw classify(path, error);
  }
  const format = metadata.format as string;
  if (!(SUPPORTED_IMAGE_FORMATS as readonly string[]).includes(format)) {
    throw new ImageDecodeError(
      path,
      'unsupported',
      `unsupported image format ${format} (octoclip reads PNG, JPEG, WebP, GIF, TIFF and AVIF)`,
    );
  }
  const { width, height } = metadata.autoOrient;
  if (width * height > maxPixels) {
    const limit = maxPixels.toLocaleString('en-US');
    throw new ImageDecodeError(path, 'too-large', `image too large (${width} x ${height}, limit ${limit} pixels)`);
  }
  return { format: format as ImageFormat, width, height };
}

/** Turns a sharp/libvips failure into an `ImageDecodeError` with a reason a user can act on. */
function classify(path: string, error: unknown): ImageDecodeError {
  if (error instanceof ImageDecodeError) return error;
  const detail = error instanceof Error ? error.message.trim() : String(error);
  if (/unsupported image format/i.test(detail)) {
    return new ImageDecodeError(path, 'unrecognised', 'not an image (unrecognised format)', { cause: error });
  }
  if (/timeout/i.test(detail)) {
    return new ImageDecodeError(path, 'corrupt', `decoding took over ${DECODE_TIMEOUT_SECONDS} s (${detail})`, {
      cause: error,
    });
  }
  if (/exceeds pixel limit/i.test(detail)) {
    return new ImageDecodeError(path, 'too-large', 'image too large (over the pixel limit)', { cause: error });
  }
  return new ImageDecodeError(path, 'corrupt', `corrupt or truncated image (${detail})`, { cause: error });
}
