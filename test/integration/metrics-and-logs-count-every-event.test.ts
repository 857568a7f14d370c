// After a scripted mix of good and bad clients, /metrics shows exactly that mix by reason, the
// logs carry one line per event with the documented fields, bad-handshake lines are rate-limited
// with a summary, and /healthz and /readyz mean what they say.
import t from 'tap';
import { startEchoUpstream } from '../../src/dev/echo-upstream.js';
import { call } from '../fixtures/client.js';
import { sampleValue, scrapeMetrics } from '../fixtures/metrics-text.js';
import { createTestPki } from '../fixtures/pki.js';
import { startTestSidecar, type TestSidecar } from '../fixtures/sidecar.js';

const pki = await createTestPki();
const echo = await startEchoUpstream();
t.teardown(async () => {
  await echo.close();
  pki.cleanup();
});

const scrape = (sc: TestSidecar) => scrapeMetrics(sc.adminUrl);
const sample = sampleValue;

const day = 86_400_000;

t.test('a scripted mix shows up exactly, by reason', async (t) => {
  const sc = await startTestSidecar(pki, echo.url, { clientAuth: { failureMode: 'http' } });
  t.teardown(() => sc.close());
  const good = await pki.client({ deviceId: 'metrics-good' });
  const expired = await pki.client({ notBefore: new Date(Date.now() - 10 * day), notAfter: new Date(Date.now() - day) });
  const foreign = await pki.client({ issuer: 'foreign' });
  const before = await scrape(sc);

  for (let i = 0; i < 3; i++) t.equal((await call({ port: sc.port, ca: pki.rootPem, cert: good.chainPem, key: good.keyPem, path: `/ok/${i}?token=secret` })).status, 200);
  for (let i = 0; i < 2; i++) await call({ port: sc.port, ca: pki.rootPem, cert: expired.chainPem, key: expired.keyPem });
  await call({ port: sc.port, ca: pki.rootPem, cert: foreign.chainPem, key: foreign.keyPem });
  for (let i = 0; i < 4; i++) await call({ port: sc.port, ca: pki.rootPem });
  await new Promise((r) => setTimeout(r, 100));
  const after = await scrape(sc);

  const delta = (name: string, labels: Record<string, string>) => sample(after, name, labels) - sample(before, name, labels);
  t.equal(delta('mtls_handshakes_total', { result: 'accepted', reason: 'none', tls_version: 'TLSv1.3' }), 3, 'accepted +3');
  t.equal(delta('mtls_handshakes_total', { result: 'rejected', reason: 'expired', tls_version: 'TLSv1.3' }), 2, 'expired +2');
  t.equal(delta('mtls_handshakes_total', { result: 'rejected', reason: 'unknown_ca', tls_version: 'TLSv1.3' }), 1, 'unknown_ca +1');
  t.equal(delta('mtls_handshakes_total', { result: 'rejected', reason: 'no_certificate', tls_version: 'TLSv1.3' }), 4, 'no_certificate +4');
  t.equal(delta('mtls_requests_total', { route: 'default', method: 'GET', status_class: '2xx' }), 3);
  t.equal(delta('mtls_requests_total', { route: 'default', method: 'GET', status_class: '4xx' }), 7, 'the refusals answered in http mode');
  t.equal(delta('mtls_handshake_duration_seconds_count', { result: 'accepted' }), 3);
  t.equal(delta('mtls_client_cert_remaining_validity_seconds_count', {}), 3);
  t.equal(sample(after, 'mtls_active_connections'), 0, 'no connection left open');
  t.ok(sample(after, 'mtls_server_cert_expiry_timestamp_seconds') > Date.now() / 1000, 'server cert expiry exported');
  t.ok(sample(after, 'mtls_ca_cert_expiry_timestamp_seconds', { ca: 'O=mtls-sidecar tests,CN=Test Root CA' }) > Date.now() / 1000, 'CA expiry exported, labelled by the CA');
  t.ok(sample(after, 'process_resident_memory_bytes') > 0, 'default process metrics');
  t.notMatch(after, /metrics-good|secret/, 'no device id or query string in any label');

  const access = sc.logs.filter((l) => l.event === 'access' && l.deviceId === 'metrics-good');
  t.equal(access.length, 3, 'one access line per forwarded request');
  const a = access[0]!;
  for (const field of ['time', 'deviceId', 'fingerprint', 'method', 'path', 'status', 'bytes', 'durationMs', 'upstreamMs', 'tls']) t.ok(a[field] !== undefined, `access line has ${field}`);
  t.equal(a.path, '/ok/0', 'the query string is not logged');
  t.equal(a.status, 200);
  t.equal(sc.logs.filter((l) => l.event === 'handshake_rejected').length, 7, 'one line per rejected handshake');
  const rejected = sc.logs.find((l) => l.event === 'handshake_rejected' && l.reason === 'unknown_ca')!;
  t.match(rejected, { remote: '127.0.0.1', peer: { subject: /CN=device-/, issuer: 'O=somebody else,CN=Test Root CA' } });
  t.notMatch(JSON.stringify(sc.logs), /PRIVATE KEY|BEGIN CERTIFICATE/, 'no key or certificate material in logs');
});

t.test('upstream errors are counted by kind', async (t) => {
  const sc = await startTestSidecar(pki, 'http://127.0.0.1:9');
  t.teardown(() => sc.close());
  const good = await pki.client();
  await call({ port: sc.port, ca: pki.rootPem, cert: good.chainPem, key: good.keyPem });
  const text = await scrape(sc);
  t.equal(sample(text, 'mtls_upstream_errors_total', { kind: 'refused' }), 1);
  t.equal(sample(text, 'mtls_requests_total', { route: 'default', method: 'GET', status_class: '5xx' }), 1);
});

t.test('a flood of bad handshakes is rate-limited with a summary line', async (t) => {
  const sc = await startTestSidecar(pki, echo.url, { log: { rateLimit: { perSecond: 1, burst: 3, summaryIntervalSeconds: 1 } } });
  t.teardown(() => sc.close());
  for (let i = 0; i < 12; i++) await call({ port: sc.port, ca: pki.rootPem });
  await new Promise((r) => setTimeout(r, 1_300));
  const lines = sc.logs.filter((l) => l.event === 'handshake_rejected').length;
  t.ok(lines >= 3 && lines <= 5, `${lines} lines written for 12 refusals (burst 3, 1/s)`);
  const summary = sc.logs.find((l) => l.event === 'log_suppressed');
  t.ok(summary, 'a summary line');
  t.equal((summary as { suppressed?: number }).suppressed, 12 - lines);
  t.same((summary as { byReason?: unknown }).byReason, { no_certificate: 12 - lines });
  const text = await scrape(sc);
  t.equal(sample(text, 'mtls_logs_suppressed_total', { event: 'handshake_rejected' }), 12 - lines);
  t.equal(sample(text, 'mtls_handshakes_total', { result: 'rejected', reason: 'no_certificate', tls_version: 'TLSv1.3' }), 12, 'metrics still count every one');
});

t.test('healthz, readyz, and nothing else on the admin port; no admin on the data port', async (t) => {
  const sc = await startTestSidecar(pki, echo.url);
  const health = await fetch(`${sc.adminUrl}/healthz`);
  t.equal(health.status, 200);
  const ready = await fetch(`${sc.adminUrl}/readyz`);
  t.equal(ready.status, 200);
  t.same(await ready.json(), { ready: true, checks: { certificatesLoaded: true, listening: true, notDraining: true } });
  t.equal((await fetch(`${sc.adminUrl}/admin`)).status, 404);
  t.equal((await fetch(`${sc.adminUrl}/metrics`, { method: 'POST' })).status, 405);
  const good = await pki.client();
  const onData = await call({ port: sc.port, ca: pki.rootPem, cert: good.chainPem, key: good.keyPem, path: '/metrics' });
  t.equal(onData.json?.url, '/metrics', 'on the data port /metrics is just forwarded to the upstream');
  // Draining: readiness turns false before the listener goes away.
  const closing = sc.close();
  const draining = await fetch(`${sc.adminUrl}/readyz`).then((r) => r.status, () => 'closed');
  t.ok(draining === 503 || draining === 'closed', `readiness while draining: ${draining}`);
  await closing;
});
