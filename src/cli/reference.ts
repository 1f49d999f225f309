// docs/cli.md, the CLI reference, made from the CLI's own definitions: the rules `octoclip --help` ends with,
// then each command's summary and its `--help` exactly as the command prints it. `npm run docs:cli` writes it
// (scripts/cli-reference.ts); test/cli/reference.test.ts fails when the page and this differ.

import { CLI_RULES, CLI_TITLE, COMMANDS, version } from './main';
import { helpText } from './options';

/** Where the page lives, from the repository's root. */
export const CLI_REFERENCE_PATH = 'docs/cli.md';

/** How to bring the page up to date, as the test says it. */
export const CLI_REFERENCE_COMMAND = 'npm run docs:cli';

/** A command's heading, and the anchor GitHub gives it. */
const heading = (name: string) => `octoclip ${name}`;
const anchor = (name: string) => `#octoclip-${name}`;

/** The whole of docs/cli.md. */
export function cliReference(): string {
  const lines = [
    `<!-- Generated from src/cli by ${CLI_REFERENCE_COMMAND} (scripts/cli-reference.ts): edit the definitions, not this page. -->`,
    '',
    `# octoclip command line (version ${version()})`,
    '',
    `${CLI_TITLE}.`,
    '',
    '## Every command',
    '',
    ...CLI_RULES.map((rule) => `- ${rule}`),
    '',
    '## Commands',
    '',
    '| Command | What it does |',
    '| ------- | ------------ |',
    ...COMMANDS.map((command) => `| [\`${command.name}\`](${anchor(command.name)}) | ${command.summary} |`),
  ];
  for (const command of COMMANDS) {
    lines.push('', `## ${heading(command.name)}`, '', `${capitalized(command.summary)}.`, '');
    lines.push('```text', ...helpText(command).trimEnd().split('\n'), '```');
  }
  return `${lines.join('\n')}\n`;
}

function capitalized(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
