// The options table: one declaration gives the parser, the checks and the help.

import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EMBED, EVAL, PREDICT, ZERO_SHOT } from '../../src/cli/inference';
import {
  defineCommand,
  helpText,
  LIST_OPTION_RULE,
  parseCommandLine,
  PRECISION_OPTION,
  UsageError,
  usageLine,
} from '../../src/cli/options';
import { TRAIN } from '../../src/cli/train';
import { formatDuration, Progress } from '../../src/cli/progress';

const spec = defineCommand({
  name: 'demo',
  summary: 'a command for the tests',
  positionals: { name: 'FILE...', min: 0 },
  options: {
    model: { kind: 'string', value: 'M', required: true, help: 'the model' },
    lr: { kind: 'number', value: 'LR', default: 2e-4, help: 'peak learning rate' },
    'min-lr': { kind: 'number', value: 'LR', default: 1e-6, help: 'final learning rate' },
    shots: { kind: 'integer', value: 'N', min: 1, help: 'images per class' },
    format: { kind: 'string', value: 'F', choices: ['json', 'csv'], default: 'json', help: 'output format' },
    texts: { kind: 'list', value: 'TEXT', help: 'texts' },
    quiet: { kind: 'boolean', help: 'no progress' },
  },
  check: (values) => (values.lr < values['min-lr'] ? `--lr ${values.lr} is below --min-lr ${values['min-lr']}` : null),
  run: async () => {},
});

const parse = (...args: string[]) => parseCommandLine(spec, args);
const refusal = (...args: string[]) => {
  try {
    parse(...args);
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  throw new Error(`accepted ${args.join(' ')}`);
};

describe('parseCommandLine', () => {
  it('gives typed values with defaults, lists, booleans and positionals', () => {
    const { values, positionals } = parse(
      'a.png',
      '--model',
      'tiny',
      '--shots=4',
      '--texts',
      'a cat',
      '--texts=a dog',
      '--quiet',
      '--lr',
      '1e-3',
      '--',
      '--b.png',
    );
    expect(values).toEqual({
      model: 'tiny',
      lr: 1e-3,
      'min-lr': 1e-6,
      shots: 4,
      format: 'json',
      texts: ['a cat', 'a dog'],
      quiet: true,
    });
    expect(positionals).toEqual(['a.png', '--b.png']);
    // A list option takes one value per occurrence: the words after it are positionals, not more values.
    expect(parse('--model', 'm', '--texts', 'a cat', 'c.png').positionals).toEqual(['c.png']);
    expect(parse('--model', 'm').values.quiet).toBe(false);
  });

  it('refuses each kind of bad value with a message naming the option', () => {
    expect(refusal('--lr', '1')).toBe('missing --model');
    expect(refusal('--model', 'm', '--shots', 'abc')).toBe('--shots must be a whole number, got "abc"');
    expect(refusal('--model', 'm', '--shots', '2.5')).toBe('--shots must be a whole number, got "2.5"');
    expect(refusal('--model', 'm', '--shots', '0')).toBe('--shots must be at least 1, got 0');
    expect(refusal('--model', 'm', '--lr', '')).toBe('--lr must be a number, got ""');
    expect(refusal('--model', 'm', '--format', 'xml')).toBe('--format must be json or csv, got "xml"');
    expect(refusal('--model', 'm', '--lr', '1e-7')).toBe('--lr 1e-7 is below --min-lr 0.000001');
    expect(refusal('--model', 'm', '--sohts', '2')).toBe('unknown option --sohts');
    expect(refusal('--model', 'm', '--shot', '2')).toBe('unknown option --shot (did you mean --shots?)');
    expect(refusal('--model', 'm', '-x')).toBe('unknown option -x');
    expect(refusal('--model', 'm', '--model', 'n')).toBe('--model is given twice');
    expect(refusal('--model')).toBe('--model needs a value (M)');
    expect(refusal('--model', 'm', '--texts')).toBe('--texts needs a value (TEXT)');
    expect(refusal('--model', 'm', '--quiet=yes')).toBe('--quiet takes no value');
  });
});

describe('list options', () => {
  it('read `--classes A B photo.png` as other CLIs do, and say how to name more classes', () => {
    const predict = (...args: string[]) => parseCommandLine(PREDICT, ['--model', 'm', '--no-adapter', ...args]);
    const photo = fileURLToPath(import.meta.url); // a file that exists
    expect(predict('--classes', 'A', '--classes', 'B', photo)).toMatchObject({
      values: { classes: ['A', 'B'] },
      positionals: [photo],
    });
    expect(() => predict('--classes', 'A', '--classes', 'B', 'C', photo)).toThrow(
      '"C" is not a file; to name it as a class, give --classes once per class (--classes A --classes B)',
    );
    expect(() => predict('--classes', 'A', 'B', 'photo.png')).toThrow(
      '--no-adapter needs two or more class names: --classes NAME once per class',
    );
    expect(helpText(PREDICT)).toContain(`\n  ${LIST_OPTION_RULE}\n`);
  });
});

describe('help', () => {
  it('lists every option of the table, with its placeholder, requirement, choices and default', () => {
    expect(usageLine(spec)).toBe('octoclip demo --model M [FILE...] [options]');
    const help = helpText(spec);
    expect(help).toContain('\n  --model M     the model (required)\n');
    expect(help).toContain('\n  --format F    output format (json|csv; default json)\n');
    expect(help).toContain('\n  --texts TEXT  texts (repeatable)\n');
    expect(help).toContain('\n  -h, --help    show this help\n');
  });
});

describe('Progress', () => {
  it('prints at most one line a second, with the time left, and always the last one', () => {
    const lines: string[] = [];
    let now = 0;
    const progress = new Progress(
      'classifying',
      100,
      (line) => lines.push(line),
      1000,
      () => now,
    );
    for (let done = 1; done <= 100; done++) {
      now += 50;
      progress.update(done);
    }
    expect(lines).toEqual([
      'classifying: 1/100 (1%), 5.0s left',
      'classifying: 21/100 (21%), 4.0s left',
      'classifying: 41/100 (41%), 3.0s left',
      'classifying: 61/100 (61%), 1.9s left',
      'classifying: 81/100 (81%), 0.9s left',
      'classifying: 100/100 (100%) in 5.0s',
    ]);
    expect([formatDuration(75_000), formatDuration(3_700_000), formatDuration(119_600)]).toEqual([
      '1m15s',
      '1h01m',
      '1m59s',
    ]);
  });
});

describe('--precision', () => {
  const commands = [TRAIN, EVAL, PREDICT, EMBED, ZERO_SHOT];

  it('is on every command that loads a model to compute, auto by default, its help saying what each value does', () => {
    for (const command of commands) {
      expect(command.options.precision, command.name).toBe(PRECISION_OPTION);
      const line = helpText(command)
        .split('\n')
        .find((row) => row.trimStart().startsWith('--precision P '));
      expect(line, command.name).toContain(
        'f16-storage (weights stored in 16-bit floats, arithmetic in 32-bit: half the weight memory)',
      );
      expect(line, command.name).toContain('(default auto)');
    }
    const parsed = (...args: string[]) =>
      parseCommandLine(EMBED, ['--model', 'm', '--texts', 'a', ...args]).values.precision;
    expect([
      parsed(),
      parsed('--precision', 'f32'),
      parsed('--precision=f16-storage'),
      parsed('--precision=f16'),
    ]).toEqual(['auto', 'f32', 'f16-storage', 'f16']);
  });

  it('refuses a value it does not know, saying what there is', () => {
    const precisionRefusal = (value: string) => {
      try {
        parseCommandLine(EMBED, ['--model', 'm', '--texts', 'a', '--precision', value]);
      } catch (error) {
        expect(error).toBeInstanceOf(UsageError);
        return (error as Error).message;
      }
      throw new Error(`accepted --precision ${value}`);
    };
    expect(precisionRefusal('fp16')).toBe('--precision: the precision must be auto, f32, f16-storage, f16, got "fp16"');
  });
});
