/**
 * The benchmark's "node floor": the least an mTLS proxy built on Node's `https` server and undici
 * can cost on this machine. A bare `https.createServer` that requires a client certificate
 * (OpenSSL verifies it against the CA; nothing else is checked), copies the request's raw headers
 * and forwards through an undici `Pool` with `dispatch`, writing the answer straight back. No
 * identity extraction or headers, no revocation, no metrics, no logging, no limits.
 *
 * Why it is in the run: the gap between nginx and the sidecar splits into what Node's TLS/HTTP
 * stack and undici cost anyway (nginx vs this floor) and what the sidecar's own work costs (this
 * floor vs the sidecar). It is not a product and handles nothing but the benchmark's GETs.
 *
 *   node test/bench/node-floor.mjs CERT KEY CA UPSTREAM_PORT   # prints {"port":N} once listening
 */
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { Pool } from 'undici';

const [cert, key, ca, upstreamPort] = process.argv.slice(2);
const pool = new Pool(`http://127.0.0.1:${upstreamPort}`, { connections: 128, pipelining: 1, keepAliveTimeout: 300_000 });
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);

// undici 8's handler API; the headers relayed are the raw lines, as the sidecar's forwarder does.
class Exchange {
  constructor(res) {
    this.res = res;
  }
  onRequestStart() {}
  onResponseStart(controller, status) {
    if (status < 200) return;
    const raw = controller.rawHeaders;
    const out = [];
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i].toString('latin1');
      if (!HOP.has(name.toLowerCase())) out.push(name, raw[i + 1].toString('latin1'));
    }
    this.res.writeHead(status, out);
  }
  onResponseData(_controller, chunk) {
    this.res.write(chunk);
  }
  onResponseEnd() {
    this.res.end();
  }
  onResponseError() {
    if (this.res.headersSent) this.res.destroy();
    else this.res.writeHead(502).end();
  }
}

const server = https.createServer(
  {
    cert: readFileSync(cert),
    key: readFileSync(key),
    ca: readFileSync(ca),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    keepAliveTimeout: 300_000,
    noDelay: true,
  },
  (req, res) => {
    const headers = [];
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) if (!HOP.has(raw[i].toLowerCase())) headers.push(raw[i], raw[i + 1]);
    pool.dispatch({ path: req.url, method: req.method, headers, body: null }, new Exchange(res));
  },
);
server.maxConnections = 100_000;
server.listen(0, '127.0.0.1', 4096, () => process.stdout.write(`${JSON.stringify({ port: server.address().port, pid: process.pid })}\n`));
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
// The benchmark closes our stdin when it ends; never outlive it.
process.stdin.on('end', () => process.exit(0)).resume();
