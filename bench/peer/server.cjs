// The peer: @sigstore/mock's Fulcio and Rekor handlers (sigstore-js's in-process mocks) in a plain
// Node HTTP server, so the same HTTP workloads can run against it. It keeps nothing on disk and
// returns fake proofs (single-leaf, random index); say so beside its numbers.
// usage: node server.cjs NODE_PREFIX PORT
'use strict';
const http = require('http');
const crypto = require('crypto');
const path = require('path');
const [prefix, port] = process.argv.slice(2);
const mock = require(path.join(prefix, 'node_modules', '@sigstore', 'mock'));

async function main() {
  const keyPair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ctLog = await mock.initializeCTLog(keyPair);
  const ca = await mock.initializeCA(keyPair, ctLog);
  const tlog = await mock.initializeTLog(`http://127.0.0.1:${port}`, keyPair);
  const handlers = [mock.fulcioHandler(ca), mock.rekorHandler(tlog)];
  http
    .createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      req.on('end', async () => {
        const handler = handlers.find((h) => req.method === 'POST' && req.url === h.path);
        if (!handler) {
          res.writeHead(404).end();
          return;
        }
        const { statusCode, response, contentType } = await handler.fn(body);
        res.writeHead(statusCode, { 'Content-Type': contentType || 'application/json' }).end(response);
      });
    })
    .listen(Number(port), '127.0.0.1', () => console.log(`peer listening on http://127.0.0.1:${port}`));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
