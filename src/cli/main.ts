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

// Each spec's run takes its own values; the table only passes them back to it.
// biome-ignore lint/suspicious/noExplicitAny: a list of commands whose option tables differ
const COMMANDS: CommandSpec<any>[] = [
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

export function usage(): string {
  const lines = COMMANDS.flatMap((command) => [`  ${usageLine(command)}`, `      ${command.summary}`]);
  return [
    'octoclip: fine-tune CLIP with Block-LoRA on WebGPU',
    '',
    ...lines,
    '',
    '  M is a local directory (config.json, model.safetensors or its shards, vocab.json, merges.txt) or a Hub',
    '  repo id such as openai/clip-vit-base-patch32, or org/name@revision (a branch, tag or commit), read from',
    '  and downloaded into the Hugging Face cache (HF_HUB_CACHE, HF_HOME, ~/.cache/huggingface/hub); HF_TOKEN',
    '  for gated or private repos.',
    '  --out is where a command writes its result (written whole, through a temporary name); without it, stdout.',
    "  octoclip COMMAND --help (or -h) shows the command's options; octoclip --version its version.",
    '',
  ].join('\n');
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
