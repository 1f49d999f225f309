// The workspace file (src/storage/workspace): what is written reads back the same, byte for byte, and
// a file that is not one, or is damaged, is refused with the reason.
import { describe, expect, it } from 'vitest';
import type { AdapterRecord, ClassRecord, ImageRecord } from '../../src/storage/db';
import { decodeWorkspace, encodeWorkspace, WorkspaceFileError, type Workspace } from '../../src/storage/workspace';

const bytes = (...values: number[]) => new Uint8Array(values);

function sampleWorkspace(): Workspace {
  const classes: ClassRecord[] = [
    { id: 'c1', name: 'cat', position: 0 },
    { id: 'c2', name: 'dog', position: 1 },
  ];
  const image = (id: string, classId: string, pixels: Uint8Array<ArrayBuffer>): ImageRecord => ({
    id,
    classId,
    name: `${id}.png`,
    width: 2,
    height: 3,
    addedAt: 1000,
    blob: new Blob([pixels], { type: 'image/png' }),
    thumbnail: new Blob([pixels.subarray(1)], { type: 'image/jpeg' }),
  });
  const adapter: AdapterRecord = {
    id: 'a1',
    name: 'Block-LoRA r2 n2',
    createdAt: 2000,
    source: 'trained',
    meta: { method: 'block-lora', rank: 2, blocks: 2, metrics: { accuracy: 0.5 } } as unknown as AdapterRecord['meta'],
    file: new Blob([bytes(9, 8, 7, 6)]),
  };
  return {
    classes,
    images: [image('i1', 'c1', bytes(1, 2, 3)), image('i2', 'c2', bytes(4, 5, 6, 7, 8))],
    adapters: [adapter],
    settings: { 'octoclip.training-settings': '{"state":{"settings":{"rank":4}},"version":1}' },
  };
}

async function blobBytes(blob: Blob): Promise<number[]> {
  return [...new Uint8Array(await blob.arrayBuffer())];
}

describe('workspace file', () => {
  it('reads back every record, Blob and setting it was written with', async () => {
    const original = sampleWorkspace();
    const read = await decodeWorkspace(encodeWorkspace(original), 'w.octoclip-workspace');
    expect(read.classes).toEqual(original.classes);
    expect(read.settings).toEqual(original.settings);
    expect(read.images.map(({ blob: _, thumbnail: __, ...rest }) => rest)).toEqual(
      original.images.map(({ blob: _, thumbnail: __, ...rest }) => rest),
    );
    for (const [i, image] of read.images.entries()) {
      expect(await blobBytes(image.blob)).toEqual(await blobBytes(original.images[i].blob));
      expect(await blobBytes(image.thumbnail)).toEqual(await blobBytes(original.images[i].thumbnail));
      expect(image.blob.type).toBe('image/png');
      expect(image.thumbnail.type).toBe('image/jpeg');
    }
    expect(read.adapters[0].meta).toEqual(original.adapters[0].meta);
    expect(await blobBytes(read.adapters[0].file)).toEqual([9, 8, 7, 6]);
  });

  it('reads an empty workspace', async () => {
    const read = await decodeWorkspace(
      encodeWorkspace({ classes: [], images: [], adapters: [], settings: {} }),
      'empty',
    );
    expect(read).toEqual({ classes: [], images: [], adapters: [], settings: {} });
  });

  it("carries the dataset's prompt template and the classes' own prompts", async () => {
    const original = sampleWorkspace();
    original.classes[0].prompt = 'a photo of a sleepy cat.';
    original.promptTemplate = 'a drawing of a {}.';
    const read = await decodeWorkspace(encodeWorkspace(original), 'w.octoclip-workspace');
    expect(read.promptTemplate).toBe('a drawing of a {}.');
    expect(read.classes).toEqual(original.classes);
  });

  async function refusal(file: Blob): Promise<string> {
    const error = await decodeWorkspace(file, 'bad.octoclip-workspace').then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(WorkspaceFileError);
    return (error as Error).message;
  }

  /** The encoded sample with its header rewritten by `edit`. */
  async function withHeader(edit: (header: Record<string, any>) => void): Promise<Blob> {
    const file = new Uint8Array(await encodeWorkspace(sampleWorkspace()).arrayBuffer());
    const magic = 'octoclip workspace\n'.length;
    const length = Number(new DataView(file.buffer).getBigUint64(magic, true));
    const header = JSON.parse(new TextDecoder().decode(file.subarray(magic + 8, magic + 8 + length)));
    edit(header);
    const json = new TextEncoder().encode(JSON.stringify(header));
    const prefix = new Uint8Array(8);
    new DataView(prefix.buffer).setBigUint64(0, BigInt(json.length), true);
    return new Blob([file.subarray(0, magic), prefix, json, file.subarray(magic + 8 + length)]);
  }

  it('refuses a file that is not a workspace, saying so', async () => {
    expect(await refusal(new Blob(['PK\x03\x04 a zip file, not a workspace at all']))).toBe(
      'bad.octoclip-workspace is not an octoclip workspace file: it does not start with “octoclip workspace”. Nothing was imported.',
    );
    expect(await refusal(new Blob(['notes']))).toMatch(/it does not start with “octoclip workspace”/);
    expect(await refusal(new Blob([]))).toMatch(/it does not start with “octoclip workspace”/);
    expect(await refusal(new Blob(['octoclip work']))).toMatch(
      /it is cut short \(13 bytes, fewer than a workspace file's own header\)/,
    );
  });

  it('refuses a file cut short, in its header or in its data', async () => {
    const whole = encodeWorkspace(sampleWorkspace());
    expect(await refusal(whole.slice(0, 40))).toMatch(/it is cut short \(the header runs past the end of the file\)/);
    expect(await refusal(whole.slice(0, whole.size - 2))).toMatch(
      /the adapter Block-LoRA r2 n2 runs past the end of the file/,
    );
  });

  it('refuses a header that is not JSON, of another version, or malformed', async () => {
    const whole = new Uint8Array(await encodeWorkspace(sampleWorkspace()).arrayBuffer());
    whole[40] = 0xff; // inside the JSON header: no longer UTF-8
    expect(await refusal(new Blob([whole]))).toMatch(/its header is not valid JSON/);
    expect(await refusal(await withHeader((h) => (h.version = 2)))).toMatch(
      /it is format version 2, and this studio reads version 1/,
    );
    expect(await refusal(await withHeader((h) => delete h.images))).toMatch(/the header has no list of images/);
    expect(await refusal(await withHeader((h) => (h.images[0].classId = 'nowhere')))).toMatch(
      /an image in the header is malformed or belongs to no class/,
    );
    expect(await refusal(await withHeader((h) => (h.images[1].blob.offset = -1)))).toMatch(
      /the header's entry for the image i2.png is malformed/,
    );
    expect(await refusal(await withHeader((h) => (h.settings = { key: 3 })))).toMatch(
      /a setting in the header is not text/,
    );
    expect(await refusal(await withHeader((h) => (h.classes[0].prompt = 7)))).toMatch(
      /a class in the header is malformed/,
    );
    expect(await refusal(await withHeader((h) => (h.promptTemplate = ['a {}'])))).toMatch(
      /the prompt template in the header is not text/,
    );
  });
});
