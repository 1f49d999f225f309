// One options table per command, from which both the parser and `--help` derive, so help cannot drift from
// what is accepted. Every value is checked (type, choices, range, existence, cross-option rules) before the
// command does any work; a bad one is a UsageError (exit status 2).

import { existsSync, statSync } from 'node:fs';
import { PRECISION_HELP, PRECISION_SETTINGS, parsePrecision, RECIPE_PRECISION } from '../common/recipe';

/** Bad command-line input: the message says what to change. The CLI exits with status 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** How a list option is written: one sentence, in the help and the CLI reference. */
export const LIST_OPTION_RULE =
  'A repeatable option takes one value each time it is given: repeat it for more (--classes cat --classes dog); the other words are the arguments, and -- ends the options.';

export type OptionKind = 'string' | 'number' | 'integer' | 'boolean' | 'list';

export interface OptionSpec {
  /** `list` is given once per value (`--texts "a cat" --texts "a dog"`): LIST_OPTION_RULE. */
  kind: OptionKind;
  /** The value's placeholder in the help, e.g. `DIR`. */
  value?: string;
  help: string;
  required?: boolean;
  /** The value used when the option is absent (shown in the help). */
  default?: string | number;
  choices?: readonly string[];
  /** Inclusive lower bound of a number. */
  min?: number;
  /** Inclusive upper bound of a number. */
  max?: number;
  /** The path must exist: a file, a directory, or either. */
  exists?: 'file' | 'dir' | 'any';
  /** Checks the value by a rule written elsewhere: a RangeError says what is wrong with it. */
  validate?: (value: string) => void;
}

export type OptionTable = Record<string, OptionSpec>;

type ValueOf<S extends OptionSpec> = S['kind'] extends 'boolean'
  ? boolean
  : S['kind'] extends 'number' | 'integer'
    ? number
    : S['kind'] extends 'list'
      ? string[]
      : string;

/** Parsed values by option name (as written, without the dashes); booleans are always present. */
export type OptionValues<T extends OptionTable> = {
  [K in keyof T]: T[K] extends { required: true } | { default: string | number } | { kind: 'boolean' }
    ? ValueOf<T[K]>
    : ValueOf<T[K]> | undefined;
};

export interface CommandSpec<T extends OptionTable = OptionTable> {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Positional arguments in the usage line (e.g. `FILE...`), if the command takes any. */
  positionals?: { name: string; min: number; max?: number };
  options: T;
  /** Rules between options, checked with the values before any work: returns a problem, or null. */
  check?: (values: OptionValues<T>, positionals: string[]) => string | null;
  /** Lines after the options in the help: examples, notes. */
  notes?: string;
  run: (values: OptionValues<T>, positionals: string[]) => Promise<void>;
}

/** What the help shows of a command. */
export type CommandDescription = Pick<CommandSpec, 'name' | 'summary' | 'positionals' | 'options' | 'notes'>;

/** Keeps the table's literal types, so `run` sees exactly the values it declares. */
export function defineCommand<T extends OptionTable>(spec: CommandSpec<T>): CommandSpec<T> {
  return spec;
}

export const HELP_FLAGS = ['-h', '--help'];

/** Parses and checks `args` against the command's table; throws UsageError naming the first problem. */
export function parseCommandLine<T extends OptionTable>(
  spec: CommandSpec<T>,
  args: readonly string[],
): { values: OptionValues<T>; positionals: string[] } {
  const raw = new Map<string, string | string[] | boolean>();
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith('-') || arg === '-' || /^-\d/.test(arg)) {
      positionals.push(arg);
      continue;
    }
    if (arg === '--') {
      positionals.push(...args.slice(i + 1));
      break;
    }
    const [flag, inline] = splitInline(arg);
    const name = flag.replace(/^--?/, '');
    const option = flag.startsWith('--') ? spec.options[name] : undefined;
    if (!option) throw new UsageError(`unknown option ${flag}${suggestion(name, Object.keys(spec.options))}`);
    if (raw.has(name) && option.kind !== 'list') throw new UsageError(`${flag} is given twice`);
    if (option.kind === 'boolean') {
      if (inline !== undefined) throw new UsageError(`${flag} takes no value`);
      raw.set(name, true);
      continue;
    }
    // Every other option takes exactly one value, the next word or the text after `=`; a list is the
    // option repeated (LIST_OPTION_RULE), so the words after it are positionals, as in git or npm.
    const value = inline ?? (i + 1 < args.length && !args[i + 1].startsWith('--') ? args[++i] : undefined);
    if (value === undefined) throw new UsageError(`${flag} needs a value (${option.value ?? option.kind})`);
    if (option.kind === 'list') raw.set(name, [...((raw.get(name) as string[] | undefined) ?? []), value]);
    else raw.set(name, value);
  }

  const values: Record<string, unknown> = {};
  for (const [name, option] of Object.entries(spec.options)) {
    const given = raw.get(name) ?? (option.kind === 'boolean' ? false : option.default);
    if (given === undefined) {
      if (option.required) throw new UsageError(`missing --${name}`);
      continue;
    }
    values[name] =
      typeof given === 'string' || typeof given === 'number' ? checkValue(name, option, String(given)) : given;
  }
  const { positionals: wanted } = spec;
  if (!wanted && positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (wanted && positionals.length < wanted.min) throw new UsageError(`missing ${wanted.name}`);
  if (wanted?.max !== undefined && positionals.length > wanted.max)
    throw new UsageError(`unexpected argument "${positionals[wanted.max]}"`);
  const typed = values as OptionValues<T>;
  const problem = spec.check?.(typed, positionals);
  if (problem) throw new UsageError(problem);
  return { values: typed, positionals };
}

function checkValue(name: string, option: OptionSpec, value: string): string | number {
  const flag = `--${name}`;
  if (option.choices && !option.choices.includes(value)) {
    throw new UsageError(`${flag} must be ${option.choices.join(' or ')}, got "${value}"`);
  }
  if (option.validate) {
    try {
      option.validate(value);
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
      throw new UsageError(`${flag}: ${error.message}`);
    }
  }
  if (option.exists) {
    if (!existsSync(value))
      throw new UsageError(
        `${flag} ${value}: no such ${option.exists === 'any' ? 'file or directory' : option.exists === 'dir' ? 'directory' : 'file'}`,
      );
    const isDir = statSync(value).isDirectory();
    if (option.exists === 'dir' && !isDir) throw new UsageError(`${flag} ${value} is a file, expected a directory`);
    if (option.exists === 'file' && isDir) throw new UsageError(`${flag} ${value} is a directory, expected a file`);
  }
  if (option.kind !== 'number' && option.kind !== 'integer') return value;
  const number = value.trim() === '' ? NaN : Number(value);
  if (option.kind === 'integer' && !Number.isSafeInteger(number))
    throw new UsageError(`${flag} must be a whole number, got "${value}"`);
  if (!Number.isFinite(number)) throw new UsageError(`${flag} must be a number, got "${value}"`);
  if (option.min !== undefined && number < option.min)
    throw new UsageError(`${flag} must be at least ${option.min}, got ${value}`);
  if (option.max !== undefined && number > option.max)
    throw new UsageError(`${flag} must be at most ${option.max}, got ${value}`);
  return number;
}

function splitInline(arg: string): [string, string | undefined] {
  const equals = arg.indexOf('=');
  return equals < 0 ? [arg, undefined] : [arg.slice(0, equals), arg.slice(equals + 1)];
}

function suggestion(name: string, known: string[]): string {
  const close = known.find((candidate) => candidate.startsWith(name) || name.startsWith(candidate));
  return close ? ` (did you mean --${close}?)` : '';
}

/** `octoclip predict --model M --images DIR [options]`: the required options, the positionals, then the rest. */
export function usageLine(spec: CommandDescription): string {
  const required = Object.entries(spec.options)
    .filter(([, option]) => option.required)
    .map(([name, option]) => `--${name} ${option.value ?? 'VALUE'}`);
  const positionals = spec.positionals
    ? [spec.positionals.min ? spec.positionals.name : `[${spec.positionals.name}]`]
    : [];
  const optional = Object.values(spec.options).some((option) => !option.required) ? ['[options]'] : [];
  return ['octoclip', spec.name, ...required, ...positionals, ...optional].join(' ');
}

/** The command's `--help`: usage, summary, then one line per option from the table. */
export function helpText(spec: CommandDescription): string {
  const rows: [string, string][] = Object.entries(spec.options).map(([name, option]) => {
    const flag = option.kind === 'boolean' ? `--${name}` : `--${name} ${option.value ?? 'VALUE'}`;
    const extras = [
      option.kind === 'list' ? 'repeatable' : null,
      option.required ? 'required' : null,
      option.choices && !option.help.includes(option.choices.join('|')) ? option.choices.join('|') : null,
      option.default !== undefined ? `default ${option.default}` : null,
    ].filter(Boolean);
    return [flag, extras.length ? `${option.help} (${extras.join('; ')})` : option.help];
  });
  rows.push(['-h, --help', 'show this help']);
  const width = Math.max(...rows.map(([flag]) => flag.length)) + 2;
  const lines = [
    usageLine(spec),
    '',
    `  ${spec.summary}`,
    '',
    ...rows.map(([flag, help]) => `  ${flag.padEnd(width)}${help}`),
  ];
  const notes = [
    ...(Object.values(spec.options).some((option) => option.kind === 'list') ? [LIST_OPTION_RULE] : []),
    ...(spec.notes ? spec.notes.split('\n') : []),
  ];
  if (notes.length) lines.push('', ...notes.map((line) => (line ? `  ${line}` : '')));
  return `${lines.join('\n')}\n`;
}

/** Options several commands share. */
export const MODEL_OPTION = {
  kind: 'string',
  value: 'M',
  required: true,
  help: 'model directory (Hub layout) or Hub repo id',
} as const satisfies OptionSpec;
export const OUT_OPTION = {
  kind: 'string',
  value: 'FILE',
  help: 'write the result there (whole, through a temporary name) instead of stdout',
} as const satisfies OptionSpec;
export const PRECISION_OPTION = {
  kind: 'string',
  value: 'P',
  default: RECIPE_PRECISION,
  validate: parsePrecision,
  help: `how the frozen weights are held: ${PRECISION_SETTINGS.map((setting) => `${setting} (${PRECISION_HELP[setting]})`).join(', ')}`,
} as const satisfies OptionSpec;
