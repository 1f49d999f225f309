// octoclip's benchmark: matrix products against TensorFlow.js's WebGPU backend, training steps (time,
// peak GPU memory and the memory planner's figure) at tiny and ViT-B/32 scale, the text tower per class
// prompt, and the planned ViT-B/16 training peak against the 4 GiB target.
//
//   npm run bench [-- --quick] [--profile] [--b32-rounds N] [--recipe] [--tune] [--host] [--recipe-vit N] [--precision P,...] [--memory-budget-gib G] [--json FILE]
//
// First the matmul autotune (src/kernels/matmul-tune.ts) on this adapter, measured afresh (no cache): its
// table of GFLOP/s per candidate and shape, and the choice, which the matrix products below then run.
// --tune: only that table. --host: only what a step costs the host (bench/host.ts: the engine's own
// JavaScript per ViT-B/32 step, and the buffers and bind groups a tiny step makes); the full bench prints it too.
// --quick: fewer repeats, no ViT-B/32 (the text tower is timed on the tiny model instead) and no
// 1600x768x2304 product. --profile: also one step of each variant with GPU time and dispatches per
// kernel. --b32-rounds N: N interleaved rounds of the ViT-B/32 steps whatever they take (by default
// as many as fit in a minute: none on SwiftShader, where a step takes about 30 s). --json FILE: write
// the JSON there instead of printing it after the tables.
// --recipe: only the time-to-adapter table (bench/recipe.ts: the studio's default recipe, batch 32, on
// the tiny model; the full bench runs it too). --recipe-vit N: also ViT-B/32 and ViT-B/16, N timed steps
// each after a warm-up whatever they take (a batch-32 ViT step takes minutes on SwiftShader, so not by
// default). --precision P,...: the recipe's rows in each precision (f32, f16-storage, f16; default f32;
// f16 is skipped, saying so, on an adapter without shader-f16). --memory-budget-gib G: the bytes a step may hold, for choosing the micro-batch (default 4).
// Times are wall-clock to the GPU's completion; beside them, this process's CPU time, which on SwiftShader
// (a GPU on the CPU, inside the process) measures the work done even while other programs share the cores.
// The targets are reported, never asserted.

import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { defaultAdapterSettings } from '../src/adapters/settings';
import {
  parsePrecision,
  PRECISION_NUMERICS,
  missingFeature,
  type Precision,
  type WeightNumerics,
} from '../src/common/recipe';
import type { GpuContext } from '../src/gpu/context';
import { shapeName, tuneMatmul, tunePlan, type MatmulChoice, type TuneShape } from '../src/kernels/matmul-tune';
import { visionTokenCount } from '../src/model/config';
import {
  downloadBytes,
  KNOWN_CLIP_MODELS,
  knownClipConfig,
  parameterCount,
  plannedTrainingBytes,
  REFERENCE_RUN,
} from '../src/training/known-models';
import { createNodeGpuContext } from '../src/node/gpu';
import { planTrainingMemory, type MemoryPlan } from '../src/training/memory-plan';
import { loadRandomVitB16, loadRandomVitB32, loadTinyBenchModel, vitB16Config, type BenchModel } from './clip-models';
import { benchMatmul, CLIP_LINEAR_SHAPES, type MatmulResult } from './matmul-vs-tfjs';
import { codeVersion, fixed, GIB, mib, percent, printTable, progress, type RepeatPolicy } from './measure';
import { benchRecipe, printRecipe, type RecipeResult } from './recipe';
import { measureHostCost, printHostCost, type HostCost } from './host';
import { loadTfjsWebGpu, type TfjsWebGpu } from './tfjs-webgpu';
import {
  benchTextPerPrompt,
  benchTrainingSteps,
  profileTrainingSteps,
  type RoundsPolicy,
  type StepProfile,
  type StepResult,
  type StepShape,
  type TextPromptResult,
} from './training-step';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    'b32-rounds': { type: 'string' },
    json: { type: 'string' },
    recipe: { type: 'boolean', default: false },
    tune: { type: 'boolean', default: false },
    host: { type: 'boolean', default: false },
    'recipe-vit': { type: 'string' },
    precision: { type: 'string', default: 'f32' },
    'memory-budget-gib': { type: 'string', default: '4' },
  },
});
const quick = args.quick;

function wholeNumber(flag: string, value: string | undefined): number | null {
  if (value === undefined) return null;
  const n = Number(value);
  if (!(Number.isInteger(n) && n >= 0)) throw new Error(`${flag} takes a whole number, got ${value}`);
  return n;
}

const MATMUL_POLICY: RepeatPolicy = quick
  ? { budgetMs: 500, minRepeats: 1, maxRepeats: 5 }
  : { budgetMs: 3000, minRepeats: 3, maxRepeats: 20 };
const TINY_STEP_ROUNDS: RoundsPolicy = quick ? { budgetMs: 3000, maxRounds: 4 } : { budgetMs: 30_000, maxRounds: 20 };
/** A ViT-B/32 step takes tens of seconds on SwiftShader: there, only each variant's measured step; rounds on a GPU. */
const b32Rounds = wholeNumber('--b32-rounds', args['b32-rounds']);
const B32_STEP_ROUNDS: RoundsPolicy =
  b32Rounds === null ? { budgetMs: 60_000, maxRounds: 10 } : { budgetMs: Infinity, maxRounds: b32Rounds };
const recipeVitSteps = wholeNumber('--recipe-vit', args['recipe-vit']);
const recipePrecisions = args.precision.split(',').map((name): Precision => {
  const setting = parsePrecision(name.trim());
  if (setting === 'auto') throw new Error('--precision takes the precisions to measure: f32, f16-storage, f16');
  return setting;
});
const memoryBudgetBytes = Number(args['memory-budget-gib']) * GIB;
if (!(memoryBudgetBytes > 0)) throw new Error('--memory-budget-gib takes a positive number of GiB');
const RECIPE_TINY_POLICY: RepeatPolicy = quick
  ? { budgetMs: 2000, minRepeats: 1, maxRepeats: 3 }
  : { budgetMs: 10_000, minRepeats: 3, maxRepeats: 10 };
const TEXT_POLICY: RepeatPolicy = { budgetMs: quick ? 500 : 3000, minRepeats: 1, maxRepeats: 10 };

const DIGITS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
const TINY_STEP: StepShape = { batch: 4, classes: DIGITS, textChunk: 5 };
const B32_STEP: StepShape = { batch: 2, classes: ['cat', 'dog', 'car', 'tree'], textChunk: 4 };

/** The ViT-B/16 run the 4 GiB target is about: CLIP-LoRA's recipe on 1,000 classes (ImageNet). */
const B16_TARGET = { batchSize: 32, classes: 1000, textChunk: 64, budgetBytes: 4 * GIB };

// ---- ViT-B/16 plan --------------------------------------------------------------------------

interface B16Plan {
  microBatchSize: number;
  textChunk: number;
  textPromptTokens: number;
  plan: MemoryPlan;
}

async function planB16(microBatchSize: number, textChunk: number, textPromptTokens?: number): Promise<B16Plan> {
  const config = vitB16Config();
  const plan = await planTrainingMemory(config, {
    batchSize: B16_TARGET.batchSize,
    microBatchSize,
    classes: B16_TARGET.classes,
    adapter: defaultAdapterSettings(config),
    textChunk,
    optimizer: 'adamw',
    textPromptTokens,
  });
  return { microBatchSize, textChunk, textPromptTokens: textPromptTokens ?? 8, plan };
}

/** The full batch, then each smaller micro-batch dividing it; the text chunk at the Trainer's default and below. */
type B16Plans = { full: B16Plan; microBatches: B16Plan[]; textChunks: B16Plan[]; longPrompts: B16Plan };

async function b16Plans(): Promise<B16Plans> {
  const microBatches = await Promise.all([32, 16, 8, 4, 2, 1].map((micro) => planB16(micro, B16_TARGET.textChunk)));
  const fitting =
    microBatches.find((p) => p.plan.peakBytes <= B16_TARGET.budgetBytes) ?? microBatches[microBatches.length - 1];
  return {
    full: microBatches[0],
    microBatches,
    textChunks: await Promise.all([64, 32, 16, 8].map((chunk) => planB16(fitting.microBatchSize, chunk))),
    // ImageNet's longest names make prompts of about 20 tokens: a chunk runs at its longest prompt's length.
    longPrompts: await planB16(fitting.microBatchSize, B16_TARGET.textChunk, 20),
  };
}

// ---- the offered models' plans --------------------------------------------------------------

interface ModelPlan {
  repo: string;
  name: string;
  imageTokens: number;
  parameters: number;
  downloadBytes: number;
  /** Planned peak of REFERENCE_RUN at each micro-batch. */
  plannedBytes: Record<number, number>;
}

const MODEL_PLAN_MICRO_BATCHES = [32, 8, 1];

async function modelPlans(): Promise<ModelPlan[]> {
  const plans: ModelPlan[] = [];
  for (const known of KNOWN_CLIP_MODELS) {
    const config = knownClipConfig(known);
    const plannedBytes: Record<number, number> = {};
    for (const micro of MODEL_PLAN_MICRO_BATCHES) plannedBytes[micro] = await plannedTrainingBytes(config, micro);
    plans.push({
      repo: known.repo,
      name: known.name,
      imageTokens: visionTokenCount(config.vision),
      parameters: parameterCount(config),
      downloadBytes: downloadBytes(config),
      plannedBytes,
    });
  }
  return plans;
}

function printModelPlans(plans: ModelPlan[]): void {
  console.log(
    `Batch ${REFERENCE_RUN.batchSize}, ${REFERENCE_RUN.classes} classes, Block-LoRA r=2 n=2 on q, k, v of both towers, AdamW, text chunk ${REFERENCE_RUN.textChunk}:`,
  );
  printTable(
    [
      'model',
      'repo',
      'image tokens',
      'parameters',
      'download MB',
      ...MODEL_PLAN_MICRO_BATCHES.map((m) => `micro ${m} MiB`),
    ],
    plans.map((p) => [
      p.name,
      p.repo,
      `${p.imageTokens}`,
      p.parameters.toLocaleString('en-US'),
      (p.downloadBytes / 1e6).toFixed(0),
      ...MODEL_PLAN_MICRO_BATCHES.map((m) => mib(p.plannedBytes[m])),
    ]),
    new Set([2, 3, 4, 5, 6, 7]),
  );
}

// ---- printing -------------------------------------------------------------------------------

function printMatmul(results: MatmulResult[]): void {
  printTable(
    ['M x K x N', 'octoclip GFLOP/s', 'tfjs GFLOP/s', 'ratio', 'CPU-time ratio', 'max |diff|', 'runs', 'what'],
    results.map((r) => [
      r.shape,
      fixed(r.octoclip.gflops, 2),
      fixed(r.tfjs?.gflops ?? null, 2),
      r.ratio === null ? '-' : `${r.ratio.toFixed(2)}x`,
      r.tfjs ? `${(r.tfjs.medianCpuMs / r.octoclip.medianCpuMs).toFixed(2)}x` : '-',
      r.maxAbsDifference === null ? '-' : r.maxAbsDifference.toExponential(1),
      `${r.octoclip.repeats}/${r.tfjs?.repeats ?? '-'}`,
      r.what,
    ]),
    new Set([1, 2, 3, 4, 5, 6]),
  );
}

const TUNE_TITLE = '## Matmul autotune: linearForward GFLOP/s per candidate and shape (M x K x N), median sample';

/** The autotune's measurements as GFLOP/s, a row per candidate, the chosen one marked. */
function printTune(choice: MatmulChoice): void {
  if (choice.source === 'table') {
    console.log(`the tune failed (${choice.reason}): the table's ${choice.config} runs`);
    return;
  }
  const { measurements, config, f16, milliseconds } = choice.tuning;
  const shapes = [...new Map(measurements.map((m) => [shapeName(m.shape), m.shape])).values()];
  const gflops = ({ rows, inFeatures, outFeatures }: TuneShape, ms: number) =>
    (2 * rows * inFeatures * outFeatures) / (ms * 1e6);
  const variants = [...new Set(measurements.map((m) => `${m.arithmetic} ${m.config}`))];
  const chosen = new Set([`f32 ${config}`, ...(f16 ? [`f16 ${f16.config}`] : [])]);
  printTable(
    ['arithmetic', 'candidate', ...shapes.map(shapeName), 'total ms', ''],
    variants.map((variant) => {
      const own = measurements.filter((m) => `${m.arithmetic} ${m.config}` === variant);
      return [
        ...variant.split(' '),
        ...own.map((m) => fixed(gflops(m.shape, m.ms), 1)),
        fixed(
          own.reduce((sum, m) => sum + m.ms, 0),
          3,
        ),
        chosen.has(variant) ? '<- chosen' : '',
      ];
    }),
    new Set(shapes.map((_, i) => i + 2).concat(shapes.length + 2)),
  );
  console.log(`chosen: ${config} in f32 (the lowest total), in ${milliseconds} ms with pipeline compilation`);
  if (f16) {
    console.log(`f16 arithmetic: ${f16.config}, ${fixed(f16.timeRatio, 2)} times f32's total time`);
  }
}

function reference(results: StepResult[], scale: string): StepResult | undefined {
  return results.find((r) => r.scale === scale && r.step === 'forward + backward, no adapters');
}

function printSteps(results: StepResult[]): void {
  printTable(
    [
      'scale',
      'step',
      'ms',
      'vs f+b',
      'CPU ms',
      'CPU vs f+b',
      'peak MiB',
      'planned MiB',
      'plan error',
      'trainable',
      'runs',
    ],
    results.map((r) => {
      const base = reference(results, r.scale);
      const relative = (value: number, baseValue: number) => (base && base !== r ? percent(value / baseValue - 1) : '');
      return [
        r.scale,
        r.step,
        fixed(r.medianMs, r.medianMs < 100 ? 1 : 0),
        relative(r.medianMs, base?.medianMs ?? 0),
        fixed(r.medianCpuMs, r.medianCpuMs < 100 ? 1 : 0),
        relative(r.medianCpuMs, base?.medianCpuMs ?? 0),
        mib(r.measuredPeakBytes),
        mib(r.planned.peakBytes),
        percent(r.planError, 2),
        r.trainableParameters.toLocaleString('en-US'),
        `${r.repeats}`,
      ];
    }),
    new Set([2, 3, 4, 5, 6, 7, 8, 9, 10]),
  );
  const first = results[0];
  if (first) {
    const shapes = [
      ...new Set(
        results.map(
          (r) =>
            `${r.scale}: batch ${r.batch}, ${r.classes} classes in chunks of ${r.textChunk}, prompts of ${r.promptTokens} tokens`,
        ),
      ),
    ];
    console.log(`(${shapes.join('; ')}; adapters on q, k, v of every layer of both towers; AdamW)`);
  }
}

/** A column pair (dispatches, GPU ms) per variant, a row per kernel, the busiest first; then the totals. */
function printProfiles(profiles: StepProfile[]): void {
  for (const scale of [...new Set(profiles.map((p) => p.scale))]) {
    const ofScale = profiles.filter((p) => p.scale === scale);
    const total = (kernel: string) => ofScale.reduce((sum, p) => sum + (p.byKernel[kernel]?.ms ?? 0), 0);
    const kernels = [...new Set(ofScale.flatMap((p) => Object.keys(p.byKernel)))].sort((a, b) => total(b) - total(a));
    const cells = (kernel: string) =>
      ofScale.flatMap((p) => {
        const k = p.byKernel[kernel];
        return k ? [`${k.dispatches}`, fixed(k.ms, 2)] : ['', ''];
      });
    console.log(`${scale}: dispatches and GPU ms per kernel, one step of each variant:`);
    printTable(
      ['kernel', ...ofScale.flatMap((p) => [`${p.step}: n`, 'ms'])],
      [
        ...kernels.map((kernel) => [kernel, ...cells(kernel)]),
        ['all', ...ofScale.flatMap((p) => [`${p.dispatches}`, fixed(p.gpuMs, 1)])],
      ],
      new Set(ofScale.flatMap((_, i) => [1 + 2 * i, 2 + 2 * i])),
    );
    console.log('');
  }
}

function printText(results: TextPromptResult[]): void {
  printTable(
    [
      'scale',
      'prompts',
      'tokens run',
      'ms/prompt',
      'all 77 tokens: ms/prompt',
      'speed-up',
      'CPU ms/prompt',
      'all 77: CPU ms/prompt',
    ],
    results.map((r) => [
      r.scale,
      `${r.prompts}`,
      `${r.stoppedTokens}`,
      fixed(r.stoppedMsPerPrompt, 1),
      fixed(r.fullMsPerPrompt, 1),
      `${(r.fullMsPerPrompt / r.stoppedMsPerPrompt).toFixed(1)}x`,
      fixed(r.stoppedCpuMsPerPrompt, 1),
      fixed(r.fullCpuMsPerPrompt, 1),
    ]),
    new Set([1, 2, 3, 4, 5, 6, 7]),
  );
}

function printB16(plans: B16Plans): void {
  const { full } = plans;
  const verdict = (bytes: number) => (bytes <= B16_TARGET.budgetBytes ? 'fits' : 'over');
  console.log(
    `Batch 32, 1,000 classes, Block-LoRA r=2 n=2 on q, k, v of both towers, AdamW, text chunk 64, 8-token prompts:`,
  );
  console.log(
    `planned peak ${mib(full.plan.peakBytes)} MiB = ${(full.plan.peakBytes / GIB).toFixed(2)} GiB against 4 GiB: ${verdict(full.plan.peakBytes)}`,
  );
  const parts = Object.entries(full.plan.breakdown).sort((a, b) => b[1] - a[1]);
  printTable(
    ['at the peak', 'MiB', 'share'],
    parts.map(([name, bytes]) => [name, mib(bytes), `${((100 * bytes) / full.plan.peakBytes).toFixed(1)}%`]),
    new Set([1, 2]),
  );
  console.log('');
  printTable(
    ['micro-batch', 'text chunk', 'prompt tokens', 'planned MiB', 'GiB', '4 GiB'],
    [...plans.microBatches, ...plans.textChunks.slice(1), plans.longPrompts].map((p) => [
      `${p.microBatchSize}`,
      `${p.textChunk}`,
      `${p.textPromptTokens}`,
      mib(p.plan.peakBytes),
      (p.plan.peakBytes / GIB).toFixed(2),
      verdict(p.plan.peakBytes),
    ]),
    new Set([0, 1, 2, 3, 4]),
  );
}

/** A target with its figure by wall-clock time and, for timings, by process CPU time (see Timing.medianCpuMs). */
interface Target {
  target: string;
  figure: string;
  met: boolean;
  cpuFigure: string | null;
  metByCpu: boolean | null;
}

/** Times compared as a / b - 1 on both clocks, met when that is at most `limit`. */
function timeTarget(target: string, a: StepResult, b: StepResult, limit: number): Target {
  const wall = a.medianMs / b.medianMs - 1;
  const cpu = a.medianCpuMs / b.medianCpuMs - 1;
  return { target, figure: percent(wall), met: wall <= limit, cpuFigure: percent(cpu), metByCpu: cpu <= limit };
}

function targets(matmul: MatmulResult[], steps: StepResult[], b16: B16Plans): Target[] {
  const list: Target[] = [];
  for (const scale of [...new Set(steps.map((s) => s.scale))]) {
    const of = (name: string) => steps.find((s) => s.scale === scale && s.step === name);
    for (const [block, lora] of [
      ['Block-LoRA r=2 n=2', 'LoRA r=2'],
      ['Block-LoRA r=8 n=8', 'LoRA r=8'],
    ]) {
      const b = of(block);
      const l = of(lora);
      if (b && l) list.push(timeTarget(`${scale}: ${block} step <= ${lora} step`, b, l, 0));
    }
    const base = reference(steps, scale);
    for (const s of steps.filter((r) => r.scale === scale && r.trainableParameters > 0)) {
      if (base) list.push(timeTarget(`${scale}: ${s.step} adds <= 5% to the step without adapters`, s, base, 0.05));
    }
  }
  const peak = b16.full.plan.peakBytes;
  list.push({
    target: 'planned ViT-B/16 peak (batch 32, 1,000 classes) <= 4 GiB',
    figure: `${(peak / GIB).toFixed(2)} GiB`,
    met: peak <= B16_TARGET.budgetBytes,
    cpuFigure: null,
    metByCpu: null,
  });
  for (const m of matmul) {
    if (!m.tfjs || m.ratio === null) continue;
    const cpuRatio = m.tfjs.medianCpuMs / m.octoclip.medianCpuMs;
    list.push({
      target: `matmul ${m.shape} >= 3x tfjs`,
      figure: `${m.ratio.toFixed(2)}x`,
      met: m.ratio >= 3,
      cpuFigure: `${cpuRatio.toFixed(2)}x`,
      metByCpu: cpuRatio >= 3,
    });
  }
  return list;
}

// ---- run --------------------------------------------------------------------------------------

/** The first device's matmul tune, which every later device of the run reads back (as the CLI's cache). */
let matmulTune: MatmulChoice | null = null;

async function openGpu(): Promise<GpuContext> {
  const ctx = await createNodeGpuContext();
  const choice = await tuneMatmul(ctx, matmulTune?.source === 'tuned' ? [matmulTune.tuning] : []);
  matmulTune ??= choice;
  return ctx;
}

async function withModel<T>(
  ctx: GpuContext,
  load: (ctx: GpuContext) => Promise<BenchModel>,
  work: (bench: BenchModel) => Promise<T>,
): Promise<T> {
  const bench = await load(ctx);
  try {
    return await work(bench);
  } finally {
    bench.model.destroy();
  }
}

/** The recipe's table on the tiny model, then (--recipe-vit) on ViT-B/32 and ViT-B/16, a device each. */
async function runRecipe(): Promise<{ adapter: string; results: RecipeResult[] }> {
  const results: RecipeResult[] = [];
  let adapter = '';
  const models: [(ctx: GpuContext, numerics: WeightNumerics) => Promise<BenchModel>, RepeatPolicy][] = [
    [loadTinyBenchModel, RECIPE_TINY_POLICY],
  ];
  if (recipeVitSteps !== null) {
    if (recipeVitSteps < 1) throw new Error('--recipe-vit takes at least 1 step');
    const policy = { budgetMs: 0, minRepeats: recipeVitSteps, maxRepeats: recipeVitSteps };
    models.push([loadRandomVitB32, policy], [loadRandomVitB16, policy]);
  }
  for (const [load, policy] of models) {
    for (const precision of recipePrecisions) {
      const ctx = await openGpu();
      adapter = ctx.adapterName;
      const needed = missingFeature(precision, ctx.device.features);
      if (needed) {
        progress(`recipe, ${precision}: skipped, ${ctx.adapterName} lacks ${needed}`);
        ctx.destroy();
        continue;
      }
      await withModel(
        ctx,
        (ctx) => load(ctx, PRECISION_NUMERICS[precision]),
        async (bench) => {
          progress(`${bench.scale} recipe, ${precision}`);
          results.push(...(await benchRecipe(ctx, bench, policy, memoryBudgetBytes)));
        },
      );
      ctx.destroy();
    }
  }
  return { adapter, results };
}

const HOST_TITLE = "## What a step costs the host: the engine's JavaScript, and the WebGPU objects a step makes";
const RECIPE_TITLE =
  '## Time to an adapter: the default recipe (q, k, v of both towers, batch 32, AdamW), a Trainer step, median wall-clock';

function writeJson(value: object): void {
  const json = JSON.stringify(value, null, 2);
  if (args.json) {
    writeFileSync(args.json, `${json}\n`);
    console.log(`JSON written to ${args.json}`);
  } else {
    console.log(json);
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  const code = codeVersion();
  const machine = `${cpus().length} CPU cores (${cpus()[0]?.model.trim() ?? 'unknown'}), Node ${process.version}`;
  if (args.recipe) {
    console.log(`octoclip bench --recipe, ${new Date().toISOString()}, code ${code}`);
    const { adapter, results: recipe } = await runRecipe();
    console.log(`adapter: ${adapter}; machine: ${machine}; memory budget ${args['memory-budget-gib']} GiB\n`);
    console.log(RECIPE_TITLE);
    printRecipe(recipe);
    console.log(`\n(${((performance.now() - started) / 1000).toFixed(0)} s in all)`);
    writeJson({ date: new Date().toISOString(), code, adapter, machine, memoryBudgetBytes, recipe });
    return;
  }
  if (args.host) {
    console.log(`octoclip bench --host, ${new Date().toISOString()}, code ${code}`);
    const ctx = await openGpu();
    const host = await withModel(ctx, loadTinyBenchModel, (tiny) => measureHostCost(ctx, tiny));
    console.log(`adapter: ${ctx.adapterName}; machine: ${machine}\n`);
    console.log(HOST_TITLE);
    printHostCost(host);
    ctx.destroy();
    writeJson({ date: new Date().toISOString(), code, adapter: ctx.adapterName, machine, host });
    return;
  }
  if (args.tune) {
    console.log(`octoclip bench --tune, ${new Date().toISOString()}, code ${code}`);
    const ctx = await openGpu();
    console.log(`adapter: ${ctx.adapterName}; machine: ${machine}\n`);
    console.log(TUNE_TITLE);
    printTune(matmulTune!);
    const plan = tunePlan(ctx);
    ctx.destroy();
    writeJson({ date: new Date().toISOString(), code, adapter: ctx.adapterName, machine, plan, matmulTune });
    return;
  }
  let tfjs: TfjsWebGpu | null = null;
  let tfjsError: string | null = null;
  try {
    tfjs = await loadTfjsWebGpu();
  } catch (error) {
    tfjsError = (error as Error).message;
  }
  // One device per model: the attention backward's scratch buffer lives as long as its device, and the
  // plan counts the scratch of the steps it describes.
  progress('matmul autotune');
  const matmulCtx = await openGpu();
  const adapter = matmulCtx.adapterName;
  const tune = matmulTune!;
  console.log(`octoclip bench, ${new Date().toISOString()}${quick ? ' (--quick)' : ''}, code ${code}`);
  console.log(
    `adapter: ${adapter} (matmul config ${tune.config}); tfjs-webgpu 4.22 adapter: ${tfjs?.adapterName ?? `unavailable (${tfjsError})`}`,
  );
  console.log(`machine: ${machine}\n`);
  console.log(TUNE_TITLE);
  printTune(tune);
  console.log('');

  progress('matmul');
  const shapes = quick ? CLIP_LINEAR_SHAPES.filter((s) => s.rows !== 1600) : CLIP_LINEAR_SHAPES;
  const matmul = await benchMatmul(matmulCtx, tfjs, shapes, MATMUL_POLICY);
  matmulCtx.destroy();
  console.log(
    '## Matrix products: y = x W^T + b (linearForward vs tf.fused.matMul), median wall-clock to GPU completion',
  );
  printMatmul(matmul);

  const steps: StepResult[] = [];
  const profiles: StepProfile[] = [];
  let profileNote = '';
  const profile = async (ctx: GpuContext, bench: BenchModel, shape: StepShape) => {
    if (!args.profile) return;
    progress(`${bench.scale} profile`);
    const result = await profileTrainingSteps(ctx, bench, shape);
    if (result) profiles.push(...result);
    else
      profileNote = `(no ${bench.scale} profile: the adapter has no timestamp queries, or a step has more passes than one query set holds)`;
  };
  const text: TextPromptResult[] = [];
  let host: HostCost | null = null;
  const tinyCtx = await openGpu();
  await withModel(tinyCtx, loadTinyBenchModel, async (bench) => {
    progress('tiny training steps');
    steps.push(...(await benchTrainingSteps(tinyCtx, bench, TINY_STEP, TINY_STEP_ROUNDS)));
    progress('host cost');
    host = await measureHostCost(tinyCtx, bench);
    await profile(tinyCtx, bench, TINY_STEP);
    if (quick) text.push(await benchTextPerPrompt(tinyCtx, bench, DIGITS, { stopped: TEXT_POLICY, full: TEXT_POLICY }));
  });
  tinyCtx.destroy();
  if (!quick) {
    const b32Ctx = await openGpu();
    await withModel(b32Ctx, loadRandomVitB32, async (bench) => {
      console.log(`\n(ViT-B/32 prompts tokenised with ${bench.tokenizer})`);
      progress('ViT-B/32 training steps');
      steps.push(...(await benchTrainingSteps(b32Ctx, bench, B32_STEP, B32_STEP_ROUNDS)));
      await profile(b32Ctx, bench, B32_STEP);
      progress('ViT-B/32 text tower');
      text.push(
        await benchTextPerPrompt(b32Ctx, bench, B32_STEP.classes, {
          stopped: TEXT_POLICY,
          full: { ...TEXT_POLICY, budgetMs: 0 },
        }),
      );
    });
    b32Ctx.destroy();
  }
  console.log(
    '\n## One training step: trainMicroBatch + AdamW update, median wall-clock; peak GPU bytes measured and planned',
  );
  printSteps(steps);
  if (args.profile) {
    console.log("\n## Where a step's GPU time goes (--profile: a compute pass and two timestamps per dispatch)");
    printProfiles(profiles);
    if (profileNote) console.log(profileNote);
  }
  console.log('\n## Text tower per class prompt (frozen), stopping at end-of-text vs all 77 positions');
  printText(text);
  console.log(`\n${HOST_TITLE}`);
  printHostCost(host!);

  progress('recipe');
  const { results: recipe } = await runRecipe();
  console.log(`\n${RECIPE_TITLE}`);
  printRecipe(recipe);

  console.log('\n## Planned ViT-B/16 training peak (planTrainingMemory)');
  const b16 = await b16Plans();
  printB16(b16);

  console.log('\n## Planned training peak of each offered model (planTrainingMemory)');
  const models = await modelPlans();
  printModelPlans(models);

  console.log('\n## Targets (reported, not asserted)');
  const targetList = targets(matmul, steps, b16);
  const yes = (met: boolean | null) => (met === null ? '' : met ? 'yes' : 'NO');
  printTable(
    ['target', 'wall clock', 'met', 'CPU time', 'met'],
    targetList.map((t) => [t.target, t.figure, yes(t.met), t.cpuFigure ?? '', yes(t.metByCpu)]),
    new Set([1, 3]),
  );
  console.log(`\n(${((performance.now() - started) / 1000).toFixed(0)} s in all)`);

  writeJson({
    date: new Date().toISOString(),
    quick,
    code,
    adapter,
    tfjsAdapter: tfjs?.adapterName ?? null,
    tfjsError,
    machine,
    matmulTune: tune,
    matmul,
    steps,
    profiles,
    text,
    recipe,
    host,
    b16: { target: B16_TARGET, ...b16 },
    models,
    targets: targetList,
  });
}

await main();
process.exit(0); // tfjs's device keeps Node's event loop alive
