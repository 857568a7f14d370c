// With workers: 2 the connection cap is shared (each worker holds half, the gauge sums back to
// the cap) and /debug/top-devices on the primary adds every worker's rows for a device.
import { availableParallelism } from 'node:os';
import t from 'tap';
import { startEchoUpstream } from '../../src/dev/echo-upstream.js';
import { startCliSidecar } from '../fixtures/cli-process.js';
import { call } from '../fixtures/client.js';
import { openKeepAlive } from '../fixtures/keep-alive.js';
import { sampleValue } from '../fixtures/metrics-text.js';
import { createTestPki } from '../fixtures/pki.js';
import { ADMIN_AUTH, adminTokenFile } from '../fixtures/admin-token.js';

const pki = await createTestPki();
const echo = await startEchoUpstream();
t.teardown(async () => {
  await echo.close();
  pki.cleanup();
});

t.test('two workers: one cap, one top list', { skip: availableParallelism() < 2 ? 'needs 2 cores' : false }, async (t) => {
  const sc = await startCliSidecar(pki, echo.url, { workers: 2, limits: { maxConnections: 10, perDevice: { requestsPerSecond: 1000 } }, admin: { tokenFile: adminTokenFile() } });
  t.teardown(() => sc.child.kill('SIGKILL'));
  for (let i = 0; i < 150; i++) {
    if (await fetch(`${sc.adminUrl}/readyz`).then((r) => r.status === 200, () => false)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const device = await pki.client({ deviceId: 'two-worker-device' });
  // New connections each: the primary spreads them over both workers.
  for (let i = 0; i < 12; i++) t.equal((await call({ port: sc.port, ca: pki.rootPem, cert: device.chainPem, key: device.keyPem })).status, 200);
  const text = await (await fetch(`${sc.adminUrl}/metrics`)).text();
  t.equal(sampleValue(text, 'mtls_connections_max'), 10, 'each worker holds 5; the gauge sums to the cap');
  const top = (await (await fetch(`${sc.adminUrl}/debug/top-devices?by=requests`, { headers: ADMIN_AUTH })).json()) as { devices: Array<{ deviceId: string; requests: number }> };
  t.same(
    top.devices.map((d) => [d.deviceId, d.requests]),
    [['two-worker-device', 12]],
    'one row with every worker’s requests',
  );
  // Twelve connections held open: no more than the cap get through, every other one is refused
  // (and counted) by the worker it landed on.
  const held = await Promise.all(
    Array.from({ length: 12 }, () => openKeepAlive({ port: sc.port, ca: pki.rootPem, cert: device.chainPem, key: device.keyPem }).then((c) => c.get().then((r) => ({ c, ok: r.status === 200 })), () => ({ c: undefined, ok: false }))),
  );
  const served = held.filter((h) => h.ok).length;
  t.ok(served <= 10 && served >= 8, `${served} of 12 held connections served (cap 10, 5 per worker)`);
  const after = await (await fetch(`${sc.adminUrl}/metrics`)).text();
  t.equal(sampleValue(after, 'mtls_connections_refused_total', { reason: 'max_connections' }), 12 - served, 'each one refused is counted');
  held.forEach((h) => h.c?.close());
  sc.child.kill('SIGTERM');
  t.equal(await sc.exited, 0);
});
