/**
 * A sidecar's CRL source polling the device CA's /crl: conditional requests, answered 304, and a
 * parse only when the CRL changed (the sidecar's crlPolled hook, behind mtls_crl_polls_total, and
 * the CA's mtls_ca_requests_total{result="not_modified"} say so); with the default settings a
 * revocation at the CA is known to the sidecar within the 5 s. The CA's answers to curl:
 * test/integration/ca-crl-conditional-requests.test.ts.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { revocationSchema } from '../../src/config/revocation-schema.js';
import { enrollDevice } from '../../src/device/index.js';
import { createRevocationChecker } from '../../src/revocation/index.js';
import { startTestCa } from '../fixtures/device-ca.js';
import { captureLogger } from '../fixtures/capturing-logger.js';
import { waitFor } from '../fixtures/wait.js';

const ca = await startTestCa();
t.teardown(() => ca.close());
const trustedCas = [new X509Certificate(ca.rootPem), new X509Certificate(readFileSync(ca.issuingFile))];
const crlUrl = `${ca.ca.publishUrl}/crl`;

/** Enrolls `deviceId`; resolves to its certificate. */
async function enrollOne(deviceId: string): Promise<X509Certificate> {
  const device = await enrollDevice({ url: ca.ca.enrollUrl, caCertFile: ca.rootFile, deviceId, code: await ca.code(deviceId), outDir: join(ca.dir, deviceId) });
  return new X509Certificate(readFileSync(device.certFile));
}

async function revoke(deviceId: string): Promise<void> {
  const r = await ca.admin('POST', '/v1/admin/revoke', { deviceId, reason: 'keyCompromise' });
  if (r.status !== 200) throw new Error(`revoke ${deviceId}: ${r.status}`);
}

const notModifiedCount = async (): Promise<number> => {
  const metric = await ca.ca.metrics.requests.get();
  return metric.values.find((v) => v.labels.route === 'crl' && v.labels.result === 'not_modified')?.value ?? 0;
};

t.test('a CRL source polling the CA: conditional requests, parsed only when the CRL changed', async (t) => {
  const leaf = await enrollOne('polled-phone');
  const polls: string[] = [];
  const logger = captureLogger();
  const options = revocationSchema.parse({ mode: 'crl', crl: { urls: [crlUrl], refreshIntervalSeconds: 1, fetchDistributionPoints: false } });
  const checker = createRevocationChecker(options, { trustedCas, logger, observer: { crlPolled: (kind, result) => polls.push(`${kind}:${result}`) } });
  t.teardown(() => checker.close());
  await checker.ready();
  t.equal((await checker.check(leaf, trustedCas[1]!)).status, 'good');
  const before = await notModifiedCount();
  t.ok(await waitFor(() => polls.filter((p) => p === 'url:not_modified').length >= 2, 8_000), `the CA answers 304 to its polls (${polls.join(', ')})`);
  t.equal(polls.filter((p) => p === 'url:parsed').length, 1, 'parsed once');
  t.equal(logger.find('info', 'CRL loaded').length, 1);
  t.ok((await notModifiedCount()) >= before + 2, "the CA's metrics count them");

  const revoked: string[] = [];
  checker.onRevoked((_issuer, serial) => revoked.push(serial));
  await revoke('polled-phone');
  t.ok(await waitFor(() => revoked.length > 0, 5_000), 'the revocation is seen');
  t.equal(polls.filter((p) => p === 'url:parsed').length, 2, 'parsed again once the CRL changed');
});

t.test('default settings: a revocation at the CA is seen within 5 s', async (t) => {
  const leaf = await enrollOne('default-phone');
  const options = revocationSchema.parse({ mode: 'crl', crl: { urls: [crlUrl] } });
  const checker = createRevocationChecker(options, { trustedCas, logger: captureLogger() });
  t.teardown(() => checker.close());
  await checker.ready();
  t.equal((await checker.check(leaf, trustedCas[1]!)).status, 'good');
  const revoked: number[] = [];
  checker.onRevoked(() => revoked.push(performance.now()));
  const start = performance.now();
  await revoke('default-phone');
  t.ok(await waitFor(() => revoked.length > 0, 6_000), 'seen');
  const ms = Math.round((revoked[0] ?? Infinity) - start);
  t.ok(ms < 5_000, `revoke → known to the sidecar in ${ms} ms (refreshIntervalSeconds ${options.crl.refreshIntervalSeconds})`);
});
