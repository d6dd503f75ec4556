// SPDX-License-Identifier: Apache-2.0
// Upload (drag and drop or a file picker; per-file progress and errors) and links (pasted or
// from a .txt file, with the server's report per line) for one dataset.
import { call, uploadFile } from './api.js';
import { bytes, el, errorBox, table } from './ui.js';

export function uploadPanel(dataset, kind, refresh) {
  const input = el('input', { type: 'file', id: 'upload-files', multiple: true, accept: kind === 'videos' ? 'video/*' : 'image/*' });
  const list = el('ul', { class: 'uploads', id: 'upload-list', 'aria-live': 'polite' });
  const drop = el('div', { class: 'drop', id: 'drop' },
    el('p', {}, `Drop ${kind} here, or `),
    el('label', { for: 'upload-files' }, `choose ${kind} to upload`), ' ', input);

  async function uploadOne(file) {
    const progress = el('progress', { max: 1, value: 0, 'aria-label': `upload of ${file.name}` });
    const status = el('span', { class: 'muted' }, 'waiting');
    const row = el('li', { dataset: { name: file.name } }, el('span', {}, `${file.name} (${bytes(file.size)})`), progress, status);
    list.append(row);
    try {
      status.textContent = 'uploading';
      const part = await uploadFile(kind, file, (done, total) => { progress.value = done / total; });
      progress.value = 1;
      status.textContent = 'adding to the dataset';
      const body = { datasetId: dataset.id, forceMetadataForLinks: true };
      body[kind] = [{ title: file.name, hash: part.hash }];
      await call(`${kind}.bulk.add`, body);
      status.textContent = 'done';
      status.className = 'ok';
      row.dataset.state = 'done';
    } catch (error) {
      status.textContent = `failed: ${error.message}`;
      status.className = 'bad';
      row.dataset.state = 'failed';
    }
  }

  async function upload(files) {
    // One at a time: each gets its own progress, and one failure does not stop the others.
    for (const file of files) await uploadOne(file);
    await refresh();
  }

  input.addEventListener('change', () => { upload([...input.files]); input.value = ''; });
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    upload([...e.dataTransfer.files]);
  });
  return el('section', { class: 'panel', 'aria-labelledby': 'upload-title' },
    el('h2', { id: 'upload-title' }, `Upload ${kind}`), drop, list);
}

export function linksPanel(dataset, refresh) {
  const text = el('textarea', { id: 'links-text', name: 'links', placeholder: 's3://bucket/path/a.jpg\nhttps://example.com/b.png' });
  const file = el('input', { type: 'file', id: 'links-file', accept: '.txt,text/plain' });
  const result = el('div', { id: 'links-report', 'aria-live': 'polite' });
  const form = el('form', {},
    el('div', { class: 'field' }, el('label', { for: 'links-text' }, 'Links, one per line'), text),
    el('div', { class: 'field' }, el('label', { for: 'links-file' }, 'or a .txt file of links'), file),
    el('button', { type: 'submit' }, 'Add links'));
  file.addEventListener('change', async () => {
    if (file.files[0]) text.value = await file.files[0].text();
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    result.replaceChildren(el('p', { class: 'muted' }, 'Adding…'));
    try {
      const r = await call('links.import', { datasetId: dataset.id, links: text.value });
      result.replaceChildren(
        el('p', {}, `${r.added} added, ${r.existing} already there, ${r.failed} failed.`),
        table(['line', 'link', 'status', 'item or error'], r.lines.map((l) => [
          String(l.line), l.link,
          el('span', { class: l.status === 'failed' ? 'bad' : 'ok' }, l.status),
          l.error || (l.id ? `item ${l.id}` : '')])));
      if (r.added) await refresh();
    } catch (error) {
      if (error.status === 401) return;
      result.replaceChildren(errorBox(error, 'The links were not added'));
    }
  });
  return el('section', { class: 'panel', 'aria-labelledby': 'links-title' },
    el('h2', { id: 'links-title' }, 'Add links'), form, result);
}
