// SPDX-License-Identifier: Apache-2.0
// Lets a <video> stream an item with Range requests while the token stays out of URLs: the page
// points the player at /console/media/<kind>/<id>, and this worker answers that with a POST of
// <kind>.download carrying the x-api-key header and the player's Range header. The worker keeps
// no token: it asks the page that made the request for it (from the page's sessionStorage) each
// time, so signing out or closing the tab ends its access.
const MEDIA = /^\/console\/media\/(images|videos)\/(\d+)$/;

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

async function tokenOf(clientId) {
  const client = clientId && await self.clients.get(clientId);
  if (!client) return '';
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    const timer = setTimeout(() => resolve(''), 2000);
    channel.port1.onmessage = (e) => { clearTimeout(timer); resolve(e.data || ''); };
    client.postMessage({ type: 'stowage-token' }, [channel.port2]);
  });
}

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  const m = url.origin === self.location.origin && url.pathname.match(MEDIA);
  if (!m || event.request.method !== 'GET') return;
  event.respondWith((async () => {
    const headers = { 'content-type': 'application/json', 'x-api-key': await tokenOf(event.clientId) };
    const range = event.request.headers.get('range');
    if (range) headers.range = range;
    return fetch(`/public/api/v3/${m[1]}.download`, { method: 'POST', headers, body: JSON.stringify({ id: Number(m[2]) }), cache: 'no-store' });
  })());
});
