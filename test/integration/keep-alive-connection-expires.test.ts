// A connection must not outlive its client certificate (issue 13): once notAfter has passed, the
// next request on the same keep-alive socket is refused as `expired` and never reaches the
// upstream, the connection is closed, the refusal is counted as one (never as a 2xx), and an
// upgraded WebSocket is closed when the certificate expires.
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import WebSocket, { WebSocketServer } from 'ws';
import { startEchoUpstream } from '../../src/dev/echo-upstream.js';
import { createTestPki, type ClientCert } from '../fixtures/pki.js';
import { startTestSidecar, type TestSidecar } from '../fixtures/sidecar.js';

const pki = await createTestPki();
const echo = await startEchoUpstream();
t.teardown(async () => {
  await echo.close();
  pki.cleanup();
});

/** A client certificate that expires `ms` from now (X.509 times have whole seconds). */
const shortLived = (ms: number) => pki.client({ notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + ms) });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const untilExpired = (c: ClientCert) => sleep(Math.max(0, c.issued.certificate.notAfter.getTime() - Date.now()) + 1_100);

interface Answer {
  status?: number;
  body?: string;
  reused: boolean;
  error?: string;
  socketClosed: Promise<void>;
}

function get(port: number, agent: https.Agent, path: string): Promise<Answer> {
  return new Promise((resolve) => {
    const req = https.get({ host: '127.0.0.1', servername: 'localhost', port, path, agent }, (res) => {
      const socket = res.socket as TLSSocket;
      const socketClosed = new Promise<void>((r) => (socket.destroyed ? r() : socket.once('close', () => r())));
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body, reused: req.reusedSocket, socketClosed }));
    });
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message, reused: req.reusedSocket, socketClosed: Promise.resolve() }));
  });
}

async function metrics(sc: TestSidecar): Promise<string> {
  return (await fetch(`${sc.adminUrl}/metrics`)).text();
}
/** Sum of a metric's samples whose label set contains every `labels` pair. */
function total(text: string, name: string, labels: Record<string, string>): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

for (const mode of ['http', 'reject'] as const) {
  t.test(`failureMode ${mode}: the request after notAfter on the same socket is refused`, async (t) => {
    const sc = await startTestSidecar(pki, echo.url, { clientAuth: { failureMode: mode } });
    t.teardown(() => sc.close());
    const client = await shortLived(3_000);
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: pki.rootPem, cert: client.chainPem, key: client.keyPem });
    t.teardown(() => agent.destroy());
    const hitsBefore = echo.requests();

    const first = await get(sc.port, agent, '/first');
    t.equal(first.status, 200, 'forwarded while the certificate is valid');
    t.equal(echo.requests(), hitsBefore + 1);

    await untilExpired(client);
    const second = await get(sc.port, agent, '/second');
    t.equal(second.reused, true, 'sent on the same keep-alive socket');
    if (mode === 'http') {
      t.equal(second.status, 403);
      t.same(JSON.parse(second.body!), { error: 'client_certificate_rejected', reason: 'expired' });
      const closed = await Promise.race([second.socketClosed.then(() => true), sleep(2_000).then(() => false)]);
      t.ok(closed, 'and the connection is closed, not kept for reuse');
    } else {
      t.ok(second.error, `the connection is cut (${second.error})`);
    }
    t.equal(echo.requests(), hitsBefore + 1, 'the upstream never saw the request after expiry');

    const m = await metrics(sc);
    t.equal(total(m, 'mtls_connections_closed_total', { reason: 'expired' }), 1, 'counted as a connection closed for expiry');
    t.equal(total(m, 'mtls_handshakes_total', { result: 'rejected' }), 0, 'not as a refused handshake: the handshake was accepted');
    t.equal(total(m, 'mtls_requests_total', { status_class: '2xx' }), 1, 'only the first request is a 2xx');
    t.equal(total(m, 'mtls_requests_total', { status_class: '4xx' }), 1, 'the refused one is a 4xx');
    t.ok(sc.logs.some((l) => l.event === 'connection_expired' && l.reason === 'expired'), 'logged as a refusal');
    t.notOk(sc.logs.some((l) => l.event === 'access' && l.path === '/second' && l.status === 200), 'no access line says 200');
    const refused = sc.logs.find((l) => l.event === 'access' && l.path === '/second');
    t.equal(refused?.flags, 'CE', 'its access line is flagged CE (certificate expired on the open connection)');
  });
}

t.test('an upgraded WebSocket is closed when its certificate expires', async (t) => {
  const upstream = http.createServer();
  const wss = new WebSocketServer({ server: upstream });
  let upstreamClosed = false;
  wss.on('connection', (ws) => ws.on('close', () => (upstreamClosed = true)));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const sc = await startTestSidecar(pki, `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`);
  t.teardown(async () => {
    await sc.close();
    wss.close();
    upstream.closeAllConnections();
    await new Promise((r) => upstream.close(r));
  });

  const client = await shortLived(3_000);
  const ws = new WebSocket(`wss://127.0.0.1:${sc.port}/socket`, { ca: pki.rootPem, cert: client.chainPem, key: client.keyPem });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const closedAt = new Promise<number>((r) => ws.once('close', () => r(Date.now())));
  const notAfter = client.issued.certificate.notAfter.getTime();
  const at = await Promise.race([closedAt, sleep(notAfter - Date.now() + 5_000).then(() => 0)]);
  t.ok(at > notAfter, `closed after notAfter (${at - notAfter} ms after)`);
  t.ok(at - notAfter < 2_000, 'and promptly');
  await sleep(100);
  t.ok(upstreamClosed, 'the upstream side was closed too');
  t.equal(total(await metrics(sc), 'mtls_connections_closed_total', { reason: 'expired' }), 1);
});
