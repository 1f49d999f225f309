// WGSL sources from shaders/, bundled as text by Vite (browser, worker, tests and the CLI build alike),
// and what a wrapper needs to know of each: its uniform struct, bindings and constants, read from the
// WGSL itself once, so that TypeScript never repeats a field order, a binding number or a constant.
// A line `// #include "name.wgsl"` is replaced by that file's text: WGSL has no imports, and helpers
// that several shaders must compute bit for bit alike (the dropout hash, flat_index) live in one file.

import { ParamsLayout, type ParamType } from './params';

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

/** A WGSL identifier as TypeScript spells it: seq_len -> seqLen, d_a -> dA. */
export function camelCase(wgslName: string): string {
  return wgslName.replace(/_([a-z0-9])/g, (_, next: string) => next.toUpperCase());
}

/** What TypeScript may pass to one shader file's entry points. */
export class ShaderInterface {
  constructor(
    readonly name: ShaderName,
    /** The `struct Params` bound at @binding(0) as `p`, or null if the shader has none. */
    readonly params: ParamsLayout | null,
    /** Storage buffers: binding number by the camelCase of the WGSL variable's name. */
    readonly bindings: ReadonlyMap<string, number>,
    /** Module-scope integer `const`s, and the defaults of integer `override`s. */
    readonly constants: ReadonlyMap<string, number>,
  ) {}

  /** The binding number of a storage buffer by its (camelCase) name. */
  binding(entry: string, name: string): number {
    const binding = this.bindings.get(name);
    if (binding === undefined) {
      throw new Error(`${this.name}.${entry}: shaders/${this.name}.wgsl has no binding named "${name}" (it has ${[...this.bindings.keys()].join(', ')})`);
    }
    return binding;
  }

  constant(name: string): number {
    const value = this.constants.get(name);
    if (value === undefined) throw new Error(`shaders/${this.name}.wgsl declares no integer constant ${name}`);
    return value;
  }
}

const STRUCT_PARAMS = /^struct Params\s*\{([^}]*)\}/m;
const PARAM_FIELD = /^\s*(\w+)\s*:\s*(\w+)\s*$/;
const BINDING = /@group\(0\)\s*@binding\((\d+)\)\s*var(?:<([^>]*)>)?\s+(\w+)\s*:\s*([^;]+);/g;
const INTEGER_CONSTANT = /^(?:const|override)\s+(\w+)\s*(?::\s*[ui]32\s*)?=\s*(\d+)[ui]?\s*;/gm;

const withoutComments = (wgsl: string) => wgsl.replace(/\/\/.*$/gm, '');

/**
 * Reads a shader's interface from its source (includes resolved). Throws if it breaks the house rules
 * that packing relies on: Params fields are u32, i32 or f32, Params is `p` at binding 0, and every
 * binding has its own number and name.
 */
export function parseShaderInterface(name: ShaderName, wgsl: string): ShaderInterface {
  const code = withoutComments(wgsl);
  const fail = (problem: string): never => {
    throw new Error(`shaders/${name}.wgsl: ${problem}`);
  };
  let params: ParamsLayout | null = null;
  const struct = STRUCT_PARAMS.exec(code);
  if (struct) {
    const fields = struct[1].split(',').filter((field) => field.trim() !== '').map((field) => {
      const [, wgslName, type] = PARAM_FIELD.exec(field) ?? fail(`cannot read Params field "${field.trim()}"`);
      if (type !== 'u32' && type !== 'i32' && type !== 'f32') fail(`Params field ${wgslName} is ${type}; fields must be u32, i32 or f32`);
      return { name: camelCase(wgslName), wgslName, type: type as ParamType };
    });
    params = new ParamsLayout(name, fields);
  }
  const bindings = new Map<string, number>();
  const numbers = new Set<number>();
  for (const [, number, addressSpace, variable, type] of code.matchAll(BINDING)) {
    const binding = Number(number);
    if (numbers.has(binding)) fail(`two variables at @binding(${binding})`);
    numbers.add(binding);
    if (binding === 0 || addressSpace === 'uniform') {
      if (binding !== 0 || addressSpace !== 'uniform' || variable !== 'p' || type.trim() !== 'Params' || !params) {
        fail('the uniform parameters must be `@group(0) @binding(0) var<uniform> p: Params;` with a struct Params');
      }
      continue;
    }
    if (bindings.has(camelCase(variable))) fail(`two bindings named ${camelCase(variable)}`);
    bindings.set(camelCase(variable), binding);
  }
  if (params && !numbers.has(0)) fail('struct Params is declared but not bound at @binding(0)');
  const constants = new Map<string, number>();
  for (const [, constant, value] of code.matchAll(INTEGER_CONSTANT)) constants.set(constant, Number(value));
  return new ShaderInterface(name, params, bindings, constants);
}

const interfaces = new Map<ShaderName, ShaderInterface>();

/** The interface of shaders/<name>.wgsl, parsed on first use. */
export function shaderInterface(name: ShaderName): ShaderInterface {
  let parsed = interfaces.get(name);
  if (!parsed) {
    parsed = parseShaderInterface(name, shaderSource(name));
    interfaces.set(name, parsed);
  }
  return parsed;
}
