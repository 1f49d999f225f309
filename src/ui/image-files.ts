// Checking the images a user adds, and making their thumbnails. The browser decodes them off the main
// thread (createImageBitmap) and encodes thumbnails on an OffscreenCanvas; a file it cannot decode is
// rejected with the reason, and the others go on.

import type { ImageRecord } from '../storage/db';

const THUMBNAIL_SIZE = 128;
const IMAGE_EXTENSIONS = /\.(png|jpe?g|gif|webp|bmp|avif|ico)$/i;

/** What the dataset stores of an image, before it is given an id and a class. */
export type PreparedImage = Omit<ImageRecord, 'id' | 'classId' | 'addedAt'>;

export interface RejectedFile {
  name: string;
  reason: string;
}

export class ImageRejected extends Error {
  override name = 'ImageRejected';
}

async function prepareImage(file: File): Promise<PreparedImage> {
  const looksLikeImage = file.type.startsWith('image/') || (file.type === '' && IMAGE_EXTENSIONS.test(file.name));
  if (!looksLikeImage) throw new ImageRejected(`not an image (${file.type || 'unknown type'})`);
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    throw new ImageRejected('could not be decoded: the file is damaged or in a format this browser cannot read');
  }
  const { width, height } = bitmap;
  bitmap.close();
  return { name: file.name, blob: file, thumbnail: await thumbnail(file, width, height), width, height };
}

/** Images decoded at once: the browser decodes off the main thread, so a few overlap well. */
const CONCURRENT_IMAGES = 4;
/** Progress is reported at most this often: a re-render per image would cost more than the image. */
const PROGRESS_INTERVAL_MS = 100;

/** Prepares files (a few at a time, results in file order), collecting the ones that failed with their reasons. */
export async function prepareImages(
  files: readonly File[],
  onProgress?: (done: number) => void,
): Promise<{ prepared: PreparedImage[]; rejected: RejectedFile[] }> {
  const results: (PreparedImage | RejectedFile)[] = new Array(files.length);
  let next = 0;
  let done = 0;
  let reportedAt = 0;
  const worker = async () => {
    while (next < files.length) {
      const index = next++;
      const file = files[index];
      try {
        results[index] = await prepareImage(file);
      } catch (error) {
        if (!(error instanceof ImageRejected)) throw error;
        results[index] = { name: file.name, reason: error.message };
      }
      done++;
      if (performance.now() - reportedAt >= PROGRESS_INTERVAL_MS || done === files.length) {
        reportedAt = performance.now();
        onProgress?.(done);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENT_IMAGES, files.length) }, worker));
  const prepared = results.filter((result): result is PreparedImage => 'blob' in result);
  const rejected = results.filter((result): result is RejectedFile => !('blob' in result));
  return { prepared, rejected };
}

/** A JPEG whose longer side is at most THUMBNAIL_SIZE (small images keep their size). */
async function thumbnail(file: Blob, width: number, height: number): Promise<Blob> {
  const scale = Math.min(1, THUMBNAIL_SIZE / Math.max(width, height));
  const w = Math.max(1, Math.round(width * scale));
  const h = Math.max(1, Math.round(height * scale));
  const bitmap = await createImageBitmap(file, { resizeWidth: w, resizeHeight: h, resizeQuality: 'medium' });
  const canvas = new OffscreenCanvas(w, h);
  const context = canvas.getContext('2d');
  if (!context) throw new Error('This browser gives no 2D canvas for thumbnails.');
  context.fillStyle = '#fff'; // transparent pixels on white, as JPEG has no alpha
  context.fillRect(0, 0, w, h);
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  return canvas.convertToBlob({ type: 'image/jpeg', quality: 0.85 });
}
