// CLIP-LoRA's recipe is written once (src/common/recipe.ts): the CLI's defaults and its help, the studio's
// form and the worker's settings all come out equal to it.

import { describe, expect, it } from 'vitest';
import { defaultAdapterSettings } from '../../src/adapters/settings';
import { helpText, parseCommandLine } from '../../src/cli/options';
import { TRAIN, trainSettingsFromOptions } from '../../src/cli/train';
import { DEFAULT_TEMPLATE } from '../../src/common/prompts';
import {
  AUTO_WITHOUT_PLAN,
  AUTO_F16_TIME_RATIO,
  autoPrecision,
  budgetIterations,
  defaultTrainSettings,
  ITERATIONS_PER_SHOT,
  parseDuration,
  parsePrecision,
  PRECISION_NUMERICS,
  missingFeature,
  precisionNeeds,
  precisionOf,
  PRECISION_SETTINGS,
  LORA_BLOCKS,
  RECIPE_ADAPTER,
  RECIPE_CHECKPOINT_EVERY,
  RECIPE_PATIENCE,
  RECIPE_PRECISION,
  RECIPE_TRAINING,
  resolvePrecision,
} from '../../src/common/recipe';
import { parseClipConfig } from '../../src/model/config';
import { makeTinyClip } from '../../src/model/tiny';
import { RECIPE, useTrainingStore } from '../../src/ui/stores/training';
import { adapterSettingsFor, trainSettingsFor } from '../../src/worker/training-run';

const config = parseClipConfig(makeTinyClip().files['config.json'] as string);

/** The settings `octoclip train` derives from these flags (the required ones given). */
function cliSettings(...args: string[]) {
  const { values } = parseCommandLine(TRAIN, [
    '--model',
    'M',
    '--images',
    __dirname,
    '--out',
    'a',
    '--shots',
    '4',
    ...args,
  ]);
  return trainSettingsFromOptions(values, config, 4);
}

describe('the recipe', () => {
  it('is what octoclip train uses without flags, and what its help states', () => {
    const { adapter, training, checkpointEvery } = cliSettings();
    expect(adapter).toEqual(defaultAdapterSettings(config));
    expect(training).toEqual(defaultTrainSettings(4));
    expect(training.iterations).toBe(4 * ITERATIONS_PER_SHOT);
    expect(checkpointEvery).toBe(RECIPE_CHECKPOINT_EVERY);

    const help = (flag: string) =>
      helpText(TRAIN)
        .split('\n')
        .find((line) => line.trimStart().startsWith(`${flag} `)) ?? '';
    expect(help('--rank')).toContain(`(default ${RECIPE_ADAPTER.rank})`);
    expect(help('--blocks')).toContain(`(default ${RECIPE_ADAPTER.blocks}; lora: ${LORA_BLOCKS})`);
    expect(help('--alpha')).toContain(`(default ${RECIPE_ADAPTER.alpha})`);
    expect(help('--scaling')).toContain(`default ${RECIPE_ADAPTER.scalingRule})`);
    expect(help('--targets')).toContain(`(default ${RECIPE_ADAPTER.targets.join(',')})`);
    expect(help('--towers')).toContain(`(default ${RECIPE_ADAPTER.towers.join(',')})`);
    expect(help('--dropout')).toContain(`(default ${RECIPE_ADAPTER.dropout})`);
    expect(help('--iterations')).toContain(`(default ${ITERATIONS_PER_SHOT} x shots)`);
    expect(help('--batch-size')).toContain(`(default ${RECIPE_TRAINING.batchSize})`);
    expect(help('--lr')).toContain('(default 2e-4)');
    expect(help('--min-lr')).toContain('(default 1e-6)');
    expect([RECIPE_TRAINING.lr, RECIPE_TRAINING.minLr]).toEqual([2e-4, 1e-6]);
    expect(help('--weight-decay')).toContain(`(default ${RECIPE_TRAINING.weightDecay})`);
    expect(help('--seed')).toContain(`(default ${RECIPE_TRAINING.seed})`);
    expect(help('--template')).toContain(DEFAULT_TEMPLATE);
    expect(help('--early-stop')).toContain(`(default ${RECIPE_PATIENCE})`);
  });

  it('holds its rules on the command line: LoRA means n = 1, the micro-batch follows the batch and divides it', () => {
    expect(cliSettings('--method', 'lora').adapter.blocks).toBe(LORA_BLOCKS);
    expect(() => cliSettings('--method', 'lora', '--blocks', '2')).toThrow(/LoRA is Block-LoRA with one block/);
    expect(cliSettings('--batch-size', '8').training).toMatchObject({ batchSize: 8, microBatchSize: 8 });
    expect(cliSettings('--batch-size', '8', '--micro-batch', '4').training).toMatchObject({
      batchSize: 8,
      microBatchSize: 4,
    });
    expect(() => cliSettings('--batch-size', '8', '--micro-batch', '3')).toThrow(
      'the batch size (8) must be a multiple of the micro-batch size (3)',
    );
    expect(cliSettings('--no-dropout', '--no-augment').adapter.dropout).toBe(0);
    expect(() => cliSettings('--method', 'dora')).toThrow(/--method must be block-lora or lora, got "dora"/);
    expect(cliSettings('--eval-every', '5', '--early-stop', '3').patience).toBe(3);
    expect(() => cliSettings('--early-stop', '3')).toThrow(/--early-stop needs --eval-every/);
    expect(() => cliSettings('--lr', '1e-7')).toThrow('--lr 1e-7 is below --min-lr 0.000001');
    expect(() => cliSettings('--shots', 'abc')).toThrow(/--shots is given twice|--shots must be a whole number/);
    expect(() => cliSettings('--iterations', '40', '--time-budget', '15m')).toThrow(
      'give one of --iterations and --time-budget',
    );
  });

  it('turns a time budget into iterations at a measured step time, at least one', () => {
    expect(parseDuration('15m')).toBe(15 * 60_000);
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('1.5h')).toBe(90 * 60_000);
    expect(parseDuration('5')).toBe(5 * 60_000);
    for (const bad of ['', 'soon', '-5m', '0m', '15 parsecs'])
      expect(() => parseDuration(bad)).toThrow(/a time budget is a positive duration such as 15m/);
    expect(budgetIterations(15 * 60_000, 450)).toBe(2000);
    expect(budgetIterations(60_000, 7)).toBe(8571);
    expect(budgetIterations(1_000, 5_000)).toBe(1);
    expect(() => budgetIterations(60_000, 0)).toThrow(/step time must be above 0/);
    expect(() => budgetIterations(0, 100)).toThrow(/time budget must be above 0/);
  });

  it("is the studio's form, and the worker turns that form into the recipe", () => {
    const {
      towers,
      method,
      rank,
      blocks,
      alpha,
      scalingRule,
      dropout,
      targets,
      shots,
      checkpointEvery,
      patience,
      ...training
    } = RECIPE;
    expect(patience).toBe(RECIPE_PATIENCE);
    expect({ method, rank, blocks, alpha, scalingRule, dropout, targets, towers }).toEqual({ ...RECIPE_ADAPTER });
    expect(checkpointEvery).toBe(RECIPE_CHECKPOINT_EVERY);
    expect(adapterSettingsFor(config, RECIPE)).toEqual(defaultAdapterSettings(config));
    expect(trainSettingsFor(RECIPE)).toEqual(defaultTrainSettings(shots));
    expect(training.iterations).toBe(shots * ITERATIONS_PER_SHOT);
  });

  it('holds its rules in the studio: LoRA means n = 1, iterations follow the shots until set apart', () => {
    const store = useTrainingStore.getState();
    store.resetSettings();
    store.update({ method: 'lora' });
    expect(useTrainingStore.getState().settings.blocks).toBe(LORA_BLOCKS);
    store.update({ shots: 8 });
    expect(useTrainingStore.getState().settings.iterations).toBe(8 * ITERATIONS_PER_SHOT);
    store.update({ iterations: 100 });
    store.update({ shots: 2 });
    expect(useTrainingStore.getState().settings.iterations).toBe(100);
    store.resetSettings();
    expect(useTrainingStore.getState().settings).toEqual(RECIPE);
  });
});

describe('the precision setting', () => {
  it('offers auto (the default), f32, f16-storage and f16, and says what each holds in which precision', () => {
    expect(PRECISION_SETTINGS).toEqual(['auto', 'f32', 'f16-storage', 'f16']);
    expect(RECIPE_PRECISION).toBe('auto');
    expect(RECIPE.precision).toBe(RECIPE_PRECISION);
    for (const setting of PRECISION_SETTINGS) expect(parsePrecision(setting)).toBe(setting);
    expect(() => parsePrecision('bf16')).toThrow('the precision must be auto, f32, f16-storage, f16, got "bf16"');
    expect(PRECISION_NUMERICS).toEqual({
      f32: { weightStorage: 'f32', arithmetic: 'f32' },
      'f16-storage': { weightStorage: 'f16', arithmetic: 'f32' },
      f16: { weightStorage: 'f16', arithmetic: 'f16' },
    });
    for (const precision of ['f32', 'f16-storage', 'f16'] as const) {
      expect(precisionOf(PRECISION_NUMERICS[precision])).toBe(precision);
    }
    expect(() => precisionOf({ weightStorage: 'f32', arithmetic: 'f16' })).toThrow(
      'no precision holds weights in f32 and multiplies in f16',
    );
    expect([precisionNeeds('f32'), precisionNeeds('f16-storage'), precisionNeeds('f16')]).toEqual([
      null,
      null,
      'shader-f16',
    ]);
    // What a device lacks for a setting: the same answer from a device's feature set and the studio's list.
    const withF16 = new Set(['timestamp-query', 'shader-f16']);
    for (const features of [withF16, [...withF16]]) {
      expect(PRECISION_SETTINGS.map((setting) => missingFeature(setting, features))).toEqual([null, null, null, null]);
    }
    expect(PRECISION_SETTINGS.map((setting) => missingFeature(setting, ['timestamp-query']))).toEqual([
      null,
      null,
      null,
      'shader-f16',
    ]);
  });

  it('auto keeps f32 unless half-precision weights fit larger passes: a larger micro-batch, or a larger text chunk', () => {
    const passes = (microBatchSize: number, textChunk: number) => ({ microBatchSize, textChunk });
    expect(autoPrecision(passes(32, 64), passes(32, 64))).toEqual({
      precision: 'f32',
      reason: 'auto: f32 weights fit 32 images and 64 prompts per pass, as large as half-precision ones',
    });
    expect(autoPrecision(passes(8, 64), passes(16, 64))).toEqual({
      precision: 'f16-storage',
      reason:
        'auto: half-precision weights fit 16 images and 64 prompts per pass, f32 weights 8 images and 64 prompts per pass',
    });
    expect(autoPrecision(passes(1, 8), passes(1, 16)).precision).toBe('f16-storage');
    expect(autoPrecision(passes(2, 16), passes(1, 64)).precision).toBe('f32');
    expect(autoPrecision(null, passes(1, 1))).toEqual({
      precision: 'f16-storage',
      reason: 'auto: half-precision weights fit 1 image and 1 prompt per pass, f32 weights no pass',
    });
    expect(autoPrecision(null, null).precision).toBe('f32');
  });

  it("auto takes f16 where the GPU's matmul tune measured f16 products at least 10% faster, and half-precision weights fit", () => {
    const fits = { microBatchSize: 32, textChunk: 64 };
    expect(autoPrecision(fits, fits, 0.62)).toEqual({
      precision: 'f16',
      reason: "auto: f16 products took 62% of f32's time in this GPU's matmul tune",
    });
    expect(autoPrecision(fits, fits, AUTO_F16_TIME_RATIO).precision).toBe('f16');
    // Slower, not faster enough, not measured (no shader-f16), or nothing fits: the rules above decide.
    for (const ratio of [1.4, AUTO_F16_TIME_RATIO + 0.01, null])
      expect(autoPrecision(fits, fits, ratio).precision).toBe('f32');
    expect(autoPrecision(null, null, 0.5).precision).toBe('f32');
  });

  it('keeps a precision that is set, plans only for auto, and keeps f32 where nothing is planned', async () => {
    const never = async () => {
      throw new Error('planned for a precision that was set');
    };
    expect(await resolvePrecision('f16-storage', never)).toEqual({ precision: 'f16-storage', reason: 'as set' });
    expect(await resolvePrecision('f32', never)).toEqual({ precision: 'f32', reason: 'as set' });
    expect(await resolvePrecision('auto', async () => AUTO_WITHOUT_PLAN)).toEqual({
      precision: 'f32',
      reason: 'auto: f32 when not training',
    });
  });
});
