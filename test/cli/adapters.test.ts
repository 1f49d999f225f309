// predict, export (PEFT and merged), import-peft and info through the command line, on a tiny model and a
// three-step adapter: the round trips are exact, the merged model computes what the adapter computes, and
// every refusal says why and writes nothing.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeAdapterFile } from '../../src/adapters/adapter-file';
import { MODEL_FILES, PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE } from '../../src/common/file-names';
import { encodeSafetensors } from '../../src/model/safetensors';
import { runOctoclip } from '../helpers/cli';
import { shardCheckpoint } from '../helpers/shards';

const work = mkdtempSync(join(tmpdir(), 'octoclip-cli-adapters-'));
const model = join(work, 'tiny');
const images = join(work, 'images');
const adapter = join(work, 'colours.octoclip.safetensors');
const octoclip = (...args: string[]) => runOctoclip(work, ...args);

interface Predicted {
  path: string;
  predicted: string;
  probability: number;
  top: { class: string; probability: number }[];
}

beforeAll(async () => {
  for (const [name, [r, g, b]] of Object.entries({ red: [220, 30, 30], green: [30, 200, 40], blue: [30, 40, 220] })) {
    mkdirSync(join(images, name), { recursive: true });
    for (let i = 0; i < 3; i++) {
      await sharp({
        create: { width: 20 + 7 * i, height: 28 - 2 * i, channels: 3, background: { r: r - 20 * i, g, b: b - 5 * i } },
      })
        .png()
        .toFile(join(images, name, `${i}.png`));
    }
  }
  writeFileSync(join(images, 'red', 'notes.txt'), 'not an image');
  for (const args of [
    ['make-tiny-model', model],
    [
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
      '--lr',
      '5e-2',
      '--rank',
      '4',
      '--blocks',
      '2',
      '--seed',
      '3',
      '--no-dropout',
      '--out',
      adapter,
      '--log',
      join(work, 'log.json'),
    ],
  ]) {
    const run = octoclip(...args);
    expect(run.status, run.stderr).toBe(0);
  }
}, 300_000);

describe('octoclip predict', () => {
  it('gives the top classes of each image with the adapter, as JSON and as CSV, and skips a non-image in a folder', () => {
    const run = octoclip('predict', '--model', model, '--adapter', adapter, '--images', images, '--top', '2');
    expect(run.status, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result).toMatchObject({
      model,
      adapter,
      classes: ['blue', 'green', 'red'],
      images: 9,
      template: 'a photo of a {}.',
    });
    expect(result.skipped.map((s: { path: string }) => s.path)).toEqual([join(images, 'red', 'notes.txt')]);
    for (const p of result.predictions as Predicted[]) {
      expect(p.top).toHaveLength(2);
      expect(p.top[0]).toEqual({ class: p.predicted, probability: p.probability });
      expect(p.top[0].probability).toBeGreaterThanOrEqual(p.top[1].probability);
    }

    const csv = octoclip(
      'predict',
      '--model',
      model,
      '--adapter',
      adapter,
      join(images, 'blue', '0.png'),
      '--top',
      '3',
      '--format',
      'csv',
    );
    expect(csv.status, csv.stderr).toBe(0);
    const lines = csv.stdout.trim().split('\n');
    expect(lines[0]).toBe('path,rank,class,probability');
    expect(lines.slice(1).map((line) => line.split(',').slice(0, 2))).toEqual(
      [1, 2, 3].map((rank) => [join(images, 'blue', '0.png'), String(rank)]),
    );
    const total = lines.slice(1).reduce((sum, line) => sum + Number(line.split(',')[3]), 0);
    expect(total).toBeCloseTo(1, 5);
  }, 300_000);

  it('is zero-shot with --no-adapter and --classes', () => {
    const run = octoclip(
      'predict',
      join(images, 'red', '1.png'),
      '--model',
      model,
      '--no-adapter',
      ...['--classes', 'blue', '--classes', 'green', '--classes', 'red'],
    );
    expect(run.status, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ adapter: null, classes: ['blue', 'green', 'red'], images: 1 });
  }, 300_000);

  it('refuses a named file that is not an image, and writes nothing', () => {
    const out = join(work, 'never.json');
    const run = octoclip(
      'predict',
      '--model',
      model,
      '--adapter',
      adapter,
      join(images, 'blue', '0.png'),
      join(images, 'red', 'notes.txt'),
      '--out',
      out,
    );
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/notes\.txt: not an image/);
    expect(existsSync(out)).toBe(false);
  }, 300_000);

  it('refuses a folder with no image to classify, and writes nothing', () => {
    const empty = mkdtempSync(join(tmpdir(), 'octoclip-empty-'));
    const out = join(work, 'nothing.json');
    const run = octoclip('predict', '--model', model, '--adapter', adapter, '--images', empty, '--out', out);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/no images to classify in .*octoclip-empty-/);
    expect(existsSync(out)).toBe(false);
  }, 300_000);
});

describe('octoclip export and import-peft', () => {
  it('export --format peft writes a self-contained folder, and import-peft gives back the same LoRA', () => {
    const peft = join(work, 'peft');
    const exported = octoclip('export', '--adapter', adapter, '--format', 'peft', '--out', peft);
    expect(exported.status, exported.stderr).toBe(0);
    expect(readdirSync(peft).sort()).toEqual([
      'README.md',
      'adapter_config.json',
      'adapter_model.safetensors',
      'classes.json',
    ]);
    const trained = decodeAdapterFile(new Uint8Array(readFileSync(adapter))).meta;
    expect(JSON.parse(readFileSync(join(peft, 'classes.json'), 'utf8'))).toEqual({
      class_names: ['blue', 'green', 'red'],
      prompt_template: 'a photo of a {}.',
      metrics: trained.metrics,
    });
    const card = readFileSync(join(peft, 'README.md'), 'utf8');
    expect(card).toContain(`base_model: ${JSON.stringify(model)}`);
    expect(card).toContain('PeftModel.from_pretrained');
    expect(card).toMatch(/heldOutAccuracy/);

    const imported = join(work, 'imported.octoclip.safetensors');
    const run = octoclip('import-peft', '--peft', peft, '--model', model, '--out', imported);
    expect(run.status, run.stderr).toBe(0);
    const original = decodeAdapterFile(new Uint8Array(readFileSync(adapter)));
    const back = decodeAdapterFile(new Uint8Array(readFileSync(imported)));
    expect(back.meta).toMatchObject({
      method: 'lora',
      rank: 2,
      blocks: 1,
      scaling: original.meta.scaling,
      targets: original.meta.targets,
      layers: original.meta.layers,
    });
    expect(back.meta).toMatchObject({
      classNames: original.meta.classNames,
      promptTemplate: original.meta.promptTemplate,
      baseModelFingerprint: original.meta.baseModelFingerprint,
      // The metrics travel with classes.json: the conversion changes no weight.
      metrics: original.meta.metrics,
    });
    for (const [name, tensor] of original.tensors) {
      const copy = back.tensors.get(name)!;
      if (name.endsWith('block_lora_A')) expect(copy.data).toEqual(tensor.data);
      else {
        // B_1 + B_2, summed in float64 and rounded once: the LoRA of rank r/n that the blocks make.
        const [, dOut, k] = tensor.shape;
        expect(copy.shape).toEqual([1, dOut, k]);
        expect(copy.data).toEqual(
          Float32Array.from({ length: dOut * k }, (_, j) => tensor.data[j] + tensor.data[dOut * k + j]),
        );
      }
    }

    // The same export as one zip (deflated, inside a folder, as zip tools make it) imports to the same file.
    const zip = join(work, 'peft.zip');
    execFileSync('python3', [
      '-c',
      'import sys, os, zipfile\nwith zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:\n  for name in os.listdir(sys.argv[2]): z.write(os.path.join(sys.argv[2], name), "peft/" + name)',
      zip,
      peft,
    ]);
    const fromZip = join(work, 'from-zip.octoclip.safetensors');
    const zipped = octoclip('import-peft', '--peft', zip, '--model', model, '--out', fromZip);
    expect(zipped.status, zipped.stderr).toBe(0);
    expect(readFileSync(fromZip)).toEqual(readFileSync(imported));

    const again = octoclip('predict', '--model', model, '--adapter', imported, '--images', images);
    const direct = octoclip('predict', '--model', model, '--adapter', adapter, '--images', images);
    const probabilities = (run: { stdout: string }) =>
      (JSON.parse(run.stdout).predictions as Predicted[]).flatMap((p) => p.top.map((t) => t.probability));
    probabilities(again).forEach((p, i) => expect(Math.abs(p - probabilities(direct)[i])).toBeLessThan(1e-5));
  }, 300_000);

  it('export --format merged writes a model that computes what the base model with the adapter computes', () => {
    const merged = join(work, 'merged');
    const run = octoclip('export', '--adapter', adapter, '--format', 'merged', '--model', model, '--out', merged);
    expect(run.status, run.stderr).toBe(0);
    for (const file of ['config.json', 'model.safetensors', 'vocab.json', 'merges.txt', 'preprocessor_config.json'])
      expect(existsSync(join(merged, file)), file).toBe(true);
    const withAdapter = octoclip('predict', '--model', model, '--adapter', adapter, '--images', images, '--top', '3');
    const mergedModel = octoclip(
      'predict',
      '--model',
      merged,
      '--no-adapter',
      ...['--classes', 'blue', '--classes', 'green', '--classes', 'red'],
      '--images',
      images,
      '--top',
      '3',
    );
    expect(mergedModel.status, mergedModel.stderr).toBe(0);
    const expected = JSON.parse(withAdapter.stdout).predictions as Predicted[];
    const actual = JSON.parse(mergedModel.stdout).predictions as Predicted[];
    expect(actual.map((p) => p.predicted)).toEqual(expected.map((p) => p.predicted));
    actual.forEach((p, i) =>
      p.top.forEach((t, j) => {
        expect(t.class).toBe(expected[i].top[j].class);
        expect(Math.abs(t.probability - expected[i].top[j].probability)).toBeLessThan(1e-5);
      }),
    );
    // The base model alone classifies differently: the comparison above is not vacuous.
    const base = octoclip(
      'predict',
      '--model',
      model,
      '--no-adapter',
      ...['--classes', 'blue', '--classes', 'green', '--classes', 'red'],
      '--images',
      images,
      '--top',
      '3',
    );
    const baseTop = (JSON.parse(base.stdout).predictions as Predicted[]).map((p) => p.probability);
    expect(Math.max(...baseTop.map((p, i) => Math.abs(p - expected[i].probability)))).toBeGreaterThan(1e-3);
  }, 300_000);
});

/** A PEFT folder with the given config and tensors. */
function peftFolder(
  name: string,
  config: Record<string, unknown>,
  tensors: { name: string; shape: number[] }[],
): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, PEFT_CONFIG_FILE),
    JSON.stringify({ peft_type: 'LORA', r: 2, lora_alpha: 4, base_model_name_or_path: 'somewhere/else', ...config }),
  );
  writeFileSync(
    join(dir, PEFT_WEIGHTS_FILE),
    encodeSafetensors(tensors.map((t) => ({ ...t, data: new Float32Array(t.shape[0] * t.shape[1]).fill(0.01) }))),
  );
  return dir;
}

const q = (layer: number, side: 'A' | 'B') =>
  `base_model.model.text_model.encoder.layers.${layer}.self_attn.q_proj.lora_${side}.weight`;

describe('refusals', () => {
  it('refuses bad values before any work, with exit status 2', () => {
    const cases: [string[], RegExp][] = [
      [
        ['export', '--adapter', adapter, '--format', 'merged', '--out', join(work, 'x')],
        /--format merged needs the base model: add --model M/,
      ],
      [
        ['export', '--adapter', adapter, '--format', 'onnx', '--out', join(work, 'x')],
        /--format must be peft or merged, got "onnx"/,
      ],
      [['export', '--adapter', adapter, '--format', 'peft', '--out', images], /--out .*images is not empty/],
      [['predict', '--model', model, '--adapter', adapter, '--top', '0', images], /--top must be at least 1, got 0/],
      [['predict', '--model', model, '--no-adapter', images], /--no-adapter needs two or more class names/],
      [['predict', '--model', model, '--adapter', adapter, '--format', 'xml', images], /--format must be json or csv/],
      [['import-peft', '--peft', images, '--model', model, '--out', join(work, 'x')], /has no adapter_config\.json/],
      [['info'], /missing FILE/],
    ];
    for (const [args, message] of cases) {
      const run = octoclip(...args);
      expect(run.status, args.join(' ')).toBe(2);
      expect(run.stderr).toMatch(message);
      expect(run.stderr).not.toMatch(/WebGPU adapter/); // refused before the model loads
    }
    expect(existsSync(join(work, 'x'))).toBe(false);
  }, 300_000);

  it('refuses PEFT adapters that do not fit, writing nothing', () => {
    const out = join(work, 'refused.octoclip.safetensors');
    const classes = ['--classes', 'a', '--classes', 'b'];
    const cases: [string, RegExp][] = [
      [
        peftFolder('llama', {}, [
          { name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight', shape: [2, 32] },
        ]),
        /not a LoRA weight of a CLIP encoder layer.*another architecture/,
      ],
      [
        peftFolder('rank', {}, [
          { name: q(0, 'A'), shape: [3, 32] },
          { name: q(0, 'B'), shape: [32, 3] },
        ]),
        /do not have the rank r = 2/,
      ],
      [
        peftFolder('wide', {}, [
          { name: q(0, 'A'), shape: [2, 512] },
          { name: q(0, 'B'), shape: [512, 2] },
        ]),
        /needs \[2, 32\] and \[32, 2\].*made for another base model/,
      ],
      [
        peftFolder('deep', {}, [
          { name: q(7, 'A'), shape: [2, 32] },
          { name: q(7, 'B'), shape: [32, 2] },
        ]),
        /adapts text layer 7, but the base model .* has 2 text layers/,
      ],
      [
        peftFolder('ragged', {}, [
          { name: q(0, 'A'), shape: [2, 32] },
          { name: q(0, 'B'), shape: [32, 2] },
          { name: q(1, 'A'), shape: [2, 32] },
          { name: q(1, 'B'), shape: [32, 2] },
          { name: q(0, 'A').replace('q_proj', 'v_proj'), shape: [2, 32] },
          { name: q(0, 'B').replace('q_proj', 'v_proj'), shape: [32, 2] },
        ]),
        /layers\.1\.self_attn\.v_proj has no LoRA weights.*same matrices in every adapted layer/,
      ],
      [
        peftFolder('pattern', { rank_pattern: { q_proj: 4 } }, [
          { name: q(0, 'A'), shape: [2, 32] },
          { name: q(0, 'B'), shape: [32, 2] },
        ]),
        /rank_pattern gives some modules their own rank/,
      ],
      [peftFolder('ia3', { peft_type: 'IA3' }, [{ name: q(0, 'A'), shape: [2, 32] }]), /only LoRA adapters/],
    ];
    for (const [dir, message] of cases) {
      const run = octoclip('import-peft', '--peft', dir, '--model', model, '--out', out, ...classes);
      expect(run.status, dir).toBe(1);
      expect(run.stderr).toMatch(message);
      expect(existsSync(out)).toBe(false);
    }
    const good = peftFolder('good', {}, [
      { name: q(0, 'A'), shape: [2, 32] },
      { name: q(0, 'B'), shape: [32, 2] },
    ]);
    const noClasses = octoclip('import-peft', '--peft', good, '--model', model, '--out', out);
    expect(noClasses.status).toBe(2);
    expect(noClasses.stderr).toMatch(/class names are needed: add --classes/);
    const imported = octoclip('import-peft', '--peft', good, '--model', model, '--out', out, ...classes);
    expect(imported.status, imported.stderr).toBe(0);
    expect(imported.stderr).toMatch(/names base model somewhere\/else/);
    expect(decodeAdapterFile(new Uint8Array(readFileSync(out))).meta).toMatchObject({
      method: 'lora',
      rank: 2,
      alpha: 4,
      scalingRule: 'alpha/r',
      scaling: 2,
      targets: ['q_proj'],
      layers: { text: [0], vision: [] },
    });
  }, 300_000);

  it('refuses to merge an adapter into another base model, writing nothing', () => {
    const other = join(work, 'other-tiny');
    expect(octoclip('make-tiny-model', other, '--seed', '9').status).toBe(0);
    const run = octoclip(
      'export',
      '--adapter',
      adapter,
      '--format',
      'merged',
      '--model',
      other,
      '--out',
      join(work, 'merged-other'),
    );
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(
      /the adapter was trained on .*tiny \(fingerprint fnv1a64:\w+\), this checkpoint is another model/,
    );
    expect(existsSync(join(work, 'merged-other'))).toBe(false);
    expect(readdirSync(work).filter((name) => name.includes('.partial'))).toEqual([]);
  }, 300_000);

  it('merges into a base model stored in shards, writing the same shards and index, as it merges into one file', () => {
    const sharded = join(work, 'tiny-sharded');
    mkdirSync(sharded);
    for (const file of ['config.json', 'vocab.json', 'merges.txt', 'preprocessor_config.json'])
      writeFileSync(join(sharded, file), readFileSync(join(model, file)));
    const shards = shardCheckpoint(new Uint8Array(readFileSync(join(model, MODEL_FILES.weights))), 3);
    for (const [name, bytes] of Object.entries(shards)) writeFileSync(join(sharded, name), bytes);
    const out = join(work, 'merged-sharded');
    const run = octoclip('export', '--adapter', adapter, '--format', 'merged', '--model', sharded, '--out', out);
    expect(run.status, run.stderr).toBe(0);
    expect(
      readdirSync(out)
        .filter((name) => name.includes('safetensors'))
        .sort(),
    ).toEqual(Object.keys(shards).sort());
    expect(readFileSync(join(out, MODEL_FILES.weightsIndex))).toEqual(Buffer.from(shards[MODEL_FILES.weightsIndex]));
    // The shards hold what the one-file merge holds: zero-shot with the merged model predicts alike.
    const predict = (dir: string) =>
      octoclip(
        'predict',
        '--model',
        dir,
        '--no-adapter',
        ...['--classes', 'blue', '--classes', 'green', '--classes', 'red'],
        '--images',
        images,
      );
    const [fromShards, fromFile] = [predict(out), predict(join(work, 'merged'))];
    expect(fromShards.status, fromShards.stderr).toBe(0);
    expect(JSON.parse(fromShards.stdout).predictions).toEqual(JSON.parse(fromFile.stdout).predictions);
  }, 300_000);

  it('describes an adapter file, a PEFT folder and a model, and says what is wrong with a damaged adapter', () => {
    const adapterInfo = JSON.parse(octoclip('info', adapter).stdout);
    expect(adapterInfo).toMatchObject({
      kind: 'octoclip-adapter',
      method: 'block-lora',
      rank: 4,
      blocks: 2,
      classNames: ['blue', 'green', 'red'],
    });
    expect(adapterInfo.parameters).toBeGreaterThan(0);
    const modelInfo = JSON.parse(octoclip('info', model).stdout);
    expect(modelInfo).toMatchObject({ kind: 'model', missing: [] });
    expect(modelInfo.weights.tensors).toBeGreaterThan(10);
    const checkpointInfo = JSON.parse(octoclip('info', join(model, 'model.safetensors')).stdout);
    expect(checkpointInfo).toMatchObject({ kind: 'checkpoint', tensors: modelInfo.weights.tensors });
    const peft = join(work, 'peft-info');
    expect(octoclip('export', '--adapter', adapter, '--format', 'peft', '--out', peft).status).toBe(0);
    expect(JSON.parse(octoclip('info', peft).stdout)).toMatchObject({
      kind: 'peft-adapter',
      peftType: 'LORA',
      r: 2,
      classNames: ['blue', 'green', 'red'],
    });

    const bytes = readFileSync(adapter);
    const truncated = join(work, 'truncated.octoclip.safetensors');
    writeFileSync(truncated, bytes.subarray(0, bytes.length - 100));
    const run = octoclip('info', truncated);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`incomplete: ${bytes.length - 100} of ${bytes.length} bytes`);
    const peftWeights = octoclip('info', join(peft, 'adapter_model.safetensors'));
    expect(peftWeights.stderr).toMatch(/this is a PEFT LoRA adapter .*import-peft/);
  }, 300_000);
});
