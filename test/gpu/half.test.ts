// Half-precision storage: the bit conversions against an arithmetic reference, and f16 tensors on a real
// device (upload, readback, the range check, and kernels that read f32 refusing them).

import { describe, expect, it } from 'vitest';
import { fromHalfBits, HALF_MAX, packHalves, toHalfBits, unpackHalves } from '../../src/gpu/half';
import { add } from '../../src/kernels/elementwise';
import { useGpu } from '../helpers/gpu';
import { mulberry32, randomArray } from '../helpers/random';
import { roundToHalf } from '../reference/half';

const ctx = await useGpu();

describe('half-precision bits', () => {
  it('every finite half converts to its value and back to the same bits', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const value = fromHalfBits(bits);
      if (Number.isNaN(value)) {
        expect((bits & 0x7c00) === 0x7c00 && (bits & 0x3ff) !== 0).toBe(true);
        continue;
      }
      expect(toHalfBits(value)).toBe(bits);
      expect(roundToHalf(value)).toBe(value); // the reference agrees it is on the grid
    }
  });

  it('known values', () => {
    expect(toHalfBits(1)).toBe(0x3c00);
    expect(toHalfBits(-2)).toBe(0xc000);
    expect(toHalfBits(HALF_MAX)).toBe(0x7bff);
    expect(toHalfBits(2 ** -24)).toBe(0x0001); // the smallest subnormal
    expect(toHalfBits(2 ** -14)).toBe(0x0400); // the smallest normal
    expect(toHalfBits(65520)).toBe(0x7c00); // halfway past the largest half: infinity
    expect(toHalfBits(Number.NaN) & 0x7e00).toBe(0x7e00);
  });

  it('rounds to nearest, ties to even, as the arithmetic reference does, across every exponent', () => {
    const next = mulberry32(7);
    for (let i = 0; i < 20000; i++) {
      const value = Math.fround((next() - 0.5) * 2 ** Math.floor(next() * 44 - 28));
      expect(fromHalfBits(toHalfBits(value))).toBe(roundToHalf(value));
    }
    // Exact ties between neighbours: 1 + 2^-11 lies between 1 and 1 + 2^-10 (even: 1); 1 + 3 * 2^-11 rounds up.
    expect(fromHalfBits(toHalfBits(1 + 2 ** -11))).toBe(1);
    expect(fromHalfBits(toHalfBits(1 + 3 * 2 ** -11))).toBe(1 + 2 ** -9);
    expect(fromHalfBits(toHalfBits(2 ** -25))).toBe(0); // a tie with zero goes to zero
    expect(fromHalfBits(toHalfBits(3 * 2 ** -25))).toBe(2 ** -23);
  });

  it('packs two per word, the lower index in the low bits, and unpacks them', () => {
    const values = Float32Array.from([1, -2, 0.5]);
    const packed = packHalves(values);
    expect([...packed]).toEqual([0xc0003c00, 0x00003800]);
    expect([...unpackHalves(packed, 3)]).toEqual([1, -2, 0.5]);
  });
});

describe('f16 tensors', () => {
  it('hold half the bytes and read back the rounded values, slices included', async () => {
    const values = randomArray(301, 3, 10);
    const half = ctx.tensor([301], 'half', values, 'f16');
    expect(half.byteLength).toBe(151 * 4); // 301 halves in whole words
    expect(await ctx.read(half)).toEqual(Float32Array.from(values, roundToHalf));
    const tail = half.slice(128, [173], 'tail'); // 256 bytes in: where a slice may start
    expect(await ctx.read(tail)).toEqual(Float32Array.from(values.subarray(128), roundToHalf));
    half.destroy();
  });

  it("refuse values beyond half precision's range, naming the tensor", () => {
    expect(() => ctx.tensor([2], 'big weight', Float32Array.from([1, 70000]), 'f16')).toThrow(
      /big weight: value 70000 at index 1 is beyond half precision's range/,
    );
  });

  it('are refused by kernels that read f32 values', () => {
    const half = ctx.tensor([4], 'half weights', undefined, 'f16');
    const full = ctx.tensor([4], 'full');
    expect(() => add(ctx, half, full, full)).toThrow(/reads f32 values, and half weights holds f16 ones/);
    [half, full].forEach((t) => t.destroy());
  });
});
