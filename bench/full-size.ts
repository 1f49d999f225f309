// Full-size check: a random-weight CLIP with openai/clip-vit-base-patch32's exact configuration (every
// tensor name and shape, 151M parameters, 605 MB of F32) written in the Hub's layout, then loaded through
// the streaming loader and run on one image and two prompts. Prints timings as JSON.
//   npm run check:full-size [-- --keep DIR]

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ClipModel } from '../src/model/clip';
import { expectedTensors, parseClipConfig, VIT_B_32_CONFIG } from '../src/model/config';
import { preprocessBatch } from '../src/model/preprocessor';
import { encodeSafetensors } from '../src/model/safetensors';
import { makeTinyClip } from '../src/model/tiny';
import { createNodeGpuContext } from '../src/node/gpu';
import { openModel } from '../src/node/model-files';
import { randomWeights } from './clip-models';

const { values } = parseArgs({ options: { keep: { type: 'string' } } });

const started = performance.now();
const seconds = (from: number) => Number(((performance.now() - from) / 1000).toFixed(2));
const dir = values.keep ?? (await mkdtemp(join(tmpdir(), 'octoclip-vit-b32-')));
const config = parseClipConfig(VIT_B_32_CONFIG);
const tensors = [...expectedTensors(config)].map(([name, shape], i) => ({ name, shape, data: randomWeights(shape, name, i + 1) }));
const parameters = tensors.reduce((sum, t) => sum + t.data.length, 0);
// The tokenizer files come from the tiny model: ids stay far below the 49,408-row embedding.
const tiny = makeTinyClip().files;
await writeFile(join(dir, 'model.safetensors'), encodeSafetensors(tensors));
await writeFile(join(dir, 'config.json'), JSON.stringify(VIT_B_32_CONFIG));
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

const finite = [...imageValues, ...logitValues].every(Number.isFinite);
console.log(JSON.stringify({
  check: 'ViT-B/32 full-size forward',
  adapter: ctx.adapterName,
  parameters,
  tensors: tensors.length,
  writeSeconds: written,
  loadSeconds,
  imageForwardSeconds: imageSeconds,
  textForwardAndLogitsSeconds: textSeconds,
  peakGpuBytes: ctx.memory.peak,
  logits: Array.from(logitValues),
  finite,
}, null, 2));
if (!values.keep) await rm(dir, { recursive: true });
process.exit(finite ? 0 : 1);
