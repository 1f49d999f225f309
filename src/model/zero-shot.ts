// Zero-shot classification: class names become prompts ("a photo of a {}."), the text tower turns them
// into class embeddings, and each image goes to the class of highest cosine similarity.

import type { ModelAdapters } from './adapter';
import { DEFAULT_TEMPLATE, promptsFor, type ClassPrompts } from '../common/prompts';
import type { Tensor } from '../gpu/tensor';
import type { ClipModel } from './clip';
import type { RgbaImage } from './preprocessor';
import { preprocessBatch } from './preprocessor';

/**
 * L2-normalised class embeddings [classes, projection_dim]. With several templates (a prompt ensemble),
 * each class's normalised features are averaged and normalised again, as in CLIP's ImageNet recipe.
 * A class in `classPrompts` is encoded with its own prompt instead of the templates'.
 */
export async function classEmbeddings(
  model: ClipModel,
  classNames: readonly string[],
  templates: readonly string[] = [DEFAULT_TEMPLATE],
  adapters: ModelAdapters | null = null,
  classPrompts: ClassPrompts = {},
): Promise<Float32Array> {
  const dim = model.config.projectionDim;
  const sum = new Float32Array(classNames.length * dim);
  for (const template of templates) {
    const features = model.textFeatures(model.tokenize(promptsFor(classNames, template, classPrompts)), adapters);
    const normalized = model.normalize(features);
    const values = await model.ctx.read(normalized);
    values.forEach((v, i) => (sum[i] += v));
    features.destroy();
    normalized.destroy();
  }
  return normalizeRows(sum, dim);
}

export function normalizeRows(values: Float32Array, dim: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let r = 0; r < values.length / dim; r++) {
    let norm = 0;
    for (let c = 0; c < dim; c++) norm += values[r * dim + c] ** 2;
    const inverse = 1 / Math.max(Math.sqrt(norm), 1e-12);
    for (let c = 0; c < dim; c++) out[r * dim + c] = values[r * dim + c] * inverse;
  }
  return out;
}

export interface Prediction {
  label: number;
  probabilities: Float32Array;
}

/** Class probabilities for each image against normalised class embeddings, batch by batch. */
export async function classify(
  model: ClipModel,
  images: readonly RgbaImage[],
  classEmbedding: Float32Array,
  options: { adapters?: ModelAdapters | null; batchSize?: number } = {},
): Promise<Prediction[]> {
  const { ctx } = model;
  const classes = classEmbedding.length / model.config.projectionDim;
  const text = ctx.tensor([classes, model.config.projectionDim], 'class_embeddings', classEmbedding);
  const batchSize = options.batchSize ?? 16;
  const predictions: Prediction[] = [];
  try {
    for (let start = 0; start < images.length; start += batchSize) {
      const batch = images.slice(start, start + batchSize);
      const pixels = preprocessBatch(ctx, batch, model.preprocessor);
      const features = model.imageFeatures(pixels, batch.length, options.adapters ?? null);
      const normalized = model.normalize(features);
      const logits: Tensor = model.logits(normalized, text);
      const values = await ctx.read(logits);
      [pixels, features, normalized, logits].forEach((t) => t.destroy());
      for (let i = 0; i < batch.length; i++)
        predictions.push(softmaxRow(values.subarray(i * classes, (i + 1) * classes)));
    }
  } finally {
    text.destroy();
  }
  return predictions;
}

function softmaxRow(logits: Float32Array): Prediction {
  const max = Math.max(...logits);
  const exps = Array.from(logits, (v) => Math.exp(v - max));
  const total = exps.reduce((a, b) => a + b, 0);
  const probabilities = Float32Array.from(exps, (v) => v / total);
  let label = 0;
  for (let c = 1; c < probabilities.length; c++) if (probabilities[c] > probabilities[label]) label = c;
  return { label, probabilities };
}
