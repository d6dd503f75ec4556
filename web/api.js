// SPDX-License-Identifier: Apache-2.0
// The API client of the console: the token lives in sessionStorage only (gone when the tab
// closes), travels in the x-api-key header only, and never appears in a URL.

const TOKEN_KEY = 'stowage.token';
const API = '/public/api/v3/';

export class ApiError extends Error {
  constructor(status, message, details) {
    super(message);
    this.status = status;
    this.details = details;
  }
}

export function token() { return sessionStorage.getItem(TOKEN_KEY); }
export function setToken(value) { sessionStorage.setItem(TOKEN_KEY, value); }
export function clearToken() { sessionStorage.removeItem(TOKEN_KEY); }

let onRefused = () => {};
/// Called when the server refuses the token (401): the app signs out and says why.
export function whenRefused(callback) { onRefused = callback; }

async function errorOf(response) {
  let text = '';
  try { text = await response.text(); } catch { /* the body is lost: keep the status */ }
  let message = `${response.status} ${response.statusText}`.trim();
  let details;
  try {
    const body = JSON.parse(text);
    details = body.details;
    const d = Array.isArray(details) ? details[0] : details;
    message = (d && d.message) || body.error || message;
  } catch {
    if (text) message = `${message}: ${text.slice(0, 200)}`;
  }
  return new ApiError(response.status, message, details);
}

function headers(extra = {}) {
  const h = { 'x-api-key': token() || '', ...extra };
  return h;
}

/// POSTs a JSON body to an API method and returns the parsed answer; throws ApiError in words.
export async function call(method, body = {}, { signal } = {}) {
  let response;
  try {
    response = await fetch(API + method, {
      method: 'POST', headers: headers({ 'content-type': 'application/json' }),
      body: JSON.stringify(body), signal, cache: 'no-store',
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, `The server cannot be reached (${e.message}). Is stowage serve running?`);
  }
  if (!response.ok) {
    const error = await errorOf(response);
    if (response.status === 401) onRefused(error);
    throw error;
  }
  return response.json();
}

/// Every entity of a paged list method (the SDK's get_list_all_pages), up to `limit`.
export async function listAll(method, body, limit = 5000) {
  const out = [];
  for (let page = 1; ; page++) {
    const r = await call(method, { ...body, page, per_page: 500 });
    out.push(...r.entities);
    if (page >= r.pagesCount || out.length >= limit) return out;
  }
}

/// An item's bytes (images.download / videos.download) as a blob.
export async function download(kind, id) {
  const response = await fetch(API + `${kind}.download`, {
    method: 'POST', headers: headers({ 'content-type': 'application/json' }),
    body: JSON.stringify({ id }), cache: 'no-store',
  });
  if (!response.ok) {
    const error = await errorOf(response);
    if (response.status === 401) onRefused(error);
    throw error;
  }
  return response.blob();
}

/// GET /metrics with the token: the Prometheus text.
export async function metricsText() {
  const response = await fetch('/metrics', { headers: headers(), cache: 'no-store' });
  if (!response.ok) throw await errorOf(response);
  return response.text();
}

/// Uploads one file with XMLHttpRequest (fetch reports no upload progress) as the SDK does:
/// a multipart body with the part `0-file`. Resolves to the server's answer for the part.
export function uploadFile(kind, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', API + `${kind}.bulk.upload`);
    xhr.setRequestHeader('x-api-key', token() || '');
    xhr.responseType = 'text';
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded, e.total); };
    xhr.onerror = () => reject(new ApiError(0, 'the connection to the server failed during the upload'));
    xhr.onload = () => {
      let body;
      try { body = JSON.parse(xhr.responseText); } catch { body = null; }
      if (xhr.status !== 200) {
        const d = body && (Array.isArray(body.details) ? body.details[0] : body.details);
        const message = (d && d.message) || (body && body.error) || `${xhr.status} ${xhr.statusText}`;
        if (xhr.status === 401) onRefused(new ApiError(401, message));
        reject(new ApiError(xhr.status, message));
        return;
      }
      const part = Array.isArray(body) ? body[0] : null;
      if (!part) return reject(new ApiError(xhr.status, 'the server answered no result for the file'));
      if (part.errors) {
        const m = Array.isArray(part.errors) ? part.errors.map((e) => e.message).join('; ') : (part.errors.message || JSON.stringify(part.errors));
        return reject(new ApiError(400, m));
      }
      resolve(part);
    };
    const form = new FormData();
    form.append('0-file', file, file.name);
    xhr.send(form);
  });
}
