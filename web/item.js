// SPDX-License-Identifier: Apache-2.0
// One item: the full image or the video (its bytes fetched with the token, shown from a blob:
// URL, so the token never goes into a URL), and its metadata.
import { call, download } from './api.js';
import { bytes, el, errorBox } from './ui.js';
import { onLeave } from './app.js';

export async function itemView(root, session, kind, id) {
  kind = kind === 'videos' ? 'videos' : 'images';
  const item = await call(`${kind}.info`, { id: Number(id) });
  const dataset = await call('datasets.info', { id: item.datasetId });
  const meta = kind === 'videos' ? (item.fileMeta || {}) : item;
  const scheme = item.link ? item.link.split(':')[0] : session.provider;
  const media = el('div', { class: 'media', id: 'media' }, el('p', { class: 'muted' }, 'Loading the original…'));
  const rows = [
    ['Name', item.name], ['Id', String(item.id)], ['Type', meta.mime || item.mime || '—'],
    ['Size', `${bytes(meta.size ?? item.size)} (${Number(meta.size ?? item.size).toLocaleString('en')} bytes)`],
    ['Dimensions', meta.width && meta.height ? `${meta.width} × ${meta.height}` : '—'],
  ];
  if (kind === 'videos') rows.push(['Duration', meta.duration ? `${Number(meta.duration).toFixed(2)} s` : '—'], ['Frames', String(meta.framesCount ?? '—')]);
  rows.push(['SHA-256 (base64)', item.hash || '— (a link: not hashed)'],
    [item.link ? 'Link' : 'Stored at', item.link || item.pathOriginal || '—'], ['Provider', scheme],
    ['Created', item.createdAt || '—'], ['By', item.createdBy || '—']);
  root.append(
    el('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, el('a', { href: `#/browse/dataset/${dataset.id}` }, `‹ back to ${dataset.name}`)),
    el('h1', {}, item.name),
    el('div', { class: 'item' }, media,
      el('section', { class: 'panel', 'aria-label': 'Metadata' }, el('dl', { class: 'meta', id: 'item-meta' }, rows.map(([k, v]) => [el('dt', {}, k), el('dd', {}, v)])))));
  let url = null;
  onLeave(() => { if (url) URL.revokeObjectURL(url); });
  // A video streams through the media worker (sw.js), which adds the token and passes the
  // player's Range requests on, so seeking reads only what it needs; without the worker (an
  // insecure origin), the whole file is fetched into a blob: URL.
  if (kind === 'videos' && navigator.serviceWorker && navigator.serviceWorker.controller) {
    const video = el('video', { src: `/console/media/videos/${item.id}`, controls: true, preload: 'metadata', id: 'player', 'aria-label': `video ${item.name}` });
    video.addEventListener('error', () => media.append(errorBox(video.error ? video.error.message || `code ${video.error.code}` : 'unknown error', 'The video could not be played')));
    media.replaceChildren(video);
    return;
  }
  try {
    const blob = await download(kind, item.id);
    url = URL.createObjectURL(blob);
    if (kind === 'videos') {
      const video = el('video', { src: url, controls: true, preload: 'metadata', id: 'player', 'aria-label': `video ${item.name}` });
      media.replaceChildren(video);
    } else {
      media.replaceChildren(el('img', { src: url, alt: item.name, id: 'full' }));
    }
  } catch (error) {
    if (error.status === 401) return;
    media.replaceChildren(errorBox(error, 'The original could not be loaded'));
  }
}
