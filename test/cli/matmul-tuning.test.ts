// The CLI tunes the matmul for its adapter on the first command that computes and caches the result in
// its cache directory (HF_HOME here a temporary folder); the next command reads it; a damaged cache file
// is ignored, tuned again and rewritten.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { matmulTuningFile } from '../../src/cli/io';
import { MATMUL_CONFIGS } from '../../src/kernels/matmul';
import type { MatmulTuning } from '../../src/kernels/matmul-tune';
import { OCTOCLIP_BIN } from '../helpers/cli';

const work = mkdtempSync(join(tmpdir(), 'octoclip-cli-tuning-'));
const model = join(work, 'tiny');
const env = { ...process.env, HF_HOME: join(work, 'hf'), HF_ASSETS_CACHE: undefined, HF_HUB_CACHE: undefined };
const cacheFile = matmulTuningFile(env);

/** A command that computes: the text features of one prompt on the tiny model. */
function embed() {
  const result = spawnSync(process.execPath, [OCTOCLIP_BIN, 'embed', '--model', model, '--texts', 'a red square'], {
    cwd: work,
    env,
    encoding: 'utf8',
    timeout: 300_000,
  });
  expect(result.status, result.stderr).toBe(0);
  return result.stderr;
}

function cachedTunings(): MatmulTuning[] {
  return JSON.parse(readFileSync(cacheFile, 'utf8'));
}

const TUNED = /tuned matmul for (.+): (\w+) \((\d+) ms\)/;

beforeAll(() => {
  const made = spawnSync(process.execPath, [OCTOCLIP_BIN, 'make-tiny-model', model], { cwd: work, encoding: 'utf8' });
  expect(made.status, made.stderr).toBe(0);
}, 300_000);

describe('octoclip matmul tuning cache', () => {
  it('lives in octoclip/ of HF_ASSETS_CACHE, else of $HF_HOME/assets, beside the Hugging Face cache', () => {
    expect(cacheFile).toBe(join(work, 'hf', 'assets', 'octoclip', 'matmul-tuning.json'));
    expect(matmulTuningFile({ HF_ASSETS_CACHE: '/a', HF_HOME: '/h' })).toBe(
      join('/a', 'octoclip', 'matmul-tuning.json'),
    );
    expect(matmulTuningFile({ XDG_CACHE_HOME: '/x' })).toBe(
      join('/x', 'huggingface', 'assets', 'octoclip', 'matmul-tuning.json'),
    );
  });

  it('the first command tunes and writes the cache; the next one reads it', () => {
    const stderr = embed();
    const [, adapter, config] = stderr.match(TUNED) ?? [];
    expect(config, stderr).toBeDefined();
    const [tuning] = cachedTunings();
    expect(tuning.config).toBe(config);
    expect(Object.keys(MATMUL_CONFIGS)).toContain(config);
    expect(tuning.adapter).toContain(adapter.split(' / ')[0]);
    const written = statSync(cacheFile).mtimeMs;

    const again = embed();
    expect(again).not.toMatch(TUNED);
    expect(statSync(cacheFile).mtimeMs).toBe(written);
  });

  it('a damaged cache file is ignored, tuned again and rewritten', () => {
    writeFileSync(cacheFile, '{"adapter": "cut short');
    const stderr = embed();
    expect(stderr).toContain(`ignoring ${cacheFile}: not a list of matmul tunings`);
    expect(stderr).toMatch(TUNED);
    expect(cachedTunings()).toHaveLength(1);
  });
});
