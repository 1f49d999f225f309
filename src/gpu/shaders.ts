// WGSL sources from shaders/, bundled as text by Vite (browser, worker, tests and the CLI build alike).
// A line `// #include "name.wgsl"` is replaced by that file's text: WGSL has no imports, and helpers
// that several shaders must compute bit for bit alike (the dropout hash) live in one file.

const sources = import.meta.glob('../../shaders/*.wgsl', { query: '?raw', import: 'default', eager: true }) as Record<
  string,
  string
>;

const byName = new Map(
  Object.entries(sources).map(([path, text]) => [path.slice(path.lastIndexOf('/') + 1, -'.wgsl'.length), text]),
);

const INCLUDE = /^\/\/ #include "(\w+)\.wgsl"$/gm;

export type ShaderName = string;

export function shaderSource(name: ShaderName, includedBy: readonly ShaderName[] = []): string {
  const text = byName.get(name);
  if (text === undefined) throw new Error(`No shader named shaders/${name}.wgsl`);
  if (includedBy.includes(name)) throw new Error(`shaders/${name}.wgsl includes itself through ${includedBy.join(' -> ')}`);
  return text.replace(INCLUDE, (_, included: string) => shaderSource(included, [...includedBy, name]));
}
