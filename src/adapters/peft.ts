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

import { ADAPTER_FILE_EXTENSION, PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE } from '../common/file-names';
import { adaptedMatrices, assertValidAdapter, type AdapterMetadata, type AdapterTensors } from './adapter-file';
import type { ClipConfig } from '../model/config';
import {
  decodeTensor,
  encodeSafetensors,
  parseSafetensorsHeader,
  type SafetensorsHeader,
  type TensorEntry,
} from '../model/safetensors';
import { layerPath, scalingFor, TARGET_MATRICES, type TargetMatrix, type Tower } from './settings';

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
      {
        name: `${PEFT_KEY_PREFIX}${path}.lora_B.weight`,
        shape: [dOut, blockRank],
        data: sumBlocks(b.data, meta.blocks, dOut * blockRank),
      },
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

// ---------------------------------------------------------------------------------------------------------
// Import: a PEFT LoRA adapter for CLIPModel (e.g. CLIP-LoRA-style training in PyTorch) -> an octoclip adapter
// with n = 1. LoRA's delta W = (lora_alpha / r) B A, or lora_alpha / sqrt(r) with use_rslora, is exactly
// octoclip's LoRA with alpha = lora_alpha under the matching scaling rule, so weights are copied unchanged.

/** The PEFT adapter cannot become an octoclip adapter; the message says why and what would fit. */
export class PeftImportError extends Error {
  override name = 'PeftImportError';
}

/** What octoclip needs of the base model to check a PEFT adapter against it. */
export interface PeftImportBase {
  id: string;
  fingerprint: string;
  config: Pick<ClipConfig, 'text' | 'vision'>;
}

const PEFT_TENSOR =
  /^(?:base_model\.model\.)?(text|vision)_model\.encoder\.layers\.(\d+)\.(?:self_attn\.(q_proj|k_proj|v_proj|out_proj)|mlp\.(fc1|fc2))\.lora_(A|B)\.weight$/;

/**
 * Converts PEFT's `adapter_config.json` text and `adapter_model.safetensors` bytes into an octoclip adapter
 * for `base`. Refuses (PeftImportError) anything that does not map exactly: another adapter type, DoRA,
 * per-module ranks or alphas, biases or saved modules, tensors off CLIP's encoder layers (another
 * architecture), matrices not adapted alike in every layer, or shapes that do not fit the base model.
 */
export function fromPeft(
  configText: string,
  weights: Uint8Array,
  base: PeftImportBase,
  labels: { classNames: string[]; promptTemplate: string; name?: string; metrics?: Record<string, unknown> },
): { meta: AdapterMetadata; tensors: AdapterTensors } {
  const refuse = (problem: string): never => {
    throw new PeftImportError(problem);
  };
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(configText);
  } catch (error) {
    return refuse(`${PEFT_CONFIG_FILE} is not valid JSON (${(error as Error).message})`);
  }
  if (config.peft_type !== 'LORA')
    return refuse(
      `${PEFT_CONFIG_FILE} has peft_type ${JSON.stringify(config.peft_type)}: only LoRA adapters (LORA) can be imported`,
    );
  if (config.use_dora) return refuse('the adapter uses DoRA (use_dora: true), which octoclip does not compute');
  if (config.fan_in_fan_out)
    return refuse('fan_in_fan_out is true: that layout belongs to GPT-2-style Conv1D layers, not CLIP');
  if (config.bias !== undefined && config.bias !== 'none')
    return refuse(`bias is "${config.bias}": octoclip adapters train no biases`);
  for (const key of ['rank_pattern', 'alpha_pattern'] as const) {
    const pattern = config[key];
    if (pattern && typeof pattern === 'object' && Object.keys(pattern).length) {
      return refuse(
        `${key} gives some modules their own ${key === 'rank_pattern' ? 'rank' : 'alpha'}: an octoclip adapter has one rank and one alpha`,
      );
    }
  }
  const modulesToSave = config.modules_to_save;
  if (Array.isArray(modulesToSave) && modulesToSave.length)
    return refuse(
      `modules_to_save (${modulesToSave.join(', ')}) are fully trained modules, which an octoclip adapter cannot hold`,
    );
  const rank = config.r;
  const loraAlpha = config.lora_alpha;
  if (!Number.isSafeInteger(rank) || (rank as number) < 1)
    return refuse(`r is ${JSON.stringify(rank)}, expected a positive integer`);
  if (typeof loraAlpha !== 'number' || !(loraAlpha > 0))
    return refuse(`lora_alpha is ${JSON.stringify(loraAlpha)}, expected a positive number`);
  const dropout = typeof config.lora_dropout === 'number' ? config.lora_dropout : 0;

  let header: SafetensorsHeader;
  try {
    header = parseSafetensorsHeader(weights, weights.length, PEFT_WEIGHTS_FILE);
  } catch (error) {
    return refuse((error as Error).message);
  }
  const found = new Map<
    string,
    { tower: Tower; layer: number; target: TargetMatrix; a?: TensorEntry; b?: TensorEntry }
  >();
  for (const entry of header.tensors.values()) {
    const match = PEFT_TENSOR.exec(entry.name);
    if (!match) {
      return refuse(
        `tensor ${entry.name} is not a LoRA weight of a CLIP encoder layer (q_proj, k_proj, v_proj, out_proj, fc1, fc2): ` +
          `was this adapter made for another architecture? (${PEFT_CONFIG_FILE} names base model ${JSON.stringify(config.base_model_name_or_path)})`,
      );
    }
    const [, tower, layer, attention, mlp, side] = match;
    const target = (attention ?? mlp) as TargetMatrix;
    const path = layerPath(tower as Tower, Number(layer), target);
    const matrix = found.get(path) ?? { tower: tower as Tower, layer: Number(layer), target };
    matrix[side === 'A' ? 'a' : 'b'] = entry;
    found.set(path, matrix);
  }
  if (!found.size) return refuse(`${PEFT_WEIGHTS_FILE} holds no LoRA weights`);

  const targets = TARGET_MATRICES.filter((target) => [...found.values()].some((m) => m.target === target));
  const layers = { text: [] as number[], vision: [] as number[] };
  for (const tower of ['text', 'vision'] as const) {
    layers[tower] = [...new Set([...found.values()].filter((m) => m.tower === tower).map((m) => m.layer))].sort(
      (x, y) => x - y,
    );
    const count = base.config[tower].numLayers;
    const beyond = layers[tower].find((layer) => layer >= count);
    if (beyond !== undefined)
      return refuse(
        `it adapts ${tower} layer ${beyond}, but the base model ${base.id} has ${count} ${tower} layers: it was made for another base model`,
      );
  }
  const meta: AdapterMetadata = {
    method: 'lora',
    rank: rank as number,
    blocks: 1,
    alpha: loraAlpha,
    scalingRule: config.use_rslora ? 'alpha/sqrt(r)' : 'alpha/r',
    scaling: scalingFor(config.use_rslora ? 'alpha/sqrt(r)' : 'alpha/r', loraAlpha, rank as number),
    dropout,
    targets,
    layers,
    baseModel: base.id,
    baseModelFingerprint: base.fingerprint,
    classNames: labels.classNames,
    promptTemplate: labels.promptTemplate,
    training: { importedFrom: 'peft', peftBaseModel: config.base_model_name_or_path ?? null },
    // The export's own metrics hold for the import: converting Block-LoRA to LoRA changes no weight (B summed).
    metrics: labels.metrics ?? {},
    ...(labels.name && { name: labels.name }),
  };

  const tensors: AdapterTensors = new Map();
  for (const { tower, layer, target, path, aName, bName } of adaptedMatrices(meta)) {
    const matrix = found.get(path);
    if (!matrix)
      return refuse(
        `${path} has no LoRA weights, yet ${target} is adapted in other layers: octoclip adapts the same matrices in every adapted layer`,
      );
    if (!matrix.a || !matrix.b)
      return refuse(`${path} has lora_${matrix.a ? 'B' : 'A'} but no lora_${matrix.a ? 'A' : 'B'}`);
    const dIn = target === 'fc2' ? base.config[tower].intermediateSize : base.config[tower].hiddenSize;
    const dOut = target === 'fc1' ? base.config[tower].intermediateSize : base.config[tower].hiddenSize;
    const [a, b] = [matrix.a, matrix.b];
    if (a.shape[0] !== rank || b.shape[1] !== rank) {
      return refuse(
        `${path} has lora_A [${a.shape}] and lora_B [${b.shape}], which do not have the rank r = ${rank} of ${PEFT_CONFIG_FILE}`,
      );
    }
    if (a.shape.length !== 2 || b.shape.length !== 2 || a.shape[1] !== dIn || b.shape[0] !== dOut) {
      return refuse(
        `${path} has lora_A [${a.shape}] and lora_B [${b.shape}]; the base model ${base.id} needs [${rank}, ${dIn}] and [${dOut}, ${rank}] (${tower} layer ${layer}): it was made for another base model`,
      );
    }
    const decode = (entry: TensorEntry) =>
      decodeTensor(entry, weights.subarray(entry.byteOffset, entry.byteOffset + entry.byteLength), PEFT_WEIGHTS_FILE);
    tensors.set(aName, { shape: [rank as number, dIn], data: decode(a) });
    tensors.set(bName, { shape: [1, dOut, rank as number], data: decode(b) });
  }
  try {
    assertValidAdapter(meta, tensors, 'the imported adapter');
  } catch (error) {
    return refuse((error as Error).message);
  }
  return { meta, tensors };
}

// ---------------------------------------------------------------------------------------------------------
// The self-contained export: PEFT's two files, the class names and prompt in a JSON file, and a model card.

export const PEFT_CLASSES_FILE = 'classes.json';
export const PEFT_MODEL_CARD_FILE = 'README.md';

/**
 * `classes.json`: what a classifier needs besides the weights, for Python and for `import-peft`, and what
 * octoclip's library shows of the adapter (its name and metrics), so that an import keeps them.
 */
export interface PeftClasses {
  class_names: string[];
  prompt_template: string;
  name?: string;
  metrics?: Record<string, unknown>;
}

/** Every file of the export folder (or zip), by name: toPeft's two, `classes.json` and the `README.md` model card. */
export function peftExportFiles(
  meta: AdapterMetadata,
  tensors: AdapterTensors,
  dir = 'octoclip-peft',
): Record<string, Uint8Array | string> {
  const classes: PeftClasses = {
    class_names: meta.classNames,
    prompt_template: meta.promptTemplate,
    ...(meta.name && { name: meta.name }),
    ...(Object.keys(meta.metrics).length > 0 && { metrics: meta.metrics }),
  };
  return {
    ...toPeft(meta, tensors),
    [PEFT_CLASSES_FILE]: `${JSON.stringify(classes, null, 2)}\n`,
    [PEFT_MODEL_CARD_FILE]: peftModelCard(meta, dir),
  };
}

/** Reads `classes.json` of an export; throws PeftImportError naming what is wrong. */
export function parsePeftClasses(text: string): PeftClasses {
  let value: Partial<PeftClasses>;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new PeftImportError(`${PEFT_CLASSES_FILE} is not valid JSON (${(error as Error).message})`);
  }
  const names = value.class_names;
  if (!Array.isArray(names) || !names.length || !names.every((name) => typeof name === 'string' && name.trim())) {
    throw new PeftImportError(`${PEFT_CLASSES_FILE} has no "class_names" list of non-empty names`);
  }
  if (typeof value.prompt_template !== 'string' || !value.prompt_template.includes('{}')) {
    throw new PeftImportError(`${PEFT_CLASSES_FILE} has no "prompt_template" with a {} for the class name`);
  }
  if (value.name !== undefined && (typeof value.name !== 'string' || !value.name.trim())) {
    throw new PeftImportError(`${PEFT_CLASSES_FILE} has a "name" that is not a non-empty string`);
  }
  const { metrics } = value;
  if (metrics !== undefined && (typeof metrics !== 'object' || metrics === null || Array.isArray(metrics))) {
    throw new PeftImportError(`${PEFT_CLASSES_FILE} has "metrics" that are not a JSON object`);
  }
  return {
    class_names: names,
    prompt_template: value.prompt_template,
    ...(value.name !== undefined && { name: value.name.trim() }),
    ...(metrics !== undefined && { metrics }),
  };
}

/** The Hugging Face model card: base model, classes, prompt, settings, metrics and how to use it. */
export function peftModelCard(meta: AdapterMetadata, dir = 'octoclip-peft'): string {
  const revision = typeof meta.training.revision === 'string' ? meta.training.revision : 'main';
  const rows = (record: Record<string, unknown>) =>
    Object.entries(record).map(
      ([key, value]) => `| ${key} | ${typeof value === 'string' ? value : JSON.stringify(value)} |`,
    );
  return [
    '---',
    `base_model: ${JSON.stringify(meta.baseModel)}`,
    'library_name: peft',
    'pipeline_tag: zero-shot-image-classification',
    'tags: [clip, lora, octoclip]',
    '---',
    '',
    `# ${meta.method === 'lora' ? 'LoRA' : 'Block-LoRA'} adapter for ${meta.baseModel}`,
    '',
    `Trained with octoclip. Base model: \`${meta.baseModel}\` (revision \`${revision}\`, weights fingerprint \`${meta.baseModelFingerprint}\`).`,
    `Classes (${meta.classNames.length}, also in \`${PEFT_CLASSES_FILE}\`): ${meta.classNames.map((name) => `\`${name}\``).join(', ')}.`,
    `Prompt template: \`${meta.promptTemplate}\` (underscores in class names read as spaces).`,
    '',
    '## Settings',
    '',
    '| setting | value |',
    '| --- | --- |',
    ...rows({
      method: meta.method,
      rank: meta.rank,
      blocks: meta.blocks,
      alpha: meta.alpha,
      scaling_rule: meta.scalingRule,
      scaling: meta.scaling,
      dropout: meta.dropout,
      targets: meta.targets,
      layers: meta.layers,
    }),
    ...rows(meta.training),
    '',
    '## Metrics',
    '',
    ...(Object.keys(meta.metrics).length
      ? ['| metric | value |', '| --- | --- |', ...rows(meta.metrics)]
      : ['None recorded.']),
    '',
    '## Use it in Python',
    '',
    '```python',
    peftPythonRecipe(meta, dir).trimEnd(),
    '```',
    '',
    '## Use it in octoclip',
    '',
    '```sh',
    `octoclip import-peft --peft ${dir} --model ${meta.baseModel} --out adapter${ADAPTER_FILE_EXTENSION}`,
    '```',
    '',
  ].join('\n');
}

/**
 * PEFT's files among an export's files by path (a zip's entries or a dropped folder's files; a top folder
 * is fine): the config and weights (required) and classes.json (optional). Throws PeftImportError naming
 * what is missing.
 */
export function findPeftFiles(files: ReadonlyMap<string, Uint8Array>): {
  config: string;
  weights: Uint8Array;
  classes: PeftClasses | null;
} {
  const byName = new Map([...files].map(([path, bytes]) => [path.split('/').pop()!, bytes]));
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  const config = byName.get(PEFT_CONFIG_FILE);
  const weights = byName.get(PEFT_WEIGHTS_FILE);
  if (!config || !weights) {
    throw new PeftImportError(
      `a PEFT adapter holds ${PEFT_CONFIG_FILE} and ${PEFT_WEIGHTS_FILE}; this has no ${config ? PEFT_WEIGHTS_FILE : PEFT_CONFIG_FILE}`,
    );
  }
  const classes = byName.get(PEFT_CLASSES_FILE);
  return { config: text(config), weights, classes: classes ? parsePeftClasses(text(classes)) : null };
}
