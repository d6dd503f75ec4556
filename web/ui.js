// SPDX-License-Identifier: Apache-2.0
// Small DOM helpers: elements are built with text nodes only (never innerHTML), so a name from
// the catalog can never become markup.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (value === true) node.setAttribute(key, '');
    else node.setAttribute(key, value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function bytes(n) {
  if (n === null || n === undefined || n === '') return '—';
  n = Number(n);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  while (n >= 1024 && u < units.length - 1) { n /= 1024; u++; }
  return `${u === 0 ? n : n.toFixed(1)} ${units[u]}`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  seconds = Math.round(seconds);
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
  return (h ? `${h}h` : '') + (h || m ? `${m}m` : '') + `${s}s`;
}

export function errorBox(error, what) {
  const text = error && error.message ? error.message : String(error);
  return el('p', { class: 'error', role: 'alert' }, what ? `${what}: ${text}` : text);
}

export function table(headers, rows) {
  return el('table', {},
    el('thead', {}, el('tr', {}, headers.map((h) => el('th', { scope: 'col', class: h.num ? 'num' : null }, h.label || h)))),
    el('tbody', {}, rows.map((r) => el('tr', {}, r.map((c, i) => el('td', { class: headers[i].num ? 'num' : null }, c))))));
}

export function bar(fraction, label) {
  const span = el('span');
  span.style.width = `${Math.max(0, Math.min(1, fraction)) * 100}%`;
  return el('div', { class: 'bar', role: 'img', 'aria-label': label }, span);
}
