// What every command shares: stderr lines, results written whole (to --out through a temporary name, or to
// stdout, drained before the process exits), the model, and adapter files checked against it.

import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import {
  assertAdapterMatchesBase,
  decodeAdapterFile,
  type AdapterMetadata,
  type AdapterTensors,
} from '../adapters/adapter-file';
import {
  AUTO_WITHOUT_PLAN,
  resolvePrecision,
  PRECISION_NUMERICS,
  missingFeature,
  type PrecisionSetting,
  type ResolvedPrecision,
} from '../common/recipe';
import type { GpuContext } from '../gpu/context';
import { tuneMatmul, type MatmulChoice, type MatmulTuning } from '../kernels/matmul-tune';
import { ClipModel, type ClipModelFiles } from '../model/clip';
import { parseClipConfig, type ClipConfig } from '../model/config';
import { createNodeGpuContext } from '../node/gpu';
import { octoclipCacheDir, openModel } from '../node/model-files';
import { UsageError } from './options';
import { Progress } from './progress';

export function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** Resolves once everything written to `stream` so far has been handed to the OS; process.exit() drops the rest. */
export function drained(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => stream.write('', () => resolve()));
}

/** A path next to `path` (same directory, so the rename stays on one file system) for writing before renaming. */
export function temporaryPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.partial`);
}

/** Writes a file whole or not at all: to a temporary name, then renamed over `path`. */
export async function writeFileAtomic(path: string, contents: Uint8Array | string): Promise<void> {
  const temporary = temporaryPath(path);
  try {
    await writeFile(temporary, contents);
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

/** A command's result: to `out` (written whole) or stdout, as JSON or as the text given. */
export async function emit(result: unknown, out: string | undefined): Promise<void> {
  const text = typeof result === 'string' ? result : `${JSON.stringify(result, null, 2)}\n`;
  if (out) {
    await writeFileAtomic(out, text);
    log(`wrote ${out}`);
  } else
    await new Promise<void>((resolve, reject) =>
      process.stdout.write(text, (error) => (error ? reject(error) : resolve())),
    );
}

/** The matmul configurations tuned on this computer's adapters: a JSON list of tuneMatmul's records. */
export function matmulTuningFile(env: NodeJS.ProcessEnv = process.env): string {
  return join(octoclipCacheDir(env), 'matmul-tuning.json');
}

/** The cached records, or none when the file is missing or not a JSON list (it is rewritten after the tune). */
async function readTunings(file: string): Promise<unknown[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') log(`ignoring ${file}: ${(error as Error).message}`);
    return [];
  }
  try {
    const records: unknown = JSON.parse(text);
    if (Array.isArray(records)) return records;
  } catch {
    // reported below
  }
  log(`ignoring ${file}: not a list of matmul tunings`);
  return [];
}

/**
 * Chooses every matmul's configuration on ctx: this adapter's cached tuning, else a tune now (a few hundred
 * milliseconds), written into the cache for the next command. A cache that cannot be written costs only the
 * next command's tune.
 */
export async function tuneMatmulCached(ctx: GpuContext, file = matmulTuningFile()): Promise<MatmulChoice> {
  const cached = await readTunings(file);
  const choice = await tuneMatmul(ctx, cached);
  if (choice.source === 'table') log(`matmul tune failed (${choice.reason}): using ${choice.config}`);
  if (choice.source !== 'tuned') return choice;
  const { tuning } = choice;
  const f16 = tuning.f16
    ? `; in f16 ${tuning.f16.config}, ${Math.round(100 * tuning.f16.timeRatio)}% of f32's time`
    : '';
  log(`tuned matmul for ${ctx.adapterName}: ${tuning.config} (${tuning.milliseconds} ms)${f16}`);
  const others = cached.filter((record) => {
    const { adapter } = (record ?? {}) as Partial<MatmulTuning>;
    return typeof adapter === 'string' && adapter !== tuning.adapter; // other adapters' tunings stay
  });
  try {
    await mkdir(dirname(file), { recursive: true });
    await writeFileAtomic(file, `${JSON.stringify([...others, tuning], null, 2)}\n`);
  } catch (error) {
    log(`could not cache the matmul tuning in ${file}: ${(error as Error).message}`);
  }
  return choice;
}

/** The device and the model's files with its config, before any weight is on the GPU (a run plans its precision first). */
export interface OpenedModel {
  ctx: GpuContext;
  files: ClipModelFiles;
  config: ClipConfig;
}

export async function openModelOnDevice(model: string): Promise<OpenedModel> {
  const ctx = await createNodeGpuContext();
  log(`WebGPU adapter: ${ctx.adapterName}`);
  await tuneMatmulCached(ctx);
  const files = await openModel(model, log);
  return { ctx, files, config: parseClipConfig(files.config, 'config.json') };
}

/** Loads the weights in the precision resolved, saying which and why. */
export async function loadWeights(
  { ctx, files }: OpenedModel,
  { precision, reason }: ResolvedPrecision,
): Promise<ClipModel> {
  const needed = missingFeature(precision, ctx.device.features);
  if (needed) {
    throw new UsageError(
      `--precision ${precision} needs the GPU adapter's ${needed} feature, which ${ctx.adapterName} does not offer: use f16-storage or f32`,
    );
  }
  log(`precision: ${precision} (${reason})`);
  const progress = new Progress('loading weights', 100);
  const clip = await ClipModel.load(ctx, files, {
    ...PRECISION_NUMERICS[precision],
    onProgress: (loaded, total) => progress.update(Math.floor((100 * loaded) / total)),
  });
  ctx.onDeviceLost((info) => log(`GPU device lost: ${info.message}`));
  return clip;
}

/** The model for a command that trains nothing: with nothing to plan, 'auto' is f32 (AUTO_WITHOUT_PLAN). */
export async function loadModel(model: string, precision: PrecisionSetting): Promise<ClipModel> {
  const opened = await openModelOnDevice(model);
  return loadWeights(opened, await resolvePrecision(precision, async () => AUTO_WITHOUT_PLAN));
}

/** The fields every command's JSON result starts with. */
export function resultHeader(model: ClipModel, adapter: string | null) {
  return { model: model.id, device: model.ctx.adapterName, adapter };
}

export async function readAdapterFile(path: string): Promise<{ meta: AdapterMetadata; tensors: AdapterTensors }> {
  return decodeAdapterFile(new Uint8Array(await readFile(path)), path);
}

/** An adapter file checked against the loaded model, with its tensors as AdapterSet.create takes them. */
export async function readAdapterFor(path: string, model: ClipModel) {
  const { meta, tensors } = await readAdapterFile(path);
  assertAdapterMatchesBase(meta, model.id, model.weights.fingerprint, path);
  return { meta, tensors: new Map([...tensors].map(([name, t]) => [name, t.data])) };
}
