// The safetensors checkpoint format: an 8-byte little-endian header length N, N bytes of JSON naming each
// tensor's dtype, shape and byte range, then the raw little-endian data. Read one tensor at a time.

/** A model file (checkpoint, config, tokenizer) that cannot be used; the message names the file and the problem. */
export class ModelFileError extends Error {
  constructor(
    problem: string,
    readonly fileName?: string,
  ) {
    super(fileName ? `${fileName}: ${problem}` : problem);
    this.name = 'ModelFileError';
  }
}

/** The dtypes octoclip decodes into f32. */
export type FloatDtype = 'F32' | 'F16' | 'BF16';

/** Bytes per element of every dtype the format defines, so any file can be validated (position_ids are I64). */
const DTYPE_SIZES = new Map<string, number>([
  ['F64', 8],
  ['F32', 4],
  ['F16', 2],
  ['BF16', 2],
  ['F8_E4M3', 1],
  ['F8_E5M2', 1],
  ['I64', 8],
  ['I32', 4],
  ['I16', 2],
  ['I8', 1],
  ['U64', 8],
  ['U32', 4],
  ['U16', 2],
  ['U8', 1],
  ['BOOL', 1],
]);

const FLOAT_DTYPES: readonly string[] = ['F32', 'F16', 'BF16'] satisfies FloatDtype[];

/** The reference implementation refuses headers over 100 MB; a CLIP header is tens of kilobytes. */
const MAX_HEADER_BYTES = 100_000_000;
const LENGTH_PREFIX_BYTES = 8;

export interface TensorEntry {
  name: string;
  /** Any dtype of the format; `decodeTensor` reads only F32, F16 and BF16. */
  dtype: string;
  shape: number[];
  /** Where the tensor's bytes lie in the whole file (the header's offsets plus the header size). */
  byteOffset: number;
  byteLength: number;
}

export interface SafetensorsHeader {
  /** 8 + N: the bytes before the tensor data. */
  headerSize: number;
  tensors: Map<string, TensorEntry>;
  metadata: Record<string, string>;
}

/** From the file's first 8 bytes: how many bytes to read so that `parseSafetensorsHeader` has the whole header. */
export function safetensorsHeaderSize(prefix: Uint8Array, fileSize: number, fileName?: string): number {
  if (fileSize < LENGTH_PREFIX_BYTES) {
    throw new ModelFileError(
      `${fileSize} bytes is too short for a safetensors file (it starts with an 8-byte header length)`,
      fileName,
    );
  }
  if (prefix.length < LENGTH_PREFIX_BYTES) {
    throw new ModelFileError(
      `the header length needs the file's first 8 bytes, only ${prefix.length} were given`,
      fileName,
    );
  }
  const view = new DataView(prefix.buffer, prefix.byteOffset, LENGTH_PREFIX_BYTES);
  const low = view.getUint32(0, true);
  const high = view.getUint32(4, true);
  const jsonLength = high * 2 ** 32 + low; // exact below 2^53; anything that large is refused below
  if (jsonLength > MAX_HEADER_BYTES) {
    throw new ModelFileError(
      `header length ${jsonLength} is over the ${MAX_HEADER_BYTES}-byte limit: not a safetensors file`,
      fileName,
    );
  }
  if (LENGTH_PREFIX_BYTES + jsonLength > fileSize) {
    throw new ModelFileError(
      `header length ${jsonLength} runs past the end of the ${fileSize}-byte file (truncated download?)`,
      fileName,
    );
  }
  return LENGTH_PREFIX_BYTES + jsonLength;
}

/**
 * Parses and validates the header from the file's first `safetensorsHeaderSize` bytes (more may be passed,
 * e.g. the whole file). Every tensor's dtype, shape and byte range is checked against the file size.
 */
export function parseSafetensorsHeader(
  headerBytes: Uint8Array,
  fileSize: number,
  fileName?: string,
): SafetensorsHeader {
  const headerSize = safetensorsHeaderSize(headerBytes, fileSize, fileName);
  if (headerBytes.length < headerSize) {
    throw new ModelFileError(`the header needs ${headerSize} bytes, only ${headerBytes.length} were given`, fileName);
  }
  const fail = (problem: string): never => {
    throw new ModelFileError(problem, fileName);
  };

  let json: unknown;
  try {
    json = JSON.parse(
      new TextDecoder('utf-8', { fatal: true }).decode(headerBytes.subarray(LENGTH_PREFIX_BYTES, headerSize)),
    );
  } catch (error) {
    return fail(`header is not valid JSON (${(error as Error).message})`);
  }
  if (!isPlainObject(json)) return fail('header is not a JSON object');

  const dataSize = fileSize - headerSize;
  const tensors = new Map<string, TensorEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(json)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(value, fail);
      continue;
    }
    if (!isPlainObject(value)) return fail(`tensor ${name} is not described by an object`);
    const { dtype, shape, data_offsets: offsets } = value;
    if (typeof dtype !== 'string') return fail(`tensor ${name} has no dtype`);
    const elementSize = DTYPE_SIZES.get(dtype);
    if (elementSize === undefined) return fail(`tensor ${name} has unknown dtype ${dtype}`);
    if (!Array.isArray(shape) || !shape.every(isNonNegativeInteger)) {
      return fail(`tensor ${name} has shape ${JSON.stringify(shape)}, expected a list of non-negative integers`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInteger)) {
      return fail(`tensor ${name} has data_offsets ${JSON.stringify(offsets)}, expected [begin, end]`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) return fail(`tensor ${name} has data_offsets [${begin}, ${end}], which end before they begin`);
    if (end > dataSize) {
      // The header describes more data than the file holds: a download or copy cut short.
      return fail(
        `incomplete: ${fileSize} of ${headerSize + declaredDataSize(json)} bytes (the file was cut short: download or copy it again)`,
      );
    }
    const expectedLength = elementCount(shape) * elementSize;
    if (end - begin !== expectedLength) {
      return fail(
        `tensor ${name} has ${end - begin} bytes, its shape [${shape.join(', ')}] of ${dtype} needs ${expectedLength}`,
      );
    }
    tensors.set(name, { name, dtype, shape: [...shape], byteOffset: headerSize + begin, byteLength: end - begin });
  }

  const byPosition = [...tensors.values()].sort((a, b) => a.byteOffset - b.byteOffset);
  for (let i = 1; i < byPosition.length; i++) {
    const previous = byPosition[i - 1];
    if (byPosition[i].byteOffset < previous.byteOffset + previous.byteLength) {
      return fail(`tensors ${previous.name} and ${byPosition[i].name} overlap`);
    }
  }
  return { headerSize, tensors, metadata };
}

/** Decodes one tensor's bytes (exactly `entry.byteLength` of them) into f32; F16 and BF16 widen exactly. */
export function decodeTensor(entry: TensorEntry, bytes: Uint8Array, fileName?: string): Float32Array {
  assertFloatDtype(entry, fileName);
  if (bytes.length !== entry.byteLength) {
    throw new ModelFileError(`tensor ${entry.name} needs ${entry.byteLength} bytes, got ${bytes.length}`, fileName);
  }
  // Copying into a fresh buffer aligns the data; typed arrays use host byte order, little-endian on every
  // platform that runs WebGPU.
  if (entry.dtype === 'F32') {
    const out = new Float32Array(entry.byteLength / 4);
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  const halves = new Uint16Array(entry.byteLength / 2);
  new Uint8Array(halves.buffer).set(bytes);
  const out = new Float32Array(halves.length);
  if (entry.dtype === 'BF16') {
    // A bfloat16 is the top half of the f32 with the same value.
    const outBits = new Uint32Array(out.buffer);
    for (let i = 0; i < halves.length; i++) outBits[i] = halves[i] << 16;
  } else {
    for (let i = 0; i < halves.length; i++) out[i] = halfToFloat(halves[i]);
  }
  return out;
}

/** Throws unless the tensor is one `decodeTensor` reads. */
export function assertFloatDtype(entry: TensorEntry, fileName?: string): void {
  if (!FLOAT_DTYPES.includes(entry.dtype)) {
    throw new ModelFileError(
      `tensor ${entry.name} has dtype ${entry.dtype}, octoclip reads F32, F16 and BF16`,
      fileName,
    );
  }
}

export type TensorToEncode =
  | { name: string; shape: number[]; data: Float32Array; dtype?: FloatDtype }
  /** Integer tensors exist only to reproduce checkpoints' int64 buffers (position_ids). */
  | { name: string; shape: number[]; data: BigInt64Array; dtype: 'I64' };

/**
 * Writes a safetensors file with the tensors in the given order. F32 data is stored as F32 unless another
 * dtype is asked for (rounded to nearest even). Like the reference writer, the JSON is padded with spaces so
 * the data starts 8-byte aligned.
 */
export function encodeSafetensors(tensors: TensorToEncode[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const payloads: Uint8Array[] = [];
  let dataSize = 0;
  for (const tensor of tensors) {
    const count = elementCount(tensor.shape);
    if (tensor.data.length !== count) {
      throw new RangeError(
        `encodeSafetensors: ${tensor.name} has ${tensor.data.length} values, shape [${tensor.shape}] needs ${count}`,
      );
    }
    if (tensor.name in header) throw new RangeError(`encodeSafetensors: ${tensor.name} appears twice`);
    const dtype = tensor.dtype ?? 'F32';
    const payload = encodePayload(tensor);
    header[tensor.name] = { dtype, shape: tensor.shape, data_offsets: [dataSize, dataSize + payload.length] };
    payloads.push(payload);
    dataSize += payload.length;
  }

  const json = new TextEncoder().encode(JSON.stringify(header));
  const paddedLength = Math.ceil(json.length / 8) * 8;
  const file = new Uint8Array(LENGTH_PREFIX_BYTES + paddedLength + dataSize);
  new DataView(file.buffer).setBigUint64(0, BigInt(paddedLength), true);
  file.set(json, LENGTH_PREFIX_BYTES);
  file.fill(0x20, LENGTH_PREFIX_BYTES + json.length, LENGTH_PREFIX_BYTES + paddedLength);
  let offset = LENGTH_PREFIX_BYTES + paddedLength;
  for (const payload of payloads) {
    file.set(payload, offset);
    offset += payload.length;
  }
  return file;
}

function encodePayload(tensor: TensorToEncode): Uint8Array {
  if (tensor.dtype === 'I64' || tensor.dtype === undefined || tensor.dtype === 'F32') {
    return new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
  }
  const source = tensor.data;
  const halves = new Uint16Array(source.length);
  const toHalf = tensor.dtype === 'F16' ? floatToHalf : floatToBfloat16;
  for (let i = 0; i < source.length; i++) halves[i] = toHalf(source[i]);
  return new Uint8Array(halves.buffer);
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((product, size) => product * size, 1);
}

/** The bytes of data a header describes: the furthest end among its tensors' data_offsets. */
function declaredDataSize(header: Record<string, unknown>): number {
  let size = 0;
  for (const value of Object.values(header)) {
    const offsets = isPlainObject(value) ? value.data_offsets : undefined;
    if (Array.isArray(offsets) && isNonNegativeInteger(offsets[1])) size = Math.max(size, offsets[1]);
  }
  return size;
}

function parseMetadata(value: unknown, fail: (problem: string) => never): Record<string, string> {
  if (!isPlainObject(value) || !Object.values(value).every((v) => typeof v === 'string')) {
    return fail('__metadata__ is not a map of strings');
  }
  return { ...(value as Record<string, string>) };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isNonNegativeInteger(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

/** IEEE binary16 bits to the number they denote (every half is exactly an f32). */
function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1024 + mantissa) * 2 ** (exponent - 25);
}

const scratchFloat = new Float32Array(1);
const scratchBits = new Uint32Array(scratchFloat.buffer);

/** An f32 to IEEE binary16 bits, rounding to nearest even; too large becomes infinity. */
function floatToHalf(value: number): number {
  scratchFloat[0] = value;
  const bits = scratchBits[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    // Subnormal half: shift the significand, implicit bit included, down to units of 2^-24.
    if (halfExponent < -10) return sign;
    const shift = 14 - halfExponent;
    return sign | roundShiftRightEven(mantissa | 0x800000, shift);
  }
  // A carry out of the mantissa correctly bumps the exponent (and reaches infinity from the largest half).
  return sign | roundShiftRightEven((halfExponent << 23) | mantissa, 13);
}

/** An f32 to bfloat16 bits, rounding to nearest even; NaN stays a (quiet) NaN. */
function floatToBfloat16(value: number): number {
  scratchFloat[0] = value;
  const bits = scratchBits[0];
  if (Number.isNaN(value)) return (bits >>> 16) | 0x40;
  return roundShiftRightEven(bits, 16);
}

function roundShiftRightEven(value: number, shift: number): number {
  const kept = Math.floor(value / 2 ** shift);
  const dropped = value - kept * 2 ** shift;
  const halfway = 2 ** (shift - 1);
  return dropped > halfway || (dropped === halfway && kept % 2 === 1) ? kept + 1 : kept;
}
