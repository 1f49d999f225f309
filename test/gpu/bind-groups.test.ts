// Bind groups are made once per pipeline and set of resources and reused by later dispatches (every
// training step binds the same buffers), while each dispatch still reads its own uniform values.

import { describe, expect, it, vi } from 'vitest';
import { scale } from '../../src/kernels/elementwise';
import { useGpu } from '../helpers/gpu';

const ctx = await useGpu();

describe('bind group reuse', () => {
  it('reuses the group of the same buffers, with fresh uniforms, and makes a new one for other buffers', async () => {
    const x = ctx.tensor([3], 'x', Float32Array.of(1, 2, 3));
    const out = ctx.tensor([3], 'out');
    const other = ctx.tensor([3], 'other');
    const created = vi.spyOn(ctx.device, 'createBindGroup');
    try {
      scale(ctx, x, 2, out);
      expect(Array.from(await ctx.read(out))).toEqual([2, 4, 6]);
      expect(created).toHaveBeenCalledTimes(1);
      // Same buffers, same arena offset after the submit: the group is reused, the new factor is read.
      scale(ctx, x, 3, out);
      expect(Array.from(await ctx.read(out))).toEqual([3, 6, 9]);
      expect(created).toHaveBeenCalledTimes(1);
      // Two dispatches in one submission sit at different arena offsets: each has its own uniforms.
      scale(ctx, x, 4, out);
      scale(ctx, x, 5, other);
      const [four, five] = await ctx.readMany([out, other]);
      expect([Array.from(four), Array.from(five)]).toEqual([
        [4, 8, 12],
        [5, 10, 15],
      ]);
      expect(created).toHaveBeenCalledTimes(2); // only `other` at the second offset is new
    } finally {
      created.mockRestore();
    }
  });
});
