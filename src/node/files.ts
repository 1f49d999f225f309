// Model directories on disk for Node (the CLI and tests): write and read a checkpoint's files, and read a
// safetensors file one tensor at a time without loading it whole.

import { mkdir, open, readdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import {
  decodeTensor,
  ModelFileError,
  parseSafetensorsHeader,
  safetensorsHeaderSize,
  type SafetensorsHeader,
} from '../model/safetensors';

/** Writes each file into `dir` (created if needed); strings as UTF-8. */
export async function writeModelDirectory(dir: string, files: Record<string, Uint8Array | string>): Promise<void> {
  await mkdir(dir, { recursive: true });
  await Promise.all(Object.entries(files).map(([name, contents]) => writeFile(join(dir, name), contents)));
}

/** The files directly in `dir`: JSON and text files as strings, the rest (weights) as bytes. */
export async function readModelDirectory(dir: string): Promise<Record<string, Uint8Array | string>> {
  const entries = await readdir(dir, { withFileTypes: true });
  const files: Record<string, Uint8Array | string> = {};
  for (const entry of entries.filter((e) => e.isFile()).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const path = join(dir, entry.name);
    files[entry.name] = /\.(json|txt)$/.test(entry.name)
      ? await readFile(path, 'utf8')
      : new Uint8Array(await readFile(path));
  }
  return files;
}

export interface SafetensorsFile {
  header: SafetensorsHeader;
  /** One tensor as f32, read from disk on demand. */
  readTensor(name: string): Promise<Float32Array>;
  close(): Promise<void>;
}

/** Opens a safetensors file and reads just its header; tensors are read one at a time. */
export async function openSafetensorsFile(path: string): Promise<SafetensorsFile> {
  const fileName = basename(path);
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const read = async (position: number, length: number) => {
      const bytes = new Uint8Array(length);
      const { bytesRead } = await handle.read(bytes, 0, length, position);
      if (bytesRead !== length)
        throw new ModelFileError(`read ${bytesRead} of ${length} bytes at ${position}`, fileName);
      return bytes;
    };
    const prefix = await read(0, Math.min(8, size));
    const header = parseSafetensorsHeader(await read(0, safetensorsHeaderSize(prefix, size, fileName)), size, fileName);
    return {
      header,
      async readTensor(name) {
        const entry = header.tensors.get(name);
        if (!entry) throw new ModelFileError(`has no tensor ${name}`, fileName);
        return decodeTensor(entry, await read(entry.byteOffset, entry.byteLength), fileName);
      },
      close: () => handle.close(),
    };
  } catch (error) {
    await handle.close();
    throw error;
  }
}
