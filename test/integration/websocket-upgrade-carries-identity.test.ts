// WebSocket upgrades take their own path through the proxy: they are verified, stripped and
// injected exactly like requests, and a refused client never gets its upgrade forwarded.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import WebSocket, { WebSocketServer } from 'ws';
import { createTestPki } from '../fixtures/pki.js';
import { startTestSidecar } from '../fixtures/sidecar.js';

const pki = await createTestPki();
// A real WebSocket upstream (the `ws` library) that reports the upgrade headers, then echoes.
const upstream = http.createServer();
const wss = new WebSocketServer({ server: upstream });
let upgrades = 0;
wss.on('connection', (ws, req) => {
  upgrades++;
  ws.send(JSON.stringify(req.headers));
  ws.on('message', (data) => ws.send(`echo:${data.toString()}`));
});
await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
t.teardown(async () => {
  wss.close();
  upstream.closeAllConnections();
  await new Promise((r) => upstream.close(r));
  pki.cleanup();
});

function open(port: number, cert?: { chainPem: string; keyPem: string }, headers: Record<string, string> = {}) {
  const ws = new WebSocket(`wss://127.0.0.1:${port}/socket`, { ca: pki.rootPem, cert: cert?.chainPem, key: cert?.keyPem, headers, handshakeTimeout: 5_000 });
  const messages: string[] = [];
  ws.on('message', (d) => messages.push(d.toString()));
  return {
    ws,
    messages,
    opened: new Promise<{ ok: true } | { ok: false; status?: number; error?: string }>((resolve) => {
      ws.once('open', () => resolve({ ok: true }));
      ws.once('unexpected-response', (_req, res) => resolve({ ok: false, status: res.statusCode }));
      ws.once('error', (e) => resolve({ ok: false, error: (e as NodeJS.ErrnoException).code ?? e.message }));
    }),
    next: () =>
      new Promise<string>((resolve) => {
        if (messages.length) return resolve(messages.shift()!);
        ws.once('message', () => resolve(messages.shift()!));
      }),
  };
}

for (const mode of ['reject', 'http'] as const) {
  t.test(`failureMode ${mode}`, async (t) => {
    const sc = await startTestSidecar(pki, upstreamUrl, { clientAuth: { failureMode: mode } });
    t.teardown(() => sc.close());

    const client = await pki.client({ deviceId: 'ws-phone' });
    const good = open(sc.port, client, { 'X-Device-Id': 'EVIL', 'x_client_verified': 'EVIL', 'X-Forwarded-Client-Cert': 'EVIL' });
    t.same(await good.opened, { ok: true });
    const headers = JSON.parse(await good.next()) as Record<string, string>;
    t.equal(headers['x-device-id'], 'ws-phone');
    t.equal(headers['x-client-verified'], 'SUCCESS');
    t.equal(headers['x_client_verified'], undefined);
    t.equal(headers['x-forwarded-client-cert'], undefined);
    good.ws.send('ping');
    t.equal(await good.next(), 'echo:ping', 'frames flow both ways');
    good.ws.close();

    const before = upgrades;
    const anon = open(sc.port);
    const r1 = await anon.opened;
    t.equal(r1.ok, false, 'no certificate: no upgrade');
    if (mode === 'http') t.equal((r1 as { status?: number }).status, 401);
    const expired = await pki.client({ notBefore: new Date(Date.now() - 2e9), notAfter: new Date(Date.now() - 1e9) });
    const r2 = await open(sc.port, expired).opened;
    t.equal(r2.ok, false, 'expired: no upgrade');
    if (mode === 'http') t.equal((r2 as { status?: number }).status, 403);
    t.equal(upgrades, before, 'no refused upgrade reached the upstream');
  });
}
