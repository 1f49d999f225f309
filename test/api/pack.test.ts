// The package as a user gets it: `npm pack` of a fresh build of dist/, the tarball unpacked into an
// empty project's node_modules, and a script there that imports "octoclip" and classifies an image.
// This machine has no registry access and npm's cache lacks the dependencies, so `npm install <tarball>
// --offline` cannot run here: the project's node_modules links the package's runtime dependencies (webgpu,
// sharp, idb) from this checkout's node_modules instead, and everything else comes from the tarball alone.

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { expect, it } from 'vitest';
import { makeTinyClip } from '../../src/model/tiny';
import { writeModelDirectory } from '../../src/node/files';
import { randomAdapterFile } from '../helpers/random-adapter';

it('npm pack gives a tarball that classifies an image in an empty project', async () => {
  const work = mkdtempSync(join(tmpdir(), 'octoclip-pack-'));
  // prepack builds dist/ (npm run build:api); run it first so that pack's --json output is only JSON.
  execFileSync('npm', ['run', 'build:api'], { stdio: 'ignore', timeout: 600_000 });
  const packed = JSON.parse(
    execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], {
      encoding: 'utf8',
      timeout: 600_000,
    }),
  )[0];
  const listed = packed.files.map((f: { path: string }) => f.path);
  expect(listed).toEqual(
    expect.arrayContaining([
      'dist/api/node.js',
      'dist/api/browser.js',
      'dist/types/api/node.d.ts',
      'dist/types/api/browser.d.ts',
      'package.json',
    ]),
  );
  expect(listed.some((path: string) => path.startsWith('src/') || path.startsWith('test/'))).toBe(false);

  const project = join(work, 'project');
  const modules = join(project, 'node_modules');
  mkdirSync(join(modules, 'octoclip'), { recursive: true });
  execFileSync('tar', ['-xzf', join(work, packed.filename), '-C', join(modules, 'octoclip'), '--strip-components=1']);
  for (const dependency of ['webgpu', 'sharp', 'idb'])
    symlinkSync(resolve('node_modules', dependency), join(modules, dependency));
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'uses-octoclip', version: '1.0.0', type: 'module', private: true }),
  );

  const { files } = makeTinyClip({ seed: 4 });
  await writeModelDirectory(join(project, 'model'), files);
  writeFileSync(join(project, 'fruit.octoclip.safetensors'), randomAdapterFile('model', files, ['apple', 'banana']));
  await sharp({ create: { width: 30, height: 30, channels: 3, background: { r: 250, g: 220, b: 40 } } })
    .png()
    .toFile(join(project, 'photo.png'));
  writeFileSync(
    join(project, 'classify.js'),
    [
      "import { loadClassifier } from 'octoclip';",
      "const classifier = await loadClassifier({ model: 'model', adapter: 'fruit.octoclip.safetensors' });",
      "console.log(JSON.stringify(await classifier.classify('photo.png')));",
      'classifier.dispose();',
      'process.exit(0);',
    ].join('\n'),
  );
  const output = execFileSync(process.execPath, ['classify.js'], { cwd: project, encoding: 'utf8', timeout: 300_000 });
  const result = JSON.parse(output.trim().split('\n').at(-1)!);
  expect(result.map((r: { className: string }) => r.className).sort()).toEqual(['apple', 'banana']);
  expect(result[0].probability + result[1].probability).toBeCloseTo(1, 5);
  expect(readdirSync(modules).sort()).toEqual(['idb', 'octoclip', 'sharp', 'webgpu']);
}, 900_000);
