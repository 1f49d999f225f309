// The octoclip adapter file: a safetensors file holding a trained Block-LoRA (or LoRA) adapter, with everything
// needed to use it again in the header's `__metadata__` (safetensors allows string values only there;
// numbers are written as JavaScript's shortest round-trip decimal, structured values as JSON).
//
// Tensors, per adapted matrix, named after the frozen layer they sit on (layerPath, e.g.
// `vision_model.encoder.layers.3.self_attn.q_proj`):
//   `<layer>.block_lora_A`  [r/n, d_in]        the shared down-projection A_s
//   `<layer>.block_lora_B`  [n, d_out, r/n]    the up-projection blocks B_1 .. B_n
// and delta W = scaling * (B_1 + ... + B_n) A_s.
//
// Metadata keys: format ("octoclip-adapter"), format_version ("1"), method, rank, blocks, alpha,
// scaling_rule, scaling, dropout, targets (JSON list), layers (JSON {"text": [...], "vision": [...]}),
// base_model, base_model_fingerprint, class_names (JSON list), prompt_template, class_prompts (JSON object
// of class name to its own prompt; optional, absent in older files), training (JSON object), metrics (JSON object),
// name (the adapter's name in the studio's library, written when it is downloaded; optional). Readers ignore
// other keys, so later versions may add some.

import { TOWERS } from '../common/recipe';
import {
  decodeTensor,
  encodeSafetensors,
  ModelFileError,
  parseSafetensorsHeader,
  type SafetensorsHeader,
} from '../model/safetensors';
import {
  layerPath,
  scalingFor,
  TARGET_MATRICES,
  type AdapterSettings,
  type ScalingRule,
  type TargetMatrix,
  type Tower,
} from './settings';

export const ADAPTER_FORMAT = 'octoclip-adapter';
export const ADAPTER_FORMAT_VERSION = 1;
const SCALING_RULES: readonly ScalingRule[] = ['alpha/sqrt(r)', 'alpha/r'];
const METHODS: readonly AdapterSettings['method'][] = ['block-lora', 'lora'];

/** Everything an adapter file records besides its tensors. */
export interface AdapterMetadata extends AdapterSettings {
  /** What the adapter is called where it was made (the studio's library); absent when it was never named. */
  name?: string;
  /** Both towers are always listed; an empty list means the tower carries no adapter. */
  layers: Record<Tower, number[]>;
  /** s in delta W = s (sum_i B_i) A_s, as `scalingRule` gives it from alpha and rank (checked). */
  scaling: number;
  /** The base model's id, e.g. "openai/clip-vit-base-patch32". */
  baseModel: string;
  /** The Hub commit of the base model's files, when it came from the Hub (pinned: `org/name@<commit>` loads it again). */
  baseModelRevision?: string;
  /** `fingerprintWeights` of the base model (src/model/fingerprint.ts): adapters for another base are refused. */
  baseModelFingerprint: string;
  /** The classes the adapter was trained on, by label. */
  classNames: string[];
  /** The prompt used for the class text features, e.g. "a photo of a {}.". */
  promptTemplate: string;
  /** Classes with their own prompt instead of the template's, by class name (absent when none has). */
  classPrompts?: Record<string, string>;
  /** The training settings (shots, seed, iterations, lr, ...), as JSON. */
  training: Record<string, unknown>;
  /** Results (accuracy before/after, loss, ...), as JSON. */
  metrics: Record<string, unknown>;
}

export interface AdapterTensor {
  shape: number[];
  data: Float32Array;
}

/** Adapter parameters by tensor name. */
export type AdapterTensors = Map<string, AdapterTensor>;

/** One adapted matrix and the names of its two tensors. */
export interface AdaptedMatrix {
  tower: Tower;
  layer: number;
  target: TargetMatrix;
  /** The frozen layer's checkpoint name, e.g. `text_model.encoder.layers.0.self_attn.q_proj`. */
  path: string;
  /** `${path}.block_lora_A` */
  aName: string;
  /** `${path}.block_lora_B` */
  bName: string;
}

/** The file cannot be used as an adapter; the message names the file and the problem. */
export class AdapterFileError extends Error {
  constructor(
    problem: string,
    readonly fileName?: string,
    options?: { cause?: unknown },
  ) {
    super(`${fileName ?? 'adapter file'}: ${problem}`, options);
    this.name = 'AdapterFileError';
  }
}

/** The adapter was trained on another base model than the one loaded. */
export class AdapterMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AdapterMismatchError';
  }
}

/** Every adapted matrix, in file order: text then vision, layers as listed, targets as listed. */
export function adaptedMatrices(meta: Pick<AdapterMetadata, 'layers' | 'targets'>): AdaptedMatrix[] {
  return TOWERS.flatMap((tower) =>
    (meta.layers[tower] ?? []).flatMap((layer) =>
      meta.targets.map((target) => {
        const path = layerPath(tower, layer, target);
        return { tower, layer, target, path, aName: `${path}.block_lora_A`, bName: `${path}.block_lora_B` };
      }),
    ),
  );
}

/** s from alpha and rank under a scaling rule: alpha / sqrt(r) (CLIP-LoRA) or alpha / r (LoRA paper, PEFT). */

/**
 * Writes an adapter file. `tensors` must hold exactly the tensors `meta` names (`adaptedMatrices`), with
 * consistent shapes and finite values; anything else throws a RangeError (a bug in the caller).
 */
export function encodeAdapterFile(meta: AdapterMetadata, tensors: AdapterTensors): Uint8Array {
  assertValidAdapter(meta, tensors, 'encodeAdapterFile');
  const ordered = adaptedMatrices(meta).flatMap(({ aName, bName }) =>
    [aName, bName].map((name) => {
      const { shape, data } = tensors.get(name) as AdapterTensor;
      return { name, shape: [...shape], data };
    }),
  );
  return encodeSafetensors(ordered, metadataStrings(meta));
}

/** Throws a RangeError (prefixed with `context`) unless `meta` and `tensors` make a valid adapter (see `decodeAdapterFile`). */
export function assertValidAdapter(meta: AdapterMetadata, tensors: AdapterTensors, context = 'adapter'): void {
  const problem = checkMetadata(meta) ?? checkTensors(meta, tensors);
  if (problem) throw new RangeError(`${context}: ${problem}`);
}

/**
 * Reads and validates an adapter file: a safetensors file whose metadata says octoclip-adapter version 1, with
 * every tensor the metadata names (and no other), shapes consistent with rank and blocks and with one
 * another (one hidden and one MLP width per tower), and finite values. Throws `AdapterFileError` naming
 * `fileName` otherwise.
 */
export function decodeAdapterFile(
  bytes: Uint8Array,
  fileName?: string,
): { meta: AdapterMetadata; tensors: AdapterTensors } {
  const fail = (problem: string, cause?: unknown): never => {
    throw new AdapterFileError(problem, fileName, cause === undefined ? undefined : { cause });
  };

  let header: SafetensorsHeader;
  try {
    header = parseSafetensorsHeader(bytes, bytes.length, fileName);
  } catch (error) {
    if (!(error instanceof ModelFileError)) throw error;
    const detail =
      fileName && error.message.startsWith(`${fileName}: `) ? error.message.slice(fileName.length + 2) : error.message;
    return fail(unreadableFileProblem(bytes, detail), error);
  }

  if (
    header.metadata.format !== ADAPTER_FORMAT &&
    [...header.tensors.keys()].some((name) => PEFT_LORA_TENSOR.test(name))
  ) {
    return fail(
      'this is a PEFT LoRA adapter (adapter_model.safetensors), not an octoclip adapter: import its folder or zip with its ' +
        'adapter_config.json (octoclip import-peft --peft DIR --model M --out A.octoclip.safetensors, or Import PEFT in the Adapter library)',
    );
  }
  const meta = parseMetadata(header.metadata, fail);

  const tensors: AdapterTensors = new Map();
  for (const entry of header.tensors.values()) {
    try {
      const data = decodeTensor(entry, bytes.subarray(entry.byteOffset, entry.byteOffset + entry.byteLength));
      tensors.set(entry.name, { shape: [...entry.shape], data });
    } catch (error) {
      if (!(error instanceof ModelFileError)) throw error;
      return fail(error.message, error);
    }
  }
  const problem = checkTensors(meta, tensors);
  if (problem) return fail(problem);
  return { meta, tensors };
}

/** The adapter file again, with `name` recorded in its metadata (and everything else as it was). */
export function namedAdapterFile(bytes: Uint8Array, name: string, fileName?: string): Uint8Array {
  const { meta, tensors } = decodeAdapterFile(bytes, fileName);
  return encodeAdapterFile({ ...meta, name: name.trim() }, tensors);
}

/**
 * Throws `AdapterMismatchError` unless the adapter was trained on the loaded base model. The fingerprint
 * decides: a base saved under another id (a local mirror) with the same weights is accepted.
 */
export function assertAdapterMatchesBase(
  meta: Pick<AdapterMetadata, 'baseModel' | 'baseModelFingerprint'>,
  baseModelId: string,
  baseFingerprint: string,
  /** The adapter's file name, for the message. */
  adapterName?: string,
): void {
  if (meta.baseModelFingerprint === baseFingerprint) return;
  const name = adapterName ? `adapter ${adapterName}` : 'this adapter';
  throw new AdapterMismatchError(
    `${name} was trained on ${meta.baseModel} (fingerprint ${meta.baseModelFingerprint}), ` +
      `the loaded model is ${baseModelId} (fingerprint ${baseFingerprint}): load ${meta.baseModel} to use it`,
  );
}

const PEFT_LORA_TENSOR = /\.lora_[AB]\.weight$/;
const LENGTH_PREFIX_BYTES = 8;
/** No adapter header comes near this; a larger length means the first bytes are not a header length. */
const PLAUSIBLE_HEADER_BYTES = 100_000_000;

/**
 * What a person can act on when the safetensors reader refuses the bytes: a cut-off file says how much of it
 * arrived ("incomplete: N of M bytes"), one that does not start with a header length is corrupt or of another
 * kind; `detail` (the reader's message) explains anything else.
 */
function unreadableFileProblem(bytes: Uint8Array, detail: string): string {
  if (bytes.length === 0) return 'not an octoclip adapter: the file is empty';
  if (bytes.length < LENGTH_PREFIX_BYTES) return `not an octoclip adapter: the file has only ${bytes.length} bytes`;
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset, LENGTH_PREFIX_BYTES).getBigUint64(0, true));
  const corrupt =
    'not an octoclip adapter: the file is corrupt or of another kind (it does not start with a safetensors header)';
  if (headerLength < 2 || headerLength > PLAUSIBLE_HEADER_BYTES) return corrupt;
  const cutOff = (expected: string) =>
    `incomplete: ${bytes.length} of ${expected} bytes (the file was cut off: download or copy it again)`;
  const dataStart = LENGTH_PREFIX_BYTES + headerLength;
  if (dataStart > bytes.length) return cutOff(`more than ${dataStart}`);
  let entries: unknown[];
  try {
    entries = Object.values(
      JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(LENGTH_PREFIX_BYTES, dataStart))),
    );
  } catch {
    return corrupt;
  }
  const dataEnd = Math.max(
    0,
    ...entries.map((entry) => Number((entry as { data_offsets?: number[] })?.data_offsets?.[1]) || 0),
  );
  if (dataStart + dataEnd > bytes.length) return cutOff(String(dataStart + dataEnd));
  return `corrupt: ${detail}`;
}

// ---------------------------------------------------------------------------------------------------------
// Metadata <-> strings

function metadataStrings(meta: AdapterMetadata): Record<string, string> {
  return {
    format: ADAPTER_FORMAT,
    format_version: String(ADAPTER_FORMAT_VERSION),
    method: meta.method,
    rank: String(meta.rank),
    blocks: String(meta.blocks),
    alpha: String(meta.alpha),
    scaling_rule: meta.scalingRule,
    scaling: String(meta.scaling),
    dropout: String(meta.dropout),
    targets: JSON.stringify(meta.targets),
    layers: JSON.stringify({ text: meta.layers.text, vision: meta.layers.vision }),
    base_model: meta.baseModel,
    ...(meta.baseModelRevision ? { base_model_revision: meta.baseModelRevision } : {}),
    base_model_fingerprint: meta.baseModelFingerprint,
    class_names: JSON.stringify(meta.classNames),
    prompt_template: meta.promptTemplate,
    ...(meta.classPrompts && { class_prompts: JSON.stringify(meta.classPrompts) }),
    training: JSON.stringify(meta.training),
    metrics: JSON.stringify(meta.metrics),
    ...(meta.name && { name: meta.name }),
  };
}

function parseMetadata(strings: Record<string, string>, fail: (problem: string) => never): AdapterMetadata {
  const format = strings.format;
  if (format !== ADAPTER_FORMAT) {
    fail(
      `not an octoclip adapter (${format === undefined ? 'its metadata has no "format"' : `its format is "${format}"`})`,
    );
  }
  const version = strings.format_version;
  if (version !== String(ADAPTER_FORMAT_VERSION)) {
    const newer = Number(version) > ADAPTER_FORMAT_VERSION;
    fail(
      `adapter format version ${version ?? '(missing)'} is not one this octoclip reads (${ADAPTER_FORMAT_VERSION})` +
        (newer ? ': it was written by a newer octoclip' : ''),
    );
  }

  const text = (key: string): string => {
    const value = strings[key];
    return value === undefined ? fail(`metadata lacks "${key}"`) : value;
  };
  const numeric = (key: string): number => {
    const value = text(key);
    const parsed = Number(value);
    return value.trim() === '' || !Number.isFinite(parsed)
      ? fail(`metadata "${key}" is "${value}", expected a number`)
      : parsed;
  };
  const json = (key: string): unknown => {
    try {
      return JSON.parse(text(key));
    } catch {
      return fail(`metadata "${key}" is not valid JSON`);
    }
  };
  const oneOf = <T extends string>(key: string, allowed: readonly T[]): T => {
    const value = text(key);
    return (allowed as readonly string[]).includes(value)
      ? (value as T)
      : fail(`metadata "${key}" is "${value}", expected one of ${allowed.map((a) => `"${a}"`).join(', ')}`);
  };
  const stringList = (key: string): string[] => {
    const value = json(key);
    const isList = Array.isArray(value) && value.every((item) => typeof item === 'string');
    return isList ? value : fail(`metadata "${key}" is not a JSON list of strings`);
  };
  const object = (key: string): Record<string, unknown> => {
    const value = json(key);
    return isPlainObject(value) ? value : fail(`metadata "${key}" is not a JSON object`);
  };

  const stringRecord = (key: string): Record<string, string> => {
    const value = object(key);
    return Object.values(value).every((item) => typeof item === 'string')
      ? (value as Record<string, string>)
      : fail(`metadata "${key}" is not a JSON object of strings`);
  };

  const layersValue = object('layers');
  const layers = {} as Record<Tower, number[]>;
  for (const tower of TOWERS) {
    const list = layersValue[tower] ?? [];
    if (!Array.isArray(list) || !list.every((layer) => Number.isSafeInteger(layer))) {
      fail(`metadata "layers" has ${tower}: ${JSON.stringify(list)}, expected a list of layer indices`);
    }
    layers[tower] = [...(list as number[])];
  }

  const meta: AdapterMetadata = {
    method: oneOf('method', METHODS),
    rank: numeric('rank'),
    blocks: numeric('blocks'),
    alpha: numeric('alpha'),
    scalingRule: oneOf('scaling_rule', SCALING_RULES),
    scaling: numeric('scaling'),
    dropout: numeric('dropout'),
    targets: stringList('targets') as TargetMatrix[],
    layers,
    baseModel: text('base_model'),
    ...(strings.base_model_revision ? { baseModelRevision: strings.base_model_revision } : {}),
    baseModelFingerprint: text('base_model_fingerprint'),
    classNames: stringList('class_names'),
    promptTemplate: text('prompt_template'),
    ...(strings.class_prompts !== undefined && { classPrompts: stringRecord('class_prompts') }),
    training: object('training'),
    metrics: object('metrics'),
    ...(strings.name?.trim() && { name: strings.name.trim() }),
  };
  const problem = checkMetadata(meta);
  return problem ? fail(problem) : meta;
}

// ---------------------------------------------------------------------------------------------------------
// Validation, shared by the writer and the reader: each returns the first problem, or null.

function checkMetadata(meta: AdapterMetadata): string | null {
  const { rank, blocks, alpha, dropout, scaling } = meta;
  if (!METHODS.includes(meta.method)) return `method "${meta.method}" is not one of ${METHODS.join(', ')}`;
  if (!Number.isSafeInteger(rank) || rank < 1) return `rank ${rank} is not a positive integer`;
  if (!Number.isSafeInteger(blocks) || blocks < 1 || rank % blocks !== 0)
    return `blocks ${blocks} does not divide the rank ${rank}`;
  if (meta.method === 'lora' && blocks !== 1) return `method "lora" has one block, not ${blocks}`;
  if (!(Number.isFinite(alpha) && alpha > 0)) return `alpha ${alpha} is not a positive number`;
  if (!SCALING_RULES.includes(meta.scalingRule))
    return `scaling rule "${meta.scalingRule}" is not one of ${SCALING_RULES.join(', ')}`;
  const expected = scalingFor(meta.scalingRule, alpha, rank);
  // Both sides are computed in float64 and written as round-trip decimals: only a hand edit differs.
  if (!(Math.abs(scaling - expected) <= 1e-12 * expected)) {
    return `scaling ${scaling} is not ${meta.scalingRule} = ${expected} for alpha ${alpha}, rank ${rank}`;
  }
  if (!(dropout >= 0 && dropout < 1)) return `dropout ${dropout} is not in [0, 1)`;
  if (meta.targets.length === 0) return 'targets is empty: the adapter adapts nothing';
  for (const target of meta.targets) {
    if (!TARGET_MATRICES.includes(target)) return `target "${target}" is not one of ${TARGET_MATRICES.join(', ')}`;
  }
  if (new Set(meta.targets).size !== meta.targets.length)
    return `targets ${JSON.stringify(meta.targets)} repeat a matrix`;
  for (const tower of TOWERS) {
    const list = meta.layers[tower];
    if (!Array.isArray(list)) return `layers has no list for the ${tower} tower`;
    if (!list.every((layer) => Number.isSafeInteger(layer) && layer >= 0)) {
      return `${tower} layers ${JSON.stringify(list)} are not layer indices`;
    }
    if (new Set(list).size !== list.length) return `${tower} layers ${JSON.stringify(list)} repeat a layer`;
  }
  if (meta.layers.text.length + meta.layers.vision.length === 0)
    return 'layers lists no layer in either tower: the adapter adapts nothing';
  if (!meta.baseModel) return 'base_model is empty';
  if (!meta.baseModelFingerprint) return 'base_model_fingerprint is empty';
  return null;
}

/** Every named tensor present with [r/n, d_in] and [n, d_out, r/n] shapes, one width per role per tower. */
function checkTensors(meta: AdapterMetadata, tensors: AdapterTensors): string | null {
  const blockRank = meta.rank / meta.blocks;
  const expected = new Set<string>();
  // Per tower: the residual width (attention in/out, fc1 in, fc2 out) and the MLP width (fc1 out, fc2 in).
  const widths = new Map<string, { value: number; seenAt: string }>();
  const sameWidth = (tower: Tower, role: 'hidden' | 'mlp', value: number, seenAt: string): string | null => {
    const key = `${tower}:${role}`;
    const previous = widths.get(key);
    if (!previous) {
      widths.set(key, { value, seenAt });
      return null;
    }
    if (previous.value === value) return null;
    const width = role === 'hidden' ? 'hidden' : 'MLP';
    return `${seenAt} implies a ${tower} ${width} width of ${value}, ${previous.seenAt} implies ${previous.value}`;
  };

  const inBlocks = `for rank ${meta.rank} in ${meta.blocks} blocks`;
  for (const { tower, target, aName, bName } of adaptedMatrices(meta)) {
    expected.add(aName).add(bName);
    const a = tensors.get(aName);
    const b = tensors.get(bName);
    if (!a) return `tensor ${aName} is missing`;
    if (!b) return `tensor ${bName} is missing`;
    for (const [name, tensor] of [
      [aName, a],
      [bName, b],
    ] as const) {
      const count = tensor.shape.reduce((product, size) => product * size, 1);
      if (tensor.data.length !== count) {
        return `tensor ${name} has ${tensor.data.length} values, its shape [${tensor.shape}] needs ${count}`;
      }
      if (!tensor.data.every(Number.isFinite))
        return `tensor ${name} holds NaN or infinite values (a diverged training run?)`;
    }
    if (a.shape.length !== 2 || a.shape[0] !== blockRank || a.shape[1] < 1) {
      return `tensor ${aName} has shape [${a.shape}], expected [${blockRank}, d_in] ${inBlocks}`;
    }
    if (b.shape.length !== 3 || b.shape[0] !== meta.blocks || b.shape[1] < 1 || b.shape[2] !== blockRank) {
      return `tensor ${bName} has shape [${b.shape}], expected [${meta.blocks}, d_out, ${blockRank}] ${inBlocks}`;
    }
    const [dIn, dOut] = [a.shape[1], b.shape[1]];
    const inRole = target === 'fc2' ? 'mlp' : 'hidden';
    const outRole = target === 'fc1' ? 'mlp' : 'hidden';
    const problem =
      sameWidth(tower, inRole, dIn, `${aName} (d_in)`) ?? sameWidth(tower, outRole, dOut, `${bName} (d_out)`);
    if (problem) return problem;
  }
  for (const name of tensors.keys()) {
    if (!expected.has(name)) return `tensor ${name} is not one the metadata's targets and layers name`;
  }
  return null;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The metadata of an adapter a training run produced: its settings, the base model it was trained on,
 * the classes and prompt, every training setting and the final metrics. The CLI and the studio both
 * write their adapters with it.
 */
export function adapterMetadata(
  settings: AdapterSettings,
  training: { template: string; classPrompts: Readonly<Record<string, string>> } & object,
  base: { id: string; revision?: string; weights: { fingerprint: string } },
  classNames: readonly string[],
  split: { shots: number; holdout?: number },
  metrics: Record<string, unknown>,
): AdapterMetadata {
  return {
    ...settings,
    layers: { text: settings.layers.text ?? [], vision: settings.layers.vision ?? [] },
    scaling: scalingFor(settings.scalingRule, settings.alpha, settings.rank),
    baseModel: base.id,
    ...(base.revision ? { baseModelRevision: base.revision } : {}),
    baseModelFingerprint: base.weights.fingerprint,
    classNames: [...classNames],
    promptTemplate: training.template,
    ...(Object.keys(training.classPrompts).length > 0 && { classPrompts: { ...training.classPrompts } }),
    training: { ...training, shots: split.shots, ...(split.holdout !== undefined && { holdout: split.holdout }) },
    metrics,
  };
}
