// A plain float64 CPU implementation of CLIP's forward pass (Hugging Face modeling_clip), with
// optional Block-LoRA adapters: the independent check of the WGSL model. Written for clarity, not
// speed; used only by tests, on the tiny CLIP.

import type { ClipConfig, HiddenAct, TowerConfig } from '../../src/model/config';
import { gelu, geluTanh, quickGelu } from './elementwise';

export type WeightMap = Map<string, ArrayLike<number>>;

/** Adapter weights by frozen-layer path: A_s [b, d_in] and B blocks [n, d_out, b], scale s. */
export interface ReferenceAdapter {
  a: ArrayLike<number>;
  blocks: ArrayLike<number>;
  blockCount: number;
  blockRank: number;
  scale: number;
}

export type ReferenceAdapters = Map<string, ReferenceAdapter>;

/** transformers' ACT2FN for the hidden_act values octoclip computes. */
const HIDDEN_ACT: Record<HiddenAct, (x: ArrayLike<number>) => Float64Array> = {
  quick_gelu: quickGelu,
  gelu,
  gelu_new: geluTanh,
  gelu_pytorch_tanh: geluTanh,
};

function get(weights: WeightMap, name: string): ArrayLike<number> {
  const w = weights.get(name);
  if (!w) throw new Error(`reference: missing ${name}`);
  return w;
}

/** y[rows, out] = x[rows, in] W[out, in]^T + b */
export function linear(
  x: ArrayLike<number>,
  rows: number,
  w: ArrayLike<number>,
  b: ArrayLike<number> | null,
  dIn: number,
  dOut: number,
): Float64Array {
  const y = new Float64Array(rows * dOut);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < dOut; o++) {
      let sum = b ? b[o] : 0;
      for (let i = 0; i < dIn; i++) sum += x[r * dIn + i] * w[o * dIn + i];
      y[r * dOut + o] = sum;
    }
  }
  return y;
}

/** Adds s * (sum_i B_i)(A_s x) to y (no dropout: the reference is the evaluation-mode model). */
function addAdapter(
  y: Float64Array,
  x: ArrayLike<number>,
  rows: number,
  dIn: number,
  dOut: number,
  adapter: ReferenceAdapter,
): void {
  const { a, blocks, blockCount, blockRank, scale } = adapter;
  for (let r = 0; r < rows; r++) {
    const u = new Float64Array(blockRank);
    for (let j = 0; j < blockRank; j++) {
      for (let i = 0; i < dIn; i++) u[j] += a[j * dIn + i] * x[r * dIn + i];
    }
    for (let o = 0; o < dOut; o++) {
      let sum = 0;
      for (let n = 0; n < blockCount; n++) {
        for (let j = 0; j < blockRank; j++) sum += blocks[(n * dOut + o) * blockRank + j] * u[j];
      }
      y[r * dOut + o] += scale * sum;
    }
  }
}

export function layerNorm(
  x: ArrayLike<number>,
  rows: number,
  d: number,
  w: ArrayLike<number>,
  b: ArrayLike<number>,
  eps: number,
): Float64Array {
  const y = new Float64Array(rows * d);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let i = 0; i < d; i++) mean += x[r * d + i];
    mean /= d;
    let variance = 0;
    for (let i = 0; i < d; i++) variance += (x[r * d + i] - mean) ** 2;
    variance /= d;
    const rstd = 1 / Math.sqrt(variance + eps);
    for (let i = 0; i < d; i++) y[r * d + i] = (x[r * d + i] - mean) * rstd * w[i] + b[i];
  }
  return y;
}

function encoderLayer(
  h: Float64Array,
  batch: number,
  seqLen: number,
  cfg: TowerConfig,
  weights: WeightMap,
  prefix: string,
  causal: boolean,
  adapters: ReferenceAdapters,
): Float64Array {
  const d = cfg.hiddenSize;
  const rows = batch * seqLen;
  const heads = cfg.numHeads;
  const headDim = d / heads;
  const proj = (x: ArrayLike<number>, name: string, dIn: number, dOut: number) => {
    const y = linear(
      x,
      rows,
      get(weights, `${prefix}.${name}.weight`),
      get(weights, `${prefix}.${name}.bias`),
      dIn,
      dOut,
    );
    const adapter = adapters.get(`${prefix}.${name}`);
    if (adapter) addAdapter(y, x, rows, dIn, dOut, adapter);
    return y;
  };
  const ln1 = layerNorm(
    h,
    rows,
    d,
    get(weights, `${prefix}.layer_norm1.weight`),
    get(weights, `${prefix}.layer_norm1.bias`),
    cfg.layerNormEps,
  );
  const q = proj(ln1, 'self_attn.q_proj', d, d);
  const k = proj(ln1, 'self_attn.k_proj', d, d);
  const v = proj(ln1, 'self_attn.v_proj', d, d);
  const attn = new Float64Array(rows * d);
  const scale = headDim ** -0.5;
  for (let b = 0; b < batch; b++) {
    for (let head = 0; head < heads; head++) {
      for (let i = 0; i < seqLen; i++) {
        const scores = new Float64Array(seqLen).fill(-Infinity);
        for (let j = 0; j < (causal ? i + 1 : seqLen); j++) {
          let dot = 0;
          for (let c = 0; c < headDim; c++)
            dot += q[(b * seqLen + i) * d + head * headDim + c] * scale * k[(b * seqLen + j) * d + head * headDim + c];
          scores[j] = dot;
        }
        const max = Math.max(...scores);
        let total = 0;
        for (let j = 0; j < seqLen; j++) total += scores[j] = Math.exp(scores[j] - max);
        for (let c = 0; c < headDim; c++) {
          let sum = 0;
          for (let j = 0; j < seqLen; j++) sum += (scores[j] / total) * v[(b * seqLen + j) * d + head * headDim + c];
          attn[(b * seqLen + i) * d + head * headDim + c] = sum;
        }
      }
    }
  }
  const o = proj(attn, 'self_attn.out_proj', d, d);
  const mid = h.map((value, i) => value + o[i]);
  const ln2 = layerNorm(
    mid,
    rows,
    d,
    get(weights, `${prefix}.layer_norm2.weight`),
    get(weights, `${prefix}.layer_norm2.bias`),
    cfg.layerNormEps,
  );
  const fc1 = proj(ln2, 'mlp.fc1', d, cfg.intermediateSize);
  const fc2 = proj(HIDDEN_ACT[cfg.hiddenAct](fc1), 'mlp.fc2', cfg.intermediateSize, d);
  return mid.map((value, i) => value + fc2[i]);
}

function encoder(
  h: Float64Array,
  batch: number,
  seqLen: number,
  cfg: TowerConfig,
  weights: WeightMap,
  tower: string,
  causal: boolean,
  adapters: ReferenceAdapters,
): Float64Array {
  for (let layer = 0; layer < cfg.numLayers; layer++) {
    h = encoderLayer(h, batch, seqLen, cfg, weights, `${tower}_model.encoder.layers.${layer}`, causal, adapters);
  }
  return h;
}

/** Image features [batch, projection_dim] of pixels [batch, 3, S, S] (already preprocessed). */
export function imageFeatures(
  config: ClipConfig,
  weights: WeightMap,
  pixels: ArrayLike<number>,
  batch: number,
  adapters: ReferenceAdapters = new Map(),
): Float64Array {
  const cfg = config.vision;
  const { hiddenSize: d, imageSize: size, patchSize: p } = cfg;
  const side = size / p;
  const seqLen = 1 + side * side;
  const conv = get(weights, 'vision_model.embeddings.patch_embedding.weight'); // [d, 3, p, p]
  const cls = get(weights, 'vision_model.embeddings.class_embedding');
  const pos = get(weights, 'vision_model.embeddings.position_embedding.weight');
  const h = new Float64Array(batch * seqLen * d);
  for (let b = 0; b < batch; b++) {
    for (let c = 0; c < d; c++) h[b * seqLen * d + c] = cls[c] + pos[c];
    for (let py = 0; py < side; py++) {
      for (let px = 0; px < side; px++) {
        const token = 1 + py * side + px;
        for (let o = 0; o < d; o++) {
          let sum = 0;
          for (let ch = 0; ch < 3; ch++) {
            for (let ky = 0; ky < p; ky++) {
              for (let kx = 0; kx < p; kx++) {
                sum +=
                  conv[((o * 3 + ch) * p + ky) * p + kx] *
                  pixels[((b * 3 + ch) * size + py * p + ky) * size + px * p + kx];
              }
            }
          }
          h[(b * seqLen + token) * d + o] = sum + pos[token * d + o];
        }
      }
    }
  }
  const pre = layerNorm(
    h,
    batch * seqLen,
    d,
    get(weights, 'vision_model.pre_layrnorm.weight'),
    get(weights, 'vision_model.pre_layrnorm.bias'),
    cfg.layerNormEps,
  );
  const last = encoder(pre, batch, seqLen, cfg, weights, 'vision', false, adapters);
  const pooled = new Float64Array(batch * d);
  for (let b = 0; b < batch; b++) for (let c = 0; c < d; c++) pooled[b * d + c] = last[b * seqLen * d + c];
  const post = layerNorm(
    pooled,
    batch,
    d,
    get(weights, 'vision_model.post_layernorm.weight'),
    get(weights, 'vision_model.post_layernorm.bias'),
    cfg.layerNormEps,
  );
  return linear(post, batch, get(weights, 'visual_projection.weight'), null, d, config.projectionDim);
}

/** Text features [prompts, projection_dim], running all `ids[i].length` positions (no early stop). */
export function textFeatures(
  config: ClipConfig,
  weights: WeightMap,
  ids: ArrayLike<number>[],
  eotIndex: number[],
  adapters: ReferenceAdapters = new Map(),
): Float64Array {
  const cfg = config.text;
  const d = cfg.hiddenSize;
  const batch = ids.length;
  const seqLen = ids[0].length;
  const tokens = get(weights, 'text_model.embeddings.token_embedding.weight');
  const pos = get(weights, 'text_model.embeddings.position_embedding.weight');
  const h = new Float64Array(batch * seqLen * d);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < seqLen; t++) {
      for (let c = 0; c < d; c++) h[(b * seqLen + t) * d + c] = tokens[ids[b][t] * d + c] + pos[t * d + c];
    }
  }
  const last = encoder(h, batch, seqLen, cfg, weights, 'text', true, adapters);
  const normed = layerNorm(
    last,
    batch * seqLen,
    d,
    get(weights, 'text_model.final_layer_norm.weight'),
    get(weights, 'text_model.final_layer_norm.bias'),
    cfg.layerNormEps,
  );
  const pooled = new Float64Array(batch * d);
  for (let b = 0; b < batch; b++)
    for (let c = 0; c < d; c++) pooled[b * d + c] = normed[(b * seqLen + eotIndex[b]) * d + c];
  return linear(pooled, batch, get(weights, 'text_projection.weight'), null, d, config.projectionDim);
}

/** logits[i, c] = exp(logit_scale) (clamped to 100) * cos(image_i, text_c) */
export function clipLogits(
  imageFeats: Float64Array,
  textFeats: Float64Array,
  dim: number,
  logitScale: number,
): Float64Array {
  const normalise = (x: Float64Array) => {
    const out = new Float64Array(x.length);
    for (let r = 0; r < x.length / dim; r++) {
      let norm = 0;
      for (let c = 0; c < dim; c++) norm += x[r * dim + c] ** 2;
      norm = Math.sqrt(norm);
      for (let c = 0; c < dim; c++) out[r * dim + c] = x[r * dim + c] / norm;
    }
    return out;
  };
  const img = normalise(imageFeats);
  const txt = normalise(textFeats);
  const images = img.length / dim;
  const classes = txt.length / dim;
  const scale = Math.min(Math.exp(logitScale), 100);
  const logits = new Float64Array(images * classes);
  for (let i = 0; i < images; i++) {
    for (let c = 0; c < classes; c++) {
      let dot = 0;
      for (let k = 0; k < dim; k++) dot += img[i * dim + k] * txt[c * dim + k];
      logits[i * classes + c] = scale * dot;
    }
  }
  return logits;
}
