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

/**
 * The precision a kernel multiplies in. 'f16' (where the device has shader-f16) is a variant of the
 * shaders that declare `alias arithmetic = f32;`: that line reads f16, and the module enables f16.
 * Such shaders convert their operands to `arithmetic` for the products and sum those in f32.
 */
export type Arithmetic = 'f32' | 'f16';

const ARITHMETIC_ALIAS = /^alias arithmetic = f32;$/m;

/** shaderSource in the given arithmetic; throws for f16 if the shader has no such variant. */
export function shaderVariantSource(name: ShaderName, arithmetic: Arithmetic): string {
  const source = shaderSource(name);
  if (arithmetic === 'f32') return source;
  if (!ARITHMETIC_ALIAS.test(source)) throw new Error(`shaders/${name}.wgsl has no f16 arithmetic variant`);
  return `enable f16;\n${source.replace(ARITHMETIC_ALIAS, 'alias arithmetic = f16;')}`;
}

export function shaderSource(name: ShaderName, includedBy: readonly ShaderName[] = []): string {
  const text = byName.get(name);
  if (text === undefined) throw new Error(`No shader named shaders/${name}.wgsl`);
  if (includedBy.includes(name))
    throw new Error(`shaders/${name}.wgsl includes itself through ${includedBy.join(' -> ')}`);
  return text.replace(INCLUDE, (_, included: string) => shaderSource(included, [...includedBy, name]));
}

/** A WGSL identifier as TypeScript spells it: seq_len -> seqLen, d_a -> dA. */
function camelCase(wgslName: string): string {
  return wgslName.replace(/_([a-z0-9])/g, (_, next: string) => next.toUpperCase());
}

/** What an entry point reads or writes: storage bindings by (camelCase) name, and whether it reads `p`. */
export interface EntryUses {
  bindings: ReadonlySet<string>;
  params: boolean;
}

/** What TypeScript may pass to one shader file's entry points. */
export class ShaderInterface {
  constructor(
    readonly name: ShaderName,
    /** The `struct Params` bound at @binding(0) as `p`, or null if the shader has none. */
    readonly params: ParamsLayout | null,
    /** Storage buffers: binding number by the camelCase of the WGSL variable's name. */
    readonly bindings: ReadonlyMap<string, number>,
    /** Storage buffers' WGSL types (`array<f32>`, `array<vec2u>`, ...) by the same names. */
    readonly bindingTypes: ReadonlyMap<string, string>,
    /** Module-scope integer `const`s, and the defaults of integer `override`s. */
    readonly constants: ReadonlyMap<string, number>,
    /** The @compute entry points and what each uses, through the functions it calls. */
    readonly entries: ReadonlyMap<string, EntryUses>,
  ) {}

  /**
   * The binding numbers of the storage buffers a dispatch gives by name. Throws, naming them, if a name
   * is not the shader's, or the names (and params) are not exactly what the entry point uses: layout
   * 'auto' would reject either, but only when the GPU validates the call, without names.
   */
  bindingNumbers(entry: string, names: readonly string[], withParams: boolean): readonly number[] {
    // A wrapper gives the same names on every call: checked once per entry point and set of names.
    const key = `${entry}|${withParams}|${names.join(',')}`;
    let numbers = this.checkedBindings.get(key);
    if (!numbers) {
      numbers = this.checkBindings(entry, names, withParams);
      this.checkedBindings.set(key, numbers);
    }
    return numbers;
  }

  private readonly checkedBindings = new Map<string, readonly number[]>();

  private checkBindings(entry: string, names: readonly string[], withParams: boolean): readonly number[] {
    const where = `${this.name}.${entry}`;
    const uses = this.entries.get(entry);
    if (!uses) throw new Error(`${where}: shaders/${this.name}.wgsl has no @compute entry point ${entry}`);
    const numbers = names.map((name) => {
      const binding = this.bindings.get(name);
      if (binding === undefined) {
        throw new Error(
          `${where}: shaders/${this.name}.wgsl has no binding named "${name}" (it has ${[...this.bindings.keys()].join(', ')})`,
        );
      }
      return binding;
    });
    const missing = [...uses.bindings].filter((name) => !names.includes(name));
    const unused = names.filter((name) => !uses.bindings.has(name));
    if (missing.length)
      throw new Error(
        `${where}: binding ${missing.join(', ')} not given (the entry point uses ${[...uses.bindings].join(', ')})`,
      );
    if (unused.length) throw new Error(`${where}: binding ${unused.join(', ')} given but not used by the entry point`);
    if (uses.params !== withParams)
      throw new Error(`${where}: the entry point ${uses.params ? 'reads' : 'does not read'} Params`);
    return numbers;
  }

  /**
   * Whether the binding reads u32 words, the only way a kernel can read half-precision tensors (with
   * unpack2x16float); bound as f32, their bits would be read as other numbers.
   */
  readsWords(name: string): boolean {
    return /^array<(u32|vec[234]u|vec[234]<u32>)>$/.test(this.bindingTypes.get(name) ?? '');
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
    const fields = struct[1]
      .split(',')
      .filter((field) => field.trim() !== '')
      .map((field) => {
        const [, wgslName, type] = PARAM_FIELD.exec(field) ?? fail(`cannot read Params field "${field.trim()}"`);
        if (type !== 'u32' && type !== 'i32' && type !== 'f32')
          fail(`Params field ${wgslName} is ${type}; fields must be u32, i32 or f32`);
        return { name: camelCase(wgslName), wgslName, type: type as ParamType };
      });
    params = new ParamsLayout(name, fields);
  }
  const bindings = new Map<string, number>();
  const bindingTypes = new Map<string, string>();
  const camelByWgslName = new Map<string, string>();
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
    bindingTypes.set(camelCase(variable), type.replace(/\s+/g, ''));
    camelByWgslName.set(variable, camelCase(variable));
  }
  if (params && !numbers.has(0)) fail('struct Params is declared but not bound at @binding(0)');
  const constants = new Map<string, number>();
  for (const [, constant, value] of code.matchAll(INTEGER_CONSTANT)) constants.set(constant, Number(value));
  return new ShaderInterface(name, params, bindings, bindingTypes, constants, entryUses(code, camelByWgslName));
}

const FUNCTION = /\bfn\s+(\w+)\s*\(/g;
const PARAMETER_NAME = /(\w+)\s*:(?!:)/g;
const LOCAL_NAME = /\b(?:let|var|const)(?:<[^>]*>)?\s+(\w+)/g;
const IDENTIFIER = /(?<![.\w])[A-Za-z_]\w*/g; // not a member or swizzle (`p.rows`, `v.x`)

/** The text from `open` (an opening bracket's index) to its closing bracket. */
function bracketed(code: string, open: number): string {
  const [opening, closing] = code[open] === '(' ? ['(', ')'] : ['{', '}'];
  let depth = 0;
  for (let i = open; i < code.length; i++) {
    if (code[i] === opening) depth++;
    else if (code[i] === closing && --depth === 0) return code.slice(open + 1, i);
  }
  throw new Error(`unbalanced ${opening} in WGSL`);
}

/**
 * The bindings each @compute entry point uses, directly or through the functions it calls: the names
 * its functions' bodies mention that no parameter or local of theirs shadows.
 */
function entryUses(code: string, bindingNames: ReadonlyMap<string, string>): Map<string, EntryUses> {
  const functions = new Map<string, { names: Set<string>; entry: boolean }>();
  let previousEnd = 0;
  for (const match of code.matchAll(FUNCTION)) {
    const signature = bracketed(code, match.index + match[0].length - 1);
    const bodyStart = code.indexOf('{', match.index + match[0].length + signature.length);
    const body = bracketed(code, bodyStart);
    const shadowed = new Set([...signature.matchAll(PARAMETER_NAME), ...body.matchAll(LOCAL_NAME)].map((m) => m[1]));
    const names = new Set([...body.matchAll(IDENTIFIER)].map((m) => m[0]).filter((id) => !shadowed.has(id)));
    functions.set(match[1], { names, entry: code.slice(previousEnd, match.index).includes('@compute') });
    previousEnd = bodyStart + body.length + 2;
  }
  const reached = (fn: string, seen: Set<string>): Set<string> => {
    seen.add(fn);
    for (const id of functions.get(fn)!.names) if (functions.has(id) && !seen.has(id)) reached(id, seen);
    return seen;
  };
  const entries = new Map<string, EntryUses>();
  for (const [fn, { entry }] of functions) {
    if (!entry) continue;
    const names = new Set([...reached(fn, new Set())].flatMap((f) => [...functions.get(f)!.names]));
    const used = [...bindingNames].filter(([wgslName]) => names.has(wgslName)).map(([, name]) => name);
    entries.set(fn, { bindings: new Set(used), params: names.has('p') });
  }
  return entries;
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
