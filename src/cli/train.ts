// `octoclip train` and `octoclip eval`.

import { existsSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { adapterMetadata, assertAdapterMatchesBase, decodeAdapterFile, encodeAdapterFile, type AdapterMetadata } from '../adapters/adapter-file';
import { AdapterSet } from '../adapters/block-lora';
import { defaultAdapterSettings, TARGET_MATRICES, trainableParameterCount, type AdapterSettings, type TargetMatrix, type Tower } from '../adapters/settings';
import { toPeft } from '../adapters/peft';
import type { ClipModel } from '../model/clip';
import { decodeTensor, encodeSafetensors, parseSafetensorsHeader } from '../model/safetensors';
import { Rng, RNG_STREAM } from '../training/random';
import { fewShotSplit } from '../training/sampler';
import { defaultTrainSettings, evaluate, Trainer, type Evaluation, type LabelledImages, type TrainerCheckpoint, type TrainSettings } from '../training/trainer';
import { loadLabelledImages, type LabelledImageSet } from './images';
import { emit, loadModel, log, required, UsageError } from './main';
import { join } from 'node:path';
import { mkdir } from 'node:fs/promises';

export const TRAIN_OPTIONS = `octoclip train --model M --images DIR --shots N --out ADAPTER [options]

  --method block-lora|lora   adapter kind (default block-lora)
  --rank R                    rank r (default 2)
  --blocks N                  Block-LoRA blocks n, dividing r (default 2; lora: 1)
  --alpha A                   (default 1); --scaling alpha/sqrt(r)|alpha/r (default alpha/sqrt(r))
  --targets q_proj,k_proj,v_proj   adapted matrices (also out_proj, fc1, fc2)
  --towers text,vision        towers carrying adapters (default both, all layers)
  --dropout P                 adapter input dropout (default 0.25); --no-dropout sets 0
  --iterations N              optimizer steps (default 500 x shots)
  --batch-size B              (default 32); --micro-batch M accumulates B/M passes per step
  --lr LR                     peak learning rate (default 2e-4), cosine to --min-lr (1e-6)
  --warmup N                  linear warm-up steps (default 0)
  --weight-decay WD           AdamW weight decay (default 1e-2)
  --optimizer adamw|sgd       (default adamw)
  --no-augment                no random resized crop / flip (centre crop instead)
  --seed S                    seeds the split, batches, augmentation, dropout and init (default 1)
  --init ADAPTER              start from this adapter's weights instead of the random init
  --eval-every N              held-out evaluation every N steps (default: start and end)
  --checkpoint FILE           save adapter + optimizer + sampler state every --checkpoint-every steps (default 50)
  --resume FILE               continue a run from its checkpoint (same data and settings)
  --log FILE                  write the JSON log there instead of stdout
  --peft DIR                  also export the Hugging Face PEFT LoRA layout to DIR
`;

export const EVAL_OPTIONS = `octoclip eval --model M --adapter FILE --images DIR [--shots N --seed S] [--out FILE]

  With --shots and --seed, only the images that a training run with the same split held out are used.
  --no-adapter gives the zero-shot baseline on the same images.
`;

function numberOption(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isFinite(parsed)) throw new UsageError(`${flag} must be a number, got "${value}"`);
  return parsed;
}

function subset(data: LabelledImageSet, indices: number[]): LabelledImages {
  return { images: indices.map((i) => data.images[i]), labels: indices.map((i) => data.labels[i]) };
}

function summarize(evaluation: Evaluation, classNames: readonly string[]) {
  return {
    accuracy: evaluation.accuracy,
    perClassAccuracy: Object.fromEntries(classNames.map((name, c) => [name, evaluation.perClassAccuracy[c]])),
    confusion: evaluation.confusion,
  };
}

export async function trainCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string' }, images: { type: 'string' }, shots: { type: 'string' }, out: { type: 'string' },
      method: { type: 'string' }, rank: { type: 'string' }, blocks: { type: 'string' }, alpha: { type: 'string' }, scaling: { type: 'string' },
      targets: { type: 'string' }, towers: { type: 'string' }, dropout: { type: 'string' }, 'no-dropout': { type: 'boolean' },
      iterations: { type: 'string' }, 'batch-size': { type: 'string' }, 'micro-batch': { type: 'string' }, lr: { type: 'string' },
      'min-lr': { type: 'string' }, warmup: { type: 'string' }, 'weight-decay': { type: 'string' }, optimizer: { type: 'string' },
      'no-augment': { type: 'boolean' }, seed: { type: 'string' }, init: { type: 'string' }, 'eval-every': { type: 'string' },
      checkpoint: { type: 'string' }, 'checkpoint-every': { type: 'string' }, resume: { type: 'string' }, log: { type: 'string' },
      peft: { type: 'string' }, template: { type: 'string' },
    },
    strict: true,
  });
  const shots = numberOption(required(values.shots, '--shots'), '--shots', 0);
  const out = required(values.out, '--out');
  const model = await loadModel(required(values.model, '--model'));
  const data = await loadLabelledImages(required(values.images, '--images'));
  const seed = numberOption(values.seed, '--seed', 1);

  const method = (values.method ?? 'block-lora') as AdapterSettings['method'];
  if (method !== 'block-lora' && method !== 'lora') throw new UsageError(`--method must be block-lora or lora, got ${method}`);
  const towers = (values.towers ?? 'text,vision').split(',') as Tower[];
  const all = (count: number) => Array.from({ length: count }, (_, i) => i);
  const targets = (values.targets ?? 'q_proj,k_proj,v_proj').split(',').map((t) => (t.endsWith('_proj') || t.startsWith('fc') ? t : `${t}_proj`)) as TargetMatrix[];
  for (const t of targets) if (!TARGET_MATRICES.includes(t)) throw new UsageError(`unknown target ${t}; choose from ${TARGET_MATRICES.join(', ')}`);
  const adapterSettings = defaultAdapterSettings(model.config, {
    method,
    rank: numberOption(values.rank, '--rank', 2),
    blocks: numberOption(values.blocks, '--blocks', method === 'lora' ? 1 : 2),
    alpha: numberOption(values.alpha, '--alpha', 1),
    scalingRule: (values.scaling ?? 'alpha/sqrt(r)') as AdapterSettings['scalingRule'],
    dropout: values['no-dropout'] ? 0 : numberOption(values.dropout, '--dropout', 0.25),
    targets,
    layers: Object.fromEntries(towers.map((tower) => [tower, all(model.config[tower].numLayers)])),
  });
  const settings: TrainSettings = defaultTrainSettings(shots, {
    seed,
    iterations: numberOption(values.iterations, '--iterations', 500 * shots),
    batchSize: numberOption(values['batch-size'], '--batch-size', 32),
    microBatchSize: numberOption(values['micro-batch'], '--micro-batch', numberOption(values['batch-size'], '--batch-size', 32)),
    lr: numberOption(values.lr, '--lr', 2e-4),
    minLr: numberOption(values['min-lr'], '--min-lr', 1e-6),
    warmupSteps: numberOption(values.warmup, '--warmup', 0),
    weightDecay: numberOption(values['weight-decay'], '--weight-decay', 1e-2),
    optimizer: (values.optimizer ?? 'adamw') as TrainSettings['optimizer'],
    augment: !values['no-augment'],
    evalEvery: numberOption(values['eval-every'], '--eval-every', 0),
    template: values.template,
  });
  if (settings.optimizer !== 'adamw' && settings.optimizer !== 'sgd') throw new UsageError('--optimizer must be adamw or sgd');

  const split = fewShotSplit(data.labels, shots, seed, data.classNames);
  split.warnings.forEach((w) => log(`warning: ${w}`));
  const support = subset(data, split.support);
  const heldOut = subset(data, split.heldOut);
  const initial = values.init ? (await readAdapter(values.init, model)).tensors : undefined;
  const initRng = Rng.derive(seed, RNG_STREAM.adapterInit);
  const adapters = AdapterSet.create(model.ctx, model.config, adapterSettings, initial ? { initial } : { random: () => initRng.next() });
  const resume = values.resume ? await readCheckpoint(values.resume) : undefined;
  const trainer = new Trainer(model, adapters, data.classNames, support, settings, resume);
  const trainable = trainableParameterCount(model.config, adapterSettings);
  log(`${method} r=${adapterSettings.rank} n=${adapterSettings.blocks}: ${trainable} trainable parameters; ${support.images.length} training images, ${heldOut.images.length} held out; ${settings.iterations} steps`);

  const evaluations: { step: number; accuracy: number }[] = [];
  const zeroShot = heldOut.images.length ? await evaluate(model, data.classNames, heldOut, null, settings.template) : null;
  if (zeroShot) log(`zero-shot held-out accuracy: ${(100 * zeroShot.accuracy).toFixed(1)}%`);
  const steps = [];
  const checkpointEvery = numberOption(values['checkpoint-every'], '--checkpoint-every', 50);
  while (!trainer.done) {
    const entry = await trainer.trainStep();
    steps.push(entry);
    log(`step ${entry.step}/${settings.iterations}  loss ${entry.loss.toFixed(4)}  batch accuracy ${(100 * entry.accuracy).toFixed(0)}%  lr ${entry.lr.toExponential(2)}  ${entry.milliseconds.toFixed(0)} ms`);
    if (settings.evalEvery && entry.step % settings.evalEvery === 0 && heldOut.images.length) {
      const { accuracy } = await trainer.evaluate(heldOut);
      evaluations.push({ step: entry.step, accuracy });
      log(`  held-out accuracy ${(100 * accuracy).toFixed(1)}%`);
    }
    if (values.checkpoint && (entry.step % checkpointEvery === 0 || trainer.done)) await writeCheckpoint(values.checkpoint, await trainer.checkpoint());
  }
  const final = heldOut.images.length ? await trainer.evaluate(heldOut) : null;
  const trainAccuracy = (await trainer.evaluate(support)).accuracy;
  if (final) log(`held-out accuracy: ${(100 * final.accuracy).toFixed(1)}% (zero-shot ${(100 * zeroShot!.accuracy).toFixed(1)}%); support set ${(100 * trainAccuracy).toFixed(1)}%`);

  const metrics = {
    zeroShotAccuracy: zeroShot?.accuracy ?? null,
    heldOutAccuracy: final?.accuracy ?? null,
    supportAccuracy: trainAccuracy,
    finalLoss: steps.at(-1)?.loss ?? null,
    heldOutImages: heldOut.images.length,
  };
  const meta: AdapterMetadata = adapterMetadata(adapterSettings, settings, model, data.classNames, shots, metrics);
  const checkpoint = await trainer.checkpoint();
  const tensors = new Map(adapters.parameters().map(({ name, tensor }) => [name, { shape: [...tensor.shape], data: checkpoint.tensors.get(name)! }]));
  await writeFile(out, encodeAdapterFile(meta, tensors));
  log(`wrote adapter ${out}`);
  if (values.peft) {
    await mkdir(values.peft, { recursive: true });
    for (const [file, content] of Object.entries(toPeft(meta, tensors))) await writeFile(join(values.peft, file), content);
    log(`wrote PEFT LoRA export to ${values.peft}`);
  }
  trainer.destroy();
  await emit({
    model: model.id,
    adapter: model.ctx.adapterName,
    method,
    trainableParameters: trainable,
    settings: { ...settings, adapter: adapterSettings, shots },
    steps,
    evaluations,
    zeroShot: zeroShot && summarize(zeroShot, data.classNames),
    final: final && summarize(final, data.classNames),
    skipped: data.skipped,
  }, values.log);
}

async function readAdapter(path: string, model: ClipModel) {
  const { meta, tensors } = decodeAdapterFile(new Uint8Array(await readFile(path)), path);
  assertAdapterMatchesBase(meta, model.id, model.weights.fingerprint);
  return { meta, tensors: new Map([...tensors].map(([name, t]) => [name, t.data])) };
}

async function writeCheckpoint(path: string, checkpoint: TrainerCheckpoint): Promise<void> {
  const bytes = encodeSafetensors(
    [...checkpoint.tensors].map(([name, data]) => ({ name, shape: [data.length], data })),
    { format: 'octoclip-checkpoint', step: String(checkpoint.step), sampler: JSON.stringify(checkpoint.sampler), rng: JSON.stringify(checkpoint.rng) },
  );
  await writeFile(`${path}.tmp`, bytes);
  await rename(`${path}.tmp`, path); // never leave a half-written checkpoint
}

async function readCheckpoint(path: string): Promise<TrainerCheckpoint> {
  if (!existsSync(path)) throw new UsageError(`no checkpoint at ${path}`);
  const bytes = new Uint8Array(await readFile(path));
  const header = parseSafetensorsHeader(bytes, bytes.length, path);
  if (header.metadata.format !== 'octoclip-checkpoint') throw new UsageError(`${path} is not an octoclip checkpoint`);
  const tensors = new Map<string, Float32Array>();
  for (const [name, entry] of header.tensors) tensors.set(name, decodeTensor(entry, bytes.subarray(entry.byteOffset, entry.byteOffset + entry.byteLength), path));
  return { step: Number(header.metadata.step), tensors, sampler: JSON.parse(header.metadata.sampler), rng: JSON.parse(header.metadata.rng) };
}

export async function evalCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { model: { type: 'string' }, adapter: { type: 'string' }, images: { type: 'string' }, shots: { type: 'string' }, seed: { type: 'string' }, out: { type: 'string' }, 'no-adapter': { type: 'boolean' } },
    strict: true,
  });
  const model = await loadModel(required(values.model, '--model'));
  const { meta, tensors } = await readAdapter(required(values.adapter, '--adapter'), model);
  const data = await loadLabelledImages(required(values.images, '--images'));
  const indices = values.shots ? fewShotSplit(data.labels, Number(values.shots), numberOption(values.seed, '--seed', 1)).heldOut : data.labels.map((_, i) => i);
  const adapters = values['no-adapter'] ? null : AdapterSet.create(model.ctx, model.config, meta, { initial: tensors });
  const evaluation = await evaluate(model, data.classNames, subset(data, indices), adapters, meta.promptTemplate);
  await emit({ model: model.id, adapter: values['no-adapter'] ? null : values.adapter, device: model.ctx.adapterName, images: indices.length, classes: data.classNames, ...summarize(evaluation, data.classNames), skipped: data.skipped }, values.out);
}
