// Slices of a tensor's buffer (the adapters' flat parameters): every way the runtime touches a tensor
// (upload, read, zero, copy, a kernel's binding) stays inside the slice's range.

import { describe, expect, it } from 'vitest';
import { SLICE_ALIGNMENT_BYTES } from '../../src/gpu/tensor';
import { add } from '../../src/kernels/elementwise';
import { useGpu } from '../helpers/gpu';

const ctx = await useGpu();

const ALIGNED = SLICE_ALIGNMENT_BYTES / 4; // elements
/** A flat tensor of three aligned parts holding 1..3 * ALIGNED, and slices of its parts 1 and 2. */
function threeParts() {
  const flat = ctx.tensor(
    [3 * ALIGNED],
    'flat',
    Float32Array.from({ length: 3 * ALIGNED }, (_, i) => i + 1),
  );
  const middle = flat.slice(ALIGNED, [2, 5], 'middle');
  const last = flat.slice(2 * ALIGNED, [10], 'last');
  return { flat, middle, last };
}

const original = (from: number, count: number) => Float32Array.from({ length: count }, (_, i) => from + i + 1);

describe('tensor slices', () => {
  it('read, upload, zero and copy stay inside the slice', async () => {
    const { flat, middle, last } = threeParts();
    const other = threeParts();
    expect(await ctx.read(middle)).toEqual(original(ALIGNED, 10));
    ctx.upload(middle, new Float32Array(10).fill(-1));
    ctx.zero(last);
    // WebGPU copies between two buffers only: into this one's last slice from the other's middle one.
    ctx.copy(other.middle, last, 3, 1, 2); // last[2..4] = other.middle[1..3]
    const values = await ctx.read(flat);
    expect(values.subarray(0, ALIGNED)).toEqual(original(0, ALIGNED));
    expect(values.subarray(ALIGNED, ALIGNED + 10)).toEqual(new Float32Array(10).fill(-1));
    expect(values.subarray(ALIGNED + 10, 2 * ALIGNED)).toEqual(original(ALIGNED + 10, ALIGNED - 10));
    const copied = original(ALIGNED + 1, 3);
    expect(values.subarray(2 * ALIGNED, 2 * ALIGNED + 10)).toEqual(Float32Array.from([0, 0, ...copied, 0, 0, 0, 0, 0]));
    expect(values.subarray(2 * ALIGNED + 10)).toEqual(original(2 * ALIGNED + 10, ALIGNED - 10));
    flat.destroy();
    other.flat.destroy();
  });

  it('a kernel reads and writes slices (and views of them) at their offsets', async () => {
    // A dispatch may not write a buffer it also reads (WebGPU's usage rules), so the output is elsewhere.
    const inputs = threeParts();
    const outputs = threeParts();
    add(ctx, inputs.middle.view([10]), inputs.last, outputs.last); // outputs.last = inputs.middle + inputs.last
    const values = await ctx.read(outputs.flat);
    expect(values.subarray(2 * ALIGNED, 2 * ALIGNED + 10)).toEqual(
      Float32Array.from({ length: 10 }, (_, i) => ALIGNED + i + 1 + 2 * ALIGNED + i + 1),
    );
    expect(values.subarray(0, 2 * ALIGNED)).toEqual(original(0, 2 * ALIGNED));
    expect(values.subarray(2 * ALIGNED + 10)).toEqual(original(2 * ALIGNED + 10, ALIGNED - 10));
    inputs.flat.destroy();
    outputs.flat.destroy();
  });

  it('refuses a slice that does not fit or does not start aligned', () => {
    const flat = ctx.tensor([2 * ALIGNED], 'flat');
    expect(() => flat.slice(ALIGNED + 1, [4], 'shifted')).toThrow(
      `shifted: a slice must start at a multiple of ${SLICE_ALIGNMENT_BYTES} bytes`,
    );
    expect(() => flat.slice(ALIGNED, [ALIGNED + 1], 'long')).toThrow(
      `long: [${ALIGNED + 1}] at element ${ALIGNED} does not fit in flat [${2 * ALIGNED}]`,
    );
    // Slices do not own the buffer: destroying one leaves the flat tensor allocated.
    const before = ctx.memory.current;
    flat.slice(0, [4], 'first').destroy();
    expect(ctx.memory.current).toBe(before);
    flat.destroy();
  });
});
