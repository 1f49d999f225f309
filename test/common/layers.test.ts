// The layers of docs/architecture.md, as .dependency-cruiser.cjs writes them (npm test's "Layers" stage runs the
// same rules over src/): the real tree keeps them, and a small tree that breaks each rule is caught by it. Also: the
// worker and the CLI both train through the one driver.

import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { cruise, type ICruiseResult } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(__dirname, '../..');
const SRC = join(ROOT, 'src');

/** Every rule broken in baseDir's src/, as "rule: from -> to". */
async function violations(baseDir: string, tsConfig: boolean): Promise<string[]> {
  const options = await extractDepcruiseOptions(join(ROOT, '.dependency-cruiser.cjs'));
  const { output } = await cruise(['src'], {
    ...options,
    baseDir,
    tsConfig: tsConfig ? { fileName: join(ROOT, 'tsconfig.json') } : undefined,
  });
  return (output as ICruiseResult).summary.violations.map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`);
}

/** A tree of one-line modules, each importing the modules listed for it. */
function tree(files: Record<string, string[]>): string {
  const dir = mkdtempSync(join(tmpdir(), 'octoclip-layers-'));
  for (const [file, imports] of Object.entries(files)) {
    const path = join(dir, file);
    mkdirSync(dirname(path), { recursive: true });
    const lines = imports.map((target, i) => {
      const specifier = relative(dirname(path), join(dir, target)).replace(/\\.tsx?$/, '');
      return `import { value as v${i} } from '${specifier.startsWith('.') ? specifier : `./${specifier}`}';`;
    });
    writeFileSync(
      path,
      `${lines.join('\n')}\nexport const value = ${imports.map((_, i) => `v${i}`).join(' + ') || '1'};\n`,
    );
  }
  return dir;
}

describe('layers', () => {
  it('src keeps every rule', async () => {
    expect(await violations(ROOT, true)).toEqual([]);
  }, 60_000);

  it('each rule catches a module that breaks it', async () => {
    const broken = tree({
      'src/gpu/context.ts': [],
      'src/kernels/matmul.ts': ['src/gpu/context.ts'],
      'src/model/encoder.ts': ['src/kernels/matmul.ts', 'src/adapters/block-lora.ts'],
      'src/adapters/block-lora.ts': ['src/kernels/matmul.ts'],
      'src/common/recipe.ts': ['src/model/encoder.ts'],
      'src/ui/screen.tsx': ['src/gpu/context.ts', 'src/worker/engine.worker.ts'],
      'src/worker/engine.worker.ts': [],
      'src/cli/main.ts': ['src/cli/train.ts'],
      'src/cli/train.ts': ['src/cli/main.ts'],
    });
    const found = await violations(broken, false);
    const rules = new Set(found.map((line) => line.split(':')[0]));
    for (const rule of [
      'model-below-adapters',
      'common-is-gpu-free',
      'ui-through-the-worker',
      'ui-not-worker-internals',
      'no-circular',
    ]) {
      expect(rules, `${rule} in ${found.join('; ')}`).toContain(rule);
    }
  }, 60_000);

  it('the worker and the CLI train through the one driver, and neither steps a Trainer itself', () => {
    for (const caller of ['worker/training-run.ts', 'cli/train.ts']) {
      const text = readFileSync(join(SRC, caller), 'utf8');
      expect(text, caller).toMatch(/from '\.\.\/training\/run'/);
      expect(text, caller).toMatch(/runTraining\(/);
      expect(text, caller).not.toMatch(/\bnew Trainer\b|\.trainStep\(/);
    }
  });
});
