// The `octoclip` command line: the same engine as the studio, on Node's WebGPU (Dawn).
// Results go to stdout (or --out FILE) as JSON; progress and problems go to stderr.

import { writeFile } from 'node:fs/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ClipModel } from '../model/clip';
import { makeTinyClip } from '../model/tiny';
import { classEmbeddings, classify, DEFAULT_TEMPLATE } from '../model/zero-shot';
import { preprocessBatch } from '../model/preprocessor';
import { writeModelDirectory } from '../node/files';
import { createNodeGpuContext } from '../node/gpu';
import { loadLabelledImages } from './images';
import { evalCommand, trainCommand, TRAIN_OPTIONS, EVAL_OPTIONS } from './train';
import { openModel } from '../node/model-files';

export const USAGE = `octoclip: fine-tune CLIP with Block-LoRA on WebGPU

  octoclip make-tiny-model DIR [--seed N]
      write a small random-weight CLIP in the Hugging Face layout (for tests and trials)
  octoclip embed --model M --images DIR [--texts TEXT...] [--out FILE]
      image features (and text features) as JSON
  octoclip zero-shot --model M --images DIR [--template T] [--out FILE]
      classify a folder with one sub-folder per class; accuracy, per-class accuracy
  octoclip train --model M --images DIR --shots N --out ADAPTER [options]
      few-shot fine-tuning with Block-LoRA or LoRA; JSON log per step (run octoclip train --help)
  octoclip eval --model M --adapter FILE --images DIR [--shots N --seed S] [--out FILE]
      accuracy, per-class accuracy and confusion matrix with an adapter

  M is a local directory (config.json, model.safetensors or its shards, vocab.json, merges.txt) or a Hub
  repo id such as openai/clip-vit-base-patch32, or org/name@revision (a branch, tag or commit), read from
  and downloaded into the Hugging Face cache (HF_HUB_CACHE, HF_HOME, ~/.cache/huggingface/hub); HF_TOKEN
  for gated or private repos.
`;

export function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

export async function emit(result: unknown, out: string | undefined): Promise<void> {
  const text = `${JSON.stringify(result, null, 2)}\n`;
  if (out) {
    await writeFile(out, text);
    log(`wrote ${out}`);
  } else process.stdout.write(text);
}

function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T) {
  return parseArgs({ args, options: { ...options, help: { type: 'boolean' } }, allowPositionals: true, strict: true });
}

export async function loadModel(model: string): Promise<ClipModel> {
  const ctx = await createNodeGpuContext();
  log(`WebGPU adapter: ${ctx.adapterName}`);
  const files = await openModel(model, log);
  let lastPercent = -1;
  const clip = await ClipModel.load(ctx, files, (loaded, total) => {
    const percent = Math.floor((100 * loaded) / total);
    if (percent >= lastPercent + 10) log(`loading weights: ${(lastPercent = percent)}%`);
  });
  ctx.onDeviceLost((info) => log(`GPU device lost: ${info.message}`));
  return clip;
}

async function makeTinyModelCommand(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, { seed: { type: 'string' } });
  const dir = positionals[0];
  if (!dir) throw new UsageError('make-tiny-model needs a target directory');
  const { files } = makeTinyClip({ seed: values.seed ? Number(values.seed) : undefined });
  await writeModelDirectory(dir, files);
  log(`wrote a tiny CLIP to ${dir}`);
}

async function embedCommand(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, { model: { type: 'string' }, images: { type: 'string' }, texts: { type: 'string', multiple: true }, out: { type: 'string' } });
  // `--texts a b c`: the words after the first text are positionals.
  const texts = values.texts ? [...values.texts, ...positionals] : [];
  const model = await loadModel(required(values.model, '--model'));
  const result: { images?: { path: string; features: number[] }[]; texts?: { text: string; features: number[] }[] } = {};
  if (values.images) {
    const data = await loadLabelledImages(values.images, { flat: true });
    result.images = [];
    for (let start = 0; start < data.images.length; start += 16) {
      const batch = data.images.slice(start, start + 16);
      const pixels = preprocessBatch(model.ctx, batch, model.preprocessor);
      const features = model.imageFeatures(pixels, batch.length);
      const values = await model.ctx.read(features);
      pixels.destroy();
      features.destroy();
      batch.forEach((_, i) => result.images!.push({ path: data.paths[start + i], features: Array.from(values.subarray(i * model.config.projectionDim, (i + 1) * model.config.projectionDim)) }));
    }
  }
  if (texts.length) {
    const features = model.textFeatures(model.tokenize(texts));
    const data = await model.ctx.read(features);
    features.destroy();
    const dim = model.config.projectionDim;
    result.texts = texts.map((text, i) => ({ text, features: Array.from(data.subarray(i * dim, (i + 1) * dim)) }));
  }
  if (!result.images && !result.texts) throw new UsageError('embed needs --images DIR and/or --texts TEXT...');
  await emit(result, values.out);
}

async function zeroShotCommand(args: string[]): Promise<void> {
  const { values } = parse(args, { model: { type: 'string' }, images: { type: 'string' }, template: { type: 'string' }, out: { type: 'string' } });
  const model = await loadModel(required(values.model, '--model'));
  const data = await loadLabelledImages(required(values.images, '--images'));
  const template = values.template ?? DEFAULT_TEMPLATE;
  const embeddings = await classEmbeddings(model, data.classNames, [template]);
  log(`classifying ${data.images.length} images into ${data.classNames.length} classes`);
  const predictions = await classify(model, data.images, embeddings);
  const perClass = data.classNames.map(() => ({ correct: 0, total: 0 }));
  predictions.forEach((p, i) => {
    perClass[data.labels[i]].total++;
    if (p.label === data.labels[i]) perClass[data.labels[i]].correct++;
  });
  const correct = perClass.reduce((sum, c) => sum + c.correct, 0);
  await emit({
    model: model.id,
    adapter: model.ctx.adapterName,
    template,
    classes: data.classNames,
    images: data.images.length,
    skipped: data.skipped,
    accuracy: correct / data.images.length,
    perClassAccuracy: Object.fromEntries(data.classNames.map((name, c) => [name, perClass[c].total ? perClass[c].correct / perClass[c].total : null])),
    predictions: predictions.map((p, i) => ({ path: data.paths[i], label: data.classNames[data.labels[i]], predicted: data.classNames[p.label], probability: p.probabilities[p.label] })),
  }, values.out);
}

export class UsageError extends Error {
  override name = 'UsageError';
}

export function required(value: string | undefined, flag: string): string {
  if (!value) throw new UsageError(`missing ${flag}`);
  return value;
}

const COMMANDS: Record<string, { run: (args: string[]) => Promise<void>; help?: string }> = {
  'make-tiny-model': { run: makeTinyModelCommand },
  embed: { run: embedCommand },
  'zero-shot': { run: zeroShotCommand },
  train: { run: trainCommand, help: TRAIN_OPTIONS },
  eval: { run: evalCommand, help: EVAL_OPTIONS },
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  const command = name ? COMMANDS[name] : undefined;
  if (!command || args.includes('--help')) {
    process.stdout.write(command?.help ?? USAGE);
    return command || name === '--help' || name === undefined ? 0 : 2;
  }
  try {
    await command.run(args);
    return 0;
  } catch (error) {
    const usage = error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    log(`octoclip ${name}: ${(error as Error).message}`);
    if (usage) log(`run "octoclip ${name} --help" for usage`);
    return usage ? 2 : 1;
  }
}
