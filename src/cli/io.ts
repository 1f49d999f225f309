// What every `octoclip` command shares: results to stdout or a file, progress to stderr, usage errors,
// and opening the model on Node's WebGPU.

import { writeFile } from 'node:fs/promises';
import { ClipModel } from '../model/clip';
import { openModel } from '../node/model-files';
import { createNodeGpuContext } from '../node/gpu';

export function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

export async function emit(result: unknown, out: string | undefined): Promise<void> {
  const text = `${JSON.stringify(result, null, 2)}\n`;
  if (out) {
    await writeFile(out, text);
    log(`wrote ${out}`);
  } else process.stdout.write(text);
}

export async function loadModel(model: string): Promise<ClipModel> {
  const ctx = await createNodeGpuContext();
  log(`WebGPU adapter: ${ctx.adapterName}`);
  const files = await openModel(model, log);
  let lastPercent = -1;
  const clip = await ClipModel.load(ctx, files, (loaded, total) => {
    const percent = Math.floor((100 * loaded) / total);
    if (percent >= lastPercent + 10) log(`loading weights: ${(lastPercent = percent)}%`);
  });
  ctx.onDeviceLost((info) => log(`GPU device lost: ${info.message}`));
  return clip;
}

/** Bad command-line input: reported with a pointer to --help, exit status 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export function required(value: string | undefined, flag: string): string {
  if (!value) throw new UsageError(`missing ${flag}`);
  return value;
}
