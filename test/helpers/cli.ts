// Runs the octoclip command line as a user does (bin/octoclip.js in a child process, output through pipes).

import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

export const OCTOCLIP_BIN = resolve('bin/octoclip.js');

export function runOctoclip(cwd: string, ...args: string[]) {
  const result = spawnSync(process.execPath, [OCTOCLIP_BIN, ...args], {
    cwd,
    encoding: 'utf8',
    timeout: 300_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}
