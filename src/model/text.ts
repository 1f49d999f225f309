// CLIPTextTransformer: token + position embeddings -> causal encoder -> final_layer_norm -> the
// end-of-text token -> text_projection. Forward, and backward to the adapters.

import type { ModelAdapters } from './adapter';
import type { GpuContext } from '../gpu/context';
import type { Tensor } from '../gpu/tensor';
import type { AttentionScratch } from '../kernels/attention';
import { gatherRowsBackward, gatherRowsForward, textEmbeddingsForward } from '../kernels/embedding';
import { layerNormBackward, layerNormForward } from '../kernels/layernorm';
import { linearBackwardInput, linearForward } from '../kernels/matmul';
import type { ClipConfig } from './config';
import { ClipEncoder, type EncoderShape, type ForwardOptions } from './encoder';
import { TowerRun } from './tower-run';
import type { ClipWeights } from './weights';

/** Tokenised prompts: ids padded to the context length, and each prompt's end-of-text position. */
export interface TokenBatch {
  ids: Int32Array[];
  eotIndex: number[];
}

export class ClipTextTransformer {
  readonly encoder: ClipEncoder;

  constructor(
    private readonly ctx: GpuContext,
    private readonly weights: ClipWeights,
    readonly config: ClipConfig,
    attentionScratch: AttentionScratch,
  ) {
    this.encoder = new ClipEncoder(ctx, weights, 'text', config.text, attentionScratch);
  }

  /**
   * Text features [prompts, projection_dim] (not normalised). The causal mask means no token after a
   * prompt's end-of-text can change its pooled feature, so by default the pass stops at the batch's
   * last end-of-text position instead of running all 77 positions (`stopAtEndOfText: false` runs them all).
   */
  forward(
    tokens: TokenBatch,
    adapters: ModelAdapters | null,
    options: ForwardOptions & { record: boolean; stopAtEndOfText?: boolean },
  ): TowerRun {
    const { ctx, weights, config } = this;
    const { hiddenSize: d, layerNormEps, maxPositions } = config.text;
    const batch = tokens.ids.length;
    const seqLen = options.stopAtEndOfText === false ? maxPositions : Math.max(...tokens.eotIndex) + 1;
    const shape: EncoderShape = { batch, seqLen, causal: true };
    const run = new TowerRun(ctx, this.encoder, shape, adapters, options);

    const idData = new Float32Array(batch * seqLen);
    tokens.ids.forEach((row, b) => {
      for (let t = 0; t < seqLen; t++) idData[b * seqLen + t] = row[t];
    });
    const ids = ctx.tensor([batch, seqLen], 'text.input_ids', idData);
    textEmbeddingsForward(
      ctx,
      ids,
      weights.get('text_model.embeddings.token_embedding.weight'),
      weights.get('text_model.embeddings.position_embedding.weight'),
      run.hiddenInput,
      { batch, seqLen, hidden: d },
    );
    ids.destroy();

    const last = run.runEncoder();

    // final_layer_norm is per token, so applying it to the pooled end-of-text rows only is exact.
    const rows = ctx.tensor([batch], 'text.eot_rows', Float32Array.from(tokens.eotIndex));
    const pooled = ctx.tensor([batch, d], 'text.pooled');
    gatherRowsForward(ctx, last, rows, pooled, { batch, seqLen, hidden: d });
    const pooledNorm = ctx.tensor([batch, d], 'text.final_layer_norm');
    const mean = ctx.tensor([batch], 'text.final_layer_norm.mean');
    const rstd = ctx.tensor([batch], 'text.final_layer_norm.rstd');
    layerNormForward(
      ctx,
      pooled,
      weights.get('text_model.final_layer_norm.weight'),
      weights.get('text_model.final_layer_norm.bias'),
      pooledNorm,
      mean,
      rstd,
      layerNormEps,
    );
    const features = ctx.tensor([batch, config.projectionDim], 'text.features');
    linearForward(ctx, pooledNorm, weights.get('text_projection.weight'), null, features, {
      arithmetic: weights.arithmetic,
    });
    run.finish(features, { rows, pooled, mean, rstd }, [pooledNorm]);
    return run;
  }

  /** Backward from dFeatures [prompts, projection_dim] to the adapters' gradients. Frees the run. */
  backward(run: TowerRun, dFeatures: Tensor): void {
    const { ctx, weights } = this;
    const d = this.config.text.hiddenSize;
    const { batch, seqLen } = run.shape;
    const head = run.head!;
    const dPooledNorm = ctx.tensor([batch, d], 'text.d_final_layer_norm');
    linearBackwardInput(ctx, dFeatures, weights.get('text_projection.weight'), dPooledNorm, {
      arithmetic: weights.arithmetic,
    });
    const dPooled = ctx.tensor([batch, d], 'text.d_pooled');
    layerNormBackward(
      ctx,
      dPooledNorm,
      head.pooled,
      weights.get('text_model.final_layer_norm.weight'),
      head.mean,
      head.rstd,
      dPooled,
    );
    const dLast = run.gradientOfLast();
    ctx.zero(dLast);
    gatherRowsBackward(ctx, dPooled, head.rows, dLast, { batch, seqLen, hidden: d });
    dPooledNorm.destroy();
    dPooled.destroy();
    run.backwardEncoder();
  }
}
