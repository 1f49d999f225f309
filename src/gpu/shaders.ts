// WGSL sources from shaders/, bundled as text by Vite (browser, worker, tests and the CLI build alike).

const sources = import.meta.glob('../../shaders/*.wgsl', { query: '?raw', import: 'default', eager: true }) as Record<
  string,
  string
>;

const byName = new Map(
  Object.entries(sources).map(([path, text]) => [path.slice(path.lastIndexOf('/') + 1, -'.wgsl'.length), text]),
);

export type ShaderName = string;

export function shaderSource(name: ShaderName): string {
  const text = byName.get(name);
  if (text === undefined) throw new Error(`No shader named shaders/${name}.wgsl`);
  return text;
}
