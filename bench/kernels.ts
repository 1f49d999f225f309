// Kernel benchmark on whatever adapter Node's WebGPU finds: GFLOP/s of the matrix products at CLIP's
// shapes and GB/s of the memory-bound kernels. A new kernel is one more Benchmark entry (see
// MEMORY_BOUND); its module is imported at the top like the others.
//
//   npm run bench:kernels [-- --quick] [--json FILE] [--matmul-variants] [--shapes 512x512x512,...]
//
// --quick: shorter and fewer samples. --json FILE: write the results there instead of printing them
// after the table. --matmul-variants: time every MATMUL_CONFIGS entry (how matmulConfigFor's table
// is chosen). --shapes: only these matmul shapes (M x K x N).

import { writeFileSync } from 'node:fs';
import type { GpuContext } from '../src/gpu/context';
import type { Tensor } from '../src/gpu/tensor';
import * as elementwise from '../src/kernels/elementwise';
import { MATMUL_CONFIGS, linearForward, matmul, matmulConfigFor, type MatmulConfig } from '../src/kernels/matmul';
import { matmulConfigName } from '../src/kernels/matmul-tune';
import { createNodeGpuContext } from '../src/node/gpu';

interface Benchmark {
  kernel: string;
  shape: string;
  /** Floating-point operations (compute-bound kernels) or bytes read and written (memory-bound) per run. */
  work: { flops: number } | { bytes: number };
  /** Allocates inputs; returns the work to time and the tensors to free afterwards. */
  prepare(ctx: GpuContext): { run: () => void; tensors: Tensor[] };
}

function filledTensor(ctx: GpuContext, shape: number[], label: string): Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  return ctx.tensor(
    shape,
    label,
    Float32Array.from({ length: size }, () => Math.random() - 0.5),
  );
}

// ---- matrix products --------------------------------------------------------------------------

interface LinearShape {
  rows: number;
  inFeatures: number;
  outFeatures: number;
}

// rows x in x out of nn.Linear layers in CLIP (M x K x N of the product), and a square reference point.
const CLIP_LINEAR_SHAPES: LinearShape[] = [
  { rows: 50, inFeatures: 768, outFeatures: 768 }, // ViT-B/32 attention projection, 1 image
  { rows: 197, inFeatures: 768, outFeatures: 3072 }, // ViT-B/16 MLP fc1, 1 image
  { rows: 1600, inFeatures: 768, outFeatures: 2304 }, // ViT-B/32 q, k and v projections at once, 32 images
  { rows: 77, inFeatures: 512, outFeatures: 512 }, // text transformer projection, 1 caption
  { rows: 512, inFeatures: 512, outFeatures: 512 },
];

const shapeName = ({ rows, inFeatures, outFeatures }: LinearShape) => `${rows}x${inFeatures}x${outFeatures}`;

/** linearForward, or with `config` the same product through matmul with that kernel configuration. */
function linearBenchmark(linearShape: LinearShape, config?: MatmulConfig): Benchmark {
  const { rows, inFeatures, outFeatures } = linearShape;
  return {
    kernel: config ? `matmul ${matmulConfigName(config)}` : 'linearForward',
    shape: shapeName(linearShape),
    work: { flops: 2 * rows * inFeatures * outFeatures },
    prepare(ctx) {
      const x = filledTensor(ctx, [rows, inFeatures], 'x');
      const weight = filledTensor(ctx, [outFeatures, inFeatures], 'weight');
      const bias = filledTensor(ctx, [outFeatures], 'bias');
      const y = ctx.tensor([rows, outFeatures], 'y');
      const run = config
        ? () => matmul(ctx, x, weight, y, { m: rows, n: outFeatures, k: inFeatures, transposeB: true, bias, config })
        : () => linearForward(ctx, x, weight, bias, y);
      return { run, tensors: [x, weight, bias, y] };
    },
  };
}

// ---- memory-bound kernels (GB/s counts each tensor read or written once) -----------------------

// The MLP activations of 32 images in ViT-B/32: 32 x 50 tokens x 3072.
const ACTIVATION_COUNT = 32 * 50 * 3072;

/** A kernel over ACTIVATION_COUNT elements that reads `reads` and writes `writes` tensors of that size. */
function elementwiseBenchmark(
  kernel: string,
  reads: number,
  writes: number,
  launch: (ctx: GpuContext, tensors: Tensor[]) => void,
): Benchmark {
  return {
    kernel,
    shape: `${ACTIVATION_COUNT}`,
    work: { bytes: 4 * ACTIVATION_COUNT * (reads + writes) },
    prepare(ctx) {
      const tensors = Array.from({ length: 3 }, (_, i) => filledTensor(ctx, [ACTIVATION_COUNT], `t${i}`));
      return { run: () => launch(ctx, tensors), tensors };
    },
  };
}

const MEMORY_BOUND: Benchmark[] = [
  elementwiseBenchmark('quickGeluForward', 1, 1, (ctx, [x, out]) =>
    elementwise.activationForward(ctx, 'quick_gelu', x, out),
  ),
  elementwiseBenchmark('quickGeluBackward', 2, 1, (ctx, [x, dout, dx]) =>
    elementwise.activationBackward(ctx, 'quick_gelu', x, dout, dx),
  ),
  elementwiseBenchmark('add', 2, 1, (ctx, [a, b, out]) => elementwise.add(ctx, a, b, out)),
  elementwiseBenchmark('addScaledInPlace', 2, 1, (ctx, [target, x]) =>
    elementwise.addScaledInPlace(ctx, target, x, 0.5),
  ),
  elementwiseBenchmark('scale', 1, 1, (ctx, [x, out]) => elementwise.scale(ctx, x, 2, out)),
];

// ---- timing -----------------------------------------------------------------------------------

interface Timing {
  /** Median over samples of the time per run. */
  medianMs: number;
  samples: number;
  /** Runs recorded back to back in each sample. */
  runsPerSample: number;
  /** 'gpu': timestamp queries (time on the GPU alone); 'wall': submit to completion, as seen from Node. */
  clock: 'gpu' | 'wall';
}

// Dawn rounds GPU timestamps to 65.5 us, so a sample records enough runs back to back to last sampleMs.
const MAX_RUNS_PER_SAMPLE = 4096;

/** A warm-up run (pipeline compilation), then `samples` samples of about sampleMs each; the median per run. */
async function time(ctx: GpuContext, run: () => void, sampleMs: number, samples: number): Promise<Timing> {
  const timeSample = async (runs: number) => {
    const { gpuMs, wallMs } = await ctx.time(() => {
      for (let i = 0; i < runs; i++) run();
    });
    return (gpuMs ?? wallMs) / runs;
  };
  await timeSample(1);
  let runsPerSample = 1;
  let perRun = await timeSample(runsPerSample);
  while (perRun * runsPerSample < sampleMs && runsPerSample < MAX_RUNS_PER_SAMPLE) {
    runsPerSample = Math.min(MAX_RUNS_PER_SAMPLE, runsPerSample * 4);
    perRun = await timeSample(runsPerSample);
  }
  const perRunMs = [perRun];
  while (perRunMs.length < samples) perRunMs.push(await timeSample(runsPerSample));
  perRunMs.sort((a, b) => a - b);
  const middle = samples >> 1;
  const medianMs = samples % 2 ? perRunMs[middle] : (perRunMs[middle - 1] + perRunMs[middle]) / 2;
  return { medianMs, samples, runsPerSample, clock: ctx.canTime ? 'gpu' : 'wall' };
}

interface Result extends Timing {
  kernel: string;
  shape: string;
  unit: 'GFLOP/s' | 'GB/s';
  value: number;
}

async function measure(ctx: GpuContext, benchmark: Benchmark, quick: boolean): Promise<Result> {
  const { run, tensors } = benchmark.prepare(ctx);
  const timing = await time(ctx, run, quick ? 5 : 20, quick ? 3 : 5);
  tensors.forEach((t) => t.destroy());
  const perSecond = 1000 / timing.medianMs;
  const { kernel, shape, work } = benchmark;
  return 'flops' in work
    ? { kernel, shape, unit: 'GFLOP/s', value: (work.flops * perSecond) / 1e9, ...timing }
    : { kernel, shape, unit: 'GB/s', value: (work.bytes * perSecond) / 1e9, ...timing };
}

function printTable(results: Result[]): void {
  const rows = [
    ['kernel', 'shape', 'rate', 'unit', 'ms per run', 'samples x runs', 'clock'],
    ...results.map((r) => [
      r.kernel,
      r.shape,
      r.value.toFixed(r.value < 10 ? 2 : 1),
      r.unit,
      r.medianMs.toPrecision(3),
      `${r.samples} x ${r.runsPerSample}`,
      r.clock,
    ]),
  ];
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  const numeric = new Set([2, 4, 5]);
  for (const row of rows) {
    console.log(
      row
        .map((cell, column) => (numeric.has(column) ? cell.padStart(widths[column]) : cell.padEnd(widths[column])))
        .join('  '),
    );
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const value = (flag: string) => {
    const at = args.indexOf(flag);
    if (at >= 0 && !args[at + 1]) throw new Error(`${flag} needs a value`);
    return at >= 0 ? args[at + 1] : null;
  };
  const jsonFile = value('--json');
  const onlyShapes = value('--shapes')?.split(',');
  const unknown = onlyShapes?.filter((name) => !CLIP_LINEAR_SHAPES.some((s) => shapeName(s) === name));
  if (unknown?.length)
    throw new Error(
      `--shapes: no benchmark of ${unknown.join(', ')}; known: ${CLIP_LINEAR_SHAPES.map(shapeName).join(', ')}`,
    );
  const shapes = CLIP_LINEAR_SHAPES.filter((s) => !onlyShapes || onlyShapes.includes(shapeName(s)));
  const benchmarks = args.includes('--matmul-variants')
    ? Object.values(MATMUL_CONFIGS).flatMap((config) => shapes.map((shape) => linearBenchmark(shape, config)))
    : [...shapes.map((shape) => linearBenchmark(shape)), ...MEMORY_BOUND];

  const ctx = await createNodeGpuContext();
  console.log(`adapter: ${ctx.adapterName}; matmul config: ${matmulConfigName(matmulConfigFor(ctx.adapterName))}`);
  const results: Result[] = [];
  for (const benchmark of benchmarks) {
    results.push(await measure(ctx, benchmark, quick));
    process.stderr.write(`  ${benchmark.kernel} ${benchmark.shape} done\n`);
  }
  printTable(results);
  const json = JSON.stringify({ adapter: ctx.adapterName, date: new Date().toISOString(), quick, results }, null, 2);
  if (jsonFile) writeFileSync(jsonFile, `${json}\n`);
  else console.log(json);
  ctx.destroy();
}

await main();
