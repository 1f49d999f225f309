// Writes docs/cli.md from the CLI's own definitions (src/cli/reference.ts): `npm run docs:cli`, through
// vite-node because the CLI's engine imports its WGSL shaders with ?raw.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI_REFERENCE_PATH, cliReference } from '../src/cli/reference';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
writeFileSync(join(root, CLI_REFERENCE_PATH), cliReference());
console.log(`wrote ${CLI_REFERENCE_PATH}`);
