// Zip archives without a dependency, for the PEFT export's one-file download and import: the writer stores
// files uncompressed (safetensors weights barely compress); the reader takes stored and deflated entries
// (DecompressionStream, in browsers and Node) and checks every CRC-32. No zip64, encryption or multi-disk.

/** The archive cannot be read; the message says why. */
export class ZipError extends Error {
  override name = 'ZipError';
}

const LOCAL_HEADER = 0x04034b50;
const CENTRAL_HEADER = 0x02014b50;
const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
const STORED = 0;
const DEFLATED = 8;
/** General purpose flag bit 11: names are UTF-8. */
const UTF8_NAMES = 0x0800;
/** 1980-01-01 00:00 in MS-DOS time: fixed, so the same files give the same bytes. */
const DOS_DATE = (0 << 9) | (1 << 5) | 1;

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** CRC-32 (IEEE 802.3, as zip and PNG use). */
export function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = CRC_TABLE[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** A zip of the files (by name; strings as UTF-8), stored uncompressed, in the order given. */
export function writeZip(files: Record<string, Uint8Array | string>): Uint8Array<ArrayBuffer> {
  const encoder = new TextEncoder();
  const entries = Object.entries(files).map(([name, contents]) => {
    const data = typeof contents === 'string' ? encoder.encode(contents) : contents;
    return { name: encoder.encode(name), data, crc: crc32(data), offset: 0 };
  });
  const localSize = entries.reduce((sum, e) => sum + 30 + e.name.length + e.data.length, 0);
  const centralSize = entries.reduce((sum, e) => sum + 46 + e.name.length, 0);
  if (localSize + centralSize > 0xffffffff || entries.length > 0xffff)
    throw new ZipError('too large for a zip without zip64');
  const out = new Uint8Array(localSize + centralSize + 22);
  const view = new DataView(out.buffer);
  let at = 0;
  const u16 = (value: number) => (view.setUint16(at, value, true), (at += 2));
  const u32 = (value: number) => (view.setUint32(at, value, true), (at += 4));
  const bytes = (value: Uint8Array) => (out.set(value, at), (at += value.length));
  /** Version, flags, method, time, date, CRC, sizes and name length: the fields both headers share. */
  const common = (e: (typeof entries)[number]) => {
    u16(20),
      u16(UTF8_NAMES),
      u16(STORED),
      u16(0),
      u16(DOS_DATE),
      u32(e.crc),
      u32(e.data.length),
      u32(e.data.length),
      u16(e.name.length);
  };
  for (const e of entries) {
    e.offset = at;
    u32(LOCAL_HEADER), common(e), u16(0), bytes(e.name), bytes(e.data);
  }
  const centralStart = at;
  for (const e of entries) {
    u32(CENTRAL_HEADER), u16(20), common(e), u16(0), u16(0), u16(0), u16(0), u32(0), u32(e.offset), bytes(e.name);
  }
  u32(END_OF_CENTRAL_DIRECTORY),
    u16(0),
    u16(0),
    u16(entries.length),
    u16(entries.length),
    u32(centralSize),
    u32(centralStart),
    u16(0);
  return out;
}

/** The files of a zip by name (folders skipped), each checked against its CRC-32. */
export async function readZip(zip: Uint8Array): Promise<Map<string, Uint8Array>> {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  let end = -1;
  // The end record is 22 bytes plus a comment of up to 65,535.
  for (let at = zip.length - 22; at >= Math.max(0, zip.length - 22 - 0xffff); at--) {
    if (view.getUint32(at, true) === END_OF_CENTRAL_DIRECTORY) {
      end = at;
      break;
    }
  }
  if (end < 0) throw new ZipError('not a zip file (no end of central directory)');
  const count = view.getUint16(end + 10, true);
  let at = view.getUint32(end + 16, true);
  const decoder = new TextDecoder();
  const files = new Map<string, Uint8Array>();
  for (let i = 0; i < count; i++) {
    if (at + 46 > zip.length || view.getUint32(at, true) !== CENTRAL_HEADER)
      throw new ZipError('the zip is damaged (bad central directory)');
    const flags = view.getUint16(at + 8, true);
    const method = view.getUint16(at + 10, true);
    const crc = view.getUint32(at + 16, true);
    const compressedSize = view.getUint32(at + 20, true);
    const size = view.getUint32(at + 24, true);
    const nameLength = view.getUint16(at + 28, true);
    const extraLength = view.getUint16(at + 30, true);
    const commentLength = view.getUint16(at + 32, true);
    const localOffset = view.getUint32(at + 42, true);
    const name = decoder.decode(zip.subarray(at + 46, at + 46 + nameLength));
    at += 46 + nameLength + extraLength + commentLength;
    if (name.endsWith('/')) continue;
    if (flags & 1) throw new ZipError(`${name} is encrypted`);
    if (size === 0xffffffff || compressedSize === 0xffffffff)
      throw new ZipError(`${name} needs zip64, which is not supported`);
    if (localOffset + 30 > zip.length || view.getUint32(localOffset, true) !== LOCAL_HEADER)
      throw new ZipError(`the zip is damaged (no local header for ${name})`);
    const dataStart =
      localOffset + 30 + view.getUint16(localOffset + 26, true) + view.getUint16(localOffset + 28, true);
    if (dataStart + compressedSize > zip.length) throw new ZipError(`the zip is incomplete: ${name} runs past its end`);
    const raw = zip.subarray(dataStart, dataStart + compressedSize);
    const data = method === STORED ? raw : method === DEFLATED ? await inflateRaw(raw) : null;
    if (!data)
      throw new ZipError(`${name} uses compression method ${method}; only stored and deflated entries are read`);
    if (data.length !== size || crc32(data) !== crc)
      throw new ZipError(`${name} is damaged (its size or CRC-32 does not match)`);
    files.set(name, data);
  }
  return files;
}

async function inflateRaw(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>])
    .stream()
    .pipeThrough(new DecompressionStream('deflate-raw'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
