// SPDX-License-Identifier: Apache-2.0
// The web console in a real headless Chromium (Debian's, driven by playwright-core) against a
// real `stowage serve`: what a person does on each page, checked as they would check it — the
// thumbnails' and the originals' pixels, a video that plays and seeks, uploads and links seen in
// the grid, a migration to radosgw seen to finish, a revoked token refused. Every page is saved
// as a screenshot into docs/screenshots/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { apiClient, readEnv, sha256Base64, solidPng, startServer, twoColourClip } from './support.mjs';

const CI = process.env.CI === 'true';
const BINARY = process.env.STOWAGE_BINARY;
const CHROMIUM = process.env.STOWAGE_CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.STOWAGE_SCREENSHOTS;
const RADOSGW_ENV = process.env.STOWAGE_TEST_RADOSGW_ENV;

const missing = !fs.existsSync(CHROMIUM) ? `no Chromium at ${CHROMIUM} (scripts/install-deps.sh installs it)` : null;
if (missing && CI) throw new Error(missing);
const skip = missing || false;

const radosgw = RADOSGW_ENV && fs.existsSync(RADOSGW_ENV) ? readEnv(RADOSGW_ENV) : null;
const noRadosgw = radosgw ? false : 'no radosgw (run through ctest: the radosgw fixture starts it)';
if (!radosgw && CI) throw new Error(noRadosgw);
const runId = `console-${process.pid}-${Date.now()}`;

let server, api, context, page, work;
const ids = {};
const RED = [220, 20, 30];
const red = solidPng(64, 48, RED);

async function shot(name, mask = []) {
  if (!SHOTS) return;
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: false, mask });
}

/// The colour at the middle of an <img> or <video>, read back through a canvas.
function centrePixel(selector) {
  return page.evaluate((sel) => {
    const m = document.querySelector(sel);
    const w = m.naturalWidth || m.videoWidth, h = m.naturalHeight || m.videoHeight;
    const c = document.createElement('canvas');
    c.width = w; c.height = h;
    const g = c.getContext('2d');
    g.drawImage(m, 0, 0, w, h);
    return Array.from(g.getImageData(Math.floor(w / 2), Math.floor(h / 2), 1, 1).data.slice(0, 3));
  }, selector);
}

function near(actual, expected, tolerance, what) {
  for (let i = 0; i < 3; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tolerance, `${what}: got rgb(${actual}) for rgb(${expected})`);
  }
}

before(async () => {
  if (skip) return;
  assert.ok(BINARY, 'STOWAGE_BINARY names the built stowage');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-browser-'));
  fs.mkdirSync(path.join(work, 'linked'));
  fs.writeFileSync(path.join(work, 'linked', 'green.png'), solidPng(40, 30, [20, 200, 40]));
  let links = `local-files:\n  provider: fs\n  path: ${path.join(work, 'linked')}\n  storage_id: local-files\n`;
  if (radosgw) {
    links += `rgw:\n  provider: minio\n  endpoint: ${radosgw.STORAGE_ENDPOINT}:${radosgw.STORAGE_PORT}\n` +
      `  access_key: ${radosgw.STORAGE_ACCESS_KEY}\n  secret_key: ${radosgw.STORAGE_SECRET_KEY}\n` +
      `  region: us-east-1\n  force_path_style: true\n  buckets: [${radosgw.STORAGE_BUCKET_PREFIX}-public]\n`;
  }
  server = await startServer({ binary: BINARY, remoteLinks: links });
  api = apiClient(server.base, server.token);

  // A project with nested datasets: Cars / day / morning holds 65 images (more than a page).
  const team = (await api.call('teams.list', { filter: [] })).entities[0];
  const ws = (await api.call('workspaces.list', { teamId: team.id, filter: [] })).entities[0];
  ids.project = (await api.call('projects.add', { workspaceId: ws.id, name: 'Cars', type: 'images' })).id;
  ids.day = (await api.call('datasets.add', { projectId: ids.project, name: 'day' })).id;
  ids.morning = (await api.call('datasets.add', { projectId: ids.project, name: 'morning', parentId: ids.day })).id;
  const files = [['red.png', red, 'image/png']];
  for (let i = 1; i < 65; i++) files.push([`car-${String(i).padStart(3, '0')}.png`, solidPng(32, 24, [i * 3, 100, 255 - i * 3]), 'image/png']);
  ids.images = await api.upload('images', ids.morning, files);
  ids.red = ids.images[0].id;
  // A video project with one clip.
  ids.clips = (await api.call('projects.add', { workspaceId: ws.id, name: 'Clips', type: 'videos' })).id;
  ids.drive = (await api.call('datasets.add', { projectId: ids.clips, name: 'drive' })).id;
  const clip = twoColourClip(path.join(work, 'clip.webm'));
  ids.video = (await api.upload('videos', ids.drive, [['clip.webm', clip, 'video/webm']]))[0].id;

  // A fresh profile; the flags keep Chromium from calling home on this closed network.
  context = await chromium.launchPersistentContext(path.join(work, 'profile'), {
    executablePath: CHROMIUM, headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required'],
    viewport: { width: 1366, height: 800 },
  });
  page = await context.newPage();
  page.on('dialog', (d) => d.accept());
  page.on('pageerror', (e) => console.error('page error:', e.message));
});

after(async () => {
  await context?.close();
  await server?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('the console is served with a strict CSP, an ETag and no data without a token', { skip }, async () => {
  const r = await fetch(`${server.base}/`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/html/);
  const csp = r.headers.get('content-security-policy');
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  const etag = r.headers.get('etag');
  assert.ok(etag);
  assert.equal((await fetch(`${server.base}/`, { headers: { 'if-none-match': etag } })).status, 304);
  const js = await fetch(`${server.base}/console/app.js`);
  assert.match(js.headers.get('content-type'), /^text\/javascript/);
  assert.equal((await fetch(`${server.base}/console/nothing.js`)).status, 404);
  // The console's methods are behind the token like every other.
  const anonymous = await fetch(`${server.base}/public/api/v3/console.storage`, { method: 'POST', body: '{}' });
  assert.equal(anonymous.status, 401);
});

test('a wrong token is refused in words; the right one signs in', { skip }, async () => {
  await page.goto(`${server.base}/`);
  assert.equal(await page.locator('#nav').isVisible(), false, 'no sections before signing in');
  await page.fill('#token', 'not-a-token');
  await page.click('button[type=submit]');
  await page.getByRole('alert').filter({ hasText: 'refused' }).waitFor();
  // By keyboard alone: the field, then Enter.
  await page.focus('#token');
  await page.keyboard.type(server.token);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Teams' }).waitFor();
  assert.equal(await page.evaluate(() => location.href.includes('token')), false);
  await shot('01-teams');
});

test('browse to a nested dataset: lazy thumbnails of the right colour, paged', { skip }, async () => {
  await page.getByRole('link', { name: /admin's team/ }).click();
  await page.getByRole('link', { name: /First Workspace/ }).click();
  await page.getByRole('link', { name: /Cars/ }).click();
  await page.getByRole('link', { name: /day/ }).click();
  await page.getByRole('link', { name: /morning/ }).click();
  await page.locator('#items-count').filter({ hasText: '60 of 65' }).waitFor();
  // The first thumbnail (red.png) is loaded from its signed previewUrl: a JPEG preview, red.
  const first = page.locator('#items img').first();
  await page.waitForFunction(() => { const i = document.querySelector('#items img'); return i && i.complete && i.naturalWidth > 0; });
  assert.ok(await first.evaluate((i) => i.naturalWidth) > 0);
  near(await centrePixel('#items img'), RED, 40, 'thumbnail of red.png');
  // Thumbnails far below the fold are not requested yet.
  const pending = await page.evaluate(() => [...document.querySelectorAll('#items img')].filter((i) => !i.getAttribute('src')).length);
  assert.ok(pending > 0, 'every thumbnail was loaded at once');
  await shot('02-dataset-grid');
  // Jumping to the end of the page (past the grid, as the End key does) loads the next page.
  await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
  await page.locator('#items-count').filter({ hasText: '65 of 65' }).waitFor();
  // The name filter.
  await page.fill('#filter', 'car-06');
  await page.click('form[role=search] button');
  await page.locator('#items-count').filter({ hasText: '5 of 5' }).waitFor();
  await page.fill('#filter', '');
  await page.click('form[role=search] button');
  await page.locator('#items-count').filter({ hasText: 'of 65' }).waitFor();
});

test('open an image: the original and its metadata', { skip }, async () => {
  await page.locator(`#items a[data-id="${ids.red}"]`).click();
  await page.waitForFunction(() => { const i = document.querySelector('#full'); return i && i.complete && i.naturalWidth > 0; });
  assert.deepEqual(await page.evaluate(() => [document.querySelector('#full').naturalWidth, document.querySelector('#full').naturalHeight]), [64, 48]);
  near(await centrePixel('#full'), RED, 0, 'the original red.png');
  const meta = await page.locator('#item-meta').innerText();
  assert.match(meta, /image\/png/);
  assert.match(meta, /64 × 48/);
  assert.ok(meta.includes(sha256Base64(red)), 'the hash is shown');
  assert.match(meta, new RegExp(`${red.length} bytes`));
  assert.match(meta, /Stored at\s+\/[^\s]+-public\/images\/original\//);
  await shot('03-image');
});

test('play and seek a video, streamed with Range requests', { skip }, async () => {
  const ranges = [];
  const watch = (r) => { if (r.url().endsWith('/videos.download')) ranges.push(r.headers().range); };
  context.on('request', watch);
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null);
  // The grid's thumbnail is a frame from a third of the way in (1.3 s): red.
  await page.goto(`${server.base}/#/browse/dataset/${ids.drive}`);
  await page.waitForFunction(() => { const i = document.querySelector('#items img'); return i && i.complete && i.naturalWidth > 0; });
  near(await centrePixel('#items img'), [255, 0, 0], 60, 'the video\'s thumbnail');
  await page.goto(`${server.base}/#/item/videos/${ids.video}`);
  await page.waitForFunction(() => { const v = document.querySelector('#player'); return v && v.readyState >= 1; });
  // The player reads the item through the media worker, not from a blob: URL.
  assert.match(await page.evaluate(() => document.querySelector('#player').currentSrc), /\/console\/media\/videos\/\d+$/);
  const duration = await page.evaluate(() => document.querySelector('#player').duration);
  assert.ok(Math.abs(duration - 4) < 0.3, `duration ${duration}`);
  const seek = (t) => page.evaluate((to) => new Promise((resolve) => {
    const v = document.querySelector('#player');
    v.addEventListener('seeked', () => resolve(v.currentTime), { once: true });
    v.currentTime = to;
  }), t);
  assert.ok(Math.abs(await seek(3) - 3) < 0.3);
  near(await centrePixel('#player'), [0, 0, 255], 60, 'a frame at 3 s (blue)');
  assert.ok(Math.abs(await seek(0.5) - 0.5) < 0.3);
  near(await centrePixel('#player'), [255, 0, 0], 60, 'a frame at 0.5 s (red)');
  await page.evaluate(() => { const v = document.querySelector('#player'); v.muted = true; return v.play(); });
  await page.waitForFunction(() => document.querySelector('#player').currentTime > 0.9);
  await page.evaluate(() => document.querySelector('#player').pause());
  context.off('request', watch);
  assert.ok(ranges.length > 0 && ranges.every((r) => /^bytes=\d+-\d*$/.test(r)), `the player's requests carry Range: ${ranges}`);
  const meta = await page.locator('#item-meta').innerText();
  assert.match(meta, /video\/webm/);
  assert.match(meta, /160 × 120/);
  await shot('04-video');
});

test('upload two files (and one broken) into the dataset and see them in the grid', { skip }, async () => {
  await page.goto(`${server.base}/#/browse/dataset/${ids.morning}`);
  await page.locator('#items-count').filter({ hasText: 'of 65' }).waitFor();
  const blue = solidPng(50, 50, [10, 20, 230]);
  const yellow = solidPng(50, 50, [240, 220, 10]);
  await page.setInputFiles('#upload-files', [
    { name: 'new-blue.png', mimeType: 'image/png', buffer: blue },
    { name: 'new-yellow.png', mimeType: 'image/png', buffer: yellow },
    { name: 'broken.png', mimeType: 'image/png', buffer: Buffer.from('this is not an image') },
  ]);
  await page.locator('#upload-list li[data-name="new-blue.png"][data-state="done"]').waitFor();
  await page.locator('#upload-list li[data-name="new-yellow.png"][data-state="done"]').waitFor();
  const broken = page.locator('#upload-list li[data-name="broken.png"][data-state="failed"]');
  await broken.waitFor();
  assert.match(await broken.innerText(), /failed: .+/);
  await page.locator('#items-count').filter({ hasText: 'of 67' }).waitFor();
  await page.fill('#filter', 'new-');
  await page.click('form[role=search] button');
  await page.locator('#items-count').filter({ hasText: '2 of 2' }).waitFor();
  const names = await page.locator('#items .name').allInnerTexts();
  assert.deepEqual(names.sort(), ['new-blue.png', 'new-yellow.png']);
  await page.locator('#upload-list').scrollIntoViewIfNeeded();
  await shot('05-upload');
});

test('a file dropped on the dataset is uploaded', { skip }, async () => {
  const purple = solidPng(30, 30, [120, 20, 160]);
  const dataTransfer = await page.evaluateHandle((bytes) => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(bytes)], 'dropped.png', { type: 'image/png' }));
    return dt;
  }, [...purple]);
  await page.dispatchEvent('#drop', 'drop', { dataTransfer });
  await page.locator('#upload-list li[data-name="dropped.png"][data-state="done"]').waitFor();
  await page.fill('#filter', 'dropped');
  await page.click('form[role=search] button');
  await page.locator('#items-count').filter({ hasText: '1 of 1' }).waitFor();
});

test('a page that cannot be shown says why in words', { skip }, async () => {
  await page.goto(`${server.base}/#/browse/dataset/987654`);
  const alert = page.getByRole('alert');
  await alert.waitFor();
  assert.match(await alert.innerText(), /could not be shown: .*987654/);
  // The first Tab reaches the skip link, then the sections' links, all by keyboard.
  await page.reload();
  await page.getByRole('alert').waitFor();
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content');
  await page.goto(`${server.base}/#/browse/dataset/${ids.morning}`);
  await page.locator('#items-count').filter({ hasText: 'of' }).waitFor();
});

test('paste links with one bad line: the report names its error', { skip }, async () => {
  await page.fill('#links-text', 'fs://local-files/green.png\nfs://local-files/missing.png\n');
  await page.getByRole('button', { name: 'Add links' }).click();
  await page.locator('#links-report').filter({ hasText: '1 added' }).waitFor();
  const report = await page.locator('#links-report').innerText();
  assert.match(report, /1 added, 0 already there, 1 failed/);
  const bad = page.locator('#links-report tr', { hasText: 'missing.png' });
  assert.match(await bad.innerText(), /failed/);
  assert.ok((await bad.locator('td').nth(3).innerText()).length > 5, 'the failed line has a reason');
  await page.fill('#filter', 'green');
  await page.click('form[role=search] button');
  await page.locator('#items-count').filter({ hasText: '1 of 1' }).waitFor();
  assert.match(await page.locator('#items .kind').first().innerText(), /link/);
  await page.locator('#links-report').scrollIntoViewIfNeeded();
  await shot('06-links');
});

test('storage: provider, connections checked live, caches and the activity chart', { skip }, async () => {
  await page.getByRole('link', { name: 'Storage' }).click();
  await page.locator('#provider').filter({ hasText: 'local disk' }).waitFor();
  const links = page.locator('#storage-links');
  await links.locator('h3', { hasText: 'local-files' }).waitFor();
  assert.match(await links.innerText(), /link local-files fs:\/\/local-files\s+ok/);
  if (radosgw) assert.match(await links.innerText(), /link rgw minio:\/\/\S+-public\s+ok/);
  assert.ok(!(await page.content()).includes(radosgw ? radosgw.STORAGE_SECRET_KEY : 'never-there'), 'no secret on the page');
  assert.match(await page.locator('#storage-caches').innerText(), /preview cache/);
  await page.locator('#chart-numbers').filter({ hasText: 'hits' }).waitFor();
  await shot('07-storage');
});

test('migrations: a dry run shows the plan, then a real run to radosgw finishes', { skip: skip || noRadosgw }, async () => {
  const target = `s3://${radosgw.STORAGE_BUCKET_PREFIX}-public/${runId}`;
  await page.getByRole('link', { name: 'Migrations' }).click();
  await page.selectOption('#mig-project', String(ids.project));
  await page.fill('#mig-to', target);
  await page.click('#mig-dry');
  await page.locator('#job[data-state="done"]').waitFor({ timeout: 60000 });
  const plan = await page.locator('#job').innerText();
  assert.match(plan, /Plan \(dry run/);
  assert.match(plan, /Items to move\s+68/);
  assert.ok(plan.includes(`${target}/images/${ids.project}/${ids.morning}/red.png`), 'the plan names red.png\'s target');
  await shot('08-migration-plan');
  await page.click('#mig-run');
  await page.locator('#job[data-state="done"]').filter({ hasText: 'Migration' }).waitFor({ timeout: 120000 });
  const report = await page.locator('#job').innerText();
  assert.match(report, /Finished: every item moved/);
  assert.match(report, /Switched to links\s+68/);
  await shot('09-migration-done');
  // What the catalog says now: red.png is a link under the target, and still downloads.
  const info = await api.call('images.info', { id: ids.red });
  assert.equal(info.link, `${target}/images/${ids.project}/${ids.morning}/red.png`);
  const bytes = Buffer.from(await (await fetch(`${server.base}/public/api/v3/images.download`, {
    method: 'POST', headers: { 'x-api-key': server.token, 'content-type': 'application/json' }, body: JSON.stringify({ id: ids.red }),
  })).arrayBuffer());
  assert.equal(sha256Base64(bytes), sha256Base64(red));
});

test('migrations: an item whose stored bytes are damaged is reported with its reason', { skip: skip || noRadosgw }, async () => {
  const team = (await api.call('teams.list', { filter: [] })).entities[0];
  const ws = (await api.call('workspaces.list', { teamId: team.id, filter: [] })).entities[0];
  const project = (await api.call('projects.add', { workspaceId: ws.id, name: 'Trucks', type: 'images' })).id;
  const dataset = (await api.call('datasets.add', { projectId: project, name: 'all' })).id;
  const [good, bad] = await api.upload('images', dataset, [
    ['good.png', solidPng(20, 20, [1, 2, 3]), 'image/png'], ['bad.png', solidPng(20, 20, [4, 5, 6]), 'image/png']]);
  // The stored blob of bad.png loses its bytes (same size, other content): the copy must refuse it.
  const file = path.join(server.dir, 'data', 'storage', bad.pathOriginal);
  fs.writeFileSync(file, Buffer.alloc(fs.statSync(file).size, 0x55));
  await page.getByRole('link', { name: 'Browse' }).click();
  await page.getByRole('heading', { name: 'Teams' }).waitFor();
  await page.getByRole('link', { name: 'Migrations' }).click();  // the page lists the new project
  await page.selectOption('#mig-project', String(project));
  await page.fill('#mig-to', `s3://${radosgw.STORAGE_BUCKET_PREFIX}-public/${runId}-trucks`);
  await page.click('#mig-run');
  await page.locator('#job[data-state="done"]').waitFor({ timeout: 120000 });
  const report = await page.locator('#job').innerText();
  assert.match(report, /Finished with problems/);
  // The earlier runs are listed, and one can be shown again.
  await page.locator('#mig-recent tr', { hasText: 'trucks' }).filter({ hasText: 'done, with problems' }).waitFor();
  assert.equal(await page.locator('#mig-recent tbody tr').count(), 3);
  assert.match(report, /Nothing was switched because some items failed/);
  const row = page.locator('#job tr', { hasText: 'bad.png' });
  assert.match(await row.innerText(), /sha-?256|corrupt|hash/i);
  assert.equal((await api.call('images.info', { id: good.id })).link, null, 'nothing was switched');
  await page.locator('#job h3', { hasText: 'Failed items' }).scrollIntoViewIfNeeded();
  await shot('09b-migration-failure');
});

test('tokens: create one (shown once), revoke it, and its next request is refused', { skip }, async () => {
  await page.getByRole('link', { name: 'Tokens' }).click();
  await page.fill('#token-name', 'ci robot');
  await page.getByRole('button', { name: 'Create token' }).click();
  const secret = (await page.locator('#new-token').innerText()).trim();
  assert.ok(secret.length >= 40);
  // A second tab (its own sessionStorage) signs in with the new token and works.
  const other = await context.newPage();
  await other.goto(`${server.base}/#/browse`);
  await other.fill('#token', secret);
  await other.click('button[type=submit]');
  await other.getByRole('heading', { name: 'Teams' }).waitFor();
  // The list never shows a secret again.
  await page.locator('#token-list tr', { hasText: 'ci robot' }).waitFor();
  assert.ok(!(await page.locator('#token-list').innerText()).includes(secret));
  await shot('10-tokens', [page.locator('#new-token')]);  // even a test token stays out of the docs
  await page.locator('#token-list tr', { hasText: 'ci robot' }).getByRole('button', { name: /revoke/i }).click();
  await page.locator('#token-list tr', { hasText: 'ci robot' }).filter({ hasText: 'revoked' }).waitFor();
  // The other tab's next request is refused, and it says so.
  await other.getByRole('link', { name: 'Storage' }).click();
  await other.getByRole('alert').filter({ hasText: 'refused' }).waitFor();
  assert.equal(await other.evaluate(() => sessionStorage.getItem('stowage.token')), null);
  const r = await fetch(`${server.base}/public/api/v3/teams.list`, { method: 'POST', headers: { 'x-api-key': secret }, body: '{}' });
  assert.equal(r.status, 401);
  await other.close();
});

test('sign out forgets the token', { skip }, async () => {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.locator('#token').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem('stowage.token')), null);
  assert.equal(await page.locator('#nav').isVisible(), false, 'the sections are gone');
  await shot('00-sign-in');
});
