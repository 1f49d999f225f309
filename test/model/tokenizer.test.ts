import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { makeTinyClip } from '../../src/model/tiny';
import { BASE_SYMBOLS, ClipTokenizer, END_OF_TEXT, START_OF_TEXT } from '../../src/model/tokenizer';
import { ModelFileError } from '../../src/model/safetensors';

const OPENAI_MERGES_PATH = resolve('../shared/data/clip-tokenizer/bpe_simple_vocab_16e6.txt.gz'); // beside the checkout
const hasOpenAiMerges = existsSync(OPENAI_MERGES_PATH);
if (!hasOpenAiMerges) console.log(`Skipping the real CLIP vocabulary tests: ${OPENAI_MERGES_PATH} is not here.`);

const SOT = 49406;
const EOT = 49407;

/**
 * Token ids from openai/CLIP's simple_tokenizer.py (a line-by-line Python port run on the released merges;
 * ftfy is a no-op on these strings). The single-character ids also follow by hand from the vocabulary
 * layout: a printable ASCII byte b alone is the token chr(b)+"</w>", id 256 + (b - 33), e.g. "." 269, "!" 256.
 */
const REFERENCE_IDS: [string, number[]][] = [
  ['a photo of a cat.', [320, 1125, 539, 320, 2368, 269]],
  ['Hello   World', [3306, 1002]],
  ['hello, world!!', [3306, 267, 1002, 748]],
  ["I'm 2024!", [328, 880, 273, 271, 273, 275, 256]], // digits one by one: "2" 273, "0" 271, "4" 275
  ['3.14', [274, 269, 272, 275]],
  ["don't", [847, 713]],
  ['café', [15304]],
  ['🐱', [22979]],
  ['👍🏽', [43722]],
  ['a <b>bold</b> move', [320, 283, 321, 285, 8911, 34308, 321, 285, 2783]],
  ['e-mail', [324, 268, 2614]],
  ['  leading and trailing  ', [3833, 537, 37427]],
  ['supercalifragilisticexpialidocious', [1642, 2857, 13093, 2076, 5868, 26850, 835, 639, 38466]],
  ['日本', [39121, 19277, 361]],
];

describe.skipIf(!hasOpenAiMerges)('CLIP tokenizer on the released vocabulary', () => {
  const bpeText = hasOpenAiMerges ? gunzipSync(readFileSync(OPENAI_MERGES_PATH)).toString('utf8') : '';
  const tokenizer = ClipTokenizer.fromOpenAiMerges(bpeText);

  it('has 49,408 tokens with start- and end-of-text last', () => {
    expect(tokenizer.vocabSize).toBe(49408);
    expect([tokenizer.startOfTextId, tokenizer.endOfTextId, tokenizer.padId]).toEqual([SOT, EOT, EOT]);
  });

  it.each(REFERENCE_IDS)('encodes %j as simple_tokenizer.py does', (text, ids) => {
    expect(tokenizer.encode(text)).toEqual(ids);
  });

  it('gives a lone printable ASCII character the id 256 + (byte - 33)', () => {
    for (const character of '!"#,-./09:;<>?@[]az{}~') {
      expect(tokenizer.encode(character), character).toEqual([256 + character.charCodeAt(0) - 33]);
    }
  });

  it('gives a whole word the id of the merge that spells it: 512 + its rank', () => {
    const merges = bpeText.split('\n').slice(1, 1 + 48894);
    for (const word of ['photo', 'cat', 'hello', 'world']) {
      const rank = merges.findIndex((line) => line.replace(' ', '') === `${word}</w>`);
      expect(rank, word).toBeGreaterThan(0);
      expect(tokenizer.encode(word), word).toEqual([512 + rank]);
    }
  });

  it('tokenizes a caption into 77 ids: start, tokens, end, end-of-text padding', () => {
    const { ids, eotIndex } = tokenizer.tokenize('a photo of a cat.');
    expect(ids).toBeInstanceOf(Int32Array);
    expect(ids.length).toBe(77);
    expect([...ids.subarray(0, 8)]).toEqual([SOT, 320, 1125, 539, 320, 2368, 269, EOT]);
    expect(ids.subarray(8).every((id) => id === EOT)).toBe(true);
    expect(eotIndex).toBe(7);
  });

  it('truncates a long text to the context and keeps end-of-text last', () => {
    const { ids, eotIndex } = tokenizer.tokenize('cat '.repeat(100));
    expect(ids.length).toBe(77);
    expect(ids[0]).toBe(SOT);
    expect(ids.subarray(1, 76).every((id) => id === 2368)).toBe(true);
    expect(ids[76]).toBe(EOT);
    expect(eotIndex).toBe(76);
    expect(tokenizer.tokenize('cat cat cat', 4).ids).toEqual(Int32Array.of(SOT, 2368, 2368, EOT));
    expect(() => tokenizer.tokenize('cat', 1)).toThrow(RangeError);
  });

  it('reads special tokens written in the text as special, as simple_tokenizer.py does; pooling takes the first', () => {
    expect(tokenizer.encode('<|startoftext|>x<|endoftext|>')).toEqual([SOT, 343, EOT]);
    expect(tokenizer.tokenize('x <|endoftext|> y').eotIndex).toBe(2);
  });

  it('lower-cases, collapses Unicode whitespace and strips the ends', () => {
    expect(tokenizer.encode('HELLO wOrLd')).toEqual([3306, 1002]);
    expect(tokenizer.encode('\t hello\n\u00a0\u3000\u2003world \r\n')).toEqual([3306, 1002]);
  });

  it('cleans text as ftfy and html.unescape do: NFC, straight quotes, entities unescaped twice', () => {
    const same = (variant: string, plain: string) =>
      expect(tokenizer.encode(variant), variant).toEqual(tokenizer.encode(plain));
    same('cafe\u0301', 'café');
    same('it\u2019s \u201cquoted\u201d', 'it\'s "quoted"');
    same('fish &amp; chips', 'fish & chips');
    same('fish &amp;amp; chips', 'fish & chips');
    same('&lt;b&gt; &quot;x&quot; &#39;y&#x27; &#8364;', '<b> "x" \'y\' €');
    same('&#128; &amplifier &#0;', '€ &lifier \ufffd'); // C1 references read as Windows-1252; "&amp" needs no ";"
    same('&unknownentity; &#', '&unknownentity; &#');
  });

  it('decodes back to the cleaned text, a space after each word', () => {
    expect(tokenizer.decode(tokenizer.encode('A photo of a Cat.'))).toBe('a photo of a cat . ');
    expect(tokenizer.decode(tokenizer.encode('café 🐱 日本'))).toBe('café 🐱 日本 ');
    expect(tokenizer.decode([SOT, 320, EOT])).toBe('<|startoftext|>a <|endoftext|>');
    expect(() => tokenizer.decode([49408])).toThrow('decode: 49408 is not a token id');
  });

  it("reads Hugging Face's vocab.json and merges.txt to the same tokenizer", () => {
    const merges = bpeText.split('\n').slice(1, 1 + 48894);
    const vocab = [...BASE_SYMBOLS, ...merges.map((line) => line.replace(' ', '')), START_OF_TEXT, END_OF_TEXT];
    const fromHub = ClipTokenizer.fromHuggingFace(
      JSON.stringify(Object.fromEntries(vocab.map((token, id) => [token, id]))),
      `${['#version: 0.2', ...merges].join('\n')}\n`,
    );
    expect(fromHub.vocabSize).toBe(49408);
    for (const [text, ids] of REFERENCE_IDS) expect(fromHub.encode(text), text).toEqual(ids);
  });
});

describe('CLIP tokenizer on the tiny model vocabulary', () => {
  const { files } = makeTinyClip();
  const vocab = JSON.parse(files['vocab.json'] as string) as Record<string, number>;
  const tokenizer = ClipTokenizer.fromHuggingFace(files['vocab.json'] as string, files['merges.txt'] as string);

  it('puts start- and end-of-text last, as in CLIP', () => {
    const size = Object.keys(vocab).length;
    expect(tokenizer.vocabSize).toBe(size);
    expect(tokenizer.startOfTextId).toBe(size - 2);
    expect(tokenizer.endOfTextId).toBe(size - 1);
  });

  it('has whole-word tokens for the prompt words', () => {
    const words = ['a', 'photo', 'of', 'the', 'number', 'seven', 'cat', 'truck', 'zero', 'nine'];
    expect(tokenizer.encode('A photo of the number seven. cat truck zero nine')).toEqual(
      [...words.slice(0, 6), '.', ...words.slice(6)].map((word) => vocab[`${word}</w>`]),
    );
  });

  it('falls back to byte pieces for other words and still round-trips', () => {
    const ids = tokenizer.encode('Zebra crossing, 42 ÿ€🐱');
    expect(tokenizer.decode(ids)).toBe('zebra crossing , 4 2 ÿ €🐱 ');
    const { ids: row, eotIndex } = tokenizer.tokenize('Zebra crossing, 42 ÿ€🐱');
    expect(eotIndex).toBe(ids.length + 1);
    expect(row[eotIndex]).toBe(tokenizer.endOfTextId);
  });
});

describe('tokenizer files that cannot be used', () => {
  const { files } = makeTinyClip();
  const vocab = JSON.parse(files['vocab.json'] as string) as Record<string, number>;
  const merges = files['merges.txt'] as string;
  const refuse = (vocabJson: string, mergesText: string, message: string | RegExp) => {
    expect(() => ClipTokenizer.fromHuggingFace(vocabJson, mergesText)).toThrow(ModelFileError);
    expect(() => ClipTokenizer.fromHuggingFace(vocabJson, mergesText)).toThrow(message);
  };
  const without = (token: string) =>
    JSON.stringify(Object.fromEntries(Object.entries(vocab).filter(([t]) => t !== token)));

  it('refuses a vocab.json that is not a map of ids', () => {
    refuse('{"a": ', merges, 'vocab.json: not valid JSON');
    refuse('["a"]', merges, 'vocab.json: not a JSON object of token ids');
    refuse(JSON.stringify({ ...vocab, x: -1 }), merges, 'vocab.json: "x" has id -1');
  });

  it('refuses a vocabulary without a byte symbol or a special token', () => {
    refuse(without('Ā'), merges, 'vocab.json: the vocabulary lacks "Ā"');
    refuse(without(END_OF_TEXT), merges, 'the vocabulary lacks "<|endoftext|>"');
  });

  it('refuses malformed merges and merges that make unknown tokens', () => {
    refuse(JSON.stringify(vocab), '#version: 0.2\na b c\n', 'merges.txt: line "a b c" is not a merge "a b"');
    refuse(without('cat</w>'), merges, /merge \d+ "\S+ \S+" makes a token the vocabulary lacks/);
  });
});
