// SPDX-License-Identifier: Apache-2.0
// What the console's browser tests need around the browser: a `stowage serve` of their own (free
// port, temp DATA_PATH), the API called the way the SDK calls it, and images and clips of known
// colours.
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';

/// A PNG of one colour, width x height, 8-bit RGB (written here: exact pixels, no tool needed).
export function solidPng(width, height, [r, g, b]) {
  const row = Buffer.alloc(1 + width * 3);
  for (let x = 0; x < width; x++) row.set([r, g, b], 1 + x * 3);
  const raw = Buffer.concat(Array.from({ length: height }, () => row));
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4); crc.writeUInt32BE(zlib.crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0); ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);  // 8 bits, RGB, deflate, no filter, no interlace
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

export const sha256Base64 = (bytes) => createHash('sha256').update(bytes).digest('base64');

/// A 4-second WebM (VP8) clip: red for 2 s, then blue, made with the ffmpeg command.
export function twoColourClip(file) {
  execFileSync('ffmpeg', ['-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', 'color=c=red:s=160x120:d=2:r=10',
    '-f', 'lavfi', '-i', 'color=c=blue:s=160x120:d=2:r=10',
    '-filter_complex', '[0:v][1:v]concat=n=2:v=1[v]', '-map', '[v]',
    '-c:v', 'libvpx', '-b:v', '300k', '-g', '5', '-pix_fmt', 'yuv420p', file]);
  return fs.readFileSync(file);
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
    s.on('error', reject);
  });
}

/// Reads KEY=VALUE lines (the test servers' .env files).
export function readEnv(file) {
  const out = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = line.match(/^([A-Z0-9_]+)=(.*)$/);
    if (m) out[m[1]] = m[2];
  }
  return out;
}

/// `stowage serve` on a free port with a fresh DATA_PATH and the given remote_links.yml text.
export async function startServer({ binary, remoteLinks = '' }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-console-'));
  const port = await freePort();
  fs.writeFileSync(path.join(dir, 'remote_links.yml'), remoteLinks);
  fs.writeFileSync(path.join(dir, '.env'), [
    `DATA_PATH=${path.join(dir, 'data')}`, `STOWAGE_LISTEN=127.0.0.1:${port}`,
    `REMOTE_LINKS_PATH=${path.join(dir, 'remote_links.yml')}`, 'STOWAGE_WORKER_THREADS=4', ''].join('\n'));
  const log = fs.openSync(path.join(dir, 'server.log'), 'a');
  const child = spawn(binary, ['--env', path.join(dir, '.env'), 'serve'], { cwd: dir, stdio: ['ignore', log, log] });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`stowage serve exited: ${fs.readFileSync(path.join(dir, 'server.log'), 'utf8')}`);
    try { if ((await fetch(`${base}/healthz`)).ok) break; } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error('stowage serve did not answer /healthz');
    await new Promise((r) => setTimeout(r, 100));
  }
  const token = fs.readFileSync(path.join(dir, 'data', 'admin-token'), 'utf8').trim();
  return {
    dir, base, token,
    log: () => fs.readFileSync(path.join(dir, 'server.log'), 'utf8'),
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/// The API as the SDK calls it.
export function apiClient(base, token) {
  async function call(method, body) {
    const r = await fetch(`${base}/public/api/v3/${method}`, {
      method: 'POST', headers: { 'x-api-key': token, 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    const text = await r.text();
    if (!r.ok) throw new Error(`${method}: ${r.status} ${text}`);
    return JSON.parse(text);
  }
  /// images.bulk.upload (or videos) then bulk.add: the SDK's upload_paths.
  async function upload(kind, datasetId, files) {
    const form = new FormData();
    files.forEach(([name, bytes, type], i) => form.append(`${i}-file`, new Blob([bytes], { type }), String(i)));
    const r = await fetch(`${base}/public/api/v3/${kind}.bulk.upload`, { method: 'POST', headers: { 'x-api-key': token }, body: form });
    const parts = await r.json();
    if (!r.ok) throw new Error(`${kind}.bulk.upload: ${r.status} ${JSON.stringify(parts)}`);
    const items = files.map(([name], i) => ({ title: name, hash: parts[i].hash }));
    return call(`${kind}.bulk.add`, { datasetId, [kind]: items });
  }
  return { call, upload };
}
