// Full-size check: a random-weight CLIP with a Hub checkpoint's exact configuration (every tensor name and
// shape; ViT-B/32 by default: 151M parameters, 605 MB of F32) written in the Hub's layout, then loaded through
// the streaming loader and run on one image and two prompts. Prints timings and peak bytes as JSON.
//   npm run check:full-size [-- --model openai/clip-vit-large-patch14 | --model all] [--keep DIR]

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ClipModel } from '../src/model/clip';
import { expectedTensors, type ClipConfig } from '../src/model/config';
import { KNOWN_CLIP_MODELS, knownClipConfig, knownClipModel, type KnownClipModel } from '../src/training/known-models';
import { preprocessBatch } from '../src/model/preprocessor';
import { encodeSafetensors } from '../src/model/safetensors';
import { makeTinyClip } from '../src/model/tiny';
import { createNodeGpuContext } from '../src/node/gpu';
import { openModel } from '../src/node/model-files';
import { randomWeights } from './clip-models';

const { values } = parseArgs({
  options: { model: { type: 'string', default: KNOWN_CLIP_MODELS[0].repo }, keep: { type: 'string' } },
});
const models = values.model === 'all' ? KNOWN_CLIP_MODELS : [knownClipModel(values.model!)];
if (models.some((model) => !model)) {
  console.error(`--model takes one of ${KNOWN_CLIP_MODELS.map((m) => m.repo).join(', ')}, or all`);
  process.exit(2);
}

const seconds = (from: number) => Number(((performance.now() - from) / 1000).toFixed(2));

/** Random weights with the config's every tensor, written as one F32 model.safetensors (and let go before loading). */
async function writeRandomCheckpoint(
  path: string,
  config: ClipConfig,
): Promise<{ parameters: number; fileBytes: number }> {
  const tensors = [...expectedTensors(config)].map(([name, shape], i) => ({
    name,
    shape,
    data: randomWeights(shape, name, i + 1),
  }));
  const file = encodeSafetensors(tensors);
  await writeFile(path, file);
  return { parameters: tensors.reduce((sum, t) => sum + t.data.length, 0), fileBytes: file.length };
}

async function check(known: KnownClipModel) {
  const started = performance.now();
  const dir = values.keep
    ? join(values.keep, known.repo.replace('/', '--'))
    : await mkdtemp(join(tmpdir(), 'octoclip-full-size-'));
  await mkdir(dir, { recursive: true });
  const config = knownClipConfig(known);
  const { parameters, fileBytes } = await writeRandomCheckpoint(join(dir, 'model.safetensors'), config);
  await writeFile(join(dir, 'config.json'), JSON.stringify(known.config));
  const size = config.vision.imageSize;
  await writeFile(
    join(dir, 'preprocessor_config.json'),
    JSON.stringify({
      crop_size: { height: size, width: size },
      size: { shortest_edge: size },
      do_rescale: true,
      resample: 3,
    }),
  );
  // The tokenizer files come from the tiny model: ids stay far below the 49,408-row embedding.
  const tiny = makeTinyClip().files;
  for (const file of ['vocab.json', 'merges.txt']) await writeFile(join(dir, file), tiny[file]);
  const written = seconds(started);

  const ctx = await createNodeGpuContext();
  const loadStart = performance.now();
  const model = await ClipModel.load(ctx, await openModel(dir));
  await ctx.sync();
  const loadSeconds = seconds(loadStart);

  const width = 320;
  const height = 240;
  const rgba = new Uint8Array(width * height * 4).map((_, i) => (i % 4 === 3 ? 255 : (i * 37) % 251));
  const imageStart = performance.now();
  const pixels = preprocessBatch(ctx, [{ rgba, width, height }], model.preprocessor);
  const image = model.imageFeatures(pixels, 1);
  const imageValues = await ctx.read(image);
  const imageSeconds = seconds(imageStart);

  const textStart = performance.now();
  const text = model.textFeatures(model.tokenize(['a photo of a cat.', 'a photo of a dog.']));
  const logits = model.logits(model.normalize(image), model.normalize(text));
  const logitValues = await ctx.read(logits);
  const textSeconds = seconds(textStart);

  const shapes = { pixels: pixels.shape, imageFeatures: image.shape, textFeatures: text.shape, logits: logits.shape };
  const shapesRight =
    image.shape.join() === `1,${config.projectionDim}` &&
    text.shape.join() === `2,${config.projectionDim}` &&
    logits.shape.join() === '1,2' &&
    pixels.shape.join() === `1,3,${size},${size}`;
  const finite = [...imageValues, ...logitValues].every(Number.isFinite);
  const result = {
    check: `${known.repo} full-size forward`,
    adapter: ctx.adapterName,
    hiddenAct: { text: config.text.hiddenAct, vision: config.vision.hiddenAct },
    parameters,
    tensors: expectedTensors(config).size,
    fileBytes,
    writeSeconds: written,
    loadSeconds,
    imageForwardSeconds: imageSeconds,
    textForwardAndLogitsSeconds: textSeconds,
    peakGpuBytes: ctx.memory.peak,
    peakProcessBytes: process.resourceUsage().maxRSS * 1024,
    shapes,
    logits: Array.from(logitValues),
    passed: finite && shapesRight,
  };
  model.destroy();
  ctx.destroy();
  if (!values.keep) await rm(dir, { recursive: true });
  return result;
}

const results = [];
for (const known of models) {
  const result = await check(known!);
  console.log(JSON.stringify(result, null, 2));
  results.push(result);
}
process.exit(results.every((r) => r.passed) ? 0 : 1);
