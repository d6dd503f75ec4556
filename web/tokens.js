// SPDX-License-Identifier: Apache-2.0
// API tokens: the list (no secret), a new one (its secret shown this once), revoke.
import { call } from './api.js';
import { el, errorBox, table } from './ui.js';

export async function tokensView(root, session) {
  const list = el('div', { id: 'token-list' });
  const created = el('div', { id: 'token-created', 'aria-live': 'polite' });
  const name = el('input', { type: 'text', id: 'token-name', required: true, maxlength: 200, placeholder: 'what it is for' });
  const form = el('form', { class: 'row' },
    el('div', { class: 'field' }, el('label', { for: 'token-name' }, 'Name of the new token'), name),
    el('div', { class: 'field' }, el('button', { type: 'submit' }, 'Create token')));

  async function refresh() {
    try {
      const tokens = await call('console.tokens.list');
      list.replaceChildren(table(['id', 'user', 'name', 'created', 'last used', 'state', ''], tokens.map((t) => [
        String(t.id), t.user, t.name, t.createdAt, t.lastUsedAt || 'never',
        t.revoked ? el('span', { class: 'bad' }, 'revoked') : el('span', { class: 'ok' }, t.current ? 'active (this session)' : 'active'),
        t.revoked ? '' : el('button', { type: 'button', class: 'danger', 'data-token': t.id, 'aria-label': `revoke token ${t.id} (${t.name})`, onclick: () => revoke(t) }, 'Revoke'),
      ])));
    } catch (error) {
      if (error.status === 401) return;
      list.replaceChildren(errorBox(error, 'The tokens could not be listed'));
    }
  }

  async function revoke(t) {
    const warning = t.current ? ' This is the token of this session: you will be signed out.' : '';
    if (!window.confirm(`Revoke token ${t.id} (${t.name})? Requests with it will be refused at once.${warning}`)) return;
    try {
      await call('console.tokens.revoke', { id: t.id });
      created.replaceChildren(el('p', { class: 'ok' }, `Token ${t.id} (${t.name}) is revoked.`));
      await refresh();
    } catch (error) {
      if (error.status === 401) return;
      created.replaceChildren(errorBox(error, `Token ${t.id} was not revoked`));
    }
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const t = await call('console.tokens.create', { name: name.value.trim() });
      name.value = '';
      created.replaceChildren(el('div', { class: 'panel' },
        el('p', {}, `Token ${t.id} (${t.name}) for ${t.user}. Copy it now: it is not shown again, and Stowage keeps only its hash.`),
        el('p', { class: 'token-once', id: 'new-token' }, t.token)));
      await refresh();
    } catch (error) {
      if (error.status === 401) return;
      created.replaceChildren(errorBox(error, 'The token was not created'));
    }
  });

  root.append(el('h1', {}, 'API tokens'),
    el('p', { class: 'muted' }, session.user.isAdmin ? 'Every token of the instance.' : 'Your tokens.'),
    el('section', { class: 'panel' }, form, created), list);
  await refresh();
}
