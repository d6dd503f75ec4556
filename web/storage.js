// SPDX-License-Identifier: Apache-2.0
// The storage page: provider and buckets with live checks, every remote_links.yml connection
// checked, both caches against their bounds, and hits/misses/remote bytes over time (/metrics).
import { call, metricsText } from './api.js';
import { bar, bytes, el, errorBox, table } from './ui.js';
import { onLeave } from './app.js';

const POLL_MS = 2000;
const KEEP = 90;  // samples in the chart: three minutes

function checkRows(checks) {
  return checks.map((c) => [c.name, el('span', { class: c.passed ? 'ok' : 'bad' }, c.passed ? 'ok' : 'FAIL'), c.detail]);
}

/// Sums the samples of a metric, optionally only those whose labels contain `match`.
export function metricSum(text, name, match = '') {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== '{' && rest[0] !== ' ') continue;
    if (match && !rest.includes(match)) continue;
    const value = Number(line.trim().split(/\s+/).pop());
    if (Number.isFinite(value)) sum += value;
  }
  return sum;
}

function drawChart(canvas, series) {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  canvas.width = w * ratio; canvas.height = h * ratio;
  const g = canvas.getContext('2d');
  g.scale(ratio, ratio);
  g.clearRect(0, 0, w, h);
  g.strokeStyle = '#e3e7ee';
  for (let i = 1; i < 4; i++) { g.beginPath(); g.moveTo(0, (h * i) / 4); g.lineTo(w, (h * i) / 4); g.stroke(); }
  for (const s of series) {
    const max = Math.max(1, ...s.values);
    g.strokeStyle = s.color; g.lineWidth = 2; g.beginPath();
    s.values.forEach((v, i) => {
      const x = (i / Math.max(1, KEEP - 1)) * w, y = h - 6 - (v / max) * (h - 12);
      if (i) g.lineTo(x, y); else g.moveTo(x, y);
    });
    g.stroke();
  }
}

export async function storageView(root, session) {
  root.append(el('h1', {}, 'Storage'));
  if (!session.user.isAdmin) root.append(el('p', { class: 'muted' }, 'The storage checks are for administrators; the caches and the activity are below.'));
  const overview = el('section', { class: 'panel', id: 'storage-overview', 'aria-labelledby': 'st-title' }, el('h2', { id: 'st-title' }, 'Instance storage'), el('p', { class: 'muted' }, 'Checking…'));
  const links = el('section', { class: 'panel', id: 'storage-links', 'aria-labelledby': 'ln-title' }, el('h2', { id: 'ln-title' }, 'Connections (remote_links.yml)'), el('p', { class: 'muted' }, 'Checking…'));
  const caches = el('section', { class: 'panel', id: 'storage-caches', 'aria-labelledby': 'ca-title' }, el('h2', { id: 'ca-title' }, 'Caches'));
  const canvas = el('canvas', { class: 'chart', id: 'chart', role: 'img', 'aria-label': 'cache hits, misses and remote bytes per interval' });
  const numbers = el('p', { class: 'muted', id: 'chart-numbers', 'aria-live': 'off' });
  const colors = { hits: '#17803d', misses: '#b42318', remote: '#2f6fde' };
  const chart = el('section', { class: 'panel', 'aria-labelledby': 'ch-title' }, el('h2', { id: 'ch-title' }, 'Activity (from /metrics, every 2 s)'),
    el('div', { class: 'legend' }, ...Object.entries({ hits: 'cache hits', misses: 'cache misses', remote: 'remote bytes' }).map(([k, label]) => {
      const s = el('span', {}, label); s.style.setProperty('--c', colors[k]); return s;
    })), canvas, numbers);
  root.append(overview, links, caches, chart);

  // Caches and the chart first: they are quick; the live checks may wait on networks.
  try {
    const c = await call('console.caches');
    const row = (name, info) => info.enabled
      ? [name, el('div', {}, bar(info.usedBytes / info.maxBytes, `${name} ${bytes(info.usedBytes)} of ${bytes(info.maxBytes)}`), `${bytes(info.usedBytes)} of ${bytes(info.maxBytes)} (${(100 * info.usedBytes / info.maxBytes).toFixed(1)}%)`), String(info.entries), `${Math.round(info.expiresSeconds / 3600)} h`]
      : [name, 'off', '—', '—'];
    caches.append(table(['cache', 'use', { label: 'entries', num: true }, 'entries unread expire after'], [row('storage cache', c.storage), row('preview cache', c.previews)]));
  } catch (error) {
    if (error.status === 401) return;
    caches.append(errorBox(error, 'Cache figures are not available'));
  }

  const history = { hits: [], misses: [], remote: [] };
  let last = null;
  async function sample() {
    try {
      const text = await metricsText();
      const now = { hits: metricSum(text, 'stowage_cache_hits_total'), misses: metricSum(text, 'stowage_cache_misses_total'), remote: metricSum(text, 'stowage_remote_bytes_total') };
      if (last) for (const k of Object.keys(history)) { history[k].push(Math.max(0, now[k] - last[k])); if (history[k].length > KEEP) history[k].shift(); }
      last = now;
      numbers.textContent = `totals since the server started: ${now.hits} hits, ${now.misses} misses, ${bytes(now.remote)} read from remote stores`;
      drawChart(canvas, Object.keys(history).map((k) => ({ values: history[k], color: colors[k] })));
    } catch (error) {
      numbers.replaceChildren(errorBox(error, '/metrics could not be read'));
    }
  }
  await sample();
  const timer = setInterval(sample, POLL_MS);
  onLeave(() => clearInterval(timer));

  try {
    const s = await call('console.storage');
    overview.replaceChildren(el('h2', { id: 'st-title' }, 'Instance storage'),
      el('dl', { class: 'meta' },
        el('dt', {}, 'Provider'), el('dd', { id: 'provider' }, s.provider === 'http' ? 'http (local disk)' : s.provider),
        s.endpoint ? [el('dt', {}, 'Endpoint'), el('dd', {}, s.endpoint)] : null,
        el('dt', {}, 'Buckets'), el('dd', {}, `${s.publicBucket}, ${s.privateBucket}`)),
      table(['check', 'status', 'detail'], checkRows(s.checks)));
    const body = [el('h2', { id: 'ln-title' }, 'Connections (remote_links.yml)'), el('p', { class: 'muted' }, s.remoteLinksFile)];
    if (!s.connections.length) body.push(el('p', {}, 'No connections: links can only be public http(s) URLs.'));
    for (const c of s.connections) {
      body.push(el('h3', {}, `${c.name} `, el('span', { class: 'muted' }, `${c.provider}${c.endpoint ? ` · ${c.endpoint}` : ''}${c.path ? ` · ${c.path}` : ''}`)),
        table(['bucket', 'status', 'detail'], checkRows(c.checks)));
    }
    links.replaceChildren(...body);
  } catch (error) {
    if (error.status === 401) return;
    overview.replaceChildren(errorBox(error, 'The storage could not be checked'));
    links.replaceChildren();
  }
}
