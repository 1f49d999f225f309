// The layers the source keeps: src/common holds the GPU-free modules that the page shares with the engine
// (it imports nothing outside itself, and no GPU, DOM or React), the page imports no engine module, no
// module imports itself back through others, and the worker and the CLI both train through the one driver.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(__dirname, '../../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.tsx?$/.test(name) ? [path] : [];
  });
}

/** The relative imports of a file (type-only ones too: they tie layers just as well), resolved to files. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s*'([^']+)'/g)].map((m) => m[1]);
  return specifiers.filter((s) => s.startsWith('.')).map((s) => {
    const base = resolve(dirname(file), s);
    return [`${base}.ts`, `${base}.tsx`, join(base, 'index.ts')].find((candidate) => {
      try {
        return statSync(candidate).isFile();
      } catch {
        return false;
      }
    }) ?? base;
  });
}

/** Every bare (package) import of a file. */
function packagesOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/from\s*'([^'.][^']*)'/g)].map((m) => m[1]);
}

const files = sourceFiles(SRC);
const graph = new Map(files.map((file) => [file, importsOf(file)]));
const name = (file: string) => relative(SRC, file);

describe('layers', () => {
  it('src/common imports only src/common, and uses no GPU, DOM or React', () => {
    const common = files.filter((file) => name(file).startsWith('common/'));
    expect(common.map(name)).toEqual(expect.arrayContaining(['common/prompts.ts', 'common/recipe.ts', 'common/split.ts', 'common/random.ts', 'common/dataset-order.ts', 'common/file-names.ts']));
    for (const file of common) {
      expect(graph.get(file)!.map(name).filter((target) => !target.startsWith('common/')), name(file)).toEqual([]);
      expect(packagesOf(file), name(file)).toEqual([]);
      expect(readFileSync(file, 'utf8'), name(file)).not.toMatch(/\bGPU[A-Z]\w*|navigator\.|document\.|window\.|\bBlob\b|React/);
    }
  });

  it('the page (src/ui) imports no engine module: it reaches the engine through the worker only', () => {
    const engine = /^(gpu|kernels|model|adapters|training|node)\//;
    const reaches = files
      .filter((file) => name(file).startsWith('ui/'))
      .flatMap((file) => graph.get(file)!.map(name).filter((target) => engine.test(target)).map((target) => `${name(file)} -> ${target}`));
    expect(reaches).toEqual([]);
  });

  it('has no import cycle', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (file: string, path: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        cycles.push([...path.slice(path.indexOf(file)), file].map(name).join(' -> '));
        return;
      }
      state.set(file, 'open');
      for (const target of graph.get(file) ?? []) visit(target, [...path, file]);
      state.set(file, 'done');
    };
    for (const file of files) visit(file, []);
    expect(cycles).toEqual([]);
  });

  it('the worker and the CLI train through the one driver, and neither steps a Trainer itself', () => {
    for (const caller of ['worker/training-run.ts', 'cli/train.ts']) {
      const text = readFileSync(join(SRC, caller), 'utf8');
      expect(graph.get(join(SRC, caller))!.map(name), caller).toContain('training/run.ts');
      expect(text, caller).toMatch(/runTraining\(/);
      expect(text, caller).not.toMatch(/\bnew Trainer\b|\.trainStep\(/);
    }
  });
});
