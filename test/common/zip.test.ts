// The zip writer and reader: round trips, archives made by Python's zipfile (stored and deflated) and
// archives that the reader must refuse.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { crc32, readZip, writeZip, ZipError } from '../../src/common/zip';

const work = mkdtempSync(join(tmpdir(), 'octoclip-zip-'));
const weights = Uint8Array.from({ length: 5000 }, (_, i) => (i * 37) % 251);
const files = { 'adapter_model.safetensors': weights, 'adapter_config.json': '{"r": 2}\n', 'README.md': '# café ✓\n' };

describe('zip', () => {
  it('computes CRC-32 as zip does', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });

  it('reads back what it writes, and Python reads it too', async () => {
    const zip = writeZip(files);
    const back = await readZip(zip);
    expect([...back.keys()]).toEqual(Object.keys(files));
    expect(back.get('adapter_model.safetensors')).toEqual(weights);
    expect(new TextDecoder().decode(back.get('README.md'))).toBe(files['README.md']);
    writeFileSync(join(work, 'ours.zip'), zip);
    const listed = execFileSync(
      'python3',
      [
        '-c',
        'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; print(",".join(z.namelist()))',
        join(work, 'ours.zip'),
      ],
      { encoding: 'utf8' },
    );
    expect(listed.trim()).toBe(Object.keys(files).join(','));
  });

  it('reads deflated entries inside a folder, as zip tools make them', async () => {
    writeFileSync(join(work, 'weights.bin'), weights);
    const made = join(work, 'deflated.zip');
    execFileSync('python3', [
      '-c',
      'import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:\n  z.writestr("peft/", "")\n  z.write(sys.argv[2], "peft/adapter_model.safetensors")',
      made,
      join(work, 'weights.bin'),
    ]);
    const back = await readZip(new Uint8Array(readFileSync(made)));
    expect([...back.keys()]).toEqual(['peft/adapter_model.safetensors']);
    expect(back.get('peft/adapter_model.safetensors')).toEqual(weights);
  });

  it('refuses what is not a zip, a damaged entry and a cut-off archive', async () => {
    await expect(readZip(new TextEncoder().encode('not a zip at all, just text'))).rejects.toThrow(
      new ZipError('not a zip file (no end of central directory)'),
    );
    const zip = writeZip(files);
    const damaged = zip.slice();
    damaged[200] ^= 0xff; // inside the weights
    await expect(readZip(damaged)).rejects.toThrow(
      /adapter_model\.safetensors is damaged \(its size or CRC-32 does not match\)/,
    );
    await expect(readZip(zip.subarray(0, zip.length - 30))).rejects.toThrow(ZipError);
  });
});
