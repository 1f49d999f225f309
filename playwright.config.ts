// End-to-end tests of the studio in the system's Chromium (Playwright cannot download browsers on
// every machine). On machines without a GPU, Chromium's bundled SwiftShader serves WebGPU when
// launched with --enable-unsafe-webgpu; on a GPU machine the same flags reach the real driver.
// Run through `node scripts/with-webgpu.mjs playwright test` (npm test does).
//
//   OCTOCLIP_CHROMIUM=/path/to/chrome   another Chromium build (default: see chromiumPath in scripts/setup.mjs)
//   OCTOCLIP_E2E_SERVER=dev             test against the Vite dev server instead of a production build
//   OCTOCLIP_E2E_PORT=4318              another port, for two checkouts testing at once

import { defineConfig } from '@playwright/test';
import { BUILD_DIR } from './e2e/fixtures';
import { chromiumPath } from './scripts/setup.mjs';

const CHROMIUM = chromiumPath();
const PORT = Number(process.env.OCTOCLIP_E2E_PORT || 4317); // not Vite's defaults (5173, 4173), so a running `npm start` does not collide
const BASE_URL = `http://127.0.0.1:${PORT}`; // a secure context: navigator.gpu exists only in those

/** Headless, as root, without network: no sandbox, no first-run UI, no background traffic. */
const QUIET_CHROMIUM = [
  '--no-sandbox',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

// Tried here (Chromium 156, SwiftShader): --enable-unsafe-webgpu alone gives the "google /
// swiftshader" adapter in pages and dedicated workers, and --enable-features=Vulkan changes nothing;
// without the flag, or with --disable-webgpu, navigator.gpu exists but offers no adapter.
const WEBGPU = ['--enable-unsafe-webgpu'];
const NO_WEBGPU = ['--disable-webgpu'];
/** A synthetic camera (a moving test pattern) that needs no permission prompt: Try it's camera path. */
const FAKE_CAMERA = ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'];

/** The browser a project drives: the quiet Chromium with these flags. */
const chromiumWith = (...flags: string[]) => ({
  launchOptions: { executablePath: CHROMIUM, args: [...QUIET_CHROMIUM, ...flags] },
});
const WEBGPU_BROWSER = chromiumWith(...WEBGPU, ...FAKE_CAMERA);

const server =
  process.env.OCTOCLIP_E2E_SERVER === 'dev'
    ? `npx --no-install vite --host 127.0.0.1 --port ${PORT} --strictPort`
    : `npx --no-install vite build --outDir "${BUILD_DIR}" --emptyOutDir --logLevel warn && ` +
      `npx --no-install vite preview --outDir "${BUILD_DIR}" --host 127.0.0.1 --port ${PORT} --strictPort`;

export default defineConfig({
  testDir: 'e2e',
  outputDir: 'test-results',
  // The tiny CLIP and the image set the tests load, written once per run.
  globalSetup: './e2e/global-setup.ts',
  // SwiftShader compiles and runs kernels on the CPU, yet a test also waits on pages, workers and storage:
  // two browsers at a time took the suite from 326 s to 252 s on 2 cores beside a CPU hog. A file's tests
  // run in order in one worker; tests that time themselves are tagged @alone and run after the others.
  workers: 2,
  fullyParallel: false,
  timeout: 90_000,
  expect: { timeout: 45_000 },
  forbidOnly: !!process.env.CI,
  retries: 0,
  reporter: [['list']],
  use: {
    baseURL: BASE_URL,
    headless: true,
    viewport: { width: 1280, height: 800 },
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
  },
  projects: [
    {
      name: 'webgpu',
      testIgnore: /no-webgpu\.spec\.ts$/,
      grepInvert: /@alone/,
      use: WEBGPU_BROWSER,
    },
    {
      name: 'no-webgpu',
      testMatch: /no-webgpu\.spec\.ts$/,
      use: chromiumWith(...NO_WEBGPU),
    },
    {
      // Once the others are done, so that nothing runs beside these (a project waits for its dependencies).
      name: 'alone',
      grep: /@alone/,
      dependencies: ['webgpu', 'no-webgpu'],
      use: WEBGPU_BROWSER,
    },
  ],
  webServer: {
    command: server,
    url: BASE_URL,
    // Never test a stale server left on the port: fail instead (strictPort).
    reuseExistingServer: false,
    timeout: 180_000,
    stdout: 'ignore',
    stderr: 'pipe',
  },
});
