// With workers: 2 the one admin endpoint aggregates every worker's metrics. prom-client sums by
// default, which doubled every timestamp gauge (a server-certificate expiry in the year 2084, so
// the expiry and stale-CRL alerts could never fire). Each gauge must read as it does with one worker.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import t from 'tap';
import { startEchoUpstream } from '../../src/dev/echo-upstream.js';
import { issueCrl } from '../../src/pki/index.js';
import { startCliSidecar } from '../fixtures/cli-process.js';
import { createTestPki } from '../fixtures/pki.js';

const pki = await createTestPki();
const echo = await startEchoUpstream();
t.teardown(async () => {
  await echo.close();
  pki.cleanup();
});

t.test('every gauge family reads the same with two workers', { skip: availableParallelism() < 2 ? 'needs 2 cores' : false }, async (t) => {
  const nextUpdate = new Date(Date.now() + 3_600_000);
  const crl = pki.write('gauges.crl', (await issueCrl({ issuer: pki.root, nextUpdate, revoked: [{ serialHex: '0a0b0c' }] })).pem);
  const started = Date.now() / 1000;
  const sc = await startCliSidecar(pki, echo.url, { workers: 2, revocation: { mode: 'crl', crl: { files: [crl], fetchDistributionPoints: false } } });
  t.teardown(() => sc.child.kill('SIGKILL'));
  let text = '';
  for (let i = 0; i < 150; i++) {
    if (await fetch(`${sc.adminUrl}/readyz`).then((r) => r.status === 200, () => false)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  text = await (await fetch(`${sc.adminUrl}/metrics`)).text();
  const value = (name: string, label = ''): number => {
    const line = text.split('\n').find((l) => l.startsWith(name) && (label === '' || l.includes(label)) && !l.startsWith('#'));
    return Number(line?.split(' ').pop());
  };
  const server = new X509Certificate(pki.serverCertPem);
  t.equal(value('mtls_server_cert_expiry_timestamp_seconds'), Date.parse(server.validTo) / 1000, 'server certificate expiry, not doubled');
  t.equal(value('mtls_ca_cert_expiry_timestamp_seconds', 'Test Root CA'), Date.parse(new X509Certificate(pki.rootPem).validTo) / 1000, 'CA expiry');
  t.equal(value('mtls_crl_next_update_timestamp_seconds'), Math.floor(nextUpdate.getTime() / 1000), 'CRL nextUpdate');
  t.equal(value('mtls_crl_entries'), 1, 'CRL entries');
  const refreshed = value('mtls_crl_last_refresh_timestamp_seconds');
  t.ok(refreshed >= started - 1 && refreshed <= Date.now() / 1000 + 1, `CRL last refresh is a time of this run (${refreshed})`);
  const reloaded = value('mtls_reload_last_success_timestamp_seconds');
  t.ok(reloaded >= started - 1 && reloaded <= Date.now() / 1000 + 1, `last reload is a time of this run (${reloaded})`);
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  t.equal(value('mtls_sidecar_build_info', `version="${pkg.version}"`), 1, 'build info is 1, not one per worker');
  sc.child.kill('SIGTERM');
  t.equal(await sc.exited, 0);
});
