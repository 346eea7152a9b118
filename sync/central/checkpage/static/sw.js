// The /check page's service worker: the page, its script, ZXing's WebAssembly and the two
// signed documents (and the root's hand-overs) kept on the phone, so the page opens and checks with no network at all.
// Network first (a fresh list whenever there is a network), the phone's copy otherwise; the
// page itself says how old the list is, and "may be out of date" past its validity.
const CACHE = "venue-kiosk-check-v2";
const FILES = ["./", "check.js", "zxing_reader.wasm", "manifest.json", "succession.json", "exposures.json"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((n) => n !== CACHE).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  event.respondWith(
    fetch(event.request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(event.request, copy));
        }
        return response;
      })
      .catch(() => caches.match(event.request, { ignoreSearch: true })),
  );
});
