// Stand-ins for the Hugging Face Hub, serving https://huggingface.co/<repo>/resolve/main/<file> from the
// tiny model's files and honouring Range requests as the Hub does. fakeHub answers through page.route
// and can cut a response short (as a dropped connection would) or refuse every request (offline);
// slowHub replaces the page's fetch for the Hub with one that trickles the bytes, as a slow link does.

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Page, Route } from '@playwright/test';
import { TINY_MODEL_DIR } from './fixtures';

export interface HubRequest {
  file: string;
  /** The Range header the page sent, if any. */
  range: string | null;
}

export interface FakeHub {
  requests: HubRequest[];
  /** Cut the next response for this file after half its bytes. */
  interruptNext(file: string): void;
  /** Refuse every request, as without a connection. */
  goOffline(): void;
}

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-expose-headers': 'Content-Range, Content-Length, Accept-Ranges, ETag',
};

export async function fakeHub(page: Page, repo: string): Promise<FakeHub> {
  const requests: HubRequest[] = [];
  const interrupt = new Set<string>();
  let offline = false;
  await page.route('https://huggingface.co/**', async (route: Route) => {
    if (offline) return route.abort('internetdisconnected');
    const request = route.request();
    if (request.method() === 'OPTIONS') {
      return route.fulfill({ status: 204, headers: { ...CORS, 'access-control-allow-headers': 'range', 'access-control-allow-methods': 'GET' } });
    }
    const match = new RegExp(`^https://huggingface\\.co/${repo}/resolve/main/([^/?]+)$`).exec(request.url());
    const file = match?.[1];
    const range = request.headers().range ?? null;
    requests.push({ file: file ?? request.url(), range });
    let body: Buffer;
    try {
      if (!file) throw new Error('not a file of the repo');
      body = await readFile(path.join(TINY_MODEL_DIR, file));
    } catch {
      return route.fulfill({ status: 404, headers: CORS, body: 'Entry not found' });
    }
    if (interrupt.delete(file)) {
      // Announce the whole file, send half: the browser reports a network error mid-body.
      return route.fulfill({ status: 200, headers: { ...CORS, 'content-length': String(body.length) }, body: body.subarray(0, body.length >> 1) });
    }
    const start = range ? Number(/^bytes=(\d+)-$/.exec(range)?.[1]) : 0;
    if (range) {
      return route.fulfill({
        status: 206,
        headers: { ...CORS, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}`, 'accept-ranges': 'bytes' },
        body: body.subarray(start),
      });
    }
    return route.fulfill({ status: 200, headers: { ...CORS, 'accept-ranges': 'bytes' }, body });
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
  await page.addInitScript(({ repo, files, bytesPerSecond }) => {
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
          timer = setInterval(() => {
            controller.enqueue(body.slice(sent, sent + PIECE));
            sent += PIECE;
            if (sent >= body.length) {
              clearInterval(timer);
              controller.close();
            }
          }, (1000 * PIECE) / bytesPerSecond);
        },
      });
      const headers: Record<string, string> = { 'content-length': String(body.length) };
      if (range) headers['content-range'] = `bytes ${start}-${whole.length - 1}/${whole.length}`;
      return new Response(stream, { status: range ? 206 : 200, headers });
    };
  }, { repo, files, bytesPerSecond });
}
