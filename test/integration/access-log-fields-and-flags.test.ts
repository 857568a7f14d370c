// The access line over real TLS: protocol, host, user agent, request body bytes, the upstream
// forwarded to, request and trace ids, and `flags` saying why a request did not get the upstream's
// complete answer (README, "Access log").
import tls from 'node:tls';
import t from 'tap';
import { startEchoUpstream } from '../../src/dev/echo-upstream.js';
import { call } from '../fixtures/client.js';
import { startHttpServer } from '../fixtures/http-server.js';
import { freePort } from '../fixtures/net.js';
import { createTestPki } from '../fixtures/pki.js';
import { rawExchange, splitResponse } from '../fixtures/raw-request.js';
import { logLine, startTestSidecar, type TestSidecar } from '../fixtures/sidecar.js';

const pki = await createTestPki();
const client = await pki.client({ deviceId: 'log-1' });
const echo = await startEchoUpstream();
// failureMode http, so a request from a refused connection is answered (and logged) too.
const sc = await startTestSidecar(pki, echo.url, { clientAuth: { failureMode: 'http' } });

// An upstream that misbehaves by path: never answers, resets, or cuts its body.
const faulty = await startHttpServer((req, _body, res) => {
  if (req.url === '/slow' || req.url === '/hang') return;
  if (req.url === '/reset') return void req.socket.destroy();
  if (req.url === '/cut') {
    res.writeHead(200, { 'content-length': '100' });
    res.write('partial');
    setTimeout(() => req.socket.destroy(), 50);
    return;
  }
  res.end('fine');
});
const faultyPort = faulty.port;
const scFaulty = await startTestSidecar(pki, `http://127.0.0.1:${faultyPort}`, { upstream: { responseTimeoutMs: 400 } });

t.teardown(async () => {
  await sc.close();
  await scFaulty.close();
  await faulty.close();
  await echo.close();
  pki.cleanup();
});

const me = (s: TestSidecar) => ({ port: s.port, ca: pki.rootPem, cert: client.chainPem, key: client.keyPem });

/** The access line of `path`. */
const accessLine = (s: TestSidecar, path: string) => logLine(s, (l) => l.event === 'access' && l.path === path);

t.test('a forwarded POST: every field, body bytes counted, no flag', async (t) => {
  const body = Buffer.alloc(12_345, 0x61);
  const res = await call({ ...me(sc), method: 'POST', path: '/upload?token=secret', body, headers: { host: 'api.example', 'user-agent': 'app/1.0 (Android 15)' } });
  t.equal(res.status, 200);
  const a = await accessLine(sc, '/upload');
  t.ok(a, 'one access line, path without the query');
  t.match(a, {
    requestId: res.headers!['x-request-id'],
    traceId: /^[0-9a-f]{32}$/,
    deviceId: 'log-1',
    method: 'POST',
    protocol: 'HTTP/1.1',
    host: 'api.example',
    userAgent: 'app/1.0 (Android 15)',
    status: 200,
    bytes: Number(res.headers!['content-length']),
    bytesReceived: 12_345,
    upstream: `127.0.0.1:${echo.port}`,
  });
  t.equal(a!.flags, undefined, 'no flag for a complete answer');
  t.equal(a!.aborted, undefined);
  t.notMatch(JSON.stringify(a), /secret/, 'the query string is never logged');
});

t.test('a chunked upload is counted too; a GET receives 0 bytes', async (t) => {
  const text = await rawExchange(me(sc), 'PUT /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n');
  t.equal(JSON.parse(splitResponse(text).body).bodyBytes, 11);
  t.equal((await accessLine(sc, '/chunked'))?.bytesReceived, 11);
  await call({ ...me(sc), path: '/get' });
  t.equal((await accessLine(sc, '/get'))?.bytesReceived, 0);
});

t.test('client-sent Host and User-Agent are bounded in the log', async (t) => {
  await call({ ...me(sc), path: '/long-ua', headers: { 'user-agent': 'u'.repeat(1_000) } });
  const a = await accessLine(sc, '/long-ua');
  t.equal(a?.userAgent, `${'u'.repeat(256)}…`);
});

t.test('upstream refuses connections → 502, flags UF, the upstream address logged', async (t) => {
  const port = await freePort();
  const down = await startTestSidecar(pki, `http://127.0.0.1:${port}`);
  t.teardown(() => down.close());
  const res = await call({ ...me(down), path: '/down', headers: { 'x-request-id': 'down-1' } });
  t.equal(res.status, 502);
  t.equal(res.headers!['x-request-id'], 'down-1', 'the error answer carries the request id');
  t.match(await accessLine(down, '/down'), { status: 502, flags: 'UF', upstream: `127.0.0.1:${port}`, requestId: 'down-1' });
});

t.test('upstream timeout → 504 UT; reset before answering → 502 UC; body cut → UC', async (t) => {
  t.equal((await call({ ...me(scFaulty), path: '/slow' })).status, 504);
  t.match(await accessLine(scFaulty, '/slow'), { status: 504, flags: 'UT' });
  t.equal((await call({ ...me(scFaulty), path: '/reset' })).status, 502);
  t.match(await accessLine(scFaulty, '/reset'), { status: 502, flags: 'UC' });
  await call({ ...me(scFaulty), path: '/cut' });
  t.match(await accessLine(scFaulty, '/cut'), { status: 200, flags: 'UC', aborted: true });
});

t.test('the client leaves before the answer → DC', async (t) => {
  const socket = tls.connect({ host: '127.0.0.1', port: scFaulty.port, servername: 'localhost', ca: pki.rootPem, cert: client.chainPem, key: client.keyPem });
  socket.on('error', () => undefined);
  await new Promise((r) => socket.once('secureConnect', r));
  socket.write('GET /hang HTTP/1.1\r\nHost: x\r\n\r\n');
  await new Promise((r) => setTimeout(r, 100));
  socket.destroy();
  t.match(await accessLine(scFaulty, '/hang'), { flags: 'DC', aborted: true, upstream: `127.0.0.1:${faultyPort}` });
});

t.test("the sidecar's own refusals: BT, BU, CR", async (t) => {
  const target = splitResponse(await rawExchange(me(sc), 'GET /a/%2e%2e/b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
  t.equal(target.status, 400);
  t.match(await accessLine(sc, '/a/%2e%2e/b'), { status: 400, flags: 'BT', bytesReceived: 0, requestId: /./ });
  t.equal((await accessLine(sc, '/a/%2e%2e/b'))?.upstream, undefined, 'nothing was forwarded');

  const h2c = splitResponse(await rawExchange(me(sc), 'GET /h2c HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n'));
  t.equal(h2c.status, 400);
  t.match(h2c.head, /^x-request-id: /im, 'the raw refusal carries the request id');
  t.match(await accessLine(sc, '/h2c'), { status: 400, flags: 'BU', protocol: 'HTTP/1.1' });

  const anonymous = await call({ port: sc.port, ca: pki.rootPem, path: '/no-cert' });
  t.equal(anonymous.status, 401);
  t.match(await accessLine(sc, '/no-cert'), { status: 401, flags: 'CR', requestId: anonymous.headers!['x-request-id'] });
});

// Found in review: a refused upgrade was answered but neither logged nor counted.
t.test('a refused WebSocket upgrade is logged and counted as the refusal it is', async (t) => {
  const text = await rawExchange(
    { port: sc.port, ca: pki.rootPem },
    'GET /ws-refused HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
  );
  t.match(text, /^HTTP\/1\.1 401 /, 'answered 401 (no client certificate)');
  t.match(await accessLine(sc, '/ws-refused'), { status: 401, flags: 'CR' });
  const metrics = await (await fetch(`${sc.adminUrl}/metrics`)).text();
  t.match(metrics, /mtls_requests_total\{[^}]*method="GET"[^}]*status_class="4xx"[^}]*\} [1-9]/);
});
