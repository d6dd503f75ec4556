// SPDX-License-Identifier: Apache-2.0
// Project migrations (`stowage migrate project`, run by the server): a dry run shows the plan, a
// real run shows progress (items, bytes, rate, ETA) and then the report with every failure.
import { call, listAll } from './api.js';
import { bar, bytes, duration, el, errorBox, table } from './ui.js';
import { onLeave } from './app.js';

const POLL_MS = 700;

async function allProjects() {
  const out = [];
  for (const team of await listAll('teams.list', { filter: [] })) {
    for (const ws of await listAll('workspaces.list', { teamId: team.id, filter: [] })) {
      for (const p of await listAll('projects.list', { workspaceId: ws.id, filter: [] })) out.push({ ...p, where: `${team.name} / ${ws.name}` });
    }
  }
  return out;
}

function progressView(job) {
  const p = job.progress || {};
  const items = p.itemsTotal != null ? `${p.itemsDone} of ${p.itemsTotal}` : `${p.itemsDone ?? 0}`;
  const size = p.bytesTotal != null ? `${bytes(p.bytesDone)} of ${bytes(p.bytesTotal)}` : bytes(p.bytesDone ?? 0);
  const fraction = p.bytesTotal ? p.bytesDone / p.bytesTotal : (p.itemsTotal ? p.itemsDone / p.itemsTotal : 0);
  return el('div', {},
    bar(job.state === 'running' ? fraction : 1, 'progress'),
    el('dl', { class: 'meta', id: 'job-progress' },
      el('dt', {}, 'Items'), el('dd', {}, items),
      el('dt', {}, 'Bytes'), el('dd', {}, size),
      el('dt', {}, 'Rate'), el('dd', {}, p.bytesPerSecond != null ? `${bytes(p.bytesPerSecond)}/s` : '—'),
      el('dt', {}, 'ETA'), el('dd', {}, job.state === 'running' ? duration(p.etaSeconds) : '—'),
      el('dt', {}, 'Failed'), el('dd', {}, String(p.failed ?? 0))));
}

function reportView(job) {
  const r = job.report;
  const fields = [
    ['Target', r.target], ['Project', `${r.project} (${r.type})`],
    ['Items to move', `${r.selected} (${bytes(r.selectedBytes)})`],
  ];
  if (r.dryRun) fields.push(['Would copy', String(r.wouldCopy)], ['Already there', String(r.alreadyThere)]);
  else fields.push(['Copied', `${r.copied} (${bytes(r.bytesCopied)})`], ['Already there', String(r.alreadyThere)], ['Switched to links', String(r.switched)]);
  fields.push(['Failed', String(r.failed.length)], ['Changed meanwhile', String(r.changed.length)], ['Time', duration(r.elapsedMs / 1000)]);
  const out = [el('h3', {}, r.dryRun ? 'Plan (dry run: nothing was copied or changed)' : (r.complete ? 'Finished: every item moved' : 'Finished with problems')),
    el('dl', { class: 'meta', id: 'job-report' }, fields.map(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]))];
  if (r.switchWithheld) out.push(el('p', { class: 'error' }, 'Nothing was switched because some items failed; fix the cause and run again (copies already made are kept), or allow a partial switch.'));
  if (r.aborted) out.push(el('p', { class: 'error' }, `Stopped early: ${r.aborted}; run again to finish.`));
  if (r.failed.length) out.push(el('h3', {}, 'Failed items'), table(['item', 'name', 'target', 'why'], r.failed.map((f) => [String(f.item), f.name, f.target, f.error])));
  if (r.changed.length) out.push(el('h3', {}, 'Changed while migrating (copied, not switched)'), table(['item', 'name', 'target', 'why'], r.changed.map((f) => [String(f.item), f.name, f.target, f.error])));
  if (r.plan && r.plan.length) out.push(el('h3', {}, 'Items'), table(['item', 'from', 'to', { label: 'size', num: true }, 'action'], r.plan.map((p) => [String(p.item), p.source, p.target, bytes(p.size), p.action])));
  return out;
}

export async function migrationsView(root, session) {
  root.append(el('h1', {}, 'Project migrations'));
  if (!session.user.isAdmin) {
    root.append(el('p', { class: 'error' }, 'Migrations are for administrators; this token belongs to a user who is not one.'));
    return;
  }
  const projects = await allProjects();
  const select = el('select', { id: 'mig-project', required: true },
    projects.map((p) => el('option', { value: p.id }, `${p.name} (id ${p.id}, ${p.type}, ${p.itemsCount} items) — ${p.where}`)));
  const to = el('input', { type: 'text', id: 'mig-to', required: true, size: 48, placeholder: 's3://bucket/projects-migration-storage' });
  const nested = el('input', { type: 'checkbox', id: 'mig-nested' });
  const dry = el('button', { type: 'button', id: 'mig-dry' }, 'Dry run (plan)');
  const real = el('button', { type: 'button', id: 'mig-run', class: 'secondary' }, 'Migrate');
  const job = el('section', { class: 'panel', id: 'job', 'aria-live': 'polite', hidden: true });
  const problem = el('div', { id: 'mig-problem' });
  const form = el('form', { class: 'panel' },
    el('p', { class: 'muted' }, 'Copies the stored items of a project to a link prefix (it must be allowed by a connection of remote_links.yml), verifies every copy, then points the items at their links. Nothing is deleted. Start with a dry run.'),
    el('div', { class: 'field' }, el('label', { for: 'mig-project' }, 'Project'), select),
    el('div', { class: 'field' }, el('label', { for: 'mig-to' }, 'Target prefix'), to),
    el('div', { class: 'field' }, el('span', {}, nested, ' ', el('label', { for: 'mig-nested' }, 'nested keys (the ids of parent datasets first)'))),
    el('div', { class: 'row' }, dry, real), problem);
  const recent = el('section', { class: 'panel', id: 'mig-recent', 'aria-labelledby': 'recent-title' });
  root.append(form, job, recent);
  if (!projects.length) problem.replaceChildren(el('p', { class: 'muted' }, 'There is no project to migrate yet.'));

  let timer = null;
  onLeave(() => clearTimeout(timer));
  // Runs started earlier (from this page or another tab) since the server started.
  async function listRecent() {
    try {
      const jobs = await call('console.migrations.list');
      recent.replaceChildren(el('h2', { id: 'recent-title' }, 'Recent runs'), jobs.length
        ? table(['run', 'project', 'target', 'kind', 'state', 'started', ''], jobs.map((j) => [
          String(j.id), String(j.projectId), j.to, j.dryRun ? 'dry run' : 'migration',
          j.state === 'done' && j.complete === false ? el('span', { class: 'bad' }, 'done, with problems')
            : el('span', { class: j.state === 'failed' ? 'bad' : (j.state === 'done' ? 'ok' : null) }, j.state),
          `${j.startedAt} by ${j.startedBy}`,
          el('button', { type: 'button', class: 'secondary', 'aria-label': `show run ${j.id}`, onclick: () => { clearTimeout(timer); job.hidden = false; poll(j.id); job.scrollIntoView(); } }, 'Show')]))
        : el('p', { class: 'muted' }, 'No run since the server started.'));
    } catch (error) {
      if (error.status === 401) return;
      recent.replaceChildren(errorBox(error, 'The recent runs could not be listed'));
    }
  }
  async function poll(id) {
    try {
      const j = await call('console.migrations.status', { id });
      const title = `${j.dryRun ? 'Dry run' : 'Migration'} ${j.id} of project ${j.projectId} to ${j.to}: ${j.state}`;
      const body = [el('h2', { id: 'job-title' }, title), progressView(j)];
      if (j.state === 'failed') body.push(errorBox(j.error, 'The migration did not run'));
      if (j.report) body.push(...reportView(j));
      job.dataset.state = j.state;
      job.replaceChildren(...body);
      if (j.state === 'running') timer = setTimeout(() => poll(id), POLL_MS);
      else { dry.disabled = false; real.disabled = false; listRecent(); }
    } catch (error) {
      if (error.status === 401) return;
      job.replaceChildren(errorBox(error, 'The migration\'s status could not be read'));
      dry.disabled = false; real.disabled = false;
    }
  }
  async function start(dryRun) {
    problem.replaceChildren();
    if (!to.value.trim()) { problem.replaceChildren(errorBox('name a target prefix, such as s3://bucket/dir')); to.focus(); return; }
    if (!dryRun && !window.confirm(`Migrate project ${select.value} to ${to.value.trim()}? Its stored items will be copied there and then served from there.`)) return;
    dry.disabled = true; real.disabled = true;
    try {
      const j = await call('console.migrations.start', { projectId: Number(select.value), to: to.value.trim(), dryRun, nested: nested.checked });
      job.hidden = false;
      await poll(j.id);
    } catch (error) {
      dry.disabled = false; real.disabled = false;
      if (error.status === 401) return;
      problem.replaceChildren(errorBox(error, 'The migration was not started'));
    }
  }
  await listRecent();
  dry.addEventListener('click', () => start(true));
  real.addEventListener('click', () => start(false));
  form.addEventListener('submit', (e) => { e.preventDefault(); start(true); });
}
