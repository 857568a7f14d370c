// With the project's own device CA, under OCSP (its responder, answers valid an hour) and under
// CRL (its distribution point): a device revoked through the admin API, and a device that renews
// (the CA revokes the replaced certificate as `superseded`), loses its old certificate on every
// way it reaches the sidecar — a new connection, its open keep-alive connection, and resuming a
// TLS session ticket it got before — within the configured bound (ocsp.maxGoodAgeSeconds: 2,
// crl.refreshIntervalSeconds: 1), and nothing it sends after the sidecar learned it reaches the
// upstream. The renewed certificate passes with the same device id.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { startEchoUpstream, type EchoReply } from '../../src/dev/index.js';
import { enrollDevice, renewDevice, type DeviceEnrollment } from '../../src/device/index.js';
import { call } from '../fixtures/client.js';
import { startTestCa } from '../fixtures/device-ca.js';
import type { TestPki } from '../fixtures/pki.js';
import { probeRevocation, revocationApplied, type ProbeResult } from '../fixtures/revocation-probe.js';
import { startTestSidecar, type TestSidecar } from '../fixtures/sidecar.js';

const ca = await startTestCa(); // OCSP answers valid 3,600 s, the CA's default
const echo = await startEchoUpstream();
t.teardown(async () => {
  await echo.close();
  await ca.close();
});
const sidecarPki = { dir: ca.dir, serverCertFile: join(ca.dir, 'server.pem'), serverKeyFile: join(ca.dir, 'server.key'), caBundleFile: ca.caBundleFiles[0] } as unknown as TestPki;

const kinds = [
  { name: 'OCSP', revocation: { mode: 'ocsp', ocsp: { maxGoodAgeSeconds: 2 } }, boundMs: 2_000 },
  { name: 'CRL', revocation: { mode: 'crl', crl: { refreshIntervalSeconds: 1 } }, boundMs: 1_000 },
] as const;

async function enroll(deviceId: string): Promise<DeviceEnrollment> {
  return enrollDevice({ url: ca.ca.enrollUrl, caCertFile: ca.rootFile, deviceId, code: await ca.code(deviceId), outDir: join(ca.dir, deviceId) });
}
const credentials = (d: DeviceEnrollment) => ({ cert: readFileSync(d.certFile, 'utf8'), key: readFileSync(d.keyFile, 'utf8') });

/** The probe's verdicts, shared by both scenarios. */
async function assertLockedOut(t: Test, sc: TestSidecar, r: ProbeResult, old: { cert: string; key: string }, boundMs: number): Promise<void> {
  t.comment(`refused after: new ${r.newConnection.refusedAfterMs} ms, keep-alive ${r.keepAlive.refusedAfterMs} ms, resumed ${r.resumed.refusedAfterMs} ms; ${r.reachedUpstream} requests reached the upstream meanwhile`);
  const slack = 1_000; // one exchange or download, and the probe's 50 ms pace on a busy machine
  for (const [way, w] of [['a new connection', r.newConnection], ['the open keep-alive connection', r.keepAlive], ['a resumed session', r.resumed]] as const) {
    t.ok(w.refusedAfterMs >= 0 && w.refusedAfterMs < boundMs + slack, `${way}: refused ${w.refusedAfterMs} ms after (${w.how})`);
  }
  t.ok(r.everyAttemptResumed, 'every resumption attempt resumed the session');
  t.same(r.sentAfterApplied, [], 'nothing sent after the sidecar learned it reached the upstream');
  t.equal((await call({ port: sc.port, ca: ca.rootPem, ...old })).json?.reason, 'revoked', 'a new connection: refused as revoked');
  const resumed = await call({ port: sc.port, ca: ca.rootPem, session: r.session });
  t.equal(resumed.reused, true, 'the old session still resumes at the TLS level…');
  t.equal(resumed.json?.reason, 'revoked', '…and is refused as revoked');
}

for (const kind of kinds) {
  t.test(`${kind.name}: a device revoked through the admin API`, async (t) => {
    const sc = await startTestSidecar(sidecarPki, echo.url, { clientAuth: { caBundle: ca.caBundleFiles, failureMode: 'http' }, revocation: kind.revocation });
    t.teardown(() => sc.close());
    const device = await enroll(`lost-${kind.name.toLowerCase()}`);
    const creds = credentials(device);
    const r = await probeRevocation({
      port: sc.port,
      ca: ca.rootPem,
      ...creds,
      upstream: echo,
      applied: revocationApplied(sc.logs),
      revoke: async () => {
        const res = await ca.admin('POST', '/v1/admin/revoke', { deviceId: device.deviceId, reason: 'keyCompromise' });
        if (res.status !== 200) throw new Error(`revoke: ${res.status}`);
      },
      limitMs: 10_000,
    });
    await assertLockedOut(t, sc, r, creds, kind.boundMs);
  });

  t.test(`${kind.name}: renewal — the superseded certificate is locked out, the renewed one passes`, async (t) => {
    const sc = await startTestSidecar(sidecarPki, echo.url, { clientAuth: { caBundle: ca.caBundleFiles, failureMode: 'http' }, revocation: kind.revocation });
    t.teardown(() => sc.close());
    const device = await enroll(`renewing-${kind.name.toLowerCase()}`);
    const old = credentials(device); // renewDevice rewrites the files
    let renewed: DeviceEnrollment | undefined;
    const r = await probeRevocation({
      port: sc.port,
      ca: ca.rootPem,
      ...old,
      upstream: echo,
      applied: revocationApplied(sc.logs),
      revoke: async () => {
        renewed = await renewDevice({ url: ca.ca.enrollUrl, caCertFile: ca.rootFile, dir: join(ca.dir, device.deviceId) });
      },
      limitMs: 10_000,
    });
    const record = await ca.admin('GET', `/v1/admin/devices/${device.deviceId}`);
    const replaced = record.json.certificates.find((c: { serial: string }) => c.serial === device.serial);
    t.match(replaced, { status: 'revoked', revocationReason: 'superseded' }, 'the CA revoked the replaced certificate as superseded');
    await assertLockedOut(t, sc, r, old, kind.boundMs);
    const now = await call({ port: sc.port, ca: ca.rootPem, ...credentials(renewed!) });
    t.equal(now.status, 200, 'the renewed certificate passes');
    t.equal((now.json as EchoReply).headers['x-device-id'], device.deviceId, 'with the same device id');
    t.equal((now.json as EchoReply).headers['x-client-cert-serial'], renewed!.serial.toUpperCase(), 'and its new serial');
  });
}
