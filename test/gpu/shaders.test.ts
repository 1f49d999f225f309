// Kernel plumbing by name: uniforms and bindings are checked against the WGSL's `struct Params` and
// `@binding` declarations, so a wrong name is an error at the call instead of a silent wrong read.

import { describe, expect, it } from 'vitest';
import { parseShaderInterface, shaderInterface, shaderSource } from '../../src/gpu/shaders';
import { scale } from '../../src/kernels/elementwise';
import { useGpu } from '../helpers/gpu';

const ctx = await useGpu();

/** The little-endian words a layout writes for values. */
function packedWords(wgsl: string, values: Record<string, number | boolean>): DataView {
  const layout = parseShaderInterface('test', wgsl).params!;
  const view = new DataView(new ArrayBuffer(layout.byteLength));
  layout.write('entry', values, view, 0);
  return view;
}

const BINDING_ZERO = '@group(0) @binding(0) var<uniform> p: Params;';

describe('uniform parameters by name', () => {
  const x = ctx.tensor([3], 'x', Float32Array.of(1, 2, 3));
  const out = ctx.tensor([3], 'out');
  const dispatch = (params: Record<string, number | boolean>, bindings: Record<string, typeof x> = { x, out }) =>
    ctx.dispatch({ shader: 'elementwise', entry: 'scale', params, bindings, workgroups: [1] });

  it('refuses a misnamed, a missing or an extra field, naming it and what the shader declares', async () => {
    expect(() => dispatch({ cnt: 3, scale: 2 })).toThrow(
      'elementwise.scale: Params has no field cnt (shaders/elementwise.wgsl declares count, scale)',
    );
    expect(() => dispatch({ count: 3 })).toThrow('elementwise.scale: Params field scale (scale: f32) is missing');
    expect(() => dispatch({ count: 3, scale: 2, accumulate: true })).toThrow('Params has no field accumulate');
    expect(() => dispatch({ count: -1, scale: 2 })).toThrow(
      'elementwise.scale: Params field count must be a u32, got -1',
    );
    expect(() => dispatch({ count: 3, scale: true })).toThrow('Params field scale must be a number, got true');
    // Nothing was recorded by the refused calls: the next dispatch computes as if they never happened.
    scale(ctx, x, 2, out);
    expect(Array.from(await ctx.read(out))).toEqual([2, 4, 6]);
  });

  it('refuses a storage binding by a name the shader does not declare', () => {
    expect(() => dispatch({ count: 3, scale: 2 }, { x, output: out })).toThrow(
      'elementwise.scale: shaders/elementwise.wgsl has no binding named "output" (it has x, y, out, inout)',
    );
  });

  it('refuses a binding the entry point uses but the call leaves out, or one it does not use', async () => {
    expect(() => dispatch({ count: 3, scale: 2 }, { out })).toThrow(
      'elementwise.scale: binding x not given (the entry point uses x, out)',
    );
    expect(() => dispatch({ count: 3, scale: 2 }, { x, y: x, out })).toThrow(
      'elementwise.scale: binding y given but not used by the entry point',
    );
    expect(() =>
      ctx.dispatch({ shader: 'elementwise', entry: 'scale', bindings: { x, out }, workgroups: [1] }),
    ).toThrow('elementwise.scale: the entry point reads Params');
    expect(() => ctx.dispatch({ shader: 'elementwise', entry: 'gelu', bindings: { x, out }, workgroups: [1] })).toThrow(
      'elementwise.gelu: shaders/elementwise.wgsl has no @compute entry point gelu',
    );
    await ctx.sync(); // refused before anything reached the GPU: no validation error recorded
  });

  it('finds the bindings an entry point uses through the functions it calls, not through shadowing names', () => {
    const wgsl = `struct Params { n: u32 }
${BINDING_ZERO}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
fn helper(i: u32) -> f32 { return x[i]; }
fn shadowing(x: f32) -> f32 { let out = x; return out; }
@compute @workgroup_size(1)
fn through_helper(@builtin(global_invocation_id) id: vec3u) { out[id.x] = helper(id.x) * f32(p.n); }
@compute @workgroup_size(1)
fn swizzle_only(@builtin(global_invocation_id) id: vec3u) { let v = vec2f(1.0, 2.0); out[id.x] = shadowing(v.x); }`;
    const { entries } = parseShaderInterface('test', wgsl);
    expect([...entries.get('through_helper')!.bindings]).toEqual(['x', 'out']);
    expect(entries.get('through_helper')!.params).toBe(true);
    expect([...entries.get('swizzle_only')!.bindings]).toEqual(['out']);
    expect(entries.get('swizzle_only')!.params).toBe(false);
    expect([...entries.keys()]).toEqual(['through_helper', 'swizzle_only']);
  });

  it('packs fields in the order the WGSL declares them, whatever order the caller writes', () => {
    const forward = packedWords(`struct Params { count: u32, scale: f32 }\n${BINDING_ZERO}`, { scale: 0.5, count: 7 });
    expect([forward.getUint32(0, true), forward.getFloat32(4, true)]).toEqual([7, 0.5]);
    // The same call against a struct whose fields were reordered reads each value from its new place.
    const reordered = packedWords(`struct Params {\n  scale: f32, // comment\n  count: u32,\n}\n${BINDING_ZERO}`, {
      count: 7,
      scale: 0.5,
    });
    expect([reordered.getFloat32(0, true), reordered.getUint32(4, true)]).toEqual([0.5, 7]);
  });

  it('names fields and bindings by the camelCase of their WGSL names', () => {
    const attention = shaderInterface('attention');
    expect(attention.params!.fields.map((field) => field.name)).toEqual([
      'batch',
      'seqLen',
      'heads',
      'headDim',
      'causal',
      'scale',
      'accumulate',
    ]);
    expect(
      shaderInterface('block_lora').bindingNumbers('sum_blocks', ['out', 'blocks', 'blockSumsTable'], true),
    ).toEqual([4, 5, 6]);
  });
});

describe('reading a shader interface', () => {
  const refuse = (wgsl: string, message: string) =>
    expect(() => parseShaderInterface('bad', wgsl)).toThrow(`shaders/bad.wgsl: ${message}`);

  it('refuses what packing by name cannot serve', () => {
    refuse(
      `struct Params { size: vec2u }\n${BINDING_ZERO}`,
      'Params field size is vec2u; fields must be u32, i32 or f32',
    );
    refuse('struct Params { n: u32 }\n@group(0) @binding(0) var<uniform> q: Params;', 'the uniform parameters must be');
    refuse('struct Params { n: u32 }\n@group(0) @binding(1) var<uniform> p: Params;', 'the uniform parameters must be');
    refuse('struct Params { n: u32 }', 'struct Params is declared but not bound at @binding(0)');
    refuse(
      '@group(0) @binding(1) var<storage, read> x: array<f32>;\n@group(0) @binding(1) var<storage, read> y: array<f32>;',
      'two variables at @binding(1)',
    );
  });

  it('gives TypeScript the WGSL constants, including those of included files', () => {
    expect(shaderInterface('block_lora').constant('RANK_CHUNK')).toBe(8);
    expect(shaderInterface('classifier').constant('TILE')).toBe(16);
    expect(shaderInterface('layernorm').constant('WORKGROUP_SIZE')).toBe(256); // an override's default
    expect(() => shaderInterface('elementwise').constant('RANK_CHUNK')).toThrow(
      'shaders/elementwise.wgsl declares no integer constant RANK_CHUNK',
    );
    // The folded-grid index is written once, in grid.wgsl, and included by every 1-D kernel.
    expect(shaderSource('elementwise')).toContain('fn flat_index(');
    expect(shaderSource('elementwise').match(/fn flat_index\(/g)).toHaveLength(1);
  });
});
