// SPDX-License-Identifier: Apache-2.0
// The console's shell: sign-in, sign-out, and a hash router (#/section/...) over the views.
import { call, clearToken, setToken, token, whenRefused } from './api.js';
import { el, errorBox } from './ui.js';
import { browseView } from './browse.js';
import { itemView } from './item.js';
import { storageView } from './storage.js';
import { migrationsView } from './migrations.js';
import { tokensView } from './tokens.js';

const main = document.getElementById('main');
let session = null;
let leaving = [];  // cleanups of the view shown (timers, observers)

export function onLeave(cleanup) { leaving.push(cleanup); }

function show(...nodes) {
  main.replaceChildren(...nodes);
}

function signInView(message) {
  const input = el('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'off', required: true, spellcheck: 'false', size: 48 });
  const problem = message ? errorBox(message) : null;
  const form = el('form', { class: 'panel signin', 'aria-labelledby': 'signin-title' },
    el('h1', { id: 'signin-title' }, 'Sign in to Stowage'),
    el('p', { class: 'muted' }, 'Paste an API token (made by ', el('code', {}, 'stowage token create'), ', or the one in ',
      el('code', {}, 'data/admin-token'), ' after the first start). It is kept in this tab only and sent as the ',
      el('code', {}, 'x-api-key'), ' header, never in a URL.'),
    problem,
    el('div', { class: 'field' }, el('label', { for: 'token' }, 'API token'), input),
    el('button', { type: 'submit' }, 'Sign in'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const value = input.value.trim();
    if (!value) return;
    setToken(value);
    try {
      session = await call('console.session');
    } catch (error) {
      clearToken();
      session = null;
      const words = error.status === 401 ? `The server refused this token: ${error.message}` : error.message;
      show(signInView(words));
      return;
    }
    if (!location.hash || location.hash === '#/') location.hash = '#/browse';
    route();
  });
  return form;
}

function signedOut(message) {
  clearToken();
  session = null;
  document.getElementById('nav').hidden = true;
  document.getElementById('who').hidden = true;
  for (const c of leaving.splice(0)) c();
  show(signInView(message));
  document.getElementById('token')?.focus();
}

whenRefused((error) => signedOut(`Signed out: the server refused the token (${error.message}).`));

document.getElementById('sign-out').addEventListener('click', () => signedOut(null));

async function route() {
  for (const c of leaving.splice(0)) c();
  if (!token()) return signedOut(null);
  if (!session) {
    try {
      session = await call('console.session');
    } catch (error) {
      if (error.status === 401) return;  // whenRefused has shown the sign-in form
      show(errorBox(error, 'Cannot reach the server'));
      return;
    }
  }
  document.getElementById('nav').hidden = false;
  document.getElementById('who').hidden = false;
  document.getElementById('who-name').textContent = `${session.user.login}${session.user.isAdmin ? ' (admin)' : ''}`;
  const parts = (location.hash.replace(/^#\/?/, '') || 'browse').split('/');
  const section = parts[0];
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.section === section || (section !== 'storage' && section !== 'migrations' && section !== 'tokens' && a.dataset.section === 'browse')) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const content = el('div');
  show(content);
  try {
    switch (section) {
      case 'storage': await storageView(content, session); break;
      case 'migrations': await migrationsView(content, session); break;
      case 'tokens': await tokensView(content, session); break;
      case 'item': await itemView(content, session, parts[1], parts[2]); break;
      default: await browseView(content, session, parts); break;
    }
  } catch (error) {
    if (error.status === 401) return;
    content.replaceChildren(errorBox(error, 'This page could not be shown'));
  }
}

// The media worker (sw.js) streams videos with Range requests; it asks this page for the token.
if ('serviceWorker' in navigator) {
  navigator.serviceWorker.addEventListener('message', (e) => {
    if (e.data && e.data.type === 'stowage-token' && e.ports[0]) e.ports[0].postMessage(token() || '');
  });
  navigator.serviceWorker.register('/console/sw.js', { scope: '/' }).catch(() => { /* blob: fallback */ });
}

window.addEventListener('hashchange', route);
window.addEventListener('unhandledrejection', (e) => {
  const status = document.getElementById('status');
  status.hidden = false;
  status.replaceChildren(errorBox(e.reason, 'Something failed'));
});
route();
