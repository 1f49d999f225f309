// CLIP's byte-level BPE tokenizer, following openai/CLIP's simple_tokenizer.py step by step, from either
// Hugging Face's vocab.json + merges.txt or OpenAI's released merges list.

import { ModelFileError } from './safetensors';

export const START_OF_TEXT = '<|startoftext|>';
export const END_OF_TEXT = '<|endoftext|>';
export const CONTEXT_LENGTH = 77;
/** OpenAI's tokenizer reads this many merges from its list (49152 - 256 - 2); the file holds more. */
const OPENAI_MERGE_COUNT = 48894;
const END_OF_WORD = '</w>';
const UTF8 = new TextEncoder();

/**
 * GPT-2's byte-to-character map: printable Latin-1 bytes stand for themselves, the rest are shifted to
 * U+0100 and up, so every byte sequence is a string of visible characters. Listed in OpenAI's vocab order.
 */
function byteCharacters(): { bytes: number[]; characters: string[] } {
  const bytes: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bytes.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bytes.push(b);
  for (let b = 0xae; b <= 0xff; b++) bytes.push(b);
  const characters = bytes.map((b) => String.fromCharCode(b));
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    if (!bytes.includes(b)) {
      bytes.push(b);
      characters.push(String.fromCharCode(256 + shifted++));
    }
  }
  return { bytes, characters };
}

const BYTE_CHARACTERS = byteCharacters();
const CHARACTER_OF_BYTE: string[] = [];
const BYTE_OF_CHARACTER = new Map<string, number>();
BYTE_CHARACTERS.bytes.forEach((byte, i) => {
  CHARACTER_OF_BYTE[byte] = BYTE_CHARACTERS.characters[i];
  BYTE_OF_CHARACTER.set(BYTE_CHARACTERS.characters[i], byte);
});

/** The 256 byte symbols, then each with the end-of-word mark: the first 512 entries of every CLIP vocabulary. */
export const BASE_SYMBOLS: readonly string[] = [
  ...BYTE_CHARACTERS.characters,
  ...BYTE_CHARACTERS.characters.map((c) => c + END_OF_WORD),
];

// simple_tokenizer.py's pattern (the `regex` module, case-insensitive; the text is lower-cased already).
// Python's `\s` there is Unicode White_Space, which JavaScript's `\s` is not quite.
const WORD_PATTERN =
  /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\p{White_Space}\p{L}\p{N}]+/giu;
const WHITESPACE_RUN = /\p{White_Space}+/gu;
/** Python's str.strip() removes White_Space and the separators U+001C..U+001F. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are what Python strips
const PYTHON_STRIP = /^[\p{White_Space}\x1c-\x1f]+|[\p{White_Space}\x1c-\x1f]+$/gu;

export interface TokenizedText {
  /** Start-of-text, the text's tokens, end-of-text, then padding: `contextLength` ids. */
  ids: Int32Array;
  /** Where the text tower pools: the first end-of-text. */
  eotIndex: number;
}

export class ClipTokenizer {
  readonly startOfTextId: number;
  readonly endOfTextId: number;
  /** transformers pads OpenAI's checkpoints with end-of-text; under the causal mask padding never reaches the pooled token. */
  readonly padId: number;
  private readonly mergeRanks = new Map<string, number>();
  private readonly idToToken: string[] = [];
  /** Word to ids, as simple_tokenizer.py caches: bounded by the distinct words seen. */
  private readonly cache = new Map<string, number[]>();

  private constructor(
    private readonly tokenToId: Map<string, number>,
    merges: [string, string][],
    fileName: string,
  ) {
    for (const symbol of [...BASE_SYMBOLS, START_OF_TEXT, END_OF_TEXT]) {
      if (!tokenToId.has(symbol)) throw new ModelFileError(`the vocabulary lacks ${JSON.stringify(symbol)}`, fileName);
    }
    merges.forEach(([first, second], rank) => {
      if (!tokenToId.has(first + second)) {
        throw new ModelFileError(`merge ${rank + 1} "${first} ${second}" makes a token the vocabulary lacks`, fileName);
      }
      this.mergeRanks.set(pairKey(first, second), rank);
    });
    for (const [token, id] of tokenToId) this.idToToken[id] = token;
    this.startOfTextId = tokenToId.get(START_OF_TEXT)!;
    this.endOfTextId = tokenToId.get(END_OF_TEXT)!;
    this.padId = this.endOfTextId;
    this.cache.set(START_OF_TEXT, [this.startOfTextId]);
    this.cache.set(END_OF_TEXT, [this.endOfTextId]);
  }

  /** From Hugging Face's vocab.json (token to id) and merges.txt ("#version" line, then one "a b" pair a line). */
  static fromHuggingFace(vocabJson: string, mergesText: string): ClipTokenizer {
    let vocab: unknown;
    try {
      vocab = JSON.parse(vocabJson);
    } catch (error) {
      throw new ModelFileError(`not valid JSON (${(error as Error).message})`, 'vocab.json');
    }
    if (typeof vocab !== 'object' || vocab === null || Array.isArray(vocab)) {
      throw new ModelFileError('not a JSON object of token ids', 'vocab.json');
    }
    const tokenToId = new Map<string, number>();
    for (const [token, id] of Object.entries(vocab)) {
      if (!Number.isSafeInteger(id) || id < 0)
        throw new ModelFileError(`${JSON.stringify(token)} has id ${JSON.stringify(id)}`, 'vocab.json');
      tokenToId.set(token, id);
    }
    const lines = mergesText.split('\n');
    if (lines[0].startsWith('#version')) lines.shift();
    return new ClipTokenizer(tokenToId, parseMerges(lines, 'merges.txt'), 'vocab.json');
  }

  /**
   * From OpenAI's bpe_simple_vocab_16e6.txt (decompressed): a header line, then merges. As in
   * simple_tokenizer.py the vocabulary is the 512 base symbols, one token per merge, then the two specials.
   */
  static fromOpenAiMerges(bpeText: string): ClipTokenizer {
    const merges = parseMerges(bpeText.split('\n').slice(1, 1 + OPENAI_MERGE_COUNT), 'bpe_simple_vocab_16e6.txt');
    const vocab = [...BASE_SYMBOLS, ...merges.map(([first, second]) => first + second), START_OF_TEXT, END_OF_TEXT];
    return new ClipTokenizer(new Map(vocab.map((token, id) => [token, id])), merges, 'bpe_simple_vocab_16e6.txt');
  }

  get vocabSize(): number {
    return this.idToToken.length;
  }

  /** The text's token ids, without start- and end-of-text. */
  encode(text: string): number[] {
    return splitWords(text).flatMap((word) => this.bpe(word));
  }

  /** A row for the text tower: start-of-text, tokens, end-of-text, padding; a long text keeps end-of-text last. */
  tokenize(text: string, contextLength = CONTEXT_LENGTH): TokenizedText {
    if (contextLength < 2)
      throw new RangeError(`tokenize: context length ${contextLength} leaves no room for start and end of text`);
    const tokens = [this.startOfTextId, ...this.encode(text), this.endOfTextId];
    if (tokens.length > contextLength) {
      tokens.length = contextLength;
      tokens[contextLength - 1] = this.endOfTextId;
    }
    const ids = new Int32Array(contextLength).fill(this.padId);
    ids.set(tokens);
    return { ids, eotIndex: tokens.indexOf(this.endOfTextId) };
  }

  /** Ids back to text; a word end becomes a space, as in simple_tokenizer.py (so the result ends with one). */
  decode(ids: Iterable<number>): string {
    const characters = Array.from(ids, (id) => {
      const token = this.idToToken[id];
      if (token === undefined) throw new RangeError(`decode: ${id} is not a token id`);
      return token;
    }).join('');
    const bytes: number[] = [];
    for (const character of characters) {
      const byte = BYTE_OF_CHARACTER.get(character);
      if (byte !== undefined) bytes.push(byte);
    }
    // Invalid UTF-8 (ids that split a character) decodes to U+FFFD, as errors="replace" does.
    return new TextDecoder().decode(new Uint8Array(bytes)).replaceAll(END_OF_WORD, ' ');
  }

  /** One pre-tokenized word to ids: its UTF-8 bytes as symbols, merged pair by pair in rank order. */
  private bpe(word: string): number[] {
    const cached = this.cache.get(word);
    if (cached) return cached;
    let parts = wordSymbols(word);
    while (parts.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < parts.length; i++) {
        const rank = this.mergeRanks.get(pairKey(parts[i], parts[i + 1]));
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          best = i;
        }
      }
      if (best < 0) break;
      const [first, second] = [parts[best], parts[best + 1]];
      const merged: string[] = [];
      for (let i = 0; i < parts.length; i++) {
        if (parts[i] === first && parts[i + 1] === second) {
          merged.push(first + second);
          i++;
        } else {
          merged.push(parts[i]);
        }
      }
      parts = merged;
    }
    const ids = parts.map((part) => this.tokenToId.get(part)!);
    this.cache.set(word, ids);
    return ids;
  }
}

/** simple_tokenizer.py's pre-tokenization: the cleaned, lower-cased text as words, digits and punctuation runs. */
export function splitWords(text: string): string[] {
  return Array.from(whitespaceClean(basicClean(text)).toLowerCase().matchAll(WORD_PATTERN), ([word]) => word);
}

/** A word's UTF-8 bytes as BPE symbols, the last one marked as the end of the word. */
export function wordSymbols(word: string): string[] {
  const symbols = Array.from(UTF8.encode(word), (byte) => CHARACTER_OF_BYTE[byte]);
  symbols[symbols.length - 1] += END_OF_WORD;
  return symbols;
}

function parseMerges(lines: string[], fileName: string): [string, string][] {
  const merges: [string, string][] = [];
  for (const line of lines) {
    if (line.trim() === '') continue;
    const pair = line.trim().split(/\s+/);
    if (pair.length !== 2) throw new ModelFileError(`line "${line}" is not a merge "a b"`, fileName);
    merges.push(pair as [string, string]);
  }
  return merges;
}

/** Symbols never hold a space (the space byte is Ġ), so a space joins a pair unambiguously. */
function pairKey(first: string, second: string): string {
  return `${first} ${second}`;
}

/**
 * simple_tokenizer.py's basic_clean: ftfy.fix_text, HTML-unescape twice, strip. ftfy is not reproduced
 * whole: of what it does to text that is not mojibake, NFC normalisation and straightening curly quotes
 * (which changes how "it’s" splits) are done here; mojibake repair, ligature and width folding are not.
 */
function basicClean(text: string): string {
  const fixed = text
    .normalize('NFC')
    .replace(/[\u02bc\u2018-\u201b]/g, "'")
    .replace(/[\u201c-\u201f]/g, '"');
  return unescapeHtml(unescapeHtml(fixed)).replace(PYTHON_STRIP, '');
}

function whitespaceClean(text: string): string {
  return text.replace(WHITESPACE_RUN, ' ').replace(PYTHON_STRIP, '');
}

// Python's html.unescape, with numeric references in full and the named references that web captions use
// (others stay as written; the full HTML5 table has 2,231 names).
const CHARACTER_REFERENCE = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/g;
const NAMED_REFERENCES = new Map<string, string>([
  ['amp;', '&'],
  ['amp', '&'],
  ['AMP;', '&'],
  ['AMP', '&'],
  ['lt;', '<'],
  ['lt', '<'],
  ['LT;', '<'],
  ['LT', '<'],
  ['gt;', '>'],
  ['gt', '>'],
  ['GT;', '>'],
  ['GT', '>'],
  ['quot;', '"'],
  ['quot', '"'],
  ['QUOT;', '"'],
  ['QUOT', '"'],
  ['apos;', "'"],
  ['nbsp;', '\u00a0'],
  ['nbsp', '\u00a0'],
]);
/** What references to U+0080..U+009F denote: the Windows-1252 characters of those bytes. */
const WINDOWS_1252_C1 =
  '\u20ac\x81\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\x8d\u017d\x8f\x90\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\x9d\u017e\u0178';

function unescapeHtml(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(CHARACTER_REFERENCE, (whole, reference: string) =>
    reference.startsWith('#') ? numericReference(reference) : (namedReference(reference) ?? whole),
  );
}

function numericReference(reference: string): string {
  const hex = reference[1] === 'x' || reference[1] === 'X';
  const code = parseInt(reference.slice(hex ? 2 : 1), hex ? 16 : 10); // parseInt stops at the ';'
  if (code === 0) return '\ufffd';
  if (code === 0x0d) return '\r';
  if (code >= 0x80 && code <= 0x9f) return WINDOWS_1252_C1[code - 0x80];
  if ((code >= 0xd800 && code <= 0xdfff) || code > 0x10ffff) return '\ufffd';
  const isControl = (code >= 0x01 && code <= 0x08) || code === 0x0b || (code >= 0x0e && code <= 0x1f) || code === 0x7f;
  const isNoncharacter = (code >= 0xfdd0 && code <= 0xfdef) || (code & 0xfffe) === 0xfffe;
  return isControl || isNoncharacter ? '' : String.fromCodePoint(code);
}

/** As Python: the whole name, else its longest known prefix (so "&ampx" reads "&x"). */
function namedReference(reference: string): string | undefined {
  for (let length = reference.length; length > 1; length--) {
    const replacement = NAMED_REFERENCES.get(reference.slice(0, length));
    if (replacement !== undefined) return replacement + reference.slice(length);
  }
  return undefined;
}
