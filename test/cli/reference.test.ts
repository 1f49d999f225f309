// docs/cli.md is generated from the CLI's definitions: it must be what cliReference() makes of them now.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CLI_RULES, COMMANDS, usage } from '../../src/cli/main';
import { helpText } from '../../src/cli/options';
import { CLI_REFERENCE_COMMAND, CLI_REFERENCE_PATH, cliReference } from '../../src/cli/reference';

describe('the CLI reference (docs/cli.md)', () => {
  it('is what the CLI definitions make: run npm run docs:cli after changing them', () => {
    const page = readFileSync(CLI_REFERENCE_PATH, 'utf8');
    const expected = cliReference();
    expect(
      page === expected,
      `${CLI_REFERENCE_PATH} differs from the CLI's definitions: run ${CLI_REFERENCE_COMMAND}`,
    ).toBe(true);
  });

  it("holds every command's --help and the rules octoclip --help ends with", () => {
    const page = cliReference();
    for (const command of COMMANDS) expect(page).toContain(helpText(command).trimEnd());
    const help = usage().replace(/\s+/g, ' ');
    for (const rule of CLI_RULES) {
      expect(page).toContain(`- ${rule}\n`);
      expect(help).toContain(rule);
    }
  });
});
