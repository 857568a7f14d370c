// The whole device lifecycle over real TLS: a code from the admin API → the device simulator
// enrolls (P-256 and RSA) → the proxy accepts the new certificate and injects the device id →
// renew → revoke → the proxy refuses it, through the CA's CRL and through its OCSP responder.
// The time from revocation to refusal is measured and printed.
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import t from 'tap';
import { stringify } from 'yaml';
import { loadConfigFile } from '../../src/config/index.js';
import { startEchoUpstream, type EchoReply } from '../../src/dev/index.js';
import { enrollDevice, renewDevice, type DeviceEnrollment } from '../../src/device/index.js';
import { startSidecar } from '../../src/serve/index.js';
import { call } from '../fixtures/client.js';
import { startTestCa } from '../fixtures/device-ca.js';

const run = promisify(execFile);

const ca = await startTestCa((c) => {
  c.publish.crlValiditySeconds = 300;
  c.publish.ocsp.validitySeconds = 60;
});
const upstream = await startEchoUpstream();
t.teardown(async () => {
  await upstream.close();
  await ca.close();
});

async function startProxy(name: string, revocation: Record<string, unknown>) {
  const file = join(ca.dir, `sidecar-${name}.yaml`);
  writeFileSync(
    file,
    stringify({
      version: 1,
      listen: { host: '127.0.0.1', port: 0 },
      tls: { cert: join(ca.dir, 'server.pem'), key: join(ca.dir, 'server.key') },
      clientAuth: { caBundle: ca.caBundleFiles, failureMode: 'http' },
      upstream: { url: upstream.url },
      admin: { enabled: false },
      revocation,
      log: { level: 'silent' },
    }),
  );
  return startSidecar(loadConfigFile(file), { logger: pino({ level: 'silent' }) });
}

// CRL: the proxy finds the CA's CRL through the distribution point in the device certificate.
const crlProxy = await startProxy('crl', { mode: 'crl', crl: { refreshIntervalSeconds: 1 } });
// OCSP: through the AIA URL; responses cached at most 1 s so a revocation shows quickly.
const ocspProxy = await startProxy('ocsp', { mode: 'ocsp', ocsp: { maxCacheTtlSeconds: 1, negativeCacheSeconds: 0 } });
t.teardown(() => Promise.all([crlProxy.close(1_000), ocspProxy.close(1_000)]));

const through = (port: number, device: DeviceEnrollment) =>
  call({ port, ca: ca.rootPem, cert: readFileSync(device.certFile, 'utf8'), key: readFileSync(device.keyFile, 'utf8'), path: '/api/balance' });

async function enroll(deviceId: string, keyAlgorithm: 'p256' | 'rsa2048') {
  const code = await ca.code(deviceId);
  return enrollDevice({ url: ca.ca.enrollUrl, caCertFile: ca.rootFile, deviceId, code, keyAlgorithm, outDir: join(ca.dir, deviceId) });
}

/** Polls until `refused` holds; resolves to the milliseconds it took (or -1 after `limitMs`). */
async function timeUntilRefused(port: number, device: DeviceEnrollment, limitMs = 15_000): Promise<number> {
  const start = performance.now();
  while (performance.now() - start < limitMs) {
    const r = await through(port, device);
    if (r.status !== 200) return Math.round(performance.now() - start);
    await new Promise((res) => setTimeout(res, 50));
  }
  return -1;
}

const phone = await enroll('phone-1', 'p256');
const tablet = await enroll('tablet-7', 'rsa2048');

t.test('an enrolled device passes both proxies with its device id injected', async (t) => {
  for (const [name, proxy] of [['crl', crlProxy], ['ocsp', ocspProxy]] as const) {
    for (const device of [phone, tablet]) {
      const r = await through(proxy.port, device);
      t.equal(r.status, 200, `${name}: ${device.deviceId} accepted`);
      const echo = r.json as EchoReply;
      t.equal(echo.headers['x-device-id'], device.deviceId, `${name}: X-Device-Id is the id the code was bound to`);
      t.equal(echo.headers['x-client-cert-serial'], device.serial.toUpperCase(), `${name}: the serial the CA issued`);
    }
  }
  t.equal(phone.keyAlgorithm, 'p256');
  t.equal(tablet.keyAlgorithm, 'rsa2048');
});

t.test('openssl accepts the CA\'s CRL and OCSP answers for an enrolled device', async (t) => {
  const crl = await ca.publish('GET', '/crl');
  t.equal(crl.status, 200);
  t.equal(crl.headers['content-type'], 'application/pkix-crl');
  const crlFile = join(ca.dir, 'current.crl');
  writeFileSync(crlFile, crl.body);
  const bundle = join(ca.dir, 'bundle.pem');
  writeFileSync(bundle, readFileSync(ca.issuingFile, 'utf8') + ca.rootPem);
  const { stdout: crlText, stderr: crlErr } = await run('openssl', ['crl', '-in', crlFile, '-inform', 'DER', '-CAfile', bundle, '-noout', '-text']);
  t.match(crlErr + crlText, /verify OK/, 'openssl crl verifies the signature');
  t.match(crlText, /Next Update:/);
  t.match(crlText, /X509v3 CRL Number/);
  const { stdout } = await run('openssl', ['ocsp', '-issuer', ca.issuingFile, '-cert', phone.certFile, '-url', `${ca.ca.publishUrl}/ocsp`, '-CAfile', bundle]);
  t.match(stdout, new RegExp(`${phone.certFile}: good`), 'openssl ocsp: good');
});

t.test('renewal rotates the key, keeps the device id and supersedes the old certificate', async (t) => {
  const before = phone.serial;
  const renewed = await renewDevice({ url: ca.ca.enrollUrl, caCertFile: ca.rootFile, dir: join(ca.dir, 'phone-1') });
  t.not(renewed.serial, before, 'a new serial');
  t.equal(renewed.deviceId, 'phone-1');
  const r = await through(crlProxy.port, renewed);
  t.equal(r.status, 200);
  t.equal((r.json as EchoReply).headers['x-device-id'], 'phone-1');
  const device = await ca.admin('GET', '/v1/admin/devices/phone-1');
  t.equal(device.status, 200);
  const old = device.json.certificates.find((c: { serial: string }) => c.serial === before);
  t.equal(old.status, 'revoked', 'the superseded certificate is revoked');
  t.equal(old.revocationReason, 'superseded');
  Object.assign(phone, renewed);
});

t.test('after revocation the proxy refuses the device, via CRL and via OCSP', async (t) => {
  t.equal((await through(crlProxy.port, phone)).status, 200, 'phone accepted before revocation');
  t.equal((await through(ocspProxy.port, tablet)).status, 200, 'tablet accepted before revocation');

  const revokePhone = await ca.admin('POST', '/v1/admin/revoke', { deviceId: 'phone-1', reason: 'keyCompromise' });
  t.equal(revokePhone.status, 200);
  t.same(revokePhone.json.revoked, [phone.serial]);
  const viaCrl = await timeUntilRefused(crlProxy.port, phone);
  t.ok(viaCrl >= 0 && viaCrl < 5_000, `CRL: refused ${viaCrl} ms after the revocation (refreshIntervalSeconds: 1)`);
  const refused = await through(crlProxy.port, phone);
  t.equal(refused.json?.reason, 'revoked', 'the reason is revoked');

  const revokeTablet = await ca.admin('POST', '/v1/admin/revoke', { serial: tablet.serial, reason: 'cessationOfOperation' });
  t.same(revokeTablet.json.revoked, [tablet.serial]);
  const viaOcsp = await timeUntilRefused(ocspProxy.port, tablet);
  t.ok(viaOcsp >= 0 && viaOcsp < 5_000, `OCSP: refused ${viaOcsp} ms after the revocation (maxCacheTtlSeconds: 1)`);
  t.comment(`revocation → refusal: CRL ${viaCrl} ms, OCSP ${viaOcsp} ms`);
  const metrics = await ca.ca.metrics.registry.metrics();
  t.match(metrics, /mtls_ca_ocsp_responses_total\{status="revoked"\} [1-9]/, 'OCSP answers are counted by status');
  t.match(metrics, /mtls_ca_crl_entries [2-9]/, 'the CRL lists the superseded and the revoked certificates');
  t.match(metrics, /mtls_ca_certificates_issued_total\{kind="renew",key_type="p256"\} 1/);

  const bundle = join(ca.dir, 'bundle.pem');
  const { stdout } = await run('openssl', ['ocsp', '-issuer', ca.issuingFile, '-cert', tablet.certFile, '-url', `${ca.ca.publishUrl}/ocsp`, '-CAfile', bundle]);
  t.match(stdout, /: revoked/, 'openssl ocsp: revoked');
  t.match(stdout, /Reason: cessationOfOperation/);

  const renewAfter = await renewDevice({ url: ca.ca.enrollUrl, caCertFile: ca.rootFile, dir: join(ca.dir, 'phone-1') }).catch((e: { fault?: string }) => e);
  t.equal((renewAfter as { fault?: string }).fault, 'revoked', 'a revoked device cannot renew');
});
