// The octoclip command line as a user runs it (bin/octoclip.js in a child process): make a tiny
// model, classify a folder zero-shot, train an adapter, evaluate it, and the errors for bad input.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeAdapterFile } from '../../src/adapters/adapter-file';
import { EXPORT, IMPORT_PEFT, INFO } from '../../src/cli/adapter-commands';
import { EMBED, EVAL, PREDICT, ZERO_SHOT } from '../../src/cli/inference';
import { helpText } from '../../src/cli/options';

const BIN = resolve('bin/octoclip.js');
const work = mkdtempSync(join(tmpdir(), 'octoclip-cli-'));
const model = join(work, 'tiny');
const images = join(work, 'images');

function octoclip(...args: string[]) {
  const result = spawnSync(process.execPath, [BIN, ...args], { cwd: work, encoding: 'utf8', timeout: 300_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Three classes of small synthetic images in different formats and sizes, plus two bad files. */
async function writeDataset() {
  const colours: Record<string, [number, number, number]> = {
    red: [220, 30, 30],
    green: [30, 200, 40],
    blue: [30, 40, 220],
  };
  for (const [name, [r, g, b]] of Object.entries(colours)) {
    mkdirSync(join(images, name), { recursive: true });
    for (let i = 0; i < 4; i++) {
      const image = sharp({
        create: { width: 24 + 9 * i, height: 30 - 3 * i, channels: 3, background: { r: r - 10 * i, g, b } },
      });
      const file = join(images, name, `${i}.${['png', 'jpg', 'webp', 'gif'][i]}`);
      await (i === 0 ? image.png() : i === 1 ? image.jpeg() : i === 2 ? image.webp() : image.gif()).toFile(file);
    }
  }
  writeFileSync(join(images, 'red', 'notes.txt'), 'not an image');
  writeFileSync(join(images, 'green', 'broken.png'), readFileSync(join(images, 'green', '0.png')).subarray(0, 40));
}

beforeAll(async () => {
  await writeDataset();
  const made = octoclip('make-tiny-model', model);
  expect(made.status, made.stderr).toBe(0);
}, 300_000);

describe('octoclip CLI', () => {
  it('make-tiny-model writes the Hub layout', () => {
    for (const file of ['config.json', 'model.safetensors', 'vocab.json', 'merges.txt', 'preprocessor_config.json']) {
      expect(existsSync(join(model, file)), file).toBe(true);
    }
  });

  it('zero-shot prints accuracy JSON and reports each bad file by name', () => {
    const run = octoclip('zero-shot', '--model', model, '--images', images);
    expect(run.status, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result.classes).toEqual(['blue', 'green', 'red']);
    expect(result.images).toBe(12);
    expect(result.accuracy).toBeGreaterThanOrEqual(0);
    expect(Object.keys(result.perClassAccuracy)).toEqual(['blue', 'green', 'red']);
    expect(run.stderr).toMatch(/notes\.txt: not an image/);
    expect(run.stderr).toMatch(/broken\.png: corrupt or truncated/);
  }, 300_000);

  it('embed gives features for images and texts', () => {
    const run = octoclip(
      'embed',
      '--model',
      model,
      '--images',
      join(images, 'red'),
      '--texts',
      'a photo of a cat.',
      '--texts',
      'zero',
    );
    expect(run.status, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result.images).toHaveLength(4);
    expect(result.texts.map((t: { text: string }) => t.text)).toEqual(['a photo of a cat.', 'zero']);
    expect(result.texts[0].features.every(Number.isFinite)).toBe(true);
  }, 300_000);

  it('train writes a log, an adapter with its metadata and a PEFT export; eval reads the adapter back', () => {
    const adapter = join(work, 'colours.safetensors');
    const trained = octoclip(
      'train',
      '--model',
      model,
      '--images',
      images,
      '--shots',
      '2',
      '--iterations',
      '3',
      '--batch-size',
      '4',
      '--rank',
      '4',
      '--blocks',
      '2',
      '--seed',
      '5',
      '--out',
      adapter,
      '--log',
      join(work, 'log.json'),
      '--peft',
      join(work, 'peft'),
    );
    expect(trained.status, trained.stderr).toBe(0);
    expect(trained.stderr).toMatch(/step 3\/3/);
    // No --micro-batch: the passes are the largest that fit the device, and said.
    expect(trained.stderr).toMatch(
      /passes: 4 images \(chosen to fit\), 3 prompts; planned GPU memory [\d.]+ MiB of [\d.]+ MiB/,
    );
    // auto: f32, as f32 weights already fit the largest passes.
    expect(trained.stderr).toContain(
      '\nprecision: f32 (auto: f32 weights fit 4 images and 3 prompts per pass, as large as half-precision ones)\n',
    );
    const log = JSON.parse(readFileSync(join(work, 'log.json'), 'utf8'));
    expect(log.settings).toMatchObject({ batchSize: 4, microBatchSize: 4, textChunk: 3 });
    expect(log.steps).toHaveLength(3);
    expect(log.steps.every((s: { loss: number }) => Number.isFinite(s.loss))).toBe(true);
    expect(log.trainableParameters).toBeGreaterThan(0);

    const { meta, tensors } = decodeAdapterFile(new Uint8Array(readFileSync(adapter)), adapter);
    expect(meta.method).toBe('block-lora');
    expect([meta.rank, meta.blocks]).toEqual([4, 2]);
    expect(meta.classNames).toEqual(['blue', 'green', 'red']);
    expect(meta.targets).toEqual(['q_proj', 'k_proj', 'v_proj']);
    expect(tensors.get('vision_model.encoder.layers.0.self_attn.q_proj.block_lora_B')?.shape).toEqual([2, 48, 2]);
    const peft = JSON.parse(readFileSync(join(work, 'peft', 'adapter_config.json'), 'utf8'));
    expect(peft.r).toBe(2);

    const evaluated = octoclip(
      'eval',
      '--model',
      model,
      '--adapter',
      adapter,
      '--images',
      images,
      '--shots',
      '2',
      '--seed',
      '5',
    );
    expect(evaluated.status, evaluated.stderr).toBe(0);
    const result = JSON.parse(evaluated.stdout);
    expect(result.images).toBe(6); // 4 usable images per class, 2 of them trained on
    expect(result.confusion).toHaveLength(3);
  }, 300_000);

  it("train --holdout holds out a fraction of each class; --early-stop keeps the best evaluation's adapter", () => {
    const adapter = join(work, 'holdout.safetensors');
    const trained = octoclip(
      'train',
      '--model',
      model,
      '--images',
      images,
      '--holdout',
      '0.25',
      '--iterations',
      '6',
      '--batch-size',
      '3',
      '--eval-every',
      '1',
      '--early-stop',
      '1',
      '--lr',
      '5e-2',
      '--seed',
      '2',
      '--out',
      adapter,
      '--log',
      join(work, 'holdout-log.json'),
    );
    expect(trained.status, trained.stderr).toBe(0);
    const log = JSON.parse(readFileSync(join(work, 'holdout-log.json'), 'utf8'));
    // 4 images per class less the bad files (3 red, 3 green, 4 blue): 25% is one held out from each.
    expect(log.final.confusion.flat().reduce((a: number, b: number) => a + b, 0)).toBe(3);
    const evaluations: { step: number; accuracy: number }[] = log.evaluations;
    expect(evaluations[0].step).toBe(0);
    const best = Math.max(...evaluations.slice(1).map((e) => e.accuracy));
    expect(log.final.accuracy).toBe(best);
    const evaluated = octoclip(
      'eval',
      '--model',
      model,
      '--adapter',
      adapter,
      '--images',
      images,
      '--holdout',
      '0.25',
      '--seed',
      '2',
    );
    expect(evaluated.status, evaluated.stderr).toBe(0);
    expect(JSON.parse(evaluated.stdout)).toMatchObject({ images: 3, accuracy: best });
  }, 300_000);

  it('writes a result larger than a pipe holds (64 KiB) whole through a pipe', () => {
    const texts = Array.from({ length: 400 }, (_, i) => `text number ${i}`);
    const command = `"${process.execPath}" "${BIN}" embed --model "${model}" ${texts.map((t) => `--texts "${t}"`).join(' ')} | cat > piped.json`;
    const piped = spawnSync('bash', ['-c', command], { cwd: work, encoding: 'utf8', timeout: 300_000 });
    expect(piped.status, piped.stderr).toBe(0);
    const text = readFileSync(join(work, 'piped.json'), 'utf8');
    expect(text.length).toBeGreaterThan(2 * 65_536);
    expect(JSON.parse(text).texts.map((t: { text: string }) => t.text)).toEqual(texts);
  }, 300_000);

  it('follows the conventions: --version, -h per command from its options table, unknown commands and options on stderr with status 2', () => {
    const version = octoclip('--version');
    expect(version.stdout).toBe(`${JSON.parse(readFileSync('package.json', 'utf8')).version}\n`);
    expect(octoclip('--help').stdout).toMatch(/octoclip predict --model M \[FILE\.\.\.\] \[options\]/);
    for (const spec of [EMBED, ZERO_SHOT, EVAL, PREDICT, EXPORT, IMPORT_PEFT, INFO]) {
      const help = octoclip(spec.name, '-h');
      expect(help.status).toBe(0);
      expect(help.stdout).toBe(helpText(spec));
      for (const name of Object.keys(spec.options)) expect(help.stdout).toContain(`--${name}`);
    }
    const unknown = octoclip('frobnicate');
    expect([unknown.status, unknown.stdout]).toEqual([2, '']);
    expect(unknown.stderr).toMatch(
      /unknown command "frobnicate"; the commands are make-tiny-model, embed, zero-shot, train, eval, predict, export, import-peft, info/,
    );
    const option = octoclip('zero-shot', '--model', model, '--imagse', images);
    expect([option.status, option.stdout]).toEqual([2, '']);
    expect(option.stderr).toMatch(/unknown option --imagse/);
  }, 300_000);

  it('train --time-budget times steps on this device and trains as many as fit, with the same schedule', () => {
    const trained = octoclip(
      'train',
      '--model',
      model,
      '--images',
      images,
      '--shots',
      '2',
      '--batch-size',
      '3',
      '--time-budget',
      '4s',
      '--seed',
      '3',
      '--out',
      join(work, 'budget.safetensors'),
      '--log',
      join(work, 'budget-log.json'),
    );
    expect(trained.status, trained.stderr).toBe(0);
    const log = JSON.parse(readFileSync(join(work, 'budget-log.json'), 'utf8'));
    const { millisecondsPerStep, iterations } = log.timeBudget;
    expect(millisecondsPerStep).toBeGreaterThan(0);
    expect(iterations).toBe(Math.max(1, Math.floor(4000 / millisecondsPerStep)));
    expect(trained.stderr).toContain(
      `time budget 4s: ${millisecondsPerStep.toFixed(0)} ms per step on this device, so ${iterations} steps`,
    );
    expect(log.settings.iterations).toBe(iterations);
    expect(log.steps).toHaveLength(iterations);
    // The recipe's cosine, stretched over the budget's steps: it starts at the peak and ends near the floor.
    expect(log.steps[0].lr).toBeCloseTo(log.settings.lr, 10);
    if (iterations > 2) expect(log.steps.at(-1).lr).toBeLessThan(log.settings.lr / 2);
    const bad = octoclip(
      'train',
      '--model',
      model,
      '--images',
      images,
      '--shots',
      '2',
      '--time-budget',
      'soon',
      '--out',
      join(work, 'never.safetensors'),
    );
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain(
      '--time-budget: a time budget is a positive duration such as 15m, 90s or 1h, got "soon"',
    );
    expect(existsSync(join(work, 'never.safetensors'))).toBe(false);
  }, 300_000);

  it('train --template and --prompts record the prompts in the adapter, which eval uses; a prompt for no class is refused', () => {
    const prompts = join(work, 'prompts.json');
    writeFileSync(prompts, JSON.stringify({ red: 'a photo of something red, like a tomato.' }));
    const adapter = join(work, 'prompted.safetensors');
    const trained = octoclip(
      'train',
      '--model',
      model,
      '--images',
      images,
      '--shots',
      '2',
      '--iterations',
      '2',
      '--batch-size',
      '3',
      '--template',
      'a picture of the colour {}.',
      '--prompts',
      prompts,
      '--out',
      adapter,
      '--log',
      join(work, 'prompted-log.json'),
    );
    expect(trained.status, trained.stderr).toBe(0);
    const { meta } = decodeAdapterFile(new Uint8Array(readFileSync(adapter)));
    expect(meta.promptTemplate).toBe('a picture of the colour {}.');
    expect(meta.classPrompts).toEqual({ red: 'a photo of something red, like a tomato.' });
    const evaluated = octoclip('eval', '--model', model, '--adapter', adapter, '--images', images, '--shots', '2');
    expect(evaluated.status, evaluated.stderr).toBe(0);

    writeFileSync(prompts, JSON.stringify({ purple: 'a photo of something purple.' }));
    const unknown = octoclip(
      'train',
      '--model',
      model,
      '--images',
      images,
      '--shots',
      '2',
      '--prompts',
      prompts,
      '--out',
      join(work, 'never.safetensors'),
    );
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain(
      'a prompt is given for "purple", which is not one of the classes (blue, green, red)',
    );
    writeFileSync(prompts, '["red"]');
    const list = octoclip(
      'train',
      '--model',
      model,
      '--images',
      images,
      '--shots',
      '2',
      '--prompts',
      prompts,
      '--out',
      join(work, 'never.safetensors'),
    );
    expect(list.status).toBe(2);
    expect(list.stderr).toContain('must be a JSON object of class name to prompt');
    expect(existsSync(join(work, 'never.safetensors'))).toBe(false);
  }, 300_000);

  it('refuses bad input with a message and a non-zero status', () => {
    const missing = octoclip('zero-shot', '--model', join(work, 'nowhere'), '--images', images);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/nowhere.*neither a directory nor a Hugging Face repo id/);
    const usage = octoclip('train', '--model', model);
    expect(usage.status).toBe(2);
    expect(usage.stderr).toMatch(/missing --images/); // --images and --out are required; the split is one of --shots and --holdout
    const unknown = octoclip('frobnicate');
    expect(unknown.status).toBe(2);
  }, 300_000);
});
