// Runs the octoclip command line as a user does (bin/octoclip.js in a child process, output through pipes).

import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const OCTOCLIP_BIN = resolve('bin/octoclip.js');

/** Where the commands keep what they cache for themselves (the matmul tuning): not the user's home. */
const ASSETS = process.env.HF_ASSETS_CACHE ?? mkdtempSync(join(tmpdir(), 'octoclip-test-assets-'));

export function runOctoclip(cwd: string, ...args: string[]) {
  return runOctoclipWith({}, cwd, ...args);
}

/** runOctoclip with these environment variables added (such as VK_ICD_FILENAMES, to pick a driver). */
export function runOctoclipWith(env: Record<string, string>, cwd: string, ...args: string[]) {
  const result = spawnSync(process.execPath, [OCTOCLIP_BIN, ...args], {
    cwd,
    env: { ...process.env, HF_ASSETS_CACHE: ASSETS, ...env },
    encoding: 'utf8',
    timeout: 300_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}
