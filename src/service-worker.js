// The studio's service worker: after the first visit the studio opens with no connection. Models and
// data are in IndexedDB already; this keeps the site's own files (page, scripts with the WGSL, the
// engine worker, styles, icons). vite.config.ts writes it to the build as sw.js, after a first line
// that lists those files and the build's version; a new build is a new version, whose files replace
// the old ones once it has installed.

const sw = /** @type {ServiceWorkerGlobalScope} */ (/** @type {unknown} */ (self));
const { files, version } = /** @type {{ files: string[], version: string }} */ (/** @type {any} */ (sw).OCTOCLIP_BUILD);
const CACHE = `octoclip-${version}`;
/** The site's files as absolute URLs: the site may be served under any path. */
const urls = new Set(files.map((file) => new URL(file, sw.registration.scope).href));
const PAGE = new URL('index.html', sw.registration.scope).href;

sw.addEventListener('install', (event) => {
  // `reload`: never fill the cache from the HTTP cache, which may hold an older build's page.
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll([...urls].map((url) => new Request(url, { cache: 'reload' }))))
      .then(() => sw.skipWaiting()),
  );
});

sw.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) =>
        Promise.all(
          names.filter((name) => name.startsWith('octoclip-') && name !== CACHE).map((name) => caches.delete(name)),
        ),
      )
      // The page of the first visit is served by this worker too, so that it works offline at once.
      .then(() => sw.clients.claim()),
  );
});

sw.addEventListener('fetch', (event) => {
  const { request } = event;
  if (request.method !== 'GET') return;
  if (request.mode === 'navigate' && request.url.startsWith(sw.registration.scope)) {
    // The page from the network when there is one (a new build shows at once), else the cached one.
    event.respondWith(fetch(request).catch(() => caches.match(PAGE).then((page) => page ?? Response.error())));
    return;
  }
  const url = new URL(request.url);
  url.search = '';
  url.hash = '';
  // Built files have content hashes in their names: the cached copy is the right one.
  if (urls.has(url.href)) event.respondWith(caches.match(url.href).then((cached) => cached ?? fetch(request)));
  // Anything else (the Hugging Face Hub, above all) goes to the network untouched.
});
