// The `octoclip` command line: the same engine as the studio, on Node's WebGPU (Dawn).
// Results go to stdout (or --out) as JSON; progress and problems go to stderr. Each command is one options
// table (options.ts) from which its parser and its --help derive.

import { version as packageVersion } from '../../package.json';
import { makeTinyClip } from '../model/tiny';
import { writeModelDirectory } from '../node/files';
import { EXPORT, IMPORT_PEFT, INFO } from './adapter-commands';
import { EMBED, EVAL, PREDICT, ZERO_SHOT } from './inference';
import { log } from './io';
import {
  defineCommand,
  helpText,
  HELP_FLAGS,
  LIST_OPTION_RULE,
  parseCommandLine,
  UsageError,
  usageLine,
  type CommandSpec,
} from './options';
import { TRAIN } from './train';

export { emit, loadModel, log } from './io';
export { UsageError } from './options';

const MAKE_TINY_MODEL = defineCommand({
  name: 'make-tiny-model',
  summary: 'write a small random-weight CLIP in the Hugging Face layout (for tests and trials)',
  positionals: { name: 'DIR', min: 1, max: 1 },
  options: { seed: { kind: 'integer', value: 'N', default: 1, help: 'seed of the random weights' } },
  async run(values, [dir]) {
    const { files } = makeTinyClip({ seed: values.seed });
    await writeModelDirectory(dir, files);
    log(`wrote a tiny CLIP to ${dir}`);
  },
});

/** Every command, in the order `octoclip --help` and docs/cli.md list them. */
// Each spec's run takes its own values; the table only passes them back to it.
// biome-ignore lint/suspicious/noExplicitAny: a list of commands whose option tables differ
export const COMMANDS: CommandSpec<any>[] = [
  MAKE_TINY_MODEL,
  EMBED,
  ZERO_SHOT,
  TRAIN,
  EVAL,
  PREDICT,
  EXPORT,
  IMPORT_PEFT,
  INFO,
];

export function version(): string {
  return packageVersion;
}

/** The first line of `octoclip --help`, and the lead of docs/cli.md. */
export const CLI_TITLE = 'octoclip: fine-tune CLIP with Block-LoRA on WebGPU';

/**
 * The rules every command follows, one paragraph each: the end of `octoclip --help`, and the general rules
 * of docs/cli.md (src/cli/reference.ts), so the two cannot differ. Plain text: no Markdown.
 */
export const CLI_RULES: readonly string[] = [
  "octoclip runs the studio's engine in Node, on WebGPU through Dawn (SwiftShader on a machine without a GPU). " +
    'From a clone, after npm install, run it as bin/octoclip.js or npx octoclip (or octoclip after npm link).',
  'A report (JSON, or CSV from predict --format csv) goes to stdout, drained before the process exits so a ' +
    'pipe gets it whole, or to the file --out names (train: its log to --log); progress, at most a line a ' +
    'second with the time left, and problems go to stderr. The JSON ' +
    'reports share their field names: model, device (the WebGPU adapter), adapter (the adapter file, or null), ' +
    'classes, template, images, predictions, skipped.',
  'M is a local directory (config.json, model.safetensors or its shards and model.safetensors.index.json, ' +
    'vocab.json, merges.txt, and preprocessor_config.json where the model has one) or a Hub repo id such as ' +
    'openai/clip-vit-base-patch32, or org/name@revision (a branch, tag or commit), read from and downloaded ' +
    'into the Hugging Face cache (HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub); HF_TOKEN, ' +
    'or the token hf auth login saved, for gated or private repos.',
  'An image folder (--images DIR) holds one sub-folder of images per class; embed and predict also take a ' +
    'folder of images. A file that does not decode is reported by name and skipped.',
  "--out is where a command's result goes (a report, train's adapter file, export's folder), written whole: " +
    'through a temporary name, renamed when complete, so a failure leaves nothing half-written.',
  LIST_OPTION_RULE,
  'Every value is checked before any work starts. Exit status 0: done; 1: failed while working; 2: bad ' +
    'usage (an unknown command or option, or a bad value), with the message on stderr.',
  "The first command that computes on a GPU adapter times the matrix product's configurations on it " +
    '("tuned matmul for ..." on stderr) and keeps the fastest in octoclip/matmul-tuning.json of the Hugging ' +
    'Face assets cache (HF_ASSETS_CACHE, else $HF_HOME/assets, else ~/.cache/huggingface/assets).',
  "octoclip COMMAND --help (or -h) shows the command's options; octoclip --version prints the version.",
];

/** The words of `text` in lines of at most `width` characters (a longer word keeps a line of its own). */
function wrapText(text: string, width: number, indent: string, hangingIndent: string): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const prefix = lines.length ? hangingIndent : indent;
    if (line && prefix.length + line.length + 1 + word.length > width) {
      lines.push(prefix + line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  lines.push((lines.length ? hangingIndent : indent) + line);
  return lines;
}

export function usage(): string {
  const lines = COMMANDS.flatMap((command) => [`  ${usageLine(command)}`, `      ${command.summary}`]);
  const rules = CLI_RULES.flatMap((rule) => wrapText(rule, 110, '  ', '    '));
  return [CLI_TITLE, '', ...lines, '', ...rules, ''].join('\n');
}

/** Runs one command line; returns the exit status: 0 done, 1 failed, 2 bad usage (message on stderr). */
export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || HELP_FLAGS.includes(name)) {
    process.stdout.write(usage());
    return 0;
  }
  if (name === '--version') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    log(
      `octoclip: unknown ${name.startsWith('-') ? 'option' : 'command'} "${name}"; the commands are ${COMMANDS.map((c) => c.name).join(', ')}`,
    );
    log('run "octoclip --help" for usage');
    return 2;
  }
  if (args.some((arg) => HELP_FLAGS.includes(arg))) {
    process.stdout.write(helpText(command));
    return 0;
  }
  try {
    const { values, positionals } = parseCommandLine(command, args);
    await command.run(values, positionals);
    return 0;
  } catch (error) {
    const isUsage = error instanceof UsageError;
    log(`octoclip ${name}: ${(error as Error).message}`);
    if (isUsage) log(`run "octoclip ${name} --help" for usage`);
    return isUsage ? 2 : 1;
  }
}
