// `--precision` as a user runs it (bin/octoclip.js in a child process): a run in f16-storage says so,
// holds the weights in half precision, and its adapter records it (octoclip info shows it); the adapter is
// used at another precision afterwards; f16 arithmetic is refused on an adapter without shader-f16 before
// the weights load, with exit status 2, and runs where the adapter has it.

import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { runOctoclip, runOctoclipWith } from '../helpers/cli';

const work = mkdtempSync(join(tmpdir(), 'octoclip-precision-'));
const model = join(work, 'tiny');
const images = join(work, 'images');
const octoclip = (...args: string[]) => runOctoclip(work, ...args);
/** A 2-step run in this precision, on the driver `env` names if any; its adapter file. */
function trainIn(precision: string, env: Record<string, string> = {}) {
  const adapter = join(work, `${precision}.octoclip.safetensors`);
  const trained = runOctoclipWith(
    env,
    work,
    ...['train', '--model', model, '--images', images, '--shots', '2', '--iterations', '2', '--batch-size', '2'],
    ...['--precision', precision, '--out', adapter, '--log', join(work, `${precision}-log.json`)],
  );
  return { adapter, trained };
}
/** A Vulkan driver with shader-f16 where there is no GPU (scripts/setup.mjs fetches lavapipe on Debian). */
const f16Driver = process.env.OCTOCLIP_F16_VULKAN_ICD;

beforeAll(async () => {
  const colours: Record<string, [number, number, number]> = { red: [220, 30, 30], blue: [30, 40, 220] };
  for (const [name, [r, g, b]] of Object.entries(colours)) {
    mkdirSync(join(images, name), { recursive: true });
    for (let i = 0; i < 3; i++) {
      await sharp({ create: { width: 20 + 5 * i, height: 24, channels: 3, background: { r: r - 20 * i, g, b } } })
        .png()
        .toFile(join(images, name, `${i}.png`));
    }
  }
  const made = octoclip('make-tiny-model', model);
  expect(made.status, made.stderr).toBe(0);
}, 300_000);

describe('octoclip --precision', () => {
  it('train --precision f16-storage says so and records it in the adapter, which eval uses in f32', () => {
    const { adapter, trained } = trainIn('f16-storage');
    expect(trained.status, trained.stderr).toBe(0);
    expect(trained.stderr).toContain('\nprecision: f16-storage (as set)\n');
    expect(trained.stderr).toMatch(/step 2\/2/);

    const info = octoclip('info', adapter);
    expect(info.status, info.stderr).toBe(0);
    expect(JSON.parse(info.stdout).training.precision).toBe('f16-storage');

    const evaluated = octoclip(
      'eval',
      '--model',
      model,
      '--adapter',
      adapter,
      '--images',
      images,
      '--precision',
      'f32',
    );
    expect(evaluated.status, evaluated.stderr).toBe(0);
    expect(evaluated.stderr).toContain('\nprecision: f32 (as set)\n');
    expect(JSON.parse(evaluated.stdout).images).toBe(6);
  }, 300_000);

  it('refuses f16 arithmetic on an adapter without shader-f16 before loading the weights, with exit status 2', () => {
    const refused = octoclip('zero-shot', '--model', model, '--images', images, '--precision', 'f16');
    expect(refused.status).toBe(2);
    const adapter = /WebGPU adapter: (.+)\n/.exec(refused.stderr)?.[1];
    expect(adapter, refused.stderr).toMatch(/swiftshader/);
    expect(refused.stderr).toContain(
      `octoclip zero-shot: --precision f16 needs the GPU adapter's shader-f16 feature, which ${adapter} does not offer: use f16-storage or f32`,
    );
    expect(refused.stderr).not.toContain('loading weights');
  }, 60_000);

  it.skipIf(!f16Driver)(
    `train --precision f16 on an adapter with shader-f16 (Mesa's lavapipe) records it in the adapter${f16Driver ? '' : ' (skipped: no such driver here)'}`,
    () => {
      const { adapter, trained } = trainIn('f16', { VK_ICD_FILENAMES: f16Driver! });
      expect(trained.status, trained.stderr).toBe(0);
      expect(trained.stderr).toMatch(/WebGPU adapter: mesa \/ software\n/);
      expect(trained.stderr).toContain('\nprecision: f16 (as set)\n');
      expect(trained.stderr).toMatch(/step 2\/2/);
      expect(JSON.parse(octoclip('info', adapter).stdout).training.precision).toBe('f16');
    },
    300_000,
  );
});
