// The commands that run the model on images: embed, zero-shot, eval (labelled folders) and predict (any images).

import { existsSync } from 'node:fs';
import { AdapterSet } from '../adapters/block-lora';
import type { ClipModel } from '../model/clip';
import type { RgbaImage } from '../model/preprocessor';
import { preprocessBatch } from '../model/preprocessor';
import { DEFAULT_TEMPLATE } from '../common/prompts';
import { parsePrecision } from '../common/recipe';
import { classEmbeddings, classify, type Prediction } from '../model/zero-shot';
import { decodeImageFile } from '../node/images';
import { loadLabelledImages, type LabelledImageSet } from './images';
import { emit, loadModel, readAdapterFor, resultHeader } from './io';
import { defineCommand, MODEL_OPTION, OUT_OPTION, PRECISION_OPTION, type OptionSpec } from './options';
import { Progress } from './progress';
import { checkSplitOptions, SPLIT_OPTIONS, splitOf } from './split-options';

/** Images per classify() call: a progress line can follow each chunk. */
const CHUNK = 64;

const MODEL = MODEL_OPTION;
const OUT = OUT_OPTION;
const TEMPLATE = {
  kind: 'string',
  value: 'T',
  help: `prompt template, {} is the class name (default ${DEFAULT_TEMPLATE}, or the adapter's)`,
} as const satisfies OptionSpec;

/** Class probabilities for every image, CHUNK images at a time, with progress lines. */
async function classifyAll(
  model: ClipModel,
  images: readonly RgbaImage[],
  embeddings: Float32Array,
  adapters: AdapterSet | null,
): Promise<Prediction[]> {
  const progress = new Progress('classifying', images.length);
  const predictions: Prediction[] = [];
  for (let start = 0; start < images.length; start += CHUNK) {
    predictions.push(...(await classify(model, images.slice(start, start + CHUNK), embeddings, { adapters })));
    progress.update(predictions.length);
  }
  return predictions;
}

/** Accuracy, per-class accuracy (by name; null for a class without images) and the confusion matrix. */
function scores(predictions: readonly Prediction[], labels: readonly number[], classNames: readonly string[]) {
  const confusion = classNames.map(() => new Array<number>(classNames.length).fill(0));
  labels.forEach((label, i) => confusion[label][predictions[i].label]++);
  const correct = confusion.reduce((sum, row, c) => sum + row[c], 0);
  return {
    accuracy: labels.length ? correct / labels.length : null,
    perClassAccuracy: Object.fromEntries(
      classNames.map((name, c) => {
        const total = confusion[c].reduce((a, b) => a + b, 0);
        return [name, total ? confusion[c][c] / total : null];
      }),
    ),
    confusion,
  };
}

function labelledPredictions(data: LabelledImageSet, indices: readonly number[], predictions: readonly Prediction[]) {
  return indices.map((index, i) => ({
    path: data.paths[index],
    label: data.classNames[data.labels[index]],
    predicted: data.classNames[predictions[i].label],
    probability: predictions[i].probabilities[predictions[i].label],
  }));
}

export const EMBED = defineCommand({
  name: 'embed',
  summary: 'image features (and text features) as JSON',
  options: {
    model: MODEL,
    precision: PRECISION_OPTION,
    images: { kind: 'string', value: 'DIR', exists: 'dir', help: 'a folder of images (or of class folders)' },
    texts: { kind: 'list', value: 'TEXT', help: 'texts to embed' },
    out: OUT,
  },
  check: (values) =>
    values.images || values.texts ? null : 'embed needs --images DIR and/or --texts TEXT (once per text)',
  async run(values) {
    const data = values.images ? await loadLabelledImages(values.images, { flat: true }) : null;
    const model = await loadModel(values.model, parsePrecision(values.precision));
    const dim = model.config.projectionDim;
    const rows = (features: Float32Array, count: number) =>
      Array.from({ length: count }, (_, i) => Array.from(features.subarray(i * dim, (i + 1) * dim)));
    const result: {
      model: string;
      device: string;
      images?: { path: string; features: number[] }[];
      texts?: { text: string; features: number[] }[];
      skipped?: unknown;
    } = resultHeader(model, null);
    if (data) {
      result.images = [];
      const progress = new Progress('embedding images', data.images.length);
      for (let start = 0; start < data.images.length; start += 16) {
        const batch = data.images.slice(start, start + 16);
        const pixels = preprocessBatch(model.ctx, batch, model.preprocessor);
        const features = model.imageFeatures(pixels, batch.length);
        const values = await model.ctx.read(features);
        pixels.destroy();
        features.destroy();
        rows(values, batch.length).forEach((row, i) =>
          result.images!.push({ path: data.paths[start + i], features: row }),
        );
        progress.update(result.images.length);
      }
      result.skipped = data.skipped;
    }
    if (values.texts) {
      const features = model.textFeatures(model.tokenize(values.texts));
      const data = await model.ctx.read(features);
      features.destroy();
      result.texts = rows(data, values.texts.length).map((row, i) => ({ text: values.texts![i], features: row }));
    }
    await emit(result, values.out);
  },
});

export const ZERO_SHOT = defineCommand({
  name: 'zero-shot',
  summary: 'classify a folder with one sub-folder per class; accuracy, per-class accuracy',
  options: {
    model: MODEL,
    precision: PRECISION_OPTION,
    images: { kind: 'string', value: 'DIR', required: true, exists: 'dir', help: 'one sub-folder of images per class' },
    template: TEMPLATE,
    out: OUT,
  },
  async run(values) {
    const data = await loadLabelledImages(values.images);
    const model = await loadModel(values.model, parsePrecision(values.precision));
    const template = values.template ?? DEFAULT_TEMPLATE;
    const embeddings = await classEmbeddings(model, data.classNames, [template]);
    const predictions = await classifyAll(model, data.images, embeddings, null);
    const { confusion: _, ...summary } = scores(predictions, data.labels, data.classNames);
    await emit(
      {
        ...resultHeader(model, null),
        template,
        classes: data.classNames,
        images: data.images.length,
        ...summary,
        predictions: labelledPredictions(
          data,
          data.images.map((_, i) => i),
          predictions,
        ),
        skipped: data.skipped,
      },
      values.out,
    );
  },
});

export const EVAL = defineCommand({
  name: 'eval',
  summary: 'accuracy, per-class accuracy and confusion matrix with an adapter',
  options: {
    model: MODEL,
    precision: PRECISION_OPTION,
    adapter: {
      kind: 'string',
      value: 'FILE',
      required: true,
      exists: 'file',
      help: 'the adapter file (its classes, prompt and base model)',
    },
    images: { kind: 'string', value: 'DIR', required: true, exists: 'dir', help: 'one sub-folder of images per class' },
    ...SPLIT_OPTIONS,
    'no-adapter': { kind: 'boolean', help: 'the zero-shot baseline on the same images and prompt' },
    out: OUT,
  },
  check: (values) => (values.shots !== undefined && values.holdout !== undefined ? checkSplitOptions(values) : null),
  notes:
    'With --shots or --holdout, and --seed, only the images that a training run with the same split held out are used.',
  async run(values) {
    const data = await loadLabelledImages(values.images);
    const model = await loadModel(values.model, parsePrecision(values.precision));
    const { meta, tensors } = await readAdapterFor(values.adapter, model);
    const split = values.shots !== undefined || values.holdout !== undefined;
    const indices = split ? splitOf(values, data).split.heldOut : data.labels.map((_, i) => i);
    const adapters = values['no-adapter']
      ? null
      : AdapterSet.create(model.ctx, model.config, meta, { initial: tensors });
    const embeddings = await classEmbeddings(
      model,
      data.classNames,
      [meta.promptTemplate],
      adapters,
      meta.classPrompts,
    );
    const predictions = await classifyAll(
      model,
      indices.map((i) => data.images[i]),
      embeddings,
      adapters,
    );
    await emit(
      {
        ...resultHeader(model, values['no-adapter'] ? null : values.adapter),
        template: meta.promptTemplate,
        classes: data.classNames,
        images: indices.length,
        ...scores(
          predictions,
          indices.map((i) => data.labels[i]),
          data.classNames,
        ),
        predictions: labelledPredictions(data, indices, predictions),
        skipped: data.skipped,
      },
      values.out,
    );
  },
});

export const PREDICT = defineCommand({
  name: 'predict',
  summary: 'classify unlabelled images: the top classes with their probabilities',
  positionals: { name: 'FILE...', min: 0 },
  options: {
    model: MODEL,
    precision: PRECISION_OPTION,
    adapter: {
      kind: 'string',
      value: 'FILE',
      exists: 'file',
      help: 'the adapter file: its classes and prompt are used',
    },
    'no-adapter': { kind: 'boolean', help: 'zero-shot, with --classes' },
    classes: { kind: 'list', value: 'NAME', help: 'class names for --no-adapter (underscores read as spaces)' },
    template: TEMPLATE,
    images: {
      kind: 'string',
      value: 'DIR',
      exists: 'dir',
      help: 'a folder of images (sub-folders included); or name image files',
    },
    top: { kind: 'integer', value: 'K', min: 1, default: 5, help: 'classes per image' },
    format: {
      kind: 'string',
      value: 'F',
      choices: ['json', 'csv'],
      default: 'json',
      help: 'json or csv (path,rank,class,probability)',
    },
    out: OUT,
  },
  check(values, files) {
    if (!values.adapter === !values['no-adapter'])
      return 'give --adapter FILE, or --no-adapter with --classes for zero-shot';
    if (values['no-adapter'] && (values.classes?.length ?? 0) < 2)
      return '--no-adapter needs two or more class names: --classes NAME once per class';
    if (values.adapter && values.classes)
      return "--classes is for --no-adapter: an adapter's classes are the ones it was trained on";
    if (!values.images && !files.length) return 'predict needs --images DIR or image files';
    // `--classes A B photo.png` as other CLIs would read it: B is an argument, not a class name.
    const missing = values.classes && files.find((file) => !existsSync(file));
    if (missing)
      return `"${missing}" is not a file; to name it as a class, give --classes once per class (--classes A --classes B)`;
    return null;
  },
  notes:
    'A named file that is not an image stops the command (nothing is written); in --images DIR it is reported and skipped.',
  async run(values, files) {
    const folder = values.images ? await loadLabelledImages(values.images, { flat: true }) : null;
    const named = await Promise.all(files.map((file) => decodeImageFile(file)));
    const images = [...(folder?.images ?? []), ...named];
    const paths = [...(folder?.paths ?? []), ...files];
    if (!images.length)
      throw new Error(`no images to classify in ${values.images}: it holds no file that decodes as an image`);
    const model = await loadModel(values.model, parsePrecision(values.precision));
    const adapter = values.adapter ? await readAdapterFor(values.adapter, model) : null;
    const adapters = adapter && AdapterSet.create(model.ctx, model.config, adapter.meta, { initial: adapter.tensors });
    const classNames = adapter?.meta.classNames ?? values.classes!;
    const template = values.template ?? adapter?.meta.promptTemplate ?? DEFAULT_TEMPLATE;
    // The adapter's own class prompts hold unless another template is asked for.
    const classPrompts = values.template === undefined ? adapter?.meta.classPrompts : undefined;
    const embeddings = await classEmbeddings(model, classNames, [template], adapters, classPrompts);
    const predictions = (await classifyAll(model, images, embeddings, adapters)).map((p, i) => {
      const top = [...p.probabilities.keys()]
        .sort((x, y) => p.probabilities[y] - p.probabilities[x])
        .slice(0, values.top);
      return {
        path: paths[i],
        predicted: classNames[top[0]],
        probability: p.probabilities[top[0]],
        top: top.map((c) => ({ class: classNames[c], probability: p.probabilities[c] })),
      };
    });
    if (values.format === 'csv') {
      const rows = predictions.flatMap((p) =>
        p.top.map((t, rank) => [p.path, rank + 1, t.class, t.probability].map(csvField).join(',')),
      );
      await emit(`path,rank,class,probability\n${rows.map((row) => `${row}\n`).join('')}`, values.out);
      return;
    }
    await emit(
      {
        ...resultHeader(model, values.adapter ?? null),
        template,
        classes: classNames,
        images: images.length,
        predictions,
        skipped: folder?.skipped ?? [],
      },
      values.out,
    );
  },
});

function csvField(value: string | number): string {
  const text = String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
