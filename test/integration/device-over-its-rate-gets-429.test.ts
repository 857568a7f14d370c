// A device over its request rate gets 429 rate_limited with Retry-After and its request id, on a
// connection that stays usable; other devices are untouched; the refusal is in the access line
// (flag RL) and in metrics without any device id; the admin port names the busiest device.
import t from 'tap';
import { call } from '../fixtures/client.js';
import { openKeepAlive } from '../fixtures/keep-alive.js';
import { sampleValue, scrapeMetrics } from '../fixtures/metrics-text.js';
import { rawExchange, splitResponse } from '../fixtures/raw-request.js';
import { logLine, startSidecarWithEcho, startTestSidecar } from '../fixtures/sidecar.js';
import { ADMIN_AUTH, adminTokenFile } from '../fixtures/admin-token.js';

// One request per second, three at once: the test runs well inside a second per step.
const { pki, echo, sc } = await startSidecarWithEcho(t, { limits: { perDevice: { requestsPerSecond: 1, burst: 3 } }, admin: { tokenFile: adminTokenFile() } });
const noisy = await pki.client({ deviceId: 'noisy-device' });
const quiet = await pki.client({ deviceId: 'quiet-device' });

t.test('the burst passes, the next is 429 with Retry-After, and keep-alive stays usable', async (t) => {
  const conn = await openKeepAlive({ port: sc.port, ca: pki.rootPem, cert: noisy.chainPem, key: noisy.keyPem });
  t.teardown(() => conn.close());
  for (let i = 0; i < 3; i++) t.equal((await conn.get('/ok')).status, 200, `request ${i + 1} of the burst`);
  const over = await conn.get('/over');
  t.equal(over.status, 429);
  t.same(JSON.parse(over.body ?? '{}'), { error: 'rate_limited', reason: 'rate' });
  t.notOk(conn.socket.destroyed, 'the connection is not closed by a rate refusal');
  t.equal((await conn.get('/again')).status, 429, 'the same connection is answered again');

  const fresh = await call({ port: sc.port, ca: pki.rootPem, cert: noisy.chainPem, key: noisy.keyPem, headers: { 'x-request-id': 'rl-check-1' } });
  t.equal(fresh.status, 429, 'the bucket is the device’s, not the connection’s');
  t.equal(fresh.headers?.['retry-after'], '1', 'Retry-After in whole seconds');
  t.equal(fresh.headers?.['x-request-id'], 'rl-check-1', 'the request id comes back like on any refusal');
  t.match(fresh.headers?.['content-type'], /application\/json/);

  const other = await call({ port: sc.port, ca: pki.rootPem, cert: quiet.chainPem, key: quiet.keyPem });
  t.equal(other.status, 200, 'another device has its own bucket');

  const line = await logLine(sc, (l) => l.event === 'access' && l.requestId === 'rl-check-1');
  t.match(line, { status: 429, flags: 'RL', deviceId: 'noisy-device' }, 'the access line says why');
});

t.test('a WebSocket upgrade over the rate is refused the same way', async (t) => {
  const text = await rawExchange(
    { port: sc.port, ca: pki.rootPem, cert: noisy.chainPem, key: noisy.keyPem },
    'GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
  );
  const res = splitResponse(text);
  t.equal(res.status, 429);
  t.match(res.head, /^retry-after: 1$/im);
  t.same(JSON.parse(res.body), { error: 'rate_limited', reason: 'rate' });
});

t.test('metrics count refusals by route and limit, never by device', async (t) => {
  const text = await scrapeMetrics(sc.adminUrl);
  t.ok(sampleValue(text, 'mtls_requests_limited_total', { route: 'default', limit: 'rate' }) >= 4, 'rate refusals counted');
  t.ok(sampleValue(text, 'mtls_requests_total', { route: 'default', method: 'GET', status_class: '4xx' }) >= 4, 'and as answered 4xx requests');
  t.notMatch(text, /noisy-device|quiet-device/, 'no device id in any metric');
});

t.test('the admin port lists the top consumers', async (t) => {
  const res = await fetch(`${sc.adminUrl}/debug/top-devices?n=1&by=requests`, { headers: ADMIN_AUTH });
  t.equal(res.status, 200);
  const body = (await res.json()) as { devices: Array<Record<string, unknown>> };
  t.equal(body.devices.length, 1, 'n bounds the list');
  t.match(body.devices[0], { deviceId: 'noisy-device', limited: Number });
  t.ok((body.devices[0]!.limited as number) >= 4 && (body.devices[0]!.requests as number) >= 7);
  t.equal((await fetch(`${sc.adminUrl}/debug/top-devices?n=0`, { headers: ADMIN_AUTH })).status, 400, 'a bad n is refused');
  t.equal((await fetch(`${sc.adminUrl}/debug/top-devices?by=name`, { headers: ADMIN_AUTH })).status, 400, 'a bad order is refused');
});

// It names devices, so like the quarantine list it needs the admin token (an outside review found it open).
t.test('the top consumers need the admin token, and are off without one', async (t) => {
  const wrong = await fetch(`${sc.adminUrl}/debug/top-devices`, { headers: { authorization: 'Bearer nope' } });
  t.equal(wrong.status, 401);
  t.equal((await fetch(`${sc.adminUrl}/debug/top-devices`)).status, 401, 'no token');
  t.notMatch(await wrong.text(), /noisy-device/);
  const off = await startTestSidecar(pki, echo.url, { limits: { perDevice: { requestsPerSecond: 1 } } });
  t.teardown(() => off.close());
  const res = await fetch(`${off.adminUrl}/debug/top-devices`);
  t.equal(res.status, 404);
  t.match(await res.json(), { reason: /admin\.tokenFile/ });
});

t.test('without per-device limits nothing is tracked and the endpoint says so', async (t) => {
  const plain = await startTestSidecar(pki, echo.url, { admin: { tokenFile: adminTokenFile() } });
  t.teardown(() => plain.close());
  const res = await fetch(`${plain.adminUrl}/debug/top-devices`, { headers: ADMIN_AUTH });
  t.equal(res.status, 404);
  t.match(await res.json(), { error: 'not_tracked' });
  t.equal((await call({ port: plain.port, ca: pki.rootPem, cert: noisy.chainPem, key: noisy.keyPem })).status, 200);
});
