// CLIPVisionTransformer: patch conv -> [class] + patches -> + positions -> pre_layrnorm -> encoder
// -> token 0 -> post_layernorm -> visual_projection. Forward, and backward to the adapters.

import type { ModelAdapters } from './adapter';
import type { GpuContext } from '../gpu/context';
import type { Tensor } from '../gpu/tensor';
import type { AttentionScratch } from '../kernels/attention';
import { extractPatches, gatherRowsBackward, gatherRowsForward, visionEmbeddingsForward } from '../kernels/embedding';
import { layerNormBackward, layerNormForward } from '../kernels/layernorm';
import { linearBackwardInput, linearForward } from '../kernels/matmul';
import type { ClipConfig } from './config';
import { ClipEncoder, type EncoderShape, type ForwardOptions } from './encoder';
import { TowerRun } from './tower-run';
import type { ClipWeights } from './weights';

export class ClipVisionTransformer {
  readonly encoder: ClipEncoder;
  readonly patchesPerSide: number;
  readonly seqLen: number;

  constructor(
    private readonly ctx: GpuContext,
    private readonly weights: ClipWeights,
    readonly config: ClipConfig,
    attentionScratch: AttentionScratch,
  ) {
    this.encoder = new ClipEncoder(ctx, weights, 'vision', config.vision, attentionScratch);
    this.patchesPerSide = config.vision.imageSize / config.vision.patchSize;
    this.seqLen = 1 + this.patchesPerSide ** 2;
  }

  /**
   * Image features [batch, projection_dim] (not normalised) of pixels [batch, 3, S, S].
   * With `record`, every layer's activations are kept in the returned run for backward().
   */
  forward(
    pixels: Tensor,
    batch: number,
    adapters: ModelAdapters | null,
    options: ForwardOptions & { record: boolean },
  ): TowerRun {
    const { ctx, weights, config } = this;
    const { hiddenSize: d, patchSize, imageSize, layerNormEps } = config.vision;
    const patches = this.patchesPerSide ** 2;
    const shape: EncoderShape = { batch, seqLen: this.seqLen, causal: false };
    const run = new TowerRun(ctx, this.encoder, shape, adapters, options);

    const patchPixels = ctx.tensor([batch * patches, 3 * patchSize * patchSize], 'vision.patches');
    const patchFeatures = ctx.tensor([batch * patches, d], 'vision.patch_features');
    extractPatches(ctx, pixels, patchPixels, { batch, imageSize, patchSize });
    linearForward(
      ctx,
      patchPixels,
      weights.get('vision_model.embeddings.patch_embedding.weight'),
      null,
      patchFeatures,
      { arithmetic: weights.arithmetic },
    );
    const embeddings = ctx.tensor([batch * this.seqLen, d], 'vision.embeddings');
    visionEmbeddingsForward(
      ctx,
      patchFeatures,
      weights.get('vision_model.embeddings.class_embedding'),
      weights.get('vision_model.embeddings.position_embedding.weight'),
      embeddings,
      { batch, patches, hidden: d },
    );
    patchPixels.destroy();
    patchFeatures.destroy();

    const hidden = run.hiddenInput;
    const stats = [
      ctx.tensor([batch * this.seqLen], 'vision.pre_layrnorm.mean'),
      ctx.tensor([batch * this.seqLen], 'vision.pre_layrnorm.rstd'),
    ];
    layerNormForward(
      ctx,
      embeddings,
      weights.get('vision_model.pre_layrnorm.weight'),
      weights.get('vision_model.pre_layrnorm.bias'),
      hidden,
      stats[0],
      stats[1],
      layerNormEps,
    );
    embeddings.destroy();
    stats.forEach((t) => t.destroy());

    const last = run.runEncoder();

    // Pool the class token, then post_layernorm and the projection, on [batch, d] only.
    const rows = ctx.tensor([batch], 'vision.pool_rows', new Float32Array(batch)); // token 0 of every image
    const pooled = ctx.tensor([batch, d], 'vision.pooled');
    gatherRowsForward(ctx, last, rows, pooled, { batch, seqLen: this.seqLen, hidden: d });
    const pooledNorm = ctx.tensor([batch, d], 'vision.post_layernorm');
    const mean = ctx.tensor([batch], 'vision.post_layernorm.mean');
    const rstd = ctx.tensor([batch], 'vision.post_layernorm.rstd');
    layerNormForward(
      ctx,
      pooled,
      weights.get('vision_model.post_layernorm.weight'),
      weights.get('vision_model.post_layernorm.bias'),
      pooledNorm,
      mean,
      rstd,
      layerNormEps,
    );
    const features = ctx.tensor([batch, config.projectionDim], 'vision.features');
    linearForward(ctx, pooledNorm, weights.get('visual_projection.weight'), null, features, {
      arithmetic: weights.arithmetic,
    });
    run.finish(features, { rows, pooled, mean, rstd }, [pooledNorm]);
    return run;
  }

  /** Backward from dFeatures [batch, projection_dim] to the adapters' gradients. Frees the run. */
  backward(run: TowerRun, dFeatures: Tensor): void {
    const { ctx, weights } = this;
    const d = this.config.vision.hiddenSize;
    const batch = run.shape.batch;
    const head = run.head!;
    const dPooledNorm = ctx.tensor([batch, d], 'vision.d_post_layernorm');
    linearBackwardInput(ctx, dFeatures, weights.get('visual_projection.weight'), dPooledNorm, {
      arithmetic: weights.arithmetic,
    });
    const dPooled = ctx.tensor([batch, d], 'vision.d_pooled');
    layerNormBackward(
      ctx,
      dPooledNorm,
      head.pooled,
      weights.get('vision_model.post_layernorm.weight'),
      head.mean,
      head.rstd,
      dPooled,
    );
    const dLast = run.gradientOfLast();
    ctx.zero(dLast);
    gatherRowsBackward(ctx, dPooled, head.rows, dLast, { batch, seqLen: this.seqLen, hidden: d });
    dPooledNorm.destroy();
    dPooled.destroy();
    run.backwardEncoder();
  }
}
