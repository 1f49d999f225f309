// What octoclip needs on a machine, checked (and installed where it can be) in one place, for
// scripts/start.mjs, scripts/test.mjs and scripts/with-webgpu.mjs. Plain Node (no npm packages, which
// may not be installed yet), so that the same commands run on Linux, macOS and Windows.
//
// Each decision is a pure function of what it looks at (tested in test/scripts); the `ensure*`
// functions gather those facts from the machine, act on the decision and say what they did.

import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { delimiter, dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

// ---- Node.js ----

/**
 * Whether a Node version ("20.19.2") satisfies an `engines` range made of `^x.y.z` and `>=x.y.z`
 * alternatives joined by `||` (the forms Vite and this package use). Any other form throws, so a new
 * form is noticed instead of passing unchecked.
 * @param {string} version
 * @param {string} range
 */
export function satisfiesNodeRange(version, range) {
  const parse = (/** @type {string} */ text) => text.split('.').map(Number);
  const compare = (/** @type {number[]} */ a, /** @type {number[]} */ b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
  const current = parse(version.replace(/^v/, ''));
  return range.split('||').some((alternative) => {
    const match = /^\s*(\^|>=)(\d+\.\d+\.\d+)\s*$/.exec(alternative);
    if (!match) throw new Error(`Unsupported Node version range "${alternative.trim()}" in package.json engines`);
    const minimum = parse(match[2]);
    return compare(current, minimum) >= 0 && (match[1] === '>=' || current[0] === minimum[0]);
  });
}

/** The Node versions octoclip runs on: package.json's `engines.node`, the one place they are written. */
export function requiredNodeRange() {
  return JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).engines.node;
}

export function ensureNode() {
  const range = requiredNodeRange();
  if (!satisfiesNodeRange(process.version, range)) {
    throw new Error(`octoclip needs Node.js ${range}; this is ${process.version}: see https://nodejs.org/`);
  }
  const npm = startCommand('npm', ['--version']);
  console.log(
    `Node.js ${process.version}, npm ${execFileSync(npm.file, npm.args, { encoding: 'utf8', shell: npm.shell }).trim()}`,
  );
}

// ---- System packages for the tests ----

/**
 * The Chromium the end-to-end tests drive: OCTOCLIP_CHROMIUM, or the system's where there is a usual
 * place for it (Debian's package on Linux, Chrome's app bundle on macOS, Chrome's install on Windows).
 * @param {Record<string, string | undefined>} env
 * @param {NodeJS.Platform} platform
 */
export function chromiumPath(env = process.env, platform = process.platform) {
  if (env.OCTOCLIP_CHROMIUM) return env.OCTOCLIP_CHROMIUM;
  if (platform === 'darwin') return '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome';
  if (platform === 'win32')
    return join(env.PROGRAMFILES ?? 'C:\\Program Files', 'Google', 'Chrome', 'Application', 'chrome.exe');
  return '/usr/bin/chromium';
}

/**
 * What the tests need from the system on Linux. chromium: the browser the end-to-end tests drive, and
 * its SwiftShader Vulkan driver, which serves WebGPU in Node on machines without a GPU. libvulkan1: the
 * Vulkan loader Dawn (the `webgpu` npm package) opens. On macOS and Windows Dawn uses Metal or
 * Direct3D, which come with the system, so only the browser is needed.
 */
export const TEST_SYSTEM_PACKAGES = ['chromium', 'libvulkan1'];

/**
 * What to do about the missing system packages.
 * @param {{ platform: NodeJS.Platform, missing: string[], isRoot: boolean, hasAptGet: boolean, chromium: string, chromiumNamed: boolean }} facts
 *   chromiumNamed: the browser is the one OCTOCLIP_CHROMIUM names, which no package installs
 * @returns {{ action: 'none' } | { action: 'apt-get', packages: string[] } | { action: 'tell', message: string }}
 */
export function systemPackagePlan({ platform, missing, isRoot, hasAptGet, chromium, chromiumNamed }) {
  if (missing.length === 0) return { action: 'none' };
  // Elsewhere than Linux the browser is all that can be missing.
  if (chromiumNamed && (platform !== 'linux' || missing.includes('chromium'))) {
    return {
      action: 'tell',
      message: `OCTOCLIP_CHROMIUM names ${chromium}, which is not there: correct it, or unset it to use the system's browser.`,
    };
  }
  if (platform !== 'linux') {
    return {
      action: 'tell',
      message:
        `The end-to-end tests drive Chrome or Chromium, and there is none at ${chromium}. Install Google Chrome ` +
        '(https://www.google.com/chrome/), or set OCTOCLIP_CHROMIUM to the path of a Chrome or Chromium executable.',
    };
  }
  if (isRoot && hasAptGet) return { action: 'apt-get', packages: missing };
  const command = hasAptGet
    ? `sudo apt-get install -y ${missing.join(' ')}`
    : "your package manager's Chromium and Vulkan loader (e.g. dnf install chromium vulkan-loader, pacman -S chromium vulkan-icd-loader)";
  return {
    action: 'tell',
    message: `The tests need system packages that are missing (${missing.join(', ')}). Install them with: ${command}`,
  };
}

/** @param {string} command */
function onPath(command) {
  return (process.env.PATH ?? '').split(delimiter).some((folder) => folder && existsSync(join(folder, command)));
}

/**
 * Whether a Linux package is installed: dpkg's word where there is dpkg, else whether what it provides
 * is there. A Chromium named by OCTOCLIP_CHROMIUM stands in for the package.
 * @param {string} name
 */
function linuxPackageInstalled(name) {
  if (name === 'chromium' && process.env.OCTOCLIP_CHROMIUM) return existsSync(process.env.OCTOCLIP_CHROMIUM);
  if (onPath('dpkg-query')) {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax
    const status = spawnSync('dpkg-query', ['-W', '-f=${Status}', name], { encoding: 'utf8' }).stdout;
    return status === 'install ok installed';
  }
  if (name === 'chromium') return existsSync(chromiumPath());
  if (name === 'libvulkan1')
    return spawnSync('/sbin/ldconfig', ['-p'], { encoding: 'utf8' }).stdout?.includes('libvulkan.so.1') ?? false;
  return false;
}

function missingTestSystemPackages() {
  if (process.platform !== 'linux') return existsSync(chromiumPath()) ? [] : ['Chrome or Chromium'];
  return TEST_SYSTEM_PACKAGES.filter((name) => !linuxPackageInstalled(name));
}

export function ensureTestSystemPackages() {
  const missing = missingTestSystemPackages();
  const plan = systemPackagePlan({
    platform: process.platform,
    missing,
    isRoot: process.getuid?.() === 0,
    hasAptGet: process.platform === 'linux' && onPath('apt-get'),
    chromium: chromiumPath(),
    chromiumNamed: Boolean(process.env.OCTOCLIP_CHROMIUM),
  });
  if (plan.action === 'tell') throw new Error(plan.message);
  if (plan.action === 'apt-get') {
    console.log(`Installing ${plan.packages.join(' ')} with apt-get`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    run('apt-get', ['update'], { env });
    run('apt-get', ['install', '-y', ...plan.packages], { env });
    return;
  }
  console.log(`Installed: ${process.platform === 'linux' ? TEST_SYSTEM_PACKAGES.join(', ') : chromiumPath()}`);
}

// ---- A Vulkan driver with shader-f16, for the 'f16' precision's tests ----

/**
 * Mesa's lavapipe (a CPU Vulkan) from Debian's bookworm-backports, unpacked under .cache/: Mesa 25
 * offers shader-f16 through Dawn, where SwiftShader has none and bookworm's own Mesa 22.3 is refused.
 * Fetched with apt's lists and cache in that folder, so the system's package state is not touched;
 * the tests name it as OCTOCLIP_F16_VULKAN_ICD (webgpuEnvironment).
 */
export const LAVAPIPE_DIR = join(ROOT, '.cache', 'lavapipe');
export const LAVAPIPE_ICD = join(LAVAPIPE_DIR, 'lvp_icd.json');
const LAVAPIPE_SOURCE = 'deb http://deb.debian.org/debian bookworm-backports main';
const LAVAPIPE_PACKAGE = 'mesa-vulkan-drivers/bookworm-backports';

/**
 * Whether to fetch lavapipe: on Debian bookworm with apt-get, when it is not there yet and no driver is
 * named for the f16 tests already. Elsewhere those tests run on a GPU that has shader-f16, or skip.
 * @param {{ platform: NodeJS.Platform, debianCodename: string | null, hasAptGet: boolean, present: boolean, named: boolean }} facts
 */
export function shouldFetchLavapipe({ platform, debianCodename, hasAptGet, present, named }) {
  return platform === 'linux' && debianCodename === 'bookworm' && hasAptGet && !present && !named;
}

function debianCodename() {
  if (!existsSync('/etc/os-release')) return null;
  return /^VERSION_CODENAME=(\w+)$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? null;
}

export function ensureF16VulkanDriver() {
  const fetch = shouldFetchLavapipe({
    platform: process.platform,
    debianCodename: process.platform === 'linux' ? debianCodename() : null,
    hasAptGet: process.platform === 'linux' && onPath('apt-get'),
    present: existsSync(LAVAPIPE_ICD),
    named: Boolean(process.env.OCTOCLIP_F16_VULKAN_ICD),
  });
  if (!fetch) {
    console.log(
      existsSync(LAVAPIPE_ICD)
        ? `lavapipe: ${LAVAPIPE_ICD}`
        : 'No lavapipe to fetch here: f16 tests need a GPU with shader-f16',
    );
    return;
  }
  console.log(`Fetching Mesa's lavapipe (${LAVAPIPE_PACKAGE}) into ${LAVAPIPE_DIR}`);
  const apt = join(LAVAPIPE_DIR, 'apt');
  for (const folder of ['lists/partial', 'cache/archives/partial']) mkdirSync(join(apt, folder), { recursive: true });
  writeFileSync(join(apt, 'sources.list'), `${LAVAPIPE_SOURCE}\n`);
  const options = [
    `Dir::Etc::SourceList=${join(apt, 'sources.list')}`,
    `Dir::Etc::SourceParts=${join(apt, 'none')}`,
    `Dir::State::Lists=${join(apt, 'lists')}`,
    `Dir::Cache=${join(apt, 'cache')}`,
    // Where the mirror cannot be reached, give up in seconds, not minutes: the f16 tests only skip.
    'Acquire::http::Timeout=20',
    'Acquire::Retries=0',
    ...(process.getuid?.() === 0 ? ['APT::Sandbox::User=root'] : []),
  ].flatMap((option) => ['-o', option]);
  try {
    run('apt-get', [...options, '-q', 'update']);
    run('apt-get', [...options, 'download', LAVAPIPE_PACKAGE], { cwd: apt });
    const deb = readdirSync(apt).find((name) => name.startsWith('mesa-vulkan-drivers_') && name.endsWith('.deb'));
    if (!deb) throw new Error('apt-get download left no mesa-vulkan-drivers package');
    const root = join(LAVAPIPE_DIR, 'root');
    run('dpkg-deb', ['-x', join(apt, deb), root]);
    // The package's own ICD file names the library bare, for the system's library path: name it where it is.
    const icd = JSON.parse(readFileSync(join(root, 'usr', 'share', 'vulkan', 'icd.d', 'lvp_icd.json'), 'utf8'));
    const libraries = join(root, 'usr', 'lib');
    const library = readdirSync(libraries)
      .map((folder) => join(libraries, folder, icd.ICD.library_path))
      .find((path) => existsSync(path));
    if (!library) throw new Error(`the package holds no ${icd.ICD.library_path}`);
    writeFileSync(LAVAPIPE_ICD, `${JSON.stringify({ ...icd, ICD: { ...icd.ICD, library_path: library } }, null, 2)}\n`);
  } catch (error) {
    // The f16 tests skip, saying why; nothing else depends on this driver.
    console.log(`Could not fetch lavapipe (${error instanceof Error ? error.message : error}): f16 tests will skip`);
  }
}

// ---- npm dependencies ----

/**
 * Whether to run npm install: when node_modules has never been installed, or package-lock.json changed
 * since (npm rewrites node_modules/.package-lock.json on every install that changes something).
 * @param {{ lockfileModified: number, installedModified: number | null }} times milliseconds; null: no install
 */
export function needsNpmInstall({ lockfileModified, installedModified }) {
  return installedModified === null || lockfileModified > installedModified;
}

/** @param {string} file */
function modifiedTime(file) {
  return existsSync(file) ? statSync(file).mtimeMs : null;
}

export function ensureNpmDependencies() {
  const installed = join(ROOT, 'node_modules', '.package-lock.json');
  const lockfileModified = modifiedTime(join(ROOT, 'package-lock.json')) ?? 0;
  if (!needsNpmInstall({ lockfileModified, installedModified: modifiedTime(installed) })) {
    console.log('node_modules is up to date with package-lock.json');
    return;
  }
  console.log('Installing npm dependencies');
  run('npm', ['install', '--no-audit', '--no-fund'], { cwd: ROOT });
  // An install that changed nothing leaves the file's time alone: mark this state as installed.
  const now = new Date();
  utimesSync(installed, now, now);
}

// ---- The built studio (npm start) ----

/** What `vite build` reads for the studio: a change to any of them calls for a new build. */
export const STUDIO_SOURCES = [
  'index.html',
  'src',
  'shaders',
  'public',
  'vite.config.ts',
  'tsconfig.json',
  'package.json',
  'package-lock.json',
];
/** Where npm start builds the studio, and the file in it naming the sources it was built from. */
export const STUDIO_DIST = join(ROOT, 'dist');
export const STUDIO_BUILD_STAMP = '.octoclip-sources';

/**
 * A digest of the sources under `root` (the studio's, or the CLI's): every file's path and contents, in a fixed order
 * (contents, not times: a fresh clone or a checkout sets every time, and a build must not repeat then).
 * @param {string} root
 * @param {readonly string[]} [sources]
 */
export function sourcesDigest(root, sources = STUDIO_SOURCES) {
  const hash = createHash('sha256');
  for (const source of sources) {
    const path = join(root, source);
    if (!existsSync(path)) continue;
    const files = statSync(path).isDirectory()
      ? readdirSync(path, { recursive: true, withFileTypes: true })
          .filter((entry) => entry.isFile())
          .map((entry) => join(entry.parentPath, entry.name))
      : [path];
    for (const file of files.sort()) {
      const name = relative(root, file).split(sep).join('/');
      hash.update(`${name}\0`).update(readFileSync(file)).update('\0');
    }
  }
  return hash.digest('hex');
}

/** Builds the studio into dist/ unless dist/ holds a build of the current sources. */
export function ensureStudioBuild() {
  const stamp = join(STUDIO_DIST, STUDIO_BUILD_STAMP);
  const digest = sourcesDigest(ROOT);
  if (existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === digest) {
    console.log('dist/ holds a build of the current sources');
    return;
  }
  console.log('Building the studio into dist/ (the sources changed since the last build)');
  const status = runWithWebgpu('vite', ['build', '--outDir', STUDIO_DIST, '--emptyOutDir', '--logLevel', 'warn'], {
    cwd: ROOT,
  });
  if (status !== 0) throw new Error(`vite build exited with status ${status}`);
  writeFileSync(stamp, `${digest}\n`);
}

// ---- The CLI (bin/octoclip.js) ----

/** What the CLI is built from. */
export const CLI_SOURCES = ['src', 'shaders', 'package.json', 'package-lock.json'];
/** Where the CLI's builds are kept, one file per digest of its sources. */
export const CLI_BUILD_DIR = join(ROOT, '.cache', 'cli');

/**
 * The CLI as one Node module built from the current sources: built (in about a second) when the
 * sources changed since the last build, else the build that is there. A built module starts in a
 * fraction of a second where running the TypeScript through vite-node takes about three; the name is
 * the sources' digest, so two commands started at once never run a half-written or an older build.
 * @returns {Promise<string>} the module's path
 */
export async function ensureCliBuild() {
  const digest = sourcesDigest(ROOT, CLI_SOURCES).slice(0, 16);
  const file = join(CLI_BUILD_DIR, `octoclip-${digest}.mjs`);
  if (existsSync(file)) return file;
  const { build } = await import('vite');
  const temporary = join(CLI_BUILD_DIR, `.build-${process.pid}-${Date.now()}`);
  await build({
    configFile: false,
    root: ROOT,
    logLevel: 'warn',
    publicDir: false,
    build: {
      ssr: join(ROOT, 'src', 'cli', 'index.ts'),
      outDir: temporary,
      emptyOutDir: true,
      target: 'node20',
      minify: false,
      rollupOptions: { output: { entryFileNames: 'octoclip.mjs', codeSplitting: false } },
    },
  });
  renameSync(join(temporary, 'octoclip.mjs'), file);
  rmSync(temporary, { recursive: true, force: true });
  // Older builds: a command still running one has it loaded already.
  for (const name of readdirSync(CLI_BUILD_DIR))
    if (name.startsWith('octoclip-') && join(CLI_BUILD_DIR, name) !== file)
      rmSync(join(CLI_BUILD_DIR, name), { force: true });
  return file;
}

// ---- WebGPU in Node ----

/** Chromium's SwiftShader, a Vulkan driver on the CPU that Debian's chromium package ships. */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
/** Where NVIDIA's Vulkan driver registers itself: with it, the real GPU serves. */
const NVIDIA_ICD_FOLDERS = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/nvidia/share/vulkan/icd.d'];

/**
 * The Vulkan driver to name for Dawn, or null to leave the loader's own choice: SwiftShader on Linux
 * when no driver is chosen already and no NVIDIA driver is installed (Mesa's lavapipe, the other CPU
 * Vulkan, is refused by Dawn). macOS and Windows need none (Metal, Direct3D).
 * @param {{ platform: NodeJS.Platform, env: Record<string, string | undefined>, swiftShaderPresent: boolean, nvidiaIcds: string[] }} facts
 */
export function chooseVulkanIcd({ platform, env, swiftShaderPresent, nvidiaIcds }) {
  if (platform !== 'linux' || env.VK_ICD_FILENAMES || env.VK_DRIVER_FILES) return null;
  if (!swiftShaderPresent || nvidiaIcds.length > 0) return null;
  return SWIFTSHADER_ICD;
}

function installedNvidiaIcds() {
  return NVIDIA_ICD_FOLDERS.flatMap((folder) => {
    const names = existsSync(folder) ? readdirSync(folder) : [];
    // The NVIDIA container toolkit's folder holds only NVIDIA's; the system folders hold every vendor's.
    return names.filter((name) => name.endsWith('.json') && (folder.includes('nvidia') || name.startsWith('nvidia')));
  });
}

/**
 * The environment WebGPU needs in Node and the project's tools: the Vulkan driver (see
 * chooseVulkanIcd), XDG_RUNTIME_DIR (whose absence Dawn warns about), and node_modules/.bin first on
 * the PATH, whatever the working directory (the octoclip CLI runs from anywhere).
 * @param {Record<string, string | undefined>} env
 * @param {{ platform: NodeJS.Platform, icd: string | null, root: string, f16Icd?: string | null }} facts
 *   f16Icd: a driver with shader-f16 for the f16 tests (LAVAPIPE_ICD where ensureF16VulkanDriver put it)
 */
export function webgpuEnvironment(env, { platform, icd, root, f16Icd = null }) {
  // Windows spells it Path; whichever spelling is there is the one to extend.
  const pathKey = Object.keys(env).find((key) => key.toUpperCase() === 'PATH') ?? 'PATH';
  const result = {
    ...env,
    [pathKey]: [join(root, 'node_modules', '.bin'), env[pathKey]]
      .filter(Boolean)
      .join(platform === 'win32' ? ';' : ':'),
  };
  if (platform === 'linux') result.XDG_RUNTIME_DIR = env.XDG_RUNTIME_DIR || '/tmp';
  if (icd) result.VK_ICD_FILENAMES = icd;
  if (f16Icd && !env.OCTOCLIP_F16_VULKAN_ICD) result.OCTOCLIP_F16_VULKAN_ICD = f16Icd;
  return result;
}

/** This machine's WebGPU environment (see webgpuEnvironment). */
export function currentWebgpuEnvironment() {
  const icd = chooseVulkanIcd({
    platform: process.platform,
    env: process.env,
    swiftShaderPresent: existsSync(SWIFTSHADER_ICD),
    nvidiaIcds: process.platform === 'linux' ? installedNvidiaIcds() : [],
  });
  const f16Icd = existsSync(LAVAPIPE_ICD) ? LAVAPIPE_ICD : null;
  return webgpuEnvironment(process.env, { platform: process.platform, icd, root: ROOT, f16Icd });
}

// ---- Running things ----

/**
 * @typedef {{ title: string, run: () => void | number }} Stage
 * A step of a command: `run` throws, or returns a non-zero exit status, when it fails.
 */

/**
 * Runs the stages in order, each under its header with the seconds it took, and stops at the first
 * that fails. Returns null when all passed, else the failed stage's title and why.
 * @param {Stage[]} stages
 * @param {{ log?: (line: string) => void, now?: () => number }} [io]
 * @returns {{ title: string, reason: string } | null}
 */
export function runStages(stages, { log = console.log, now = Date.now } = {}) {
  for (const stage of stages) {
    log(`\n==== ${stage.title} ====`);
    const started = now();
    let reason = null;
    try {
      const status = stage.run();
      if (typeof status === 'number' && status !== 0) reason = `exit status ${status}`;
    } catch (error) {
      reason = error instanceof Error ? error.message : String(error);
    }
    if (reason !== null) return { title: stage.title, reason };
    log(`(${stage.title}: ${Math.round((now() - started) / 1000)} s)`);
  }
  return null;
}

/**
 * An argument as cmd.exe reads it: in double quotes (doubled inside) when it holds a space or a
 * character cmd.exe would act on.
 * @param {string} arg
 */
export function quoteForCmd(arg) {
  return arg === '' || /[\s"&|<>^%()]/.test(arg) ? `"${arg.replace(/"/g, '""')}"` : arg;
}

/**
 * How to start a command. Windows starts npm and the node_modules/.bin tools through .cmd files,
 * which only cmd.exe runs: there it is one command line, each argument quoted for cmd.exe (Node
 * would join them unquoted, so a path with a space would split).
 * @param {string} command
 * @param {string[]} args
 * @param {NodeJS.Platform} [platform]
 * @returns {{ file: string, args: string[], shell: boolean }}
 */
export function startCommand(command, args, platform = process.platform) {
  if (platform !== 'win32') return { file: command, args, shell: false };
  return { file: [command, ...args].map(quoteForCmd).join(' '), args: [], shell: true };
}

/**
 * Runs a command with inherited output and returns its exit status.
 * @param {string} command
 * @param {string[]} args
 * @param {import('node:child_process').SpawnSyncOptions} [options]
 */
export function spawn(command, args, options = {}) {
  const start = startCommand(command, args);
  const result = spawnSync(start.file, start.args, { stdio: 'inherit', shell: start.shell, ...options });
  if (result.error) throw new Error(`Could not run ${command}: ${result.error.message}`);
  return result.status ?? 1;
}

/** Runs a command and throws when it fails. @param {Parameters<typeof spawn>} args */
export function run(...args) {
  const status = spawn(...args);
  if (status !== 0) throw new Error(`${[args[0], ...args[1]].join(' ')} exited with status ${status}`);
}

/**
 * Runs one of the project's tools (vitest, playwright, vite-node, ...) or any command in the WebGPU
 * environment, and returns its exit status.
 * @param {string} command
 * @param {string[]} args
 * @param {import('node:child_process').SpawnSyncOptions} [options]
 */
export function runWithWebgpu(command, args, options = {}) {
  return spawn(command, args, { env: currentWebgpuEnvironment(), ...options });
}
