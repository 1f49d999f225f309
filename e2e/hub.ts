// Stand-ins for the Hugging Face Hub, serving https://huggingface.co/<repo>/resolve/<revision>/<file> from the
// tiny model's files (or given ones) and honouring Range requests, X-Repo-Commit and tokens as the Hub does.
// fakeHub answers through page.route and can cut a response short (as a dropped connection would) or refuse
// every request (offline);
// slowHub replaces the page's fetch for the Hub with one that trickles the bytes, as a slow link does.

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Page, Route } from '@playwright/test';
import { TINY_MODEL_DIR } from './fixtures';

export interface HubRequest {
  file: string;
  /** The revision in the URL (a branch, tag or commit). */
  revision: string | null;
  method: string;
  /** The Range header the page sent, if any. */
  range: string | null;
  authorization: string | null;
}

export interface FakeHub {
  requests: HubRequest[];
  /** Cut the next response for this file after half its bytes. */
  interruptNext(file: string): void;
  /** Refuse every request, as without a connection. */
  goOffline(): void;
}

export interface FakeHubOptions {
  /** The repo's files, instead of the tiny model's folder (shards, or a pickle checkpoint alone). */
  files?: Record<string, Uint8Array>;
  /** Branches and tags, to the commit X-Repo-Commit names; a commit in the URL is served as itself. */
  refs?: Record<string, string>;
  /** The token a private repo needs (401 without it); `gated`: 403 until the licence is accepted. */
  token?: string;
  gated?: boolean;
}

export const FAKE_HUB_COMMIT = '0123456789abcdef0123456789abcdef01234567';

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-expose-headers': 'Content-Range, Content-Length, Accept-Ranges, ETag, X-Repo-Commit, X-Error-Code',
};

export async function fakeHub(page: Page, repo: string, options: FakeHubOptions = {}): Promise<FakeHub> {
  const requests: HubRequest[] = [];
  const interrupt = new Set<string>();
  const refs = options.refs ?? { main: FAKE_HUB_COMMIT };
  let offline = false;
  await page.route('https://huggingface.co/**', async (route: Route) => {
    if (offline) return route.abort('internetdisconnected');
    const request = route.request();
    if (request.method() === 'OPTIONS') {
      return route.fulfill({
        status: 204,
        headers: {
          ...CORS,
          'access-control-allow-headers': 'range, authorization',
          'access-control-allow-methods': 'GET, HEAD',
        },
      });
    }
    const match = new RegExp(`^https://huggingface\\.co/${repo}/resolve/([^/]+)/([^/?]+)$`).exec(request.url());
    const revision = match ? decodeURIComponent(match[1]) : null;
    const file = match?.[2];
    const headers = request.headers();
    const range = headers.range ?? null;
    requests.push({
      file: file ?? request.url(),
      revision,
      method: request.method(),
      range,
      authorization: headers.authorization ?? null,
    });
    if (options.token && headers.authorization !== `Bearer ${options.token}`)
      return route.fulfill({ status: 401, headers: CORS, body: 'Invalid credentials' });
    if (options.gated) return route.fulfill({ status: 403, headers: CORS, body: 'Access to this model is restricted' });
    const commit =
      revision === null
        ? undefined
        : (refs[revision] ?? (Object.values(refs).includes(revision) ? revision : undefined));
    if (!commit)
      return route.fulfill({
        status: 404,
        headers: { ...CORS, 'x-error-code': 'RevisionNotFound' },
        body: 'Revision not found',
      });
    const found = { ...CORS, 'x-repo-commit': commit };
    let body: Buffer;
    try {
      if (!file) throw new Error('not a file of the repo');
      const given = options.files?.[file];
      if (options.files && !given) throw new Error('not in the repo');
      body = given ? Buffer.from(given) : await readFile(path.join(TINY_MODEL_DIR, file));
    } catch {
      return route.fulfill({
        status: 404,
        headers: { ...found, 'x-error-code': 'EntryNotFound' },
        body: 'Entry not found',
      });
    }
    if (interrupt.delete(file)) {
      // Announce the whole file, send half: the browser reports a network error mid-body.
      return route.fulfill({
        status: 200,
        headers: { ...found, 'content-length': String(body.length) },
        body: body.subarray(0, body.length >> 1),
      });
    }
    const start = range ? Number(/^bytes=(\d+)-$/.exec(range)?.[1]) : 0;
    if (range) {
      return route.fulfill({
        status: 206,
        headers: {
          ...found,
          'content-range': `bytes ${start}-${body.length - 1}/${body.length}`,
          'accept-ranges': 'bytes',
        },
        body: body.subarray(start),
      });
    }
    return route.fulfill({ status: 200, headers: { ...found, 'accept-ranges': 'bytes' }, body });
  });
  return {
    requests,
    interruptNext: (file) => interrupt.add(file),
    goOffline: () => {
      offline = true;
    },
  };
}

/**
 * Makes the page's fetch of Hub files deliver `bytesPerSecond` (in 16 KiB pieces), honouring Range and
 * abort. Requests are logged in window.hubRequests.
 */
export async function slowHub(page: Page, repo: string, bytesPerSecond: number): Promise<void> {
  const files: Record<string, string> = {};
  for (const name of ['config.json', 'model.safetensors', 'vocab.json', 'merges.txt', 'preprocessor_config.json']) {
    files[name] = (await readFile(path.join(TINY_MODEL_DIR, name))).toString('base64');
  }
  await page.addInitScript(
    ({ repo, files, bytesPerSecond }) => {
      const PIECE = 16 * 1024;
      const requests: { file: string; range: string | null }[] = [];
      (window as unknown as { hubRequests: typeof requests }).hubRequests = requests;
      const prefix = `https://huggingface.co/${repo}/resolve/main/`;
      const realFetch = window.fetch.bind(window);
      window.fetch = async (input, init) => {
        const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
        if (!url.startsWith(prefix)) return realFetch(input, init);
        const file = url.slice(prefix.length);
        const range = new Headers(init?.headers).get('range');
        requests.push({ file, range });
        if (!(file in files)) return new Response('Entry not found', { status: 404 });
        const whole = Uint8Array.from(atob(files[file]), (c) => c.charCodeAt(0));
        const start = range ? Number(/^bytes=(\d+)-$/.exec(range)![1]) : 0;
        const body = whole.subarray(start);
        const signal = init?.signal;
        let sent = 0;
        let timer: ReturnType<typeof setInterval>;
        const stream = new ReadableStream<Uint8Array>({
          start(controller) {
            signal?.addEventListener('abort', () => {
              clearInterval(timer);
              controller.error(new DOMException('The download was stopped.', 'AbortError'));
            });
            timer = setInterval(
              () => {
                controller.enqueue(body.slice(sent, sent + PIECE));
                sent += PIECE;
                if (sent >= body.length) {
                  clearInterval(timer);
                  controller.close();
                }
              },
              (1000 * PIECE) / bytesPerSecond,
            );
          },
        });
        const headers: Record<string, string> = { 'content-length': String(body.length) };
        if (range) headers['content-range'] = `bytes ${start}-${whole.length - 1}/${whole.length}`;
        return new Response(stream, { status: range ? 206 : 200, headers });
      };
    },
    { repo, files, bytesPerSecond },
  );
}
