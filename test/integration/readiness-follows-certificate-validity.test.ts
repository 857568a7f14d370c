// /readyz's certificatesLoaded says whether the data path can accept anyone with the material it
// serves: the serving certificate within its validity window and a root of the bundle that is.
// Loading refuses an expired serving certificate, but nothing reloads one that expires while its
// files stay the same, and no client path can end at an expired root or at no root at all.
import { X509Certificate } from 'node:crypto';
import t from 'tap';
import { startEchoUpstream } from '../../src/dev/echo-upstream.js';
import { generateKey, issueCertificate } from '../../src/pki/index.js';
import { materialCanServe } from '../../src/serve/serving-material.js';
import { loadTlsMaterial } from '../../src/tls/index.js';
import { createTrustIndex } from '../../src/verify/index.js';
import { createTestPki } from '../fixtures/pki.js';
import { startTestSidecar } from '../fixtures/sidecar.js';

const pki = await createTestPki();
const echo = await startEchoUpstream();
t.teardown(async () => {
  await echo.close();
  pki.cleanup();
});

async function readyz(adminUrl: string | undefined): Promise<{ status: number; checks: Record<string, boolean> }> {
  const res = await fetch(`${adminUrl}/readyz`);
  return { status: res.status, checks: ((await res.json()) as { checks: Record<string, boolean> }).checks };
}

t.test('a serving certificate that expires while served turns readiness false', async (t) => {
  const key = await generateKey('p256');
  // Certificate times are whole seconds: at least 2 s of validity left when it is loaded.
  const notAfter = new Date(Math.ceil((Date.now() + 3_000) / 1000) * 1000);
  const server = await issueCertificate({ subject: 'CN=localhost', key, issuer: pki.root, notAfter, san: { dns: ['localhost'], ip: ['127.0.0.1'] }, extendedKeyUsage: ['serverAuth'] });
  const sc = await startTestSidecar(pki, echo.url, { tls: { cert: pki.write('short-lived.pem', server.pem), key: pki.write('short-lived.key', key.privateKeyPem) } });
  t.teardown(() => sc.close());
  const before = await readyz(sc.adminUrl);
  t.equal(before.status, 200, 'ready while the serving certificate is valid');
  t.equal(before.checks.certificatesLoaded, true);
  await new Promise((r) => setTimeout(r, notAfter.getTime() + 1_100 - Date.now()));
  const after = await readyz(sc.adminUrl);
  t.equal(after.status, 503, 'not ready once it expired');
  t.equal(after.checks.certificatesLoaded, false);
  t.equal(after.checks.listening, true, 'only the certificate check fails');
});

t.test('the bundle needs a root valid now', async (t) => {
  const material = loadTlsMaterial({ cert: pki.serverCertFile, key: pki.serverKeyFile, caBundle: [pki.caBundleFile] });
  const trust = createTrustIndex(material.caCertificates);
  const now = Date.now();
  t.equal(materialCanServe(material, trust, now), true, 'the test PKI can serve now');
  const rootEnd = Date.parse(new X509Certificate(pki.root.pem).validTo);
  t.equal(materialCanServe(material, trust, rootEnd + 1_000), false, 'not once the root (and the server certificate) expired');
  t.equal(materialCanServe(material, trust, Date.parse(material.serverCertificate.validFrom) - 1_000), false, 'not before the serving certificate is valid');
  const onlyIntermediate = createTrustIndex([new X509Certificate(pki.intermediate.pem)]);
  t.equal(materialCanServe(material, onlyIntermediate, now), false, 'not with no root at all: no path can end');
  const expiredRootKey = await generateKey('p256');
  const expiredRoot = await issueCertificate({ subject: 'CN=Expired Root', key: expiredRootKey, isCa: true, notBefore: new Date(now - 7_200_000), notAfter: new Date(now - 3_600_000) });
  t.equal(materialCanServe(material, createTrustIndex([new X509Certificate(expiredRoot.pem), new X509Certificate(pki.intermediate.pem)]), now), false, 'not when the only root expired');
});
