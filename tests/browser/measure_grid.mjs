// SPDX-License-Identifier: Apache-2.0
// A measurement, not a test: how the console's grid behaves with a large dataset. Starts a
// `stowage serve`, uploads N small distinct images into one dataset, opens the dataset in
// headless Chromium and scrolls to the end, reporting the time to the first thumbnails, the
// time to list every page, the thumbnails actually fetched, and the page's JS heap.
//   STOWAGE_BINARY=build/stowage node tests/browser/measure_grid.mjs [N]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { apiClient, solidPng, startServer } from './support.mjs';

const N = Number(process.argv[2] || 2000);
const server = await startServer({ binary: path.resolve(process.env.STOWAGE_BINARY || 'build/stowage') });
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-measure-'));
try {
  const api = apiClient(server.base, server.token);
  const team = (await api.call('teams.list', { filter: [] })).entities[0];
  const ws = (await api.call('workspaces.list', { teamId: team.id, filter: [] })).entities[0];
  const project = (await api.call('projects.add', { workspaceId: ws.id, name: 'Big', type: 'images' })).id;
  const dataset = (await api.call('datasets.add', { projectId: project, name: 'many' })).id;
  for (let start = 0; start < N; start += 500) {
    const files = [];
    for (let i = start; i < Math.min(N, start + 500); i++) files.push([`img-${String(i).padStart(5, '0')}.png`, solidPng(64, 48, [i % 256, (i >> 8) % 256, 128]), 'image/png']);
    await api.upload('images', dataset, files);
    console.error(`uploaded ${Math.min(N, start + 500)}`);
  }
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium', headless: true, viewport: { width: 1366, height: 800 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--enable-precise-memory-info'],
  });
  const page = await context.newPage();
  let previews = 0;
  page.on('request', (r) => { if (r.url().includes('/previews/')) previews++; });
  await page.goto(`${server.base}/`);
  await page.evaluate((t) => sessionStorage.setItem('stowage.token', t), server.token);
  const t0 = Date.now();
  await page.goto(`${server.base}/#/browse/dataset/${dataset}`);
  await page.waitForFunction(() => [...document.querySelectorAll('#items img')].filter((i) => i.complete && i.naturalWidth > 0).length >= 24);
  const firstThumbs = Date.now() - t0;
  const previewsAtStart = previews;
  const t1 = Date.now();
  const deadline = Date.now() + 120000;
  while (!(await page.locator('#items-count').innerText()).startsWith(`${N} of ${N}`)) {
    if (Date.now() > deadline) throw new Error(`stuck at: ${await page.locator('#items-count').innerText()}`);
    await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
    await page.waitForTimeout(50);
  }
  const allPages = Date.now() - t1;
  await page.waitForTimeout(1000);
  const heap = await page.evaluate(() => performance.memory ? performance.memory.usedJSHeapSize : null);
  console.log(JSON.stringify({ items: N, msToFirst24Thumbnails: firstThumbs, previewsFetchedAtStart: previewsAtStart,
    msToListEveryPage: allPages, pages: Math.ceil(N / 60), previewsFetchedAfterScrollingToTheEnd: previews,
    jsHeapMiB: heap && +(heap / 1048576).toFixed(1) }));
  await context.close();
} finally {
  await server.stop();
  fs.rmSync(profile, { recursive: true, force: true });
}
