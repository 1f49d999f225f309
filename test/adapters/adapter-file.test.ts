import { describe, expect, it } from 'vitest';
import {
  adaptedMatrices,
  AdapterFileError,
  AdapterMismatchError,
  assertAdapterMatchesBase,
  decodeAdapterFile,
  encodeAdapterFile,
  namedAdapterFile,
  type AdapterMetadata,
  type AdapterTensors,
} from '../../src/adapters/adapter-file';
import { scalingFor } from '../../src/adapters/settings';
import { fingerprintWeights } from '../../src/model/fingerprint';
import { encodeSafetensors, parseSafetensorsHeader } from '../../src/model/safetensors';
import { randomArray } from '../helpers/random';

/** Small towers: text hidden 8 / MLP 16, vision hidden 12 / MLP 24. */
const WIDTHS = { text: { hidden: 8, mlp: 16 }, vision: { hidden: 12, mlp: 24 } };

function sampleMeta(overrides: Partial<AdapterMetadata> = {}): AdapterMetadata {
  const rank = overrides.rank ?? 4;
  const alpha = overrides.alpha ?? 1;
  const scalingRule = overrides.scalingRule ?? 'alpha/sqrt(r)';
  return {
    method: 'block-lora',
    rank,
    blocks: 2,
    alpha,
    scalingRule,
    scaling: scalingFor(scalingRule, alpha, rank),
    dropout: 0.25,
    targets: ['q_proj', 'v_proj', 'fc1', 'fc2'],
    layers: { text: [0, 2], vision: [1] },
    baseModel: 'openai/clip-vit-base-patch32',
    baseModelFingerprint: 'fnv1a64:0123456789abcdef',
    classNames: ['cat', 'golden_retriever', 'ünïcode "quoted"'],
    promptTemplate: 'a photo of a {}.',
    training: { shots: 4, seed: 1, iterations: 2000, lr: 2e-4, batchSize: 32 },
    metrics: { zeroShotAccuracy: 0.61, accuracy: 0.83 },
    ...overrides,
  };
}

/** Random tensors of the shapes `meta` implies for the small towers. */
function sampleTensors(meta: AdapterMetadata, seed = 1): AdapterTensors {
  const blockRank = meta.rank / meta.blocks;
  const tensors: AdapterTensors = new Map();
  adaptedMatrices(meta).forEach(({ tower, target, aName, bName }, i) => {
    const { hidden, mlp } = WIDTHS[tower];
    const dIn = target === 'fc2' ? mlp : hidden;
    const dOut = target === 'fc1' ? mlp : hidden;
    tensors.set(aName, { shape: [blockRank, dIn], data: randomArray(blockRank * dIn, seed * 1000 + 2 * i) });
    const bData = randomArray(meta.blocks * dOut * blockRank, seed * 1000 + 2 * i + 1);
    tensors.set(bName, { shape: [meta.blocks, dOut, blockRank], data: bData });
  });
  return tensors;
}

const FILE = 'my-adapter.octoclip.safetensors';

/** The AdapterFileError decoding throws. */
function decodeFailure(bytes: Uint8Array): AdapterFileError {
  try {
    decodeAdapterFile(bytes, FILE);
  } catch (error) {
    expect(error).toBeInstanceOf(AdapterFileError);
    return error as AdapterFileError;
  }
  throw new Error('decodeAdapterFile accepted the file');
}

/** Re-encodes a valid adapter's tensors with edited metadata strings, bypassing the writer's checks. */
function withMetadata(edit: (metadata: Record<string, string>) => void, tensors?: AdapterTensors): Uint8Array {
  const meta = sampleMeta();
  const file = encodeAdapterFile(meta, sampleTensors(meta));
  const header = parseSafetensorsHeader(file, file.length);
  const metadata = { ...header.metadata };
  edit(metadata);
  const { tensors: decoded } = decodeAdapterFile(file);
  const list = [...(tensors ?? decoded)].map(([name, tensor]) => ({ name, ...tensor }));
  return encodeSafetensors(list, metadata);
}

describe('adapter file', () => {
  it('round-trips metadata and tensors exactly', () => {
    const meta = sampleMeta();
    const tensors = sampleTensors(meta);
    const { meta: decodedMeta, tensors: decodedTensors } = decodeAdapterFile(encodeAdapterFile(meta, tensors), FILE);
    expect(decodedMeta).toEqual(meta);
    expect([...decodedTensors.keys()].sort()).toEqual([...tensors.keys()].sort());
    for (const [name, tensor] of tensors) {
      expect(decodedTensors.get(name)!.shape).toEqual(tensor.shape);
      expect(decodedTensors.get(name)!.data).toEqual(tensor.data);
    }
  });

  it('writes the documented names, shapes and metadata strings', () => {
    const meta = sampleMeta();
    const file = encodeAdapterFile(meta, sampleTensors(meta));
    const header = parseSafetensorsHeader(file, file.length);
    expect(header.metadata).toEqual({
      format: 'octoclip-adapter',
      format_version: '1',
      method: 'block-lora',
      rank: '4',
      blocks: '2',
      alpha: '1',
      scaling_rule: 'alpha/sqrt(r)',
      scaling: String(1 / 2),
      dropout: '0.25',
      targets: '["q_proj","v_proj","fc1","fc2"]',
      layers: '{"text":[0,2],"vision":[1]}',
      base_model: 'openai/clip-vit-base-patch32',
      base_model_fingerprint: 'fnv1a64:0123456789abcdef',
      class_names: JSON.stringify(meta.classNames),
      prompt_template: 'a photo of a {}.',
      training: JSON.stringify(meta.training),
      metrics: JSON.stringify(meta.metrics),
    });
    expect(header.tensors.get('text_model.encoder.layers.2.self_attn.v_proj.block_lora_A')?.shape).toEqual([2, 8]);
    expect(header.tensors.get('text_model.encoder.layers.2.self_attn.v_proj.block_lora_B')?.shape).toEqual([2, 8, 2]);
    expect(header.tensors.get('vision_model.encoder.layers.1.mlp.fc1.block_lora_A')?.shape).toEqual([2, 12]);
    expect(header.tensors.get('vision_model.encoder.layers.1.mlp.fc1.block_lora_B')?.shape).toEqual([2, 24, 2]);
    expect(header.tensors.get('vision_model.encoder.layers.1.mlp.fc2.block_lora_A')?.shape).toEqual([2, 24]);
    expect(header.tensors.size).toBe(2 * 3 * 4);
  });

  it("records the classes' own prompts when there are some, and reads files without them", () => {
    const meta = sampleMeta({ classPrompts: { cat: 'a tabby cat asleep on a sofa' } });
    const file = encodeAdapterFile(meta, sampleTensors(meta));
    expect(parseSafetensorsHeader(file, file.length).metadata.class_prompts).toBe(
      '{"cat":"a tabby cat asleep on a sofa"}',
    );
    expect(decodeAdapterFile(file).meta).toEqual(meta);
    const plain = sampleMeta();
    const plainFile = encodeAdapterFile(plain, sampleTensors(plain));
    expect(parseSafetensorsHeader(plainFile, plainFile.length).metadata).not.toHaveProperty('class_prompts');
    expect(decodeAdapterFile(plainFile).meta.classPrompts).toBeUndefined();
    const wrong = sampleMeta({ classPrompts: { cat: 3 } as unknown as Record<string, string> });
    expect(() => decodeAdapterFile(encodeAdapterFile(wrong, sampleTensors(wrong)), 'wrong.safetensors')).toThrow(
      'wrong.safetensors: metadata "class_prompts" is not a JSON object of strings',
    );
  });

  it('records the name it is downloaded under, and changes nothing else', () => {
    const meta = sampleMeta();
    const tensors = sampleTensors(meta);
    const file = encodeAdapterFile(meta, tensors);
    expect(parseSafetensorsHeader(file, file.length).metadata).not.toHaveProperty('name');
    expect(decodeAdapterFile(file, FILE).meta).not.toHaveProperty('name');

    const named = namedAdapterFile(file, '  Cats, round 2 ', FILE);
    expect(parseSafetensorsHeader(named, named.length).metadata.name).toBe('Cats, round 2');
    const decoded = decodeAdapterFile(named, FILE);
    expect(decoded.meta).toEqual({ ...meta, name: 'Cats, round 2' });
    for (const [name, tensor] of tensors) expect(decoded.tensors.get(name)!.data).toEqual(tensor.data);
    // Named again (a rename, then another download): the last name is the one recorded.
    expect(decodeAdapterFile(namedAdapterFile(named, 'Cats')).meta.name).toBe('Cats');
  });

  it('round-trips plain LoRA (one block) and an adapter on one tower only', () => {
    const meta = sampleMeta({
      method: 'lora',
      blocks: 1,
      rank: 2,
      scalingRule: 'alpha/r',
      alpha: 4,
      layers: { text: [], vision: [0, 3] },
    });
    expect(meta.scaling).toBe(2);
    const { meta: decoded } = decodeAdapterFile(encodeAdapterFile(meta, sampleTensors(meta)));
    expect(decoded).toEqual(meta);
  });

  it('reads adapters stored at half precision', () => {
    const meta = sampleMeta();
    const tensors = sampleTensors(meta);
    const file = encodeAdapterFile(meta, tensors);
    const metadata = parseSafetensorsHeader(file, file.length).metadata;
    const half = encodeSafetensors(
      [...tensors].map(([name, tensor]) => ({ name, ...tensor, dtype: 'F16' as const })),
      metadata,
    );
    const decoded = decodeAdapterFile(half).tensors.get(adaptedMatrices(meta)[0].aName)!;
    const original = tensors.get(adaptedMatrices(meta)[0].aName)!;
    decoded.data.forEach((value, i) => expect(Math.abs(value - original.data[i])).toBeLessThanOrEqual(2 ** -11));
  });

  it("refuses a file that is not safetensors, naming the file, without the reader's numbers", () => {
    const garbage = new TextEncoder().encode('PK\u0003\u0004 this is a zip, not an adapter');
    expect(decodeFailure(garbage).message).toBe(
      `${FILE}: not an octoclip adapter: the file is corrupt or of another kind (it does not start with a safetensors header)`,
    );
    expect(decodeFailure(new Uint8Array(0)).message).toBe(`${FILE}: not an octoclip adapter: the file is empty`);
    expect(decodeFailure(new Uint8Array(5)).message).toBe(
      `${FILE}: not an octoclip adapter: the file has only 5 bytes`,
    );
    const badJson = new Uint8Array(24);
    badJson[0] = 16;
    badJson.fill(0x7b, 8);
    expect(decodeFailure(badJson).message).toMatch(/corrupt or of another kind/);
  });

  it('says how much of a truncated file arrived', () => {
    const meta = sampleMeta();
    const file = encodeAdapterFile(meta, sampleTensors(meta));
    expect(decodeFailure(file.subarray(0, file.length - 10)).message).toBe(
      `${FILE}: incomplete: ${file.length - 10} of ${file.length} bytes (the file was cut off: download or copy it again)`,
    );
    const headerEnd = 8 + Number(new DataView(file.buffer).getBigUint64(0, true));
    expect(decodeFailure(file.subarray(0, 100)).message).toBe(
      `${FILE}: incomplete: 100 of more than ${headerEnd} bytes (the file was cut off: download or copy it again)`,
    );
  });

  it('points a PEFT adapter file to the import', () => {
    const peft = encodeSafetensors(
      [
        {
          name: 'base_model.model.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight',
          shape: [1, 2],
          data: new Float32Array(2),
        },
      ],
      { format: 'pt' },
    );
    expect(decodeFailure(peft).message).toMatch(
      /this is a PEFT LoRA adapter .*octoclip import-peft --peft DIR --model M --out A\.octoclip\.safetensors.*Import PEFT in the Adapter library/,
    );
  });

  it("pins the base model's Hub commit beside base_model when it is known", () => {
    const pinned = sampleMeta({ baseModelRevision: 'c'.repeat(40) });
    const file = encodeAdapterFile(pinned, sampleTensors(pinned));
    expect(parseSafetensorsHeader(file, file.length).metadata.base_model_revision).toBe('c'.repeat(40));
    expect(decodeAdapterFile(file, FILE).meta.baseModelRevision).toBe('c'.repeat(40));
    const unpinned = sampleMeta();
    expect(decodeAdapterFile(encodeAdapterFile(unpinned, sampleTensors(unpinned)), FILE).meta).not.toHaveProperty(
      'baseModelRevision',
    );
  });

  it('refuses safetensors files that are not octoclip adapters', () => {
    const model = encodeSafetensors([{ name: 'logit_scale', shape: [], data: new Float32Array([4.6]) }]);
    expect(decodeFailure(model).message).toBe(`${FILE}: not an octoclip adapter (its metadata has no "format")`);
    const peft = encodeSafetensors([{ name: 'x', shape: [1], data: new Float32Array(1) }], { format: 'pt' });
    expect(decodeFailure(peft).message).toBe(`${FILE}: not an octoclip adapter (its format is "pt")`);
  });

  it('refuses a format version it does not know', () => {
    const future = withMetadata((m) => (m.format_version = '2'));
    expect(decodeFailure(future).message).toBe(
      `${FILE}: adapter format version 2 is not one this octoclip reads (1): it was written by a newer octoclip`,
    );
  });

  it('refuses inconsistent or malformed metadata', () => {
    const cases: [(m: Record<string, string>) => void, RegExp][] = [
      [(m) => delete m.rank, /metadata lacks "rank"/],
      [(m) => (m.rank = 'four'), /metadata "rank" is "four", expected a number/],
      [(m) => (m.blocks = '3'), /blocks 3 does not divide the rank 4/],
      [(m) => (m.method = 'dora'), /metadata "method" is "dora"/],
      [(m) => (m.scaling = '0.7'), /scaling 0.7 is not alpha\/sqrt\(r\) = 0.5/],
      [(m) => (m.targets = '["q_proj", "w_proj"]'), /target "w_proj" is not one of/],
      [(m) => (m.targets = 'q_proj'), /metadata "targets" is not valid JSON/],
      [(m) => (m.layers = '{"text": [0.5]}'), /metadata "layers" has text: \[0.5\]/],
      [(m) => (m.class_names = '{"a": 1}'), /metadata "class_names" is not a JSON list of strings/],
      [(m) => (m.dropout = '1'), /dropout 1 is not in \[0, 1\)/],
    ];
    for (const [edit, message] of cases) expect(decodeFailure(withMetadata(edit)).message).toMatch(message);
  });

  it('refuses missing, extra, misshapen and non-finite tensors', () => {
    const meta = sampleMeta();
    const [first] = adaptedMatrices(meta);
    const edited = (edit: (tensors: AdapterTensors) => void) => {
      const tensors = sampleTensors(meta);
      edit(tensors);
      return withMetadata(() => {}, tensors);
    };
    expect(decodeFailure(edited((t) => t.delete(first.bName))).message).toBe(
      `${FILE}: tensor ${first.bName} is missing`,
    );
    const stray = 'text_model.encoder.layers.5.self_attn.q_proj.block_lora_A';
    expect(decodeFailure(edited((t) => t.set(stray, { shape: [1], data: new Float32Array(1) }))).message).toBe(
      `${FILE}: tensor ${stray} is not one the metadata's targets and layers name`,
    );
    expect(
      decodeFailure(edited((t) => t.set(first.aName, { shape: [4, 8], data: new Float32Array(32) }))).message,
    ).toMatch(/has shape \[4,8\], expected \[2, d_in\] for rank 4 in 2 blocks/);
    expect(
      decodeFailure(edited((t) => t.set(first.bName, { shape: [2, 9, 2], data: new Float32Array(36) }))).message,
    ).toMatch(/implies a text hidden width of 9, .* implies 8/);
    expect(
      decodeFailure(
        edited((t) => {
          const data = t.get(first.aName)!.data.slice();
          data[3] = NaN;
          t.set(first.aName, { shape: [2, 8], data });
        }),
      ).message,
    ).toMatch(/holds NaN or infinite values/);
  });

  it('refuses to write an invalid adapter', () => {
    const meta = sampleMeta();
    const tensors = sampleTensors(meta);
    tensors.delete(adaptedMatrices(meta)[2].aName);
    expect(() => encodeAdapterFile(meta, tensors)).toThrow(/^encodeAdapterFile: tensor .* is missing$/);
    expect(() => encodeAdapterFile({ ...meta, scaling: 1 }, sampleTensors(meta))).toThrow(RangeError);
    expect(() => encodeAdapterFile({ ...meta, method: 'lora' }, sampleTensors(meta))).toThrow(
      /method "lora" has one block/,
    );
  });
});

describe('base model check', () => {
  it('accepts the base it was trained on, under any id', () => {
    const meta = sampleMeta();
    expect(() => assertAdapterMatchesBase(meta, meta.baseModel, meta.baseModelFingerprint)).not.toThrow();
    expect(() => assertAdapterMatchesBase(meta, './models/my-mirror', meta.baseModelFingerprint)).not.toThrow();
  });

  it('refuses another base, saying which was expected', () => {
    const meta = sampleMeta();
    const attempt = () =>
      assertAdapterMatchesBase(meta, 'openai/clip-vit-base-patch16', 'fnv1a64:fedcba9876543210', FILE);
    expect(attempt).toThrow(AdapterMismatchError);
    expect(attempt).toThrow(
      `adapter ${FILE} was trained on openai/clip-vit-base-patch32 (fingerprint fnv1a64:0123456789abcdef), ` +
        'the loaded model is openai/clip-vit-base-patch16 (fingerprint fnv1a64:fedcba9876543210): ' +
        'load openai/clip-vit-base-patch32 to use it',
    );
  });
});

describe('fingerprintWeights', () => {
  /** FNV-1a 64 over bytes, with BigInt: the textbook definition. */
  function referenceFnv1a64(bytes: Uint8Array): string {
    let hash = 0xcbf29ce484222325n;
    for (const byte of bytes) hash = ((hash ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn;
    return `fnv1a64:${hash.toString(16).padStart(16, '0')}`;
  }

  /** The bytes the fingerprint covers: each array's length (u32 LE), then its f32 values (LE). */
  function coveredBytes(samples: Float32Array[]): Uint8Array {
    const parts = samples.flatMap((sample) => [
      new Uint8Array(new Uint32Array([sample.length]).buffer),
      new Uint8Array(sample.slice().buffer),
    ]);
    const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
    let offset = 0;
    for (const part of parts) {
      out.set(part, offset);
      offset += part.length;
    }
    return out;
  }

  it('is 64-bit FNV-1a over the lengths and f32 bytes', () => {
    expect(fingerprintWeights([])).toBe('fnv1a64:cbf29ce484222325');
    const samples = [new Float32Array([4.6052]), randomArray(512 * 3, 1), randomArray(777, 2)];
    expect(fingerprintWeights(samples)).toBe(referenceFnv1a64(coveredBytes(samples)));
    // "a" is the published test vector's input: 0xaf63dc4c8601ec8c.
    expect(referenceFnv1a64(new TextEncoder().encode('a'))).toBe('fnv1a64:af63dc4c8601ec8c');
  });

  it('is stable, and changes with any bit and with how the values are split', () => {
    const a = randomArray(100, 3);
    const b = randomArray(50, 4);
    const reference = fingerprintWeights([a, b]);
    expect(fingerprintWeights([a.slice(), b.slice()])).toBe(reference);
    // A view into a larger buffer hashes the same as a copy.
    const padded = new Float32Array(200);
    padded.set(a, 37);
    expect(fingerprintWeights([padded.subarray(37, 137), b])).toBe(reference);
    const flipped = a.slice();
    new Uint32Array(flipped.buffer)[42] ^= 1;
    expect(fingerprintWeights([flipped, b])).not.toBe(reference);
    const joined = new Float32Array([...a, ...b]);
    expect(fingerprintWeights([joined])).not.toBe(reference);
  });
});
