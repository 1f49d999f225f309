// Export to the Hugging Face PEFT LoRA layout (adapter_model.safetensors + adapter_config.json), loadable with
// `PeftModel.from_pretrained(CLIPModel.from_pretrained(base), dir)`.
//
// Block-LoRA converts exactly: delta W = s (B_1 + ... + B_n) A_s is a LoRA of rank r/n with
// lora_B = sum_i B_i [d_out, r/n] and lora_A = A_s [r/n, d_in]. PEFT scales by lora_alpha / r (with
// use_rslora false), so lora_alpha is chosen as the float64 for which lora_alpha / (r/n) is our s: exactly
// whenever a float64 allows it (always when r/n is a power of two), else to one float64 step (loraAlphaFor).
// lora_B is summed in float64 and rounded to float32 once: exact whenever the f32 sum is exact (n = 1 always).
// (use_rslora's lora_alpha / sqrt(r) cannot express s = alpha / sqrt(r) exactly once r/n differs from r.)
// PEFT's lora_dropout, like ours, acts on the adapter's input only; in eval mode neither applies.

import { PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE } from '../common/file-names';
import { adaptedMatrices, assertValidAdapter, type AdapterMetadata, type AdapterTensors } from './adapter-file';
import { encodeSafetensors } from '../model/safetensors';


export interface PeftExport {
  [PEFT_WEIGHTS_FILE]: Uint8Array;
  [PEFT_CONFIG_FILE]: string;
}

/** The fields of PEFT's LoraConfig that octoclip writes (all present since PEFT 0.7). */
export interface PeftLoraConfig {
  peft_type: 'LORA';
  task_type: null;
  base_model_name_or_path: string;
  revision: null;
  inference_mode: boolean;
  r: number;
  lora_alpha: number;
  lora_dropout: number;
  /** Full module names: PEFT matches a list entry against a module's whole name (or a dotted suffix). */
  target_modules: string[];
  bias: 'none';
  fan_in_fan_out: boolean;
  init_lora_weights: boolean;
  use_rslora: boolean;
  layers_to_transform: null;
  layers_pattern: null;
  modules_to_save: null;
  rank_pattern: Record<string, never>;
  alpha_pattern: Record<string, never>;
}

/** PEFT saves a CLIPModel's LoRA weights under the wrapper's path: base_model (LoraModel) . model (CLIPModel). */
const PEFT_KEY_PREFIX = 'base_model.model.';

/** Converts a (Block-)LoRA adapter to PEFT's LoRA files (see the file comment). Throws RangeError on an invalid adapter. */
export function toPeft(meta: AdapterMetadata, tensors: AdapterTensors): PeftExport {
  assertValidAdapter(meta, tensors, 'toPeft');
  const blockRank = meta.rank / meta.blocks;
  const matrices = adaptedMatrices(meta);

  const peftTensors = matrices.flatMap(({ path, aName, bName }) => {
    const a = tensors.get(aName)!;
    const b = tensors.get(bName)!;
    const dOut = b.shape[1];
    return [
      { name: `${PEFT_KEY_PREFIX}${path}.lora_A.weight`, shape: [blockRank, a.shape[1]], data: a.data },
      { name: `${PEFT_KEY_PREFIX}${path}.lora_B.weight`, shape: [dOut, blockRank], data: sumBlocks(b.data, meta.blocks, dOut * blockRank) },
    ];
  });

  const config: PeftLoraConfig = {
    peft_type: 'LORA',
    task_type: null,
    base_model_name_or_path: meta.baseModel,
    revision: null,
    inference_mode: true,
    r: blockRank,
    lora_alpha: loraAlphaFor(meta.scaling, blockRank),
    lora_dropout: meta.dropout,
    target_modules: matrices.map((matrix) => matrix.path),
    bias: 'none',
    fan_in_fan_out: false,
    init_lora_weights: true,
    use_rslora: false,
    layers_to_transform: null,
    layers_pattern: null,
    modules_to_save: null,
    rank_pattern: {},
    alpha_pattern: {},
  };

  return {
    [PEFT_WEIGHTS_FILE]: encodeSafetensors(peftTensors, { format: 'pt' }),
    [PEFT_CONFIG_FILE]: `${JSON.stringify(sortKeys(config), null, 2)}\n`,
  };
}

/**
 * The lora_alpha that makes PEFT's scaling, lora_alpha / r in float64 (Python's float division), equal to
 * `scaling`: scaling * r, or the neighbouring float64 that divides back exactly when that product rounded.
 * For some (scaling, r) no float64 divides back exactly (when r is not a power of two, the quotients
 * lora_alpha / r can be spaced wider than float64 steps near `scaling`); then the nearest one is returned,
 * one float64 step from `scaling` (a relative 1e-16), which is still exactly the same float32 scaling:
 * the precision PEFT's float32 weights apply it at.
 */
export function loraAlphaFor(scaling: number, r: number): number {
  if (!(Number.isFinite(scaling) && scaling > 0) || !Number.isSafeInteger(r) || r < 1) {
    throw new RangeError(`loraAlphaFor: needs a positive scaling and rank, got ${scaling} and ${r}`);
  }
  const product = scaling * r;
  let best = product;
  let bestError = Math.abs(product / r - scaling);
  let down = product;
  let up = product;
  // scaling * r is within half a step of the exact product, so the candidates lie a step or two away.
  for (let step = 1; step <= 4 && bestError > 0; step++) {
    down = nextFloat64(down, -1);
    up = nextFloat64(up, +1);
    for (const candidate of [down, up]) {
      const error = Math.abs(candidate / r - scaling);
      if (error < bestError) [best, bestError] = [candidate, error];
    }
  }
  return best;
}

/**
 * The Python a user runs to load the export (written into the export folder `dir`) and classify a photo with
 * the adapter's classes and prompt.
 */
export function peftPythonRecipe(
  meta: Pick<AdapterMetadata, 'baseModel' | 'classNames' | 'promptTemplate'>,
  dir = 'octoclip-peft',
): string {
  // JSON strings and lists of strings are valid Python literals.
  const py = (value: unknown) => JSON.stringify(value);
  return [
    '# pip install torch transformers peft safetensors pillow',
    'import torch',
    'from PIL import Image',
    'from peft import PeftModel',
    'from transformers import CLIPModel, CLIPProcessor',
    '',
    `base = ${py(meta.baseModel)}`,
    `model = PeftModel.from_pretrained(CLIPModel.from_pretrained(base), ${py(dir)}).eval()`,
    '# model = model.merge_and_unload()  # optional: a plain CLIPModel with the adapter folded into its weights',
    'processor = CLIPProcessor.from_pretrained(base)',
    '',
    `class_names = ${py(meta.classNames)}`,
    `prompts = [${py(meta.promptTemplate)}.replace("{}", name.replace("_", " ").strip(), 1) for name in class_names]`,
    'inputs = processor(text=prompts, images=Image.open("photo.jpg").convert("RGB"), return_tensors="pt", padding=True)',
    'with torch.no_grad():',
    '    logits = model(**inputs).logits_per_image',
    'print(class_names[logits.argmax(dim=-1).item()])',
    '',
  ].join('\n');
}

/** sum over the leading axis of [blocks, size] values, accumulated in float64 and rounded once. */
function sumBlocks(data: Float32Array, blocks: number, size: number): Float32Array {
  const out = new Float32Array(size);
  for (let j = 0; j < size; j++) {
    let sum = 0;
    for (let i = 0; i < blocks; i++) sum += data[i * size + j];
    out[j] = sum;
  }
  return out;
}

const bits = new DataView(new ArrayBuffer(8));

/** The adjacent float64 above (+1) or below (-1) a positive finite value. */
function nextFloat64(value: number, direction: 1 | -1): number {
  bits.setFloat64(0, value);
  bits.setBigUint64(0, bits.getBigUint64(0) + BigInt(direction));
  return bits.getFloat64(0);
}

function sortKeys<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))) as T;
}
