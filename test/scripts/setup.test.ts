// The decisions of the set-up scripts (scripts/setup.mjs) that npm start, npm test and the CLI share,
// on every platform they must work on.
import { describe, expect, it } from 'vitest';
import {
  chooseVulkanIcd,
  chromiumPath,
  needsNpmInstall,
  quoteForCmd,
  requiredNodeRange,
  runStages,
  satisfiesNodeRange,
  startCommand,
  sourcesDigest,
  SWIFTSHADER_ICD,
  systemPackagePlan,
  shouldFetchLavapipe,
  webgpuEnvironment,
} from '../../scripts/setup.mjs';
import vitePackage from 'vite/package.json' with { type: 'json' };
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

describe('Node version', () => {
  it('accepts the versions of each alternative and refuses the rest', () => {
    const range = '^20.19.0 || >=22.12.0';
    expect(satisfiesNodeRange('v20.19.0', range)).toBe(true);
    expect(satisfiesNodeRange('v20.20.2', range)).toBe(true);
    expect(satisfiesNodeRange('v22.12.0', range)).toBe(true);
    expect(satisfiesNodeRange('v24.1.0', range)).toBe(true);
    expect(satisfiesNodeRange('v20.18.3', range)).toBe(false);
    expect(satisfiesNodeRange('v21.7.0', range)).toBe(false);
    expect(satisfiesNodeRange('v22.11.9', range)).toBe(false);
    expect(satisfiesNodeRange('v18.20.0', range)).toBe(false);
  });

  it('refuses a range form it does not know instead of passing it', () => {
    expect(() => satisfiesNodeRange('v20.0.0', '~20.1.0')).toThrow(/Unsupported Node version range "~20.1.0"/);
  });

  it('requires at least what Vite needs, and this Node satisfies it', () => {
    expect(requiredNodeRange()).toBe(vitePackage.engines.node);
    expect(satisfiesNodeRange(process.version, requiredNodeRange())).toBe(true);
  });
});

describe('system packages for the tests', () => {
  const linux = { platform: 'linux' as const, chromium: '/usr/bin/chromium', chromiumNamed: false };

  it('does nothing when nothing is missing', () => {
    expect(systemPackagePlan({ ...linux, missing: [], isRoot: false, hasAptGet: true })).toEqual({ action: 'none' });
  });

  it('installs the missing ones with apt-get as root on Debian', () => {
    expect(systemPackagePlan({ ...linux, missing: ['libvulkan1'], isRoot: true, hasAptGet: true })).toEqual({
      action: 'apt-get',
      packages: ['libvulkan1'],
    });
  });

  it('says the apt-get command to run when not root', () => {
    const plan = systemPackagePlan({ ...linux, missing: ['chromium', 'libvulkan1'], isRoot: false, hasAptGet: true });
    expect(plan).toEqual({
      action: 'tell',
      message: expect.stringContaining('sudo apt-get install -y chromium libvulkan1'),
    });
  });

  it('names the packages to look for on a Linux without apt-get', () => {
    const plan = systemPackagePlan({ ...linux, missing: ['chromium'], isRoot: true, hasAptGet: false });
    expect(plan.action).toBe('tell');
    expect(plan.action === 'tell' && plan.message).toMatch(/missing \(chromium\).*package manager/);
  });

  it('asks for Chrome, or OCTOCLIP_CHROMIUM, on macOS and Windows', () => {
    for (const platform of ['darwin', 'win32'] as const) {
      const chromium = chromiumPath({}, platform);
      const plan = systemPackagePlan({
        platform,
        chromium,
        chromiumNamed: false,
        missing: ['Chrome or Chromium'],
        isRoot: false,
        hasAptGet: false,
      });
      expect(plan.action === 'tell' && plan.message).toContain(`there is none at ${chromium}`);
      expect(plan.action === 'tell' && plan.message).toContain('OCTOCLIP_CHROMIUM');
    }
  });

  it('says a browser OCTOCLIP_CHROMIUM names is not there, instead of installing another', () => {
    const named = { ...linux, chromium: '/opt/chrome', chromiumNamed: true };
    expect(systemPackagePlan({ ...named, missing: ['chromium'], isRoot: true, hasAptGet: true })).toEqual({
      action: 'tell',
      message:
        "OCTOCLIP_CHROMIUM names /opt/chrome, which is not there: correct it, or unset it to use the system's browser.",
    });
    expect(systemPackagePlan({ ...named, missing: ['libvulkan1'], isRoot: true, hasAptGet: true })).toEqual({
      action: 'apt-get',
      packages: ['libvulkan1'],
    });
    expect(
      systemPackagePlan({
        ...named,
        platform: 'darwin',
        missing: ['Chrome or Chromium'],
        isRoot: false,
        hasAptGet: false,
      }).action,
    ).toBe('tell');
  });

  it('finds the browser where each system puts it, unless OCTOCLIP_CHROMIUM names one', () => {
    expect(chromiumPath({}, 'linux')).toBe('/usr/bin/chromium');
    expect(chromiumPath({}, 'darwin')).toBe('/Applications/Google Chrome.app/Contents/MacOS/Google Chrome');
    expect(chromiumPath({ PROGRAMFILES: 'D:\\Apps' }, 'win32')).toMatch(
      /^D:\\Apps.Google.Chrome.Application.chrome\.exe$/,
    );
    expect(chromiumPath({ OCTOCLIP_CHROMIUM: '/opt/chrome' }, 'darwin')).toBe('/opt/chrome');
  });
});

describe('npm dependencies', () => {
  it('installs when node_modules was never installed or package-lock.json is newer', () => {
    expect(needsNpmInstall({ lockfileModified: 1000, installedModified: null })).toBe(true);
    expect(needsNpmInstall({ lockfileModified: 2000, installedModified: 1000 })).toBe(true);
    expect(needsNpmInstall({ lockfileModified: 1000, installedModified: 1000 })).toBe(false);
    expect(needsNpmInstall({ lockfileModified: 1000, installedModified: 2000 })).toBe(false);
  });
});

describe('WebGPU environment', () => {
  const machine = { platform: 'linux' as const, env: {}, swiftShaderPresent: true, nvidiaIcds: [] };

  it('chooses SwiftShader on Linux without a GPU driver', () => {
    expect(chooseVulkanIcd(machine)).toBe(SWIFTSHADER_ICD);
  });

  it("leaves the choice alone when a driver is chosen, NVIDIA's is installed, or there is no SwiftShader", () => {
    expect(chooseVulkanIcd({ ...machine, env: { VK_ICD_FILENAMES: '/x.json' } })).toBeNull();
    expect(chooseVulkanIcd({ ...machine, env: { VK_DRIVER_FILES: '/x.json' } })).toBeNull();
    expect(chooseVulkanIcd({ ...machine, nvidiaIcds: ['nvidia_icd.json'] })).toBeNull();
    expect(chooseVulkanIcd({ ...machine, swiftShaderPresent: false })).toBeNull();
  });

  it('names no Vulkan driver on macOS and Windows (Metal, Direct3D)', () => {
    expect(chooseVulkanIcd({ ...machine, platform: 'darwin' })).toBeNull();
    expect(chooseVulkanIcd({ ...machine, platform: 'win32' })).toBeNull();
  });

  it("puts the project's tools first on the PATH and sets what Dawn reads on Linux", () => {
    const env = webgpuEnvironment(
      { PATH: '/usr/bin', HOME: '/home/a' },
      { platform: 'linux', icd: SWIFTSHADER_ICD, root: '/repo' },
    );
    expect(env).toEqual({
      PATH: '/repo/node_modules/.bin:/usr/bin',
      HOME: '/home/a',
      XDG_RUNTIME_DIR: '/tmp',
      VK_ICD_FILENAMES: SWIFTSHADER_ICD,
    });
    expect(
      webgpuEnvironment(
        { PATH: '/usr/bin', XDG_RUNTIME_DIR: '/run/user/1' },
        { platform: 'linux', icd: null, root: '/repo' },
      ).XDG_RUNTIME_DIR,
    ).toBe('/run/user/1');
  });

  it('names the driver with shader-f16 for the f16 tests, unless one is named already', () => {
    const facts = { platform: 'linux' as const, icd: SWIFTSHADER_ICD, root: '/repo', f16Icd: '/repo/.cache/lvp.json' };
    expect(webgpuEnvironment({}, facts).OCTOCLIP_F16_VULKAN_ICD).toBe('/repo/.cache/lvp.json');
    expect(webgpuEnvironment({ OCTOCLIP_F16_VULKAN_ICD: '/x.json' }, facts).OCTOCLIP_F16_VULKAN_ICD).toBe('/x.json');
    expect(webgpuEnvironment({}, { ...facts, f16Icd: null })).not.toHaveProperty('OCTOCLIP_F16_VULKAN_ICD');
  });

  it("fetches Mesa's lavapipe only on Debian bookworm with apt-get, once, and not when a driver is named", () => {
    const bookworm = {
      platform: 'linux' as const,
      debianCodename: 'bookworm',
      hasAptGet: true,
      present: false,
      named: false,
    };
    expect(shouldFetchLavapipe(bookworm)).toBe(true);
    expect(shouldFetchLavapipe({ ...bookworm, present: true })).toBe(false);
    expect(shouldFetchLavapipe({ ...bookworm, named: true })).toBe(false);
    expect(shouldFetchLavapipe({ ...bookworm, debianCodename: 'trixie' })).toBe(false);
    expect(shouldFetchLavapipe({ ...bookworm, hasAptGet: false })).toBe(false);
    expect(shouldFetchLavapipe({ ...bookworm, platform: 'darwin' })).toBe(false);
  });

  it("extends Windows' Path with its own separator and sets nothing else", () => {
    const env = webgpuEnvironment({ Path: 'C:\\Windows' }, { platform: 'win32', icd: null, root: 'C:\\repo' });
    expect(Object.keys(env)).toEqual(['Path']);
    expect(env.Path).toMatch(/^C:\\repo.node_modules.\.bin;C:\\Windows$/);
  });
});

describe('starting commands', () => {
  it('passes the arguments as they are on Linux and macOS', () => {
    for (const platform of ['linux', 'darwin'] as const) {
      expect(startCommand('vite-node', ['--root', '/my repo'], platform)).toEqual({
        file: 'vite-node',
        args: ['--root', '/my repo'],
        shell: false,
      });
    }
  });

  it('gives cmd.exe one line on Windows, quoting what it would split or act on', () => {
    expect(
      startCommand('vite-node', ['--root', 'C:\\My Projects\\octoclip', '--', 'a&b', 'say "hi"', ''], 'win32'),
    ).toEqual({
      file: 'vite-node --root "C:\\My Projects\\octoclip" -- "a&b" "say ""hi""" ""',
      args: [],
      shell: true,
    });
    expect(quoteForCmd('--no-audit')).toBe('--no-audit');
  });
});

describe('stages', () => {
  it('runs each under its header with its time, and stops at the first failure', () => {
    const lines: string[] = [];
    const ran: string[] = [];
    let clock = 0;
    const failed = runStages(
      [
        {
          title: 'first',
          run: () => {
            ran.push('first');
            clock += 2000;
          },
        },
        {
          title: 'second',
          run: () => {
            ran.push('second');
            return 3;
          },
        },
        {
          title: 'third',
          run: () => {
            ran.push('third');
          },
        },
      ],
      { log: (line) => lines.push(line), now: () => clock },
    );
    expect(ran).toEqual(['first', 'second']);
    expect(failed).toEqual({ title: 'second', reason: 'exit status 3' });
    expect(lines).toEqual(['\n==== first ====', '(first: 2 s)', '\n==== second ====']);
  });

  it('reports a thrown error as the reason, and null when every stage passes', () => {
    const log = () => undefined;
    expect(
      runStages(
        [
          {
            title: 'a',
            run: () => {
              throw new Error('no chromium');
            },
          },
        ],
        { log },
      ),
    ).toEqual({ title: 'a', reason: 'no chromium' });
    expect(
      runStages(
        [
          { title: 'a', run: () => 0 },
          { title: 'b', run: () => undefined },
        ],
        { log },
      ),
    ).toBeNull();
  });
});

describe('the studio build of npm start', () => {
  it('is redone when a source changes, is added or is removed, and not when only times change', () => {
    const root = mkdtempSync(join(tmpdir(), 'octoclip-sources-'));
    try {
      mkdirSync(join(root, 'src', 'ui'), { recursive: true });
      writeFileSync(join(root, 'index.html'), '<div id="root"></div>');
      writeFileSync(join(root, 'src', 'ui', 'App.tsx'), 'export {};');
      const sources = ['index.html', 'src', 'public'];
      const digest = () => sourcesDigest(root, sources);
      const built = digest();
      utimesSync(join(root, 'index.html'), new Date(0), new Date(0));
      expect(digest()).toBe(built);
      writeFileSync(join(root, 'src', 'ui', 'App.tsx'), 'export { };');
      const changed = digest();
      expect(changed).not.toBe(built);
      writeFileSync(join(root, 'src', 'ui', 'More.tsx'), '');
      expect(digest()).not.toBe(changed);
      rmSync(join(root, 'src', 'ui', 'More.tsx'));
      expect(digest()).toBe(changed);
      // A file moved to another name is another source.
      rmSync(join(root, 'src', 'ui', 'App.tsx'));
      writeFileSync(join(root, 'src', 'App.tsx'), 'export { };');
      expect(digest()).not.toBe(changed);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
