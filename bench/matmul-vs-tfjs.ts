// GFLOP/s of nn.Linear's forward at CLIP's shapes: octoclip's linearForward (src/kernels/matmul.ts) and
// TensorFlow.js's WebGPU backend (a fused matMul with bias) on the same shapes, in the same process, on
// the same kind of adapter. Both are timed from dispatch to the GPU's completion (onSubmittedWorkDone).

import type { GpuContext } from '../src/gpu/context';
import { linearForward } from '../src/kernels/matmul';
import { progress, timeMedian, type RepeatPolicy, type Timing } from './measure';
import { tfjsLinear, type TfjsWebGpu } from './tfjs-webgpu';

export interface LinearShape {
  rows: number;
  inFeatures: number;
  outFeatures: number;
  what: string;
}

/** M x K x N (rows x in x out) of linear layers in CLIP, and a square reference point. */
export const CLIP_LINEAR_SHAPES: readonly LinearShape[] = [
  { rows: 50, inFeatures: 768, outFeatures: 768, what: 'ViT-B/32 q/k/v/out projection, 1 image' },
  { rows: 197, inFeatures: 768, outFeatures: 3072, what: 'ViT-B/16 MLP fc1, 1 image' },
  { rows: 1600, inFeatures: 768, outFeatures: 2304, what: 'ViT-B/32 q, k, v together, 32 images' },
  { rows: 77, inFeatures: 512, outFeatures: 512, what: 'text projection, one 77-token prompt' },
  { rows: 512, inFeatures: 512, outFeatures: 512, what: 'square reference' },
];

export interface MatmulResult {
  shape: string;
  what: string;
  gflop: number;
  octoclip: Timing & { gflops: number };
  tfjs: (Timing & { gflops: number }) | null;
  /** octoclip's GFLOP/s over tfjs's. */
  ratio: number | null;
  /** Largest |octoclip - tfjs| over the outputs: both computed the same product. */
  maxAbsDifference: number | null;
}

function shapeName({ rows, inFeatures, outFeatures }: LinearShape): string {
  return `${rows}x${inFeatures}x${outFeatures}`;
}

function uniform(length: number, seed: number): Float32Array {
  let state = seed >>> 0;
  return Float32Array.from({ length }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296 - 0.5;
  });
}

export async function benchMatmul(
  ctx: GpuContext,
  tfjs: TfjsWebGpu | null,
  shapes: readonly LinearShape[],
  policy: RepeatPolicy,
): Promise<MatmulResult[]> {
  const results: MatmulResult[] = [];
  for (const shape of shapes) {
    const { rows, inFeatures, outFeatures } = shape;
    const data = {
      x: uniform(rows * inFeatures, 1),
      weight: uniform(outFeatures * inFeatures, 2),
      bias: uniform(outFeatures, 3),
    };
    const flops = 2 * rows * inFeatures * outFeatures;
    const gflops = (ms: number) => flops / (ms * 1e6);

    const x = ctx.tensor([rows, inFeatures], 'x', data.x);
    const weight = ctx.tensor([outFeatures, inFeatures], 'weight', data.weight);
    const bias = ctx.tensor([outFeatures], 'bias', data.bias);
    const y = ctx.tensor([rows, outFeatures], 'y');
    const ours = await timeMedian(async () => {
      linearForward(ctx, x, weight, bias, y);
      await ctx.sync();
    }, policy);
    const ourOutput = await ctx.read(y);
    [x, weight, bias, y].forEach((t) => t.destroy());
    progress(`matmul ${shapeName(shape)}: octoclip ${gflops(ours.medianMs).toFixed(2)} GFLOP/s`);

    let theirs: MatmulResult['tfjs'] = null;
    let maxAbsDifference: number | null = null;
    if (tfjs) {
      const { tf } = tfjs;
      const tx = tf.tensor2d(data.x, [rows, inFeatures]);
      const tw = tf.tensor2d(data.weight, [outFeatures, inFeatures]);
      const tb = tf.tensor1d(data.bias);
      const timing = await timeMedian(async () => {
        const out = tfjsLinear(tf, tx, tw, tb);
        await tfjs.sync();
        out.dispose();
      }, policy);
      const out = tfjsLinear(tf, tx, tw, tb);
      const theirOutput = (await out.data()) as Float32Array;
      maxAbsDifference = theirOutput.reduce((worst, value, i) => Math.max(worst, Math.abs(value - ourOutput[i])), 0);
      tf.dispose([tx, tw, tb, out]);
      theirs = { gflops: gflops(timing.medianMs), ...timing };
      progress(`matmul ${shapeName(shape)}: tfjs ${theirs.gflops.toFixed(2)} GFLOP/s`);
    }
    results.push({
      shape: shapeName(shape),
      what: shape.what,
      gflop: flops / 1e9,
      octoclip: { gflops: gflops(ours.medianMs), ...ours },
      tfjs: theirs,
      ratio: theirs ? gflops(ours.medianMs) / theirs.gflops : null,
      maxAbsDifference,
    });
  }
  return results;
}
