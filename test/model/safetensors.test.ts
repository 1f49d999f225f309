import { describe, expect, it } from 'vitest';
import {
  decodeTensor,
  encodeSafetensors,
  ModelFileError,
  parseSafetensorsHeader,
  safetensorsHeaderSize,
  type SafetensorsHeader,
} from '../../src/model/safetensors';

/** A file from a literal header (object or raw text) and `dataBytes` bytes of data, bypassing the writer. */
function rawFile(header: object | string, data: Uint8Array | number = 0): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const bytes = typeof data === 'number' ? new Uint8Array(data) : data;
  const file = new Uint8Array(8 + json.length + bytes.length);
  new DataView(file.buffer).setBigUint64(0, BigInt(json.length), true);
  file.set(json, 8);
  file.set(bytes, 8 + json.length);
  return file;
}

function parse(file: Uint8Array, fileName?: string): SafetensorsHeader {
  return parseSafetensorsHeader(file, file.length, fileName);
}

function decode(file: Uint8Array, header: SafetensorsHeader, name: string): Float32Array {
  const entry = header.tensors.get(name)!;
  return decodeTensor(entry, file.subarray(entry.byteOffset, entry.byteOffset + entry.byteLength));
}

function halfBytes(bits: number[]): Uint8Array {
  return new Uint8Array(Uint16Array.from(bits).buffer);
}

describe('safetensors reading and writing', () => {
  it('round-trips f32 tensors, a scalar and metadata, with the header padded to 8 bytes', () => {
    const weight = Float32Array.from({ length: 6 }, (_, i) => i - 2.5);
    const file = encodeSafetensors(
      [
        { name: 'layer.weight', shape: [2, 3], data: weight },
        { name: 'logit_scale', shape: [], data: Float32Array.of(4.6052) },
      ],
      { format: 'pt' },
    );
    const header = parse(file);
    expect(header.headerSize % 8).toBe(0);
    // The reference writer pads the JSON with spaces.
    expect(new TextDecoder().decode(file.subarray(8, header.headerSize))).toMatch(/} *$/);
    expect(header.metadata).toEqual({ format: 'pt' });
    expect([...header.tensors.keys()]).toEqual(['layer.weight', 'logit_scale']);
    expect(header.tensors.get('layer.weight')).toMatchObject({
      dtype: 'F32',
      shape: [2, 3],
      byteOffset: header.headerSize,
      byteLength: 24,
    });
    expect(decode(file, header, 'layer.weight')).toEqual(weight);
    expect(decode(file, header, 'logit_scale')).toEqual(Float32Array.of(4.6052));
  });

  it('parses from the header bytes alone and decodes tensors from slices, as a streaming loader reads', () => {
    const file = encodeSafetensors([
      { name: 'a', shape: [3], data: Float32Array.of(1, 2, 3) },
      { name: 'b', shape: [2], data: Float32Array.of(-1, 0.5), dtype: 'F16' },
    ]);
    const headerSize = safetensorsHeaderSize(file.slice(0, 8), file.length, 'model.safetensors');
    const header = parseSafetensorsHeader(file.slice(0, headerSize), file.length, 'model.safetensors');
    const b = header.tensors.get('b')!;
    // A copy at an odd offset: decoding must not assume alignment.
    const unaligned = new Uint8Array(b.byteLength + 1).subarray(1);
    unaligned.set(file.subarray(b.byteOffset, b.byteOffset + b.byteLength));
    expect(decodeTensor(b, unaligned)).toEqual(Float32Array.of(-1, 0.5));
    expect(decode(file, header, 'a')).toEqual(Float32Array.of(1, 2, 3));
  });

  it('decodes F16 exactly: normals, subnormals, extremes, signed zero, infinities and NaN', () => {
    const cases: [number, number][] = [
      [0x3c00, 1],
      [0xc000, -2],
      [0x3555, 0.333251953125],
      [0x7bff, 65504],
      [0x0400, 2 ** -14],
      [0x0001, 2 ** -24],
      [0x03ff, 1023 * 2 ** -24],
      [0x0000, 0],
      [0x8000, -0],
      [0x7c00, Infinity],
      [0xfc00, -Infinity],
    ];
    const file = rawFile(
      { h: { dtype: 'F16', shape: [cases.length + 1], data_offsets: [0, 2 * cases.length + 2] } },
      halfBytes([...cases.map(([bits]) => bits), 0x7e00]),
    );
    const values = decode(file, parse(file), 'h');
    cases.forEach(([bits, value], i) => expect(values[i], `0x${bits.toString(16)}`).toBe(value));
    expect(values[cases.length]).toBeNaN();
  });

  it('decodes BF16 exactly as the top half of the f32', () => {
    const file = rawFile(
      { b: { dtype: 'BF16', shape: [4], data_offsets: [0, 8] } },
      halfBytes([0x3f80, 0xc049, 0x0001, 0x7f80]),
    );
    expect(decode(file, parse(file), 'b')).toEqual(Float32Array.of(1, -3.140625, 2 ** -133, Infinity));
  });

  it('writes every finite F16 value back to its own bits', () => {
    const bits = Array.from({ length: 0x10000 }, (_, i) => i).filter((b) => (b & 0x7c00) !== 0x7c00);
    const source = rawFile(
      { h: { dtype: 'F16', shape: [bits.length], data_offsets: [0, 2 * bits.length] } },
      halfBytes(bits),
    );
    const values = decode(source, parse(source), 'h');
    const file = encodeSafetensors([{ name: 'h', shape: [bits.length], data: values, dtype: 'F16' }]);
    const entry = parse(file).tensors.get('h')!;
    const writtenBits = new Uint16Array(file.slice(entry.byteOffset, entry.byteOffset + entry.byteLength).buffer);
    const firstWrong = bits.findIndex((b, i) => writtenBits[i] !== b);
    expect(
      firstWrong,
      `0x${bits[firstWrong]?.toString(16)} came back as 0x${writtenBits[firstWrong]?.toString(16)}`,
    ).toBe(-1);
  });

  it('rounds to nearest even when writing F16 and BF16', () => {
    const roundTrip = (value: number, dtype: 'F16' | 'BF16') => {
      const file = encodeSafetensors([{ name: 'x', shape: [1], data: Float32Array.of(value), dtype }]);
      return decode(file, parse(file), 'x')[0];
    };
    // F16 keeps 10 fraction bits: 1 + 2^-11 is halfway between 1 and 1 + 2^-10.
    expect(roundTrip(1 + 2 ** -11, 'F16')).toBe(1);
    expect(roundTrip(1 + 3 * 2 ** -11, 'F16')).toBe(1 + 2 ** -9);
    expect(roundTrip(1 + 2 ** -11 + 2 ** -20, 'F16')).toBe(1 + 2 ** -10);
    expect(roundTrip(65519, 'F16')).toBe(65504);
    expect(roundTrip(65520, 'F16')).toBe(Infinity);
    expect(roundTrip(-1e6, 'F16')).toBe(-Infinity);
    expect(roundTrip(2 ** -25, 'F16')).toBe(0); // halfway to the smallest subnormal: even is 0
    expect(roundTrip(1.5 * 2 ** -25, 'F16')).toBe(2 ** -24);
    expect(roundTrip(3 * 2 ** -25, 'F16')).toBe(2 * 2 ** -24);
    expect(roundTrip(1e-10, 'F16')).toBe(0);
    expect(roundTrip(NaN, 'F16')).toBeNaN();
    // BF16 keeps 7 fraction bits.
    expect(roundTrip(1 + 2 ** -8, 'BF16')).toBe(1);
    expect(roundTrip(1 + 3 * 2 ** -8, 'BF16')).toBe(1 + 2 ** -6);
    expect(roundTrip(-Math.PI, 'BF16')).toBe(-3.140625);
    expect(roundTrip(3.4e38, 'BF16')).toBe(Infinity);
    expect(roundTrip(NaN, 'BF16')).toBeNaN();
  });

  it('reads the header of int64 tensors (position_ids) but refuses to decode them, naming the dtype', () => {
    const file = encodeSafetensors([
      { name: 'text_model.embeddings.position_ids', shape: [1, 3], data: BigInt64Array.of(0n, 1n, 2n), dtype: 'I64' },
      { name: 'w', shape: [1], data: Float32Array.of(7) },
    ]);
    const header = parse(file);
    expect(header.tensors.get('text_model.embeddings.position_ids')).toMatchObject({ dtype: 'I64', byteLength: 24 });
    expect(() => decode(file, header, 'text_model.embeddings.position_ids')).toThrow(
      'tensor text_model.embeddings.position_ids has dtype I64, octoclip reads F32, F16 and BF16',
    );
    expect(decode(file, header, 'w')).toEqual(Float32Array.of(7));
  });

  it('refuses to write values that do not fill the shape, or a name twice', () => {
    expect(() => encodeSafetensors([{ name: 'x', shape: [2, 2], data: new Float32Array(3) }])).toThrow(
      /x has 3 values, shape \[2,2\] needs 4/,
    );
    const twice = { name: 'x', shape: [1], data: new Float32Array(1) };
    expect(() => encodeSafetensors([twice, twice])).toThrow(/x appears twice/);
  });
});

describe('safetensors validation', () => {
  const valid = { w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };

  function expectRefused(file: Uint8Array, message: string | RegExp): void {
    let error: unknown;
    try {
      parse(file, 'model.safetensors');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ModelFileError);
    expect((error as ModelFileError).fileName).toBe('model.safetensors');
    expect((error as Error).message).toMatch(/^model\.safetensors: /);
    expect((error as Error).message).toMatch(message);
  }

  it('accepts the valid baseline', () => {
    expect(parse(rawFile(valid, 8)).tensors.get('w')?.shape).toEqual([2]);
  });

  it('refuses a file shorter than the length prefix', () => {
    expectRefused(new Uint8Array(5), '5 bytes is too short for a safetensors file');
  });

  it('refuses a header length past the end of the file (truncated download)', () => {
    const file = rawFile(valid, 8);
    expectRefused(file.subarray(0, 20), /header length \d+ runs past the end of the 20-byte file/);
  });

  it('refuses an absurd header length (not a safetensors file)', () => {
    const file = new Uint8Array(64);
    file.set(new TextEncoder().encode('<!DOCTYPE html>'));
    expectRefused(file, /over the 100000000-byte limit/);
  });

  it('asks for the whole header when given fewer bytes', () => {
    const file = rawFile(valid, 8);
    expect(() => parseSafetensorsHeader(file.subarray(0, 12), file.length)).toThrow(
      /the header needs \d+ bytes, only 12 were given/,
    );
  });

  it('refuses JSON that does not parse, or is not an object', () => {
    expectRefused(rawFile('{"w": {"dtype": "F32",', 8), /header is not valid JSON/);
    expectRefused(rawFile('[1, 2]'), 'header is not a JSON object');
  });

  it('refuses entries without dtype, shape or offsets, and unknown dtypes', () => {
    expectRefused(rawFile({ w: { shape: [2], data_offsets: [0, 8] } }, 8), 'tensor w has no dtype');
    expectRefused(
      rawFile({ w: { dtype: 'Q4', shape: [2], data_offsets: [0, 8] } }, 8),
      'tensor w has unknown dtype Q4',
    );
    expectRefused(
      rawFile({ w: { dtype: 'constructor', shape: [2], data_offsets: [0, 8] } }, 8),
      'unknown dtype constructor',
    );
    expectRefused(
      rawFile({ w: { dtype: 'F32', shape: [2.5], data_offsets: [0, 8] } }, 8),
      /tensor w has shape \[2.5\]/,
    );
    expectRefused(rawFile({ w: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, 8), /tensor w has shape \[-2\]/);
    expectRefused(rawFile({ w: { dtype: 'F32', shape: [2] } }, 8), /tensor w has data_offsets undefined/);
    expectRefused(rawFile({ w: 'F32' }, 8), 'tensor w is not described by an object');
  });

  it('refuses offsets out of bounds, backwards, or not matching the shape', () => {
    const beyond = rawFile({ w: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 8);
    expectRefused(
      beyond,
      `incomplete: ${beyond.length} of ${beyond.length + 4} bytes (the file was cut short: download or copy it again)`,
    );
    expectRefused(
      rawFile({ w: { dtype: 'F32', shape: [0], data_offsets: [8, 4] } }, 8),
      'tensor w has data_offsets [8, 4], which end before they begin',
    );
    expectRefused(
      rawFile({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8),
      'tensor w has 8 bytes, its shape [3] of F32 needs 12',
    );
    expectRefused(
      rawFile({ w: { dtype: 'F16', shape: [2], data_offsets: [0, 8] } }, 8),
      'its shape [2] of F16 needs 4',
    );
  });

  it('refuses overlapping tensors', () => {
    const overlapping = {
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
    };
    expectRefused(rawFile(overlapping, 12), 'tensors a and b overlap');
  });

  it('refuses metadata that is not a map of strings', () => {
    expectRefused(rawFile({ __metadata__: { step: 3 }, ...valid }, 8), '__metadata__ is not a map of strings');
  });

  it('names the tensor when decoding is given the wrong number of bytes', () => {
    const file = rawFile(valid, 8);
    const entry = parse(file).tensors.get('w')!;
    expect(() => decodeTensor(entry, new Uint8Array(4), 'model.safetensors')).toThrow(
      'model.safetensors: tensor w needs 8 bytes, got 4',
    );
  });
});
