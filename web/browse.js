// SPDX-License-Identifier: Apache-2.0
// Teams → workspaces → projects → nested datasets → a grid of items, with upload and links.
import { call, listAll } from './api.js';
import { bar, bytes, el, errorBox } from './ui.js';
import { uploadPanel, linksPanel } from './upload.js';
import { onLeave } from './app.js';

const PAGE = 60;  // items per page of the grid

function crumbs(list) {
  const nav = el('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' });
  list.forEach(([label, href], i) => {
    if (i) nav.append(el('span', { 'aria-hidden': 'true' }, '›'));
    nav.append(href ? el('a', { href }, label) : el('span', { 'aria-current': 'page' }, label));
  });
  return nav;
}

function linkList(entries, href, meta) {
  if (!entries.length) return el('p', { class: 'muted' }, 'Nothing here yet.');
  return el('ul', { class: 'list' }, entries.map((e) =>
    el('li', {}, el('a', { href: href(e) }, e.name, el('span', { class: 'meta' }, meta(e))))));
}

async function trail(kind, id) {
  // The breadcrumb from the team down to an entity.
  const out = [];
  let dataset, project, workspace;
  if (kind === 'dataset') {
    dataset = await call('datasets.info', { id: Number(id) });
    const chain = [dataset];
    while (chain[0].parentId) chain.unshift(await call('datasets.info', { id: chain[0].parentId }));
    project = await call('projects.info', { id: dataset.projectId });
    out.push(...chain.map((d) => [d.name, `#/browse/dataset/${d.id}`]));
  }
  if (kind === 'project') project = await call('projects.info', { id: Number(id) });
  if (project) {
    out.unshift([project.name, `#/browse/project/${project.id}`]);
    workspace = await call('workspaces.info', { id: project.workspaceId });
  }
  if (kind === 'workspace') workspace = await call('workspaces.info', { id: Number(id) });
  if (workspace) {
    out.unshift([workspace.name, `#/browse/workspace/${workspace.id}`]);
    const team = await call('teams.info', { id: workspace.teamId });
    out.unshift([team.name, `#/browse/team/${team.id}`]);
  }
  if (kind === 'team') {
    const team = await call('teams.info', { id: Number(id) });
    out.push([team.name, `#/browse/team/${team.id}`]);
  }
  out.unshift(['Teams', '#/browse']);
  out[out.length - 1] = [out[out.length - 1][0], null];
  return { path: crumbs(out), dataset, project, workspace };
}

export async function browseView(root, session, parts) {
  const [, kind, id] = parts;
  if (!kind) {
    const teams = await listAll('teams.list', { filter: [] });
    root.append(el('h1', {}, 'Teams'), linkList(teams, (t) => `#/browse/team/${t.id}`, (t) => `role: ${t.role}`));
    return;
  }
  const { path, dataset, project, workspace } = await trail(kind, id);
  root.append(path);
  if (kind === 'team') {
    const team = await call('teams.info', { id: Number(id) });
    const workspaces = await listAll('workspaces.list', { teamId: team.id, filter: [] });
    root.append(el('h1', {}, `Workspaces of ${team.name}`), linkList(workspaces, (w) => `#/browse/workspace/${w.id}`, (w) => w.description || `workspace ${w.id}`));
  } else if (kind === 'workspace') {
    const projects = await listAll('projects.list', { workspaceId: workspace.id, filter: [] });
    root.append(el('h1', {}, `Projects in ${workspace.name}`), linkList(projects, (p) => `#/browse/project/${p.id}`,
      (p) => `${p.type} · ${p.itemsCount} items · ${p.datasetsCount} datasets · ${bytes(p.size)}`));
  } else if (kind === 'project') {
    const datasets = await listAll('datasets.list', { projectId: project.id, filter: [], recursive: false });
    root.append(el('h1', {}, project.name),
      el('p', { class: 'muted' }, `A project of ${project.type}, ${project.itemsCount} items in ${project.datasetsCount} datasets, ${bytes(project.size)}.`),
      el('h2', {}, 'Datasets'),
      linkList(datasets, (d) => `#/browse/dataset/${d.id}`, (d) => `${d.itemsCount} items · ${bytes(d.size)}`));
  } else if (kind === 'dataset') {
    await datasetView(root, dataset, project);
  } else {
    root.append(errorBox(`there is no page "${kind}"`));
  }
}

async function datasetView(root, dataset, project) {
  const kind = project.type === 'videos' ? 'videos' : 'images';
  const children = await listAll('datasets.list', {
    projectId: project.id, recursive: true,
    filter: [{ field: 'parentId', operator: '=', value: dataset.id }],
  });
  root.append(el('h1', {}, dataset.name));
  if (children.length) {
    root.append(el('h2', {}, 'Datasets inside'),
      linkList(children, (d) => `#/browse/dataset/${d.id}`, (d) => `${d.itemsCount} items · ${bytes(d.size)}`));
  }
  const grid = el('ul', { class: 'grid', id: 'items', 'aria-label': `${kind} of ${dataset.name}` });
  const counter = el('p', { class: 'muted', id: 'items-count', 'aria-live': 'polite' });
  const more = el('button', { type: 'button', class: 'secondary', id: 'more' }, 'Load more');
  const filter = el('input', { type: 'search', id: 'filter', placeholder: 'part of a name' });
  const filterForm = el('form', { class: 'row', role: 'search' },
    el('div', { class: 'field' }, el('label', { for: 'filter' }, 'Filter by name'), filter),
    el('div', { class: 'field' }, el('button', { type: 'submit' }, 'Filter')));
  let state = { page: 0, pages: 1, total: 0, shown: 0, name: '' };

  // Thumbnails load only when they come near the viewport: thousands of items stay smooth.
  const thumbs = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      const img = entry.target;
      img.src = img.dataset.src;
      thumbs.unobserve(img);
    }
  }, { rootMargin: '300px' });
  // The next page loads itself once the end of the grid comes near the viewport, or has been
  // scrolled past (the End key jumps over it): checked on scroll, at most once a frame, and
  // after each page, until the screen is filled.
  let frame = 0;
  function nearEnd() {
    frame = 0;
    if (failed || more.hidden || more.disabled || !more.isConnected) return;
    if (more.getBoundingClientRect().top < window.innerHeight + 400) loadPage();
  }
  const onScroll = () => { if (!frame) frame = requestAnimationFrame(nearEnd); };
  window.addEventListener('scroll', onScroll, { passive: true });
  onLeave(() => { thumbs.disconnect(); window.removeEventListener('scroll', onScroll); if (frame) cancelAnimationFrame(frame); });

  function card(item) {
    const img = el('img', { class: 'thumb', alt: `preview of ${item.name}`, width: 150, height: 112, dataset: { src: item.previewUrl || '' }, decoding: 'async' });
    img.addEventListener('error', () => { img.alt = `no preview of ${item.name}`; });
    if (item.previewUrl) thumbs.observe(img);
    const size = kind === 'videos' ? (item.fileMeta && item.fileMeta.size) : item.size;
    return el('li', {}, el('a', { href: `#/item/${kind}/${item.id}`, 'data-id': item.id },
      img, el('span', { class: 'name', title: item.name }, item.name),
      el('span', { class: 'kind' }, `${item.link ? 'link' : 'stored'} · ${bytes(size)}`)));
  }

  let failed = false;  // after an error, pages load on a click of "Load more" only
  async function loadPage() {
    if (state.page >= state.pages) return;
    more.disabled = true;
    failed = false;
    try {
      const filters = state.name ? [{ field: 'name', operator: 'ilike', value: `%${state.name}%` }] : [];
      const r = await call(`${kind}.list`, { datasetId: dataset.id, filter: filters, sort: 'id', sort_order: 'asc', page: state.page + 1, per_page: PAGE, forceMetadataForLinks: false });
      state.page += 1;
      state.pages = r.pagesCount;
      state.total = r.total;
      state.shown += r.entities.length;
      grid.append(...r.entities.map(card));
      counter.textContent = state.total ? `${state.shown} of ${state.total} ${kind} shown` : `No ${kind} ${state.name ? 'match this filter' : 'in this dataset yet'}.`;
      more.hidden = state.page >= state.pages;
    } catch (error) {
      failed = true;
      if (error.status === 401) return;
      grid.after(errorBox(error, `Listing the ${kind} failed`));
    } finally {
      more.disabled = false;
    }
    onScroll();
  }

  async function reload() {
    state = { page: 0, pages: 1, total: 0, shown: 0, name: filter.value.trim() };
    grid.replaceChildren();
    await loadPage();
  }

  filterForm.addEventListener('submit', (e) => { e.preventDefault(); reload(); });
  more.addEventListener('click', loadPage);
  root.append(el('h2', {}, kind === 'videos' ? 'Videos' : 'Images'), filterForm, counter, grid, more,
    uploadPanel(dataset, kind, reload), linksPanel(dataset, reload));
  await loadPage();
}
