// Open connections per device id and per certificate: past the limit a verified connection is
// closed at once (failureMode: reject) or answers 429 device_connections and closes (http);
// a closed connection makes room again; the refusal is counted without a device id.
import t, { type Test } from 'tap';
import { startEchoUpstream } from '../../src/dev/echo-upstream.js';
import { openKeepAlive, sleep, type KaConn } from '../fixtures/keep-alive.js';
import { sampleValue, scrapeMetrics } from '../fixtures/metrics-text.js';
import { createTestPki } from '../fixtures/pki.js';
import { call } from '../fixtures/client.js';
import { startTestSidecar } from '../fixtures/sidecar.js';
import { ADMIN_AUTH, adminTokenFile } from '../fixtures/admin-token.js';

const pki = await createTestPki();
// Two certificates of one device (a renewal), and a device of its own.
const first = await pki.client({ deviceId: 'greedy' });
const second = await pki.client({ deviceId: 'greedy' });
const other = await pki.client({ deviceId: 'modest' });
const echo = await startEchoUpstream();
t.teardown(async () => {
  await echo.close();
  pki.cleanup();
});

const limits = { perDevice: { maxConnections: 2, maxConnectionsPerCertificate: 1 } };
const open = (port: number, c: typeof first) => openKeepAlive({ port, ca: pki.rootPem, cert: c.chainPem, key: c.keyPem });

/** A sidecar with the limits (and `overrides`), and a list of connections closed with it at the end. */
async function sidecarWithLimits(t: Test, overrides: Record<string, unknown> = {}) {
  const sc = await startTestSidecar(pki, echo.url, { limits, admin: { tokenFile: adminTokenFile() }, ...overrides });
  const conns: KaConn[] = [];
  t.teardown(async () => {
    for (const c of conns) c.close();
    await sc.close();
  });
  conns.push(await open(sc.port, first));
  t.equal((await conns[0]!.get()).status, 200, 'the first connection is served');
  return { sc, conns };
}

t.test('reject mode: the connection over the limit is closed; closing one makes room', async (t) => {
  const { sc, conns } = await sidecarWithLimits(t);
  const sameCert = await open(sc.port, first);
  conns.push(sameCert);
  t.match(await sameCert.get(), { error: 'closed' }, 'a second connection of one certificate is closed');
  conns.push(await open(sc.port, second));
  t.equal((await conns[2]!.get()).status, 200, 'the device’s second certificate gets its own');
  const third = await open(sc.port, second);
  conns.push(third);
  t.match(await third.get(), { error: 'closed' }, 'a third connection of the device is closed');
  t.equal((await call({ port: sc.port, ca: pki.rootPem, cert: other.chainPem, key: other.keyPem })).status, 200, 'another device is untouched');
  conns[0]!.close();
  await sleep(100);
  const again = await open(sc.port, first);
  conns.push(again);
  t.equal((await again.get()).status, 200, 'a closed connection gave its place back');
  const text = await scrapeMetrics(sc.adminUrl);
  t.equal(sampleValue(text, 'mtls_connections_refused_total', { reason: 'device_connections' }), 2);
  // store: local has no Redis to be up or down: a 0 here would read as "Redis down" on a dashboard.
  t.notMatch(text, /^mtls_limits_store_up /m, 'mtls_limits_store_up absent with store: local');
  t.notMatch(text, /greedy/);
});

t.test('http mode: the connection over the limit answers 429 device_connections and closes', async (t) => {
  const { sc } = await sidecarWithLimits(t, { clientAuth: { failureMode: 'http' } });
  const res = await call({ port: sc.port, ca: pki.rootPem, cert: first.chainPem, key: first.keyPem, headers: { 'x-request-id': 'cl-1' } });
  t.equal(res.status, 429);
  t.same(res.json, { error: 'rate_limited', reason: 'device_connections' });
  t.equal(res.headers?.['retry-after'], '1');
  t.equal(res.headers?.connection, 'close', 'the refused connection is not kept');
  t.equal(res.headers?.['x-request-id'], 'cl-1');
  const text = await scrapeMetrics(sc.adminUrl);
  t.equal(sampleValue(text, 'mtls_requests_limited_total', { route: 'default', limit: 'device_connections' }), 1);
  const top = (await (await fetch(`${sc.adminUrl}/debug/top-devices?by=connections`, { headers: ADMIN_AUTH })).json()) as { devices: Array<{ deviceId: string; connections: number }> };
  t.match(top.devices[0], { deviceId: 'greedy', connections: 1 }, 'the admin port shows who holds connections');
});
