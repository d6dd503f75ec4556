// SPDX-License-Identifier: Apache-2.0
// A fake Google Cloud Storage server for Stowage's tests (../../../../shared/spec/emulators.md).
//
// It enforces what real GCS enforces and the emulators do not: the OAuth 2.0 JWT-bearer grant,
// verified against the registered public key of the service account that signed it, and a valid
// bearer token on every storage call. It serves the parts of the JSON API that Stowage and the
// gcloud CLI use: buckets get/insert/list; objects list (prefix, delimiter, maxResults, pageToken,
// startOffset, endOffset), metadata, alt=media with Range, delete; uploads of types media,
// multipart and resumable (chunks in multiples of 256 KiB, 308 with Range, `bytes */N` status
// queries, cancel); ifGenerationMatch / ifGenerationNotMatch (412).
//
// Node built-ins only, so that it needs no npm package. State lives in memory.
//
//   node server.mjs --port-file FILE --accounts-dir DIR [--port N] [--bucket NAME]...
//                   [--token-ttl SECONDS] [--log FILE]
//
// --accounts-dir holds one `<client_email>.pem` public key per service account; it is read on
// every token request, so accounts may be added while the server runs. The chosen port is
// written to --port-file once the server listens. GET /_fake/stats (no auth) reports counters.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

const args = {port: 0, buckets: [], tokenTtl: 3600};
for (let i = 2; i < process.argv.length; ++i) {
  const a = process.argv[i];
  const next = () => process.argv[++i];
  if (a === '--port') args.port = Number(next());
  else if (a === '--port-file') args.portFile = next();
  else if (a === '--accounts-dir') args.accountsDir = next();
  else if (a === '--bucket') args.buckets.push(next());
  else if (a === '--token-ttl') args.tokenTtl = Number(next());
  else if (a === '--log') args.log = next();
  else {
    console.error(`unknown argument ${a}`);
    process.exit(2);
  }
}
if (!args.accountsDir) {
  console.error('--accounts-dir is required');
  process.exit(2);
}

// Resumable chunks other than the last must be multiples of this (GCS JSON API docs).
const kChunkQuantum = 256 * 1024;
// A JWT may claim at most one hour of validity, and clocks may differ by a little.
const kMaxJwtLifetimeS = 3600;
const kClockSkewS = 300;
const kScopes = new Set([
  'https://www.googleapis.com/auth/devstorage.full_control',
  'https://www.googleapis.com/auth/devstorage.read_write',
  'https://www.googleapis.com/auth/devstorage.read_only',
  'https://www.googleapis.com/auth/cloud-platform',
  'https://www.googleapis.com/auth/cloud-platform.read-only',
]);
const kJwtBearer = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

const buckets = new Map();   // name -> {meta, objects: Map(name -> object), sorted: string[]|null}
const tokens = new Map();    // access token -> {email, expires (ms)}
const sessions = new Map();  // upload id -> {bucket, name, chunks, size, total, conditions, done}
const stats = {
  token_exchanges: 0,
  token_failures: 0,
  unauthorized: 0,
  requests: 0,
  resumable_sessions: 0,
  // "<bucket>/<name>" of the latest resumable sessions, so that a test can count its own while
  // other tests use the same server.
  resumable_session_objects: [],
};
let generationClock = Date.now() * 1000;
let port = 0;

const logStream = args.log ? fs.createWriteStream(args.log, {flags: 'a'}) : null;
const log = (line) => logStream?.write(`${new Date().toISOString()} ${line}\n`);

// ---- helpers ------------------------------------------------------------------------------------

function nextGeneration() {
  generationClock = Math.max(generationClock + 1, Date.now() * 1000);
  return String(generationClock);
}

function compareNames(a, b) {
  // GCS orders names by their UTF-8 bytes; JS compares UTF-16 code units.
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

const kCrcTable = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; ++n) {
    let c = n;
    for (let k = 0; k < 8; ++k) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32c(buf) {
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; ++i) c = kCrcTable[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  const out = Buffer.alloc(4);
  out.writeUInt32BE((c ^ 0xffffffff) >>> 0);
  return out.toString('base64');
}

function sendJson(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=UTF-8',
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

function sendError(res, status, reason, message, headers = {}) {
  sendJson(res, status, {
    error: {code: status, message, errors: [{message, domain: 'global', reason}]},
  }, headers);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const parts = [];
    req.on('data', (c) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

function b64urlDecode(text) {
  return Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

function baseUrl(req) {
  return `http://${req.headers.host ?? `127.0.0.1:${port}`}`;
}

function objectResource(req, bucket, obj) {
  const enc = encodeURIComponent(obj.name);
  return {
    kind: 'storage#object',
    id: `${bucket}/${obj.name}/${obj.generation}`,
    selfLink: `${baseUrl(req)}/storage/v1/b/${bucket}/o/${enc}`,
    mediaLink: `${baseUrl(req)}/download/storage/v1/b/${bucket}/o/${enc}?generation=${
        obj.generation}&alt=media`,
    name: obj.name,
    bucket,
    generation: obj.generation,
    metageneration: '1',
    contentType: obj.contentType,
    storageClass: 'STANDARD',
    size: String(obj.data.length),
    md5Hash: obj.md5,
    crc32c: obj.crc32c,
    etag: obj.etag,
    timeCreated: obj.created,
    updated: obj.created,
    timeStorageClassUpdated: obj.created,
  };
}

function bucketResource(name, b) {
  return {
    kind: 'storage#bucket',
    id: name,
    name,
    projectNumber: '1',
    metageneration: '1',
    location: 'US',
    storageClass: 'STANDARD',
    etag: 'CAE=',
    timeCreated: b.created,
    updated: b.created,
  };
}

function createBucket(name) {
  if (!buckets.has(name)) {
    buckets.set(name, {objects: new Map(), sorted: null, created: new Date().toISOString()});
  }
}

// Checks ifGenerationMatch / ifGenerationNotMatch against the current object (or its absence);
// returns an error message, or null when the preconditions hold.
function preconditionFailure(conditions, current) {
  const gen = current ? current.generation : '0';
  if (conditions.ifGenerationMatch !== undefined && conditions.ifGenerationMatch !== null &&
      conditions.ifGenerationMatch !== gen) {
    return 'At least one of the pre-conditions you specified did not hold.';
  }
  if (conditions.ifGenerationNotMatch !== undefined && conditions.ifGenerationNotMatch !== null &&
      conditions.ifGenerationNotMatch === gen) {
    return 'At least one of the pre-conditions you specified did not hold.';
  }
  return null;
}

function conditionsOf(query) {
  return {
    ifGenerationMatch: query.get('ifGenerationMatch'),
    ifGenerationNotMatch: query.get('ifGenerationNotMatch'),
  };
}

// Publishes an object atomically; returns the stored object, or null after answering 412.
function publish(res, bucketName, name, data, contentType, conditions) {
  const bucket = buckets.get(bucketName);
  if (!bucket) {
    sendError(res, 404, 'notFound', 'The specified bucket does not exist.');
    return null;
  }
  const failure = preconditionFailure(conditions, bucket.objects.get(name));
  if (failure) {
    sendError(res, 412, 'conditionNotMet', failure);
    return null;
  }
  const generation = nextGeneration();
  const obj = {
    name,
    data,
    generation,
    contentType: contentType || 'application/octet-stream',
    md5: crypto.createHash('md5').update(data).digest('base64'),
    crc32c: crc32c(data),
    etag: Buffer.from(`${generation}/1`).toString('base64'),
    created: new Date().toISOString(),
  };
  if (!bucket.objects.has(name)) bucket.sorted = null;
  bucket.objects.set(name, obj);
  return obj;
}

// ---- OAuth token endpoint -----------------------------------------------------------------------

function tokenError(res, description) {
  stats.token_failures += 1;
  sendJson(res, 400, {error: 'invalid_grant', error_description: description});
}

async function handleToken(req, res) {
  const body = new URLSearchParams((await readBody(req)).toString('utf8'));
  if (body.get('grant_type') !== kJwtBearer) {
    stats.token_failures += 1;
    return sendJson(res, 400, {
      error: 'unsupported_grant_type',
      error_description: 'Only the JWT bearer grant is supported.',
    });
  }
  const parts = (body.get('assertion') ?? '').split('.');
  if (parts.length !== 3) return tokenError(res, 'Invalid JWT: malformed.');
  let header;
  let claims;
  try {
    header = JSON.parse(b64urlDecode(parts[0]).toString('utf8'));
    claims = JSON.parse(b64urlDecode(parts[1]).toString('utf8'));
  } catch {
    return tokenError(res, 'Invalid JWT: not JSON.');
  }
  if (header.alg !== 'RS256') return tokenError(res, 'Invalid JWT: alg must be RS256.');
  if (typeof claims.iss !== 'string' || !/^[^/\\]+@[^/\\]+$/.test(claims.iss)) {
    return tokenError(res, 'Invalid JWT: iss is not a service account.');
  }
  let publicKey;
  try {
    publicKey = fs.readFileSync(path.join(args.accountsDir, `${claims.iss}.pem`), 'utf8');
  } catch {
    return tokenError(res, 'Invalid JWT Signature.');  // Google does not say whether iss exists
  }
  const signed = Buffer.from(`${parts[0]}.${parts[1]}`, 'ascii');
  const ok = crypto.verify('RSA-SHA256', signed, publicKey, b64urlDecode(parts[2]));
  if (!ok) return tokenError(res, 'Invalid JWT Signature.');
  const audiences = new Set([
    `${baseUrl(req)}/token`,
    `http://127.0.0.1:${port}/token`,
    'https://oauth2.googleapis.com/token',
    'https://www.googleapis.com/oauth2/v4/token',
    'https://accounts.google.com/o/oauth2/token',
  ]);
  if (!audiences.has(claims.aud)) return tokenError(res, 'Invalid JWT: aud is not this server.');
  const now = Math.floor(Date.now() / 1000);
  if (!Number.isInteger(claims.iat) || !Number.isInteger(claims.exp)) {
    return tokenError(res, 'Invalid JWT: iat and exp must be integers.');
  }
  if (claims.iat > now + kClockSkewS || claims.exp <= now - kClockSkewS ||
      claims.exp - claims.iat > kMaxJwtLifetimeS || claims.exp <= claims.iat) {
    return tokenError(res, 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a ' +
                               'reasonable timeframe. Check your iat and exp values in the JWT claim.');
  }
  const scopes = String(claims.scope ?? '').split(' ').filter((s) => s);
  if (scopes.length === 0 || !scopes.some((s) => kScopes.has(s))) {
    return sendJson(res, 400, {error: 'invalid_scope', error_description: 'No storage scope.'});
  }
  const token = `ya29.fake-${crypto.randomBytes(24).toString('base64url')}`;
  tokens.set(token, {email: claims.iss, expires: Date.now() + args.tokenTtl * 1000});
  stats.token_exchanges += 1;
  sendJson(res, 200, {access_token: token, expires_in: args.tokenTtl, token_type: 'Bearer'});
}

function authorized(req, res) {
  const auth = req.headers.authorization ?? '';
  const m = /^Bearer (\S+)$/.exec(auth);
  const entry = m ? tokens.get(m[1]) : undefined;
  if (!entry || entry.expires <= Date.now()) {
    if (entry) tokens.delete(m[1]);
    stats.unauthorized += 1;
    sendError(res, 401, 'authError', 'Invalid Credentials',
              {'WWW-Authenticate': 'Bearer realm="https://accounts.google.com/"'});
    return false;
  }
  return true;
}

// ---- objects ------------------------------------------------------------------------------------

function parseRange(header, size) {
  // Returns {start, end} (inclusive), null for "no range", or 'unsatisfiable'.
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;  // ignored, as HTTP says
  let start;
  let end;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== '' && Number(m[2]) < start) return null;
  }
  if (start >= size) return 'unsatisfiable';
  return {start, end};
}

function serveMedia(req, res, obj) {
  const size = obj.data.length;
  const range = parseRange(req.headers.range, size);
  const headers = {
    'Content-Type': obj.contentType,
    'ETag': obj.etag,
    'x-goog-generation': obj.generation,
    'x-goog-metageneration': '1',
    'x-goog-stored-content-length': String(size),
    'x-goog-stored-content-encoding': 'identity',
    'x-goog-hash': `crc32c=${obj.crc32c},md5=${obj.md5}`,
    'Accept-Ranges': 'bytes',
    'Last-Modified': new Date(obj.created).toUTCString(),
  };
  if (range === 'unsatisfiable') {
    return sendError(res, 416, 'requestedRangeNotSatisfiable',
                     'The requested range cannot be satisfied.',
                     {'Content-Range': `bytes */${size}`});
  }
  if (range) {
    const body = obj.data.subarray(range.start, range.end + 1);
    res.writeHead(206, {
      ...headers,
      'Content-Length': body.length,
      'Content-Range': `bytes ${range.start}-${range.end}/${size}`,
    });
    return res.end(body);
  }
  res.writeHead(200, {...headers, 'Content-Length': size});
  res.end(obj.data);
}

function listObjects(req, res, bucketName, query) {
  const bucket = buckets.get(bucketName);
  if (!bucket) return sendError(res, 404, 'notFound', 'The specified bucket does not exist.');
  const prefix = query.get('prefix') ?? '';
  const delimiter = query.get('delimiter') ?? '';
  const startOffset = query.get('startOffset') ?? '';
  const endOffset = query.get('endOffset') ?? '';
  const maxResults = Math.min(Math.max(Number(query.get('maxResults') ?? 1000) || 1000, 1), 1000);
  let after = null;
  let afterIsPrefix = false;
  if (query.get('pageToken')) {
    try {
      const t = JSON.parse(Buffer.from(query.get('pageToken'), 'base64url').toString('utf8'));
      after = t.a;
      afterIsPrefix = t.p;
    } catch {
      return sendError(res, 400, 'invalid', 'Invalid page token.');
    }
  }
  if (!bucket.sorted) bucket.sorted = [...bucket.objects.keys()].sort(compareNames);
  const items = [];
  const prefixes = [];
  let lastPrefix = afterIsPrefix ? after : null;
  let last = null;
  let more = false;
  for (const name of bucket.sorted) {
    if (!name.startsWith(prefix)) continue;
    if (startOffset && compareNames(name, startOffset) < 0) continue;
    if (endOffset && compareNames(name, endOffset) >= 0) continue;
    if (after !== null && compareNames(name, after) <= 0) continue;
    let entry = {name, isPrefix: false};
    if (delimiter) {
      const idx = name.indexOf(delimiter, prefix.length);
      if (idx >= 0) entry = {name: name.slice(0, idx + delimiter.length), isPrefix: true};
    }
    if (entry.isPrefix && entry.name === lastPrefix) continue;
    if (items.length + prefixes.length >= maxResults) {
      more = true;
      break;
    }
    if (entry.isPrefix) {
      prefixes.push(entry.name);
      lastPrefix = entry.name;
    } else {
      items.push(objectResource(req, bucketName, bucket.objects.get(name)));
    }
    last = entry;
  }
  const out = {kind: 'storage#objects'};
  if (items.length) out.items = items;
  if (prefixes.length) out.prefixes = prefixes;
  if (more) {
    out.nextPageToken =
        Buffer.from(JSON.stringify({a: last.name, p: last.isPrefix})).toString('base64url');
  }
  sendJson(res, 200, out);
}

// multipart/related as the JSON API takes it: a JSON metadata part, then the media part. Python
// clients (gcloud) quote the boundary with ' and end lines with a bare LF.
function parseMultipartRelated(contentType, body) {
  const m = /boundary=(?:"([^"]+)"|'([^']+)'|([^;\s]+))/i.exec(contentType ?? '');
  if (!m) return null;
  const delim = Buffer.from(`--${m[1] ?? m[2] ?? m[3]}`);
  const parts = [];
  let pos = body.indexOf(delim);
  while (pos >= 0) {
    let start = pos + delim.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    if (body.subarray(start, start + 2).toString() === '\r\n') start += 2;
    else if (body[start] === 0x0a) start += 1;
    const next = body.indexOf(delim, start);
    if (next < 0) return null;
    let part = body.subarray(start, next);
    // The line break before the next delimiter belongs to the delimiter.
    if (part.subarray(part.length - 2).toString() === '\r\n') part = part.subarray(0, part.length - 2);
    else if (part[part.length - 1] === 0x0a) part = part.subarray(0, part.length - 1);
    let split = part.indexOf('\r\n\r\n');
    let gap = 4;
    const lf = part.indexOf('\n\n');
    if (split < 0 || (lf >= 0 && lf < split)) {
      split = lf;
      gap = 2;
    }
    if (split < 0) return null;
    const headers = part.subarray(0, split).toString('utf8');
    const ct = /content-type:\s*([^\r\n]+)/i.exec(headers);
    parts.push({contentType: ct ? ct[1].trim() : '', data: part.subarray(split + gap)});
    pos = next;
  }
  return parts.length === 2 ? parts : null;
}

async function handleUpload(req, res, bucketName, query) {
  const type = query.get('uploadType');
  if (type === 'resumable' && query.get('upload_id')) return handleSession(req, res, query);
  if (!authorized(req, res)) return;
  if (req.method !== 'POST') return sendError(res, 405, 'invalid', 'Uploads are POSTed.');
  if (!buckets.has(bucketName)) {
    await readBody(req);
    return sendError(res, 404, 'notFound', 'The specified bucket does not exist.');
  }
  const body = await readBody(req);
  const conditions = conditionsOf(query);
  if (type === 'media') {
    const name = query.get('name');
    if (!name) return sendError(res, 400, 'required', 'Required parameter: name');
    const obj = publish(res, bucketName, name, body, req.headers['content-type'], conditions);
    if (obj) sendJson(res, 200, objectResource(req, bucketName, obj));
    return;
  }
  if (type === 'multipart') {
    const parts = parseMultipartRelated(req.headers['content-type'], body);
    if (!parts) return sendError(res, 400, 'invalid', 'Malformed multipart body.');
    let meta;
    try {
      meta = JSON.parse(parts[0].data.toString('utf8'));
    } catch {
      return sendError(res, 400, 'parseError', 'Metadata is not JSON.');
    }
    const name = meta.name ?? query.get('name');
    if (!name) return sendError(res, 400, 'required', 'Required parameter: name');
    const obj = publish(res, bucketName, name, parts[1].data, meta.contentType || parts[1].contentType,
                        conditions);
    if (obj) sendJson(res, 200, objectResource(req, bucketName, obj));
    return;
  }
  if (type === 'resumable') {
    let meta = {};
    if (body.length) {
      try {
        meta = JSON.parse(body.toString('utf8'));
      } catch {
        return sendError(res, 400, 'parseError', 'Metadata is not JSON.');
      }
    }
    const name = meta.name ?? query.get('name');
    if (!name) return sendError(res, 400, 'required', 'Required parameter: name');
    const id = crypto.randomBytes(24).toString('base64url');
    stats.resumable_sessions += 1;
    stats.resumable_session_objects.push(`${bucketName}/${name}`);
    if (stats.resumable_session_objects.length > 1000) stats.resumable_session_objects.shift();
    sessions.set(id, {
      bucket: bucketName,
      name,
      contentType: meta.contentType || req.headers['x-upload-content-type'],
      chunks: [],
      size: 0,
      total: null,
      conditions,
      done: null,
    });
    const location = `${baseUrl(req)}/upload/storage/v1/b/${encodeURIComponent(bucketName)}/o?` +
                     `uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${id}`;
    res.writeHead(200, {'Location': location, 'Content-Length': 0, 'X-GUploader-UploadID': id});
    return res.end();
  }
  sendError(res, 400, 'invalid', `Unsupported uploadType ${type}`);
}

function incomplete(res, session) {
  const headers = {'Content-Length': 0};
  if (session.size > 0) headers['Range'] = `bytes=0-${session.size - 1}`;
  res.writeHead(308, headers);
  res.end();
}

// PUT (chunk or status query) and DELETE (cancel) on a resumable session URI: no token needed,
// the session URI is the credential.
async function handleSession(req, res, query) {
  const session = sessions.get(query.get('upload_id'));
  const body = await readBody(req);
  if (!session) return sendError(res, 404, 'notFound', 'No such upload session.');
  if (req.method === 'DELETE') {
    sessions.delete(query.get('upload_id'));
    res.writeHead(499, {'Content-Length': 0});  // what GCS answers to a cancel
    return res.end();
  }
  if (req.method !== 'PUT') return sendError(res, 405, 'invalid', 'Session calls are PUT.');
  if (session.done) return sendJson(res, 200, session.done);
  const cr = (req.headers['content-range'] ?? '').trim();
  let m;
  if ((m = /^bytes \*\/(\d+|\*)$/.exec(cr))) {
    // A status query, or the finalization of what was already sent (bytes */N).
    if (body.length) return sendError(res, 400, 'invalid', 'A status query has no body.');
    if (m[1] !== '*') {
      const total = Number(m[1]);
      if (total !== session.size) return incomplete(res, session);
      return finish(req, res, session, query.get('upload_id'));
    }
    return incomplete(res, session);
  }
  if (!(m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(cr))) {
    if (!cr && body.length === 0) return incomplete(res, session);
    return sendError(res, 400, 'invalid', `Bad Content-Range '${cr}'.`);
  }
  const first = Number(m[1]);
  const lastByte = Number(m[2]);
  const total = m[3] === '*' ? null : Number(m[3]);
  if (lastByte - first + 1 !== body.length) {
    return sendError(res, 400, 'invalid', 'Content-Range does not match the body length.');
  }
  if (first > session.size) {
    return sendError(res, 400, 'invalid', 'Chunk starts past the bytes received so far.');
  }
  const isLast = total !== null && lastByte + 1 === total;
  if (!isLast && body.length % kChunkQuantum !== 0) {
    return sendError(res, 400, 'invalid',
                     `Invalid request. The number of bytes uploaded is required to be equal or ` +
                         `greater than ${kChunkQuantum}, except for the final request, and a ` +
                         `multiple of ${kChunkQuantum}.`);
  }
  // Bytes already received are skipped (a retry after a lost answer).
  const skip = session.size - first;
  if (skip < body.length) {
    session.chunks.push(body.subarray(skip));
    session.size += body.length - skip;
  }
  if (total !== null && session.size >= total) {
    if (session.size !== total) return sendError(res, 400, 'invalid', 'More bytes than the total.');
    return finish(req, res, session, query.get('upload_id'));
  }
  incomplete(res, session);
}

function finish(req, res, session, id) {
  const obj = publish(res, session.bucket, session.name, Buffer.concat(session.chunks),
                      session.contentType, session.conditions);
  if (!obj) {
    sessions.delete(id);
    return;
  }
  session.chunks = [];
  session.done = objectResource(req, session.bucket, obj);
  sendJson(res, 200, session.done);
}

// ---- routing ------------------------------------------------------------------------------------

async function route(req, res) {
  stats.requests += 1;
  const url = new URL(req.url, 'http://fake');
  const query = url.searchParams;
  const p = url.pathname;
  log(`${req.method} ${p}`);  // never the query: session ids are credentials
  if (p === '/token' && req.method === 'POST') return handleToken(req, res);
  if (p === '/_fake/stats') return sendJson(res, 200, stats);

  let m;
  if ((m = /^\/(?:resumable\/)?upload\/storage\/v1\/b\/([^/]+)\/o\/?$/.exec(p))) {  // apitools adds /resumable
    return handleUpload(req, res, decodeURIComponent(m[1]), query);
  }
  if ((m = /^\/(?:download\/)?storage\/v1\/b\/([^/]+)\/o\/(.+)$/.exec(p))) {
    await readBody(req);
    if (!authorized(req, res)) return;
    const bucketName = decodeURIComponent(m[1]);
    const name = decodeURIComponent(m[2]);
    const bucket = buckets.get(bucketName);
    if (!bucket) return sendError(res, 404, 'notFound', 'The specified bucket does not exist.');
    const obj = bucket.objects.get(name);
    if (!obj || (query.get('generation') && query.get('generation') !== obj.generation)) {
      return sendError(res, 404, 'notFound', `No such object: ${bucketName}/${name}`);
    }
    const failure = preconditionFailure(conditionsOf(query), obj);
    if (failure) return sendError(res, 412, 'conditionNotMet', failure);
    if (req.method === 'GET') {
      if (query.get('alt') === 'media') return serveMedia(req, res, obj);
      return sendJson(res, 200, objectResource(req, bucketName, obj));
    }
    if (req.method === 'DELETE') {
      bucket.objects.delete(name);
      bucket.sorted = null;
      res.writeHead(204);
      return res.end();
    }
    return sendError(res, 405, 'invalid', 'Method not allowed.');
  }
  if ((m = /^\/storage\/v1\/b\/([^/]+)\/o\/?$/.exec(p)) && req.method === 'GET') {
    await readBody(req);
    if (!authorized(req, res)) return;
    return listObjects(req, res, decodeURIComponent(m[1]), query);
  }
  if ((m = /^\/storage\/v1\/b\/([^/]+)\/?$/.exec(p)) && req.method === 'GET') {
    await readBody(req);
    if (!authorized(req, res)) return;
    const name = decodeURIComponent(m[1]);
    const b = buckets.get(name);
    if (!b) return sendError(res, 404, 'notFound', 'The specified bucket does not exist.');
    return sendJson(res, 200, bucketResource(name, b));
  }
  if (/^\/storage\/v1\/b\/?$/.test(p)) {
    const body = await readBody(req);
    if (!authorized(req, res)) return;
    if (req.method === 'GET') {
      const items = [...buckets.keys()].sort().map((n) => bucketResource(n, buckets.get(n)));
      return sendJson(res, 200, {kind: 'storage#buckets', items});
    }
    if (req.method === 'POST') {
      let meta;
      try {
        meta = JSON.parse(body.toString('utf8'));
      } catch {
        return sendError(res, 400, 'parseError', 'Bucket metadata is not JSON.');
      }
      if (!meta.name) return sendError(res, 400, 'required', 'Required field: name');
      if (buckets.has(meta.name)) {
        return sendError(res, 409, 'conflict', 'Your previous request to create the named ' +
                                                   'bucket succeeded and you already own it.');
      }
      createBucket(meta.name);
      return sendJson(res, 200, bucketResource(meta.name, buckets.get(meta.name)));
    }
  }
  await readBody(req);
  sendError(res, 404, 'notFound', `Not Found: ${req.method} ${p}`);
}

for (const b of args.buckets) createBucket(b);

const server = http.createServer((req, res) => {
  route(req, res).catch((err) => {
    log(`internal error: ${err?.stack ?? err}`);
    if (!res.headersSent) sendError(res, 500, 'backendError', 'Internal error.');
    else res.destroy();
  });
});
server.keepAliveTimeout = 30000;
server.listen(args.port, '127.0.0.1', () => {
  port = server.address().port;
  if (args.portFile) {
    fs.writeFileSync(`${args.portFile}.tmp`, String(port));
    fs.renameSync(`${args.portFile}.tmp`, args.portFile);
  }
  log(`listening on 127.0.0.1:${port}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
