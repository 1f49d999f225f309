// The commands on adapter and model files: info, export (PEFT or merged model) and import-peft.

import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, readFile, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { adaptedMatrices, ADAPTER_FORMAT, encodeAdapterFile } from '../adapters/adapter-file';
import { type CheckpointFile, checkpointFingerprint, mergeAdapter } from '../adapters/merge';
import {
  findPeftFiles,
  fromPeft,
  parsePeftClasses,
  peftExportFiles,
  PEFT_CLASSES_FILE,
  type PeftClasses,
} from '../adapters/peft';
import { MODEL_FILES, PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE } from '../common/file-names';
import { parseClipConfig } from '../model/config';
import { parseSafetensorsHeader } from '../model/safetensors';
import { closeWeightFiles, isSharded } from '../model/weights';
import { DEFAULT_TEMPLATE } from '../common/prompts';
import { openSafetensorsFile } from '../node/files';
import { openModel } from '../node/model-files';
import { emit, log, readAdapterFile, temporaryPath, writeFileAtomic } from './io';
import { defineCommand, UsageError } from './options';
import { readZip } from '../common/zip';

/** Files of a Hub model folder besides MODEL_FILES that a merged model keeps (transformers' tokenizer files). */
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'];

/**
 * The base model's files, its parsed config, its checkpoint's files (model.safetensors, or the index's shards) and
 * fingerprint, without a GPU.
 */
async function readBaseModel(model: string) {
  const files = await openModel(model, log);
  try {
    const sources = isSharded(files.weights) ? files.weights.shards : [files.weights];
    const checkpoint: CheckpointFile[] = [];
    for (const source of sources)
      checkpoint.push({ name: basename(source.name), bytes: await source.read(0, source.size) });
    return {
      files,
      config: parseClipConfig(files.config),
      checkpoint,
      fingerprint: checkpointFingerprint(checkpoint),
    };
  } finally {
    await closeWeightFiles(files.weights);
  }
}

/** Writes a whole folder or nothing: into a temporary folder beside `dir`, renamed to `dir` when complete. */
async function writeDirectoryAtomic(dir: string, files: Record<string, Uint8Array | string>): Promise<void> {
  const temporary = temporaryPath(dir);
  await mkdir(temporary, { recursive: true });
  try {
    for (const [name, contents] of Object.entries(files)) await writeFile(join(temporary, name), contents);
    if (existsSync(dir)) await rmdir(dir); // only an empty folder: checked before any work
    await rename(temporary, dir);
  } catch (error) {
    await rm(temporary, { recursive: true, force: true });
    throw error;
  }
}

/** --out DIR for a folder export: a new path, or an empty folder. */
function newFolderProblem(dir: string): string | null {
  if (!existsSync(dir)) return existsSync(dirname(dir)) ? null : `--out ${dir}: its parent folder does not exist`;
  if (!statSync(dir).isDirectory()) return `--out ${dir} is a file: give a new folder`;
  return readdirSync(dir).length ? `--out ${dir} is not empty: give a new folder` : null;
}

export const EXPORT = defineCommand({
  name: 'export',
  summary: "an adapter in PEFT's layout (with a model card), or merged into its base model",
  options: {
    adapter: { kind: 'string', value: 'FILE', required: true, exists: 'file', help: 'the octoclip adapter file' },
    format: {
      kind: 'string',
      value: 'F',
      required: true,
      choices: ['peft', 'merged'],
      help: 'peft (adapter_model.safetensors, adapter_config.json, classes.json, README.md) or merged (the base model with the adapter folded in, in the Hub layout)',
    },
    out: { kind: 'string', value: 'DIR', required: true, help: 'a new (or empty) folder' },
    model: { kind: 'string', value: 'M', help: 'the base model (needed by --format merged)' },
  },
  check(values) {
    if (values.format === 'merged' && !values.model)
      return '--format merged needs the base model: add --model M (the model the adapter was trained on)';
    return newFolderProblem(values.out);
  },
  async run(values) {
    const { meta, tensors } = await readAdapterFile(values.adapter);
    if (values.format === 'peft') {
      await writeDirectoryAtomic(values.out, peftExportFiles(meta, tensors, basename(values.out)));
      log(`wrote the PEFT export to ${values.out}`);
      return;
    }
    const base = await readBaseModel(values.model!);
    const merged = mergeAdapter(base.checkpoint, meta, tensors);
    const { weights } = base.files;
    const files: Record<string, Uint8Array | string> = {
      [MODEL_FILES.config]: base.files.config,
      // The same files as the base: one model.safetensors, or the index (unchanged: every tensor keeps its place) and its shards.
      ...(isSharded(weights) ? { [MODEL_FILES.weightsIndex]: weights.index } : {}),
      ...Object.fromEntries(base.checkpoint.map((file, i) => [file.name, merged[i]])),
      [MODEL_FILES.vocab]: base.files.vocab,
      [MODEL_FILES.merges]: base.files.merges,
      ...(base.files.preprocessor ? { [MODEL_FILES.preprocessor]: base.files.preprocessor } : {}),
      [PEFT_CLASSES_FILE]: `${JSON.stringify({ class_names: meta.classNames, prompt_template: meta.promptTemplate } satisfies PeftClasses, null, 2)}\n`,
    };
    if (existsSync(values.model!)) {
      for (const name of TOKENIZER_FILES)
        if (existsSync(join(values.model!, name))) files[name] = await readFile(join(values.model!, name));
    }
    await writeDirectoryAtomic(values.out, files);
    log(`wrote ${meta.baseModel} with the adapter merged (${adaptedMatrices(meta).length} matrices) to ${values.out}`);
  },
});

export const IMPORT_PEFT = defineCommand({
  name: 'import-peft',
  summary: 'a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors) as an octoclip adapter',
  options: {
    peft: {
      kind: 'string',
      value: 'DIR',
      required: true,
      exists: 'any',
      help: `the PEFT folder (${PEFT_CONFIG_FILE}, ${PEFT_WEIGHTS_FILE}), or its zip`,
    },
    model: { kind: 'string', value: 'M', required: true, help: 'the base model the adapter was trained on' },
    out: {
      kind: 'string',
      value: 'FILE',
      required: true,
      help: 'the adapter file to write (e.g. A.octoclip.safetensors)',
    },
    classes: { kind: 'list', value: 'NAME', help: `class names (default: the export's ${PEFT_CLASSES_FILE})` },
    template: {
      kind: 'string',
      value: 'T',
      help: `prompt template (default: ${PEFT_CLASSES_FILE}'s, else ${DEFAULT_TEMPLATE})`,
    },
  },
  check(values) {
    if (statSync(values.peft).isDirectory()) {
      for (const file of [PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE]) {
        if (!existsSync(join(values.peft, file)))
          return `--peft ${values.peft} has no ${file}: a PEFT adapter folder holds ${PEFT_CONFIG_FILE} and ${PEFT_WEIGHTS_FILE}`;
      }
    }
    if (values.classes && values.classes.length < 2)
      return 'two or more class names are needed: --classes NAME once per class';
    if (values.template !== undefined && !values.template.includes('{}'))
      return `--template needs a {} for the class name, got "${values.template}"`;
    return null;
  },
  async run(values) {
    const peft = findPeftFiles(await readPeftSource(values.peft));
    const classNames = values.classes ?? peft.classes?.class_names;
    if (!classNames)
      throw new UsageError(
        `the adapter's class names are needed: add --classes NAME once per class (${values.peft} has no ${PEFT_CLASSES_FILE})`,
      );
    const base = await readBaseModel(values.model);
    const { meta, tensors } = fromPeft(
      peft.config,
      peft.weights,
      { id: values.model, fingerprint: base.fingerprint, config: base.config },
      {
        classNames,
        promptTemplate: values.template ?? peft.classes?.prompt_template ?? DEFAULT_TEMPLATE,
        name: peft.classes?.name,
        metrics: peft.classes?.metrics,
      },
    );
    const named = meta.training.peftBaseModel;
    if (typeof named === 'string' && named !== values.model)
      log(`note: ${PEFT_CONFIG_FILE} names base model ${named}; the weights fit ${values.model}, which is recorded`);
    await writeFileAtomic(values.out, encodeAdapterFile(meta, tensors));
    log(
      `wrote ${values.out}: LoRA r=${meta.rank} on ${meta.targets.join(', ')} (${meta.layers.text.length} text, ${meta.layers.vision.length} vision layers)`,
    );
  },
});

/** The files of a PEFT folder (its top level) or zip, by path. */
async function readPeftSource(path: string): Promise<Map<string, Uint8Array>> {
  if (!statSync(path).isDirectory()) return readZip(new Uint8Array(await readFile(path)));
  const names = readdirSync(path, { withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => entry.name);
  return new Map(
    await Promise.all(names.map(async (name) => [name, new Uint8Array(await readFile(join(path, name)))] as const)),
  );
}

export const INFO = defineCommand({
  name: 'info',
  summary: 'what an adapter file, a PEFT folder or a model (folder or safetensors file) holds',
  positionals: { name: 'FILE', min: 1, max: 1 },
  options: {
    out: { kind: 'string', value: 'FILE', help: 'write the result there instead of stdout' },
  },
  check: (_, [path]) => (existsSync(path) ? null : `${path}: no such file or directory`),
  async run(values, [path]) {
    await emit(await describe(path), values.out);
  },
});

async function describe(path: string): Promise<Record<string, unknown>> {
  if (statSync(path).isDirectory()) {
    if (existsSync(join(path, PEFT_CONFIG_FILE))) {
      const config = JSON.parse(await readFile(join(path, PEFT_CONFIG_FILE), 'utf8'));
      const classes = existsSync(join(path, PEFT_CLASSES_FILE))
        ? parsePeftClasses(await readFile(join(path, PEFT_CLASSES_FILE), 'utf8'))
        : null;
      return {
        path,
        kind: 'peft-adapter',
        peftType: config.peft_type,
        baseModel: config.base_model_name_or_path,
        r: config.r,
        loraAlpha: config.lora_alpha,
        useRslora: config.use_rslora ?? false,
        targetModules: config.target_modules,
        classNames: classes?.class_names ?? null,
        promptTemplate: classes?.prompt_template ?? null,
      };
    }
    if (existsSync(join(path, MODEL_FILES.config))) {
      const config = parseClipConfig(await readFile(join(path, MODEL_FILES.config), 'utf8'));
      const present: string[] = Object.values(MODEL_FILES).filter((file) => existsSync(join(path, file)));
      // The weights are one file or an index and its shards: either form leaves neither name missing.
      const weightNames: string[] = [MODEL_FILES.weights, MODEL_FILES.weightsIndex];
      const hasWeights = weightNames.some((file) => present.includes(file));
      const missing = Object.values(MODEL_FILES).filter(
        (file) => !present.includes(file) && !(hasWeights && weightNames.includes(file)),
      );
      const weights = present.includes(MODEL_FILES.weights)
        ? await describeCheckpoint(join(path, MODEL_FILES.weights))
        : null;
      return { path, kind: 'model', files: present, missing, config, weights };
    }
    throw new Error(
      `${path} is a folder with neither ${PEFT_CONFIG_FILE} (a PEFT adapter) nor ${MODEL_FILES.config} (a model)`,
    );
  }
  const bytes = new Uint8Array(await readFile(path));
  const header = (() => {
    try {
      return parseSafetensorsHeader(bytes, bytes.length, path);
    } catch {
      return null;
    }
  })();
  if (
    !header ||
    header.metadata.format === ADAPTER_FORMAT ||
    [...header.tensors.keys()].some((name) => name.endsWith('.lora_A.weight'))
  ) {
    // decodeAdapterFile says what is wrong with anything else in words a person can act on.
    const { meta, tensors } = await readAdapterFile(path);
    const parameters = [...tensors.values()].reduce((sum, t) => sum + t.data.length, 0);
    return { path, kind: 'octoclip-adapter', parameters, ...meta };
  }
  return { path, kind: 'checkpoint', ...(await describeCheckpoint(path)) };
}

async function describeCheckpoint(path: string) {
  const file = await openSafetensorsFile(path);
  try {
    const entries = [...file.header.tensors.values()];
    const dtypes: Record<string, number> = {};
    for (const entry of entries) dtypes[entry.dtype] = (dtypes[entry.dtype] ?? 0) + 1;
    return {
      tensors: entries.length,
      parameters: entries.reduce((sum, entry) => sum + entry.shape.reduce((product, size) => product * size, 1), 0),
      bytes: statSync(path).size,
      dtypes,
      metadata: file.header.metadata,
    };
  } finally {
    await file.close();
  }
}
