// SPDX-License-Identifier: Apache-2.0
// An HTTP proxy (Node built-ins only) in front of a test server, for the migration tests: it
// logs the request-body bytes it receives per request, and injects the faults of a real network.
//
//   node fault_proxy.mjs --upstream PORT --port-file FILE --log FILE [--fail-every N]
//                        [--reset-every N] [--seed S]
//
// Every request is forwarded to 127.0.0.1:PORT with its method, path and headers unchanged (the
// Host header too, so SigV4 signatures still match). With --fail-every N, every N-th request is
// answered 503 SlowDown without reaching the server; with --reset-every N, every N-th other
// request has its connection reset mid-body (mid-upload for a request with a body, else
// mid-download). Each request appends "METHOD PATH BODY_BYTES OUTCOME" to the log. The port it
// listens on is written to the port file once it listens. Stops on SIGTERM.
import fs from 'node:fs';
import http from 'node:http';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const upstream = Number(args.upstream);
const failEvery = Number(args['fail-every'] || 0);
const resetEvery = Number(args['reset-every'] || 0);
const logFile = args.log;
let count = 0;

function log(req, bytes, outcome) {
  if (req.logged) return;  // once per request; a client killed mid-upload logs on 'close'
  req.logged = true;
  fs.appendFileSync(logFile, `${req.method} ${req.url.split('?')[0]} ${bytes} ${outcome}\n`);
}

const server = http.createServer((req, res) => {
  const n = ++count;
  const hasBody = Number(req.headers['content-length'] || 0) > 0 ||
                  req.headers['transfer-encoding'] !== undefined;
  let bytes = 0;
  req.on('close', () => log(req, bytes, 'closed'));
  if (failEvery > 0 && n % failEvery === 0) {
    req.on('data', (c) => { bytes += c.length; });
    req.on('end', () => {
      log(req, bytes, '503');
      const body = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>' +
                   '<Message>injected by fault_proxy</Message></Error>';
      res.writeHead(503, {'content-type': 'application/xml', 'content-length': body.length,
                          'connection': 'close'});
      res.end(body);
    });
    return;
  }
  const reset = resetEvery > 0 && n % resetEvery === 0;
  const up = http.request({host: '127.0.0.1', port: upstream, method: req.method, path: req.url,
                           headers: req.headers});
  up.on('error', () => { req.socket.destroy(); });
  up.on('response', (r) => {
    res.writeHead(r.statusCode, r.headers);
    if (reset) {
      // Half the body (at least one chunk), then a reset.
      let sent = 0;
      const half = Number(r.headers['content-length'] || 2) / 2;
      r.on('data', (c) => {
        res.write(c);
        sent += c.length;
        if (sent >= half) { r.destroy(); req.socket.resetAndDestroy(); }
      });
      r.on('end', () => { req.socket.resetAndDestroy(); });
      return;
    }
    r.pipe(res);
  });
  req.on('data', (c) => {
    bytes += c.length;
    if (reset && hasBody) {
      log(req, bytes, 'reset-upload');
      up.destroy();
      req.socket.resetAndDestroy();
      return;
    }
    up.write(c);
  });
  req.on('end', () => {
    if (reset && hasBody) return;
    log(req, bytes, reset ? 'reset-download' : 'ok');
    up.end();
  });
});
server.keepAliveTimeout = 30000;
server.listen(0, '127.0.0.1', () => {
  fs.writeFileSync(args['port-file'] + '.tmp', String(server.address().port));
  fs.renameSync(args['port-file'] + '.tmp', args['port-file']);
});
process.on('SIGTERM', () => process.exit(0));
