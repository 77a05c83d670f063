// The field phone's service worker: the page's own files (its app shell) come from a cache when there is no
// signal, so a reload out of coverage still shows the phone, with the snapshot and the outbox the page keeps.
// Only the files listed here are ever cached: never an API answer, a socket or anything about a patient or a
// crew (the page keeps its own snapshot and outbox in localStorage, as it did before). Online, the network is
// asked first, so a new version is in use at once; a network that answers nothing within a few seconds (a
// link that died silently) counts as none.
const CACHE = "psc119-field-v1";
const SHELL = [
  "/field.html", "/field.webmanifest", "/icons/field.svg", "/css/app.css",
  "/js/field.js", "/js/api.js", "/js/dom.js", "/js/i18n.js", "/js/live.js", "/js/ringer.js", "/i18n/id.js", "/i18n/en.js",
];
const NETWORK_WITHIN_MS = 4000;

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((key) => key !== CACHE).map((key) => caches.delete(key))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  // Anything else (the API, sockets, other pages) is left to the browser, untouched and uncached.
  if (event.request.method !== "GET" || url.origin !== self.location.origin || !SHELL.includes(url.pathname)) return;
  event.respondWith(networkElseCache(event.request, url.pathname));
});

async function networkElseCache(request, path) {
  const cache = await caches.open(CACHE);
  try {
    const response = await within(fetch(request), NETWORK_WITHIN_MS);
    if (response.ok) await cache.put(path, response.clone());
    return response;
  } catch {
    return (await cache.match(path)) || Response.error();
  }
}

function within(promise, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no answer")), ms);
    promise.then((value) => { clearTimeout(timer); resolve(value); }, (err) => { clearTimeout(timer); reject(err); });
  });
}
