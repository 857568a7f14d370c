// With `upstream.url` = http://…/base, no request-target may reach a path outside /base (issue 13):
// dot segments in any spelling, and targets that are not origin-form, are refused 400 before
// forwarding — for plain requests and upgrades alike — and counted. Requests are written by hand
// on a TLS socket (and with `curl --path-as-is`), since HTTP clients normalise paths.
import { execFile } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import t from 'tap';
import { createTestPki } from '../fixtures/pki.js';
import { rawExchange, splitResponse } from '../fixtures/raw-request.js';
import { startTestSidecar } from '../fixtures/sidecar.js';

const pki = await createTestPki();
// The upstream records every path it receives, for plain requests and upgrades.
const seen: string[] = [];
const upstream = http.createServer((req, res) => {
  seen.push(req.url ?? '');
  res.end('ok');
});
upstream.on('upgrade', (req, socket) => {
  seen.push(req.url ?? '');
  socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
});
await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
const sc = await startTestSidecar(pki, `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/base`);
const client = await pki.client({ deviceId: 'path-tester' });
t.teardown(async () => {
  await sc.close();
  upstream.closeAllConnections();
  await new Promise((r) => upstream.close(r));
  pki.cleanup();
});

/** Writes one request line as given and returns the status code and body. */
async function raw(method: string, target: string, extra: string[] = []): Promise<{ status: number; body: string }> {
  const request = [`${method} ${target} HTTP/1.1`, 'Host: localhost', ...extra, 'Connection: close', '', ''].join('\r\n');
  return splitResponse(await rawExchange({ port: sc.port, ca: pki.rootPem, cert: client.chainPem, key: client.keyPem }, request));
}
const UPGRADE = ['Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13'];

const ESCAPES: Array<[method: string, target: string]> = [
  ['GET', '/../admin'],
  ['GET', '/%2e%2e/admin'],
  ['GET', '/%2E%2E/admin'],
  ['GET', '/a/..%2f..%2fadmin'],
  ['GET', '/a/..%5c..%5cadmin'],
  ['GET', '/a/..\\..\\admin'],
  ['GET', '/a/..;x=1/../admin'],
  ['GET', '/api/./../admin?x=1'],
  ['GET', 'http://evil.example/admin'],
  ['OPTIONS', '*'],
];

t.test('a normal path is joined under the base path', async (t) => {
  seen.length = 0;
  const r = await raw('GET', '/api/v1/x.json?q=/../y');
  t.equal(r.status, 200);
  t.same(seen, ['/base/api/v1/x.json?q=/../y'], 'dot segments in the query are not a path');
});

t.test('plain requests: every escape is refused 400 and nothing reaches the upstream', async (t) => {
  seen.length = 0;
  for (const [method, target] of ESCAPES) {
    const r = await raw(method, target);
    t.equal(r.status, 400, `${method} ${target}`);
    t.equal(JSON.parse(r.body).error, 'bad_request_target');
  }
  t.same(seen, [], 'the upstream saw none of them');
  const lines = sc.logs.filter((l) => l.event === 'access' && l.status === 400);
  t.ok(lines.length >= ESCAPES.length, 'each is an access line with status 400');
});

t.test('upgrades: the same targets are refused, a clean one is forwarded', async (t) => {
  seen.length = 0;
  for (const [method, target] of ESCAPES.filter(([m]) => m === 'GET')) {
    const r = await raw(method, target, UPGRADE);
    t.equal(r.status, 400, `upgrade ${target}`);
  }
  t.same(seen, [], 'the upstream saw none of them');
  const ok = await raw('GET', '/socket', UPGRADE);
  t.equal(ok.status, 101);
  t.same(seen, ['/base/socket']);
});

t.test('curl --path-as-is gets the same 400', async (t) => {
  seen.length = 0;
  const caFile = pki.write('path-ca.pem', pki.rootPem);
  const { stdout } = await promisify(execFile)('curl', [
    '-sS', '--max-time', '10', '--path-as-is', '--cacert', caFile, '--cert', client.certFile, '--key', client.keyFile,
    '-o', '/dev/null', '-w', '%{http_code}', `https://localhost:${sc.port}/api/../../admin`,
  ]);
  t.equal(stdout, '400');
  t.same(seen, []);
});
