// /readyz's certificatesLoaded says whether the data path can accept anyone with the material it
// serves: the serving certificate within its validity window and a root of the bundle that is.
// Loading refuses an expired serving certificate, but nothing reloads one that expires while its
// files stay the same, and no client path can end at an expired root or at no root at all.
import t from 'tap';
import { startEchoUpstream } from '../../src/dev/echo-upstream.js';
import { generateKey, issueCertificate } from '../../src/pki/index.js';
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

t.test('a bundle without a root valid now is not ready', async (t) => {
  const now = Date.now();
  const expiredRootKey = await generateKey('p256');
  const expiredRoot = await issueCertificate({ subject: 'CN=Expired Root', key: expiredRootKey, isCa: true, notBefore: new Date(now - 7_200_000), notAfter: new Date(now - 3_600_000) });
  const bundles = {
    'only an intermediate (no path can end)': pki.write('only-intermediate.pem', pki.intermediate.pem),
    'an expired root': pki.write('expired-root.pem', expiredRoot.pem),
    'an expired root and an intermediate': pki.write('expired-root-and-intermediate.pem', expiredRoot.pem + pki.intermediate.pem),
  };
  for (const [name, bundle] of Object.entries(bundles)) {
    const sc = await startTestSidecar(pki, echo.url, { clientAuth: { caBundle: [bundle] } });
    const r = await readyz(sc.adminUrl);
    await sc.close();
    t.equal(r.status, 503, `${name}: not ready`);
    t.equal(r.checks.certificatesLoaded, false, `${name}: certificatesLoaded is false`);
  }
  const sc = await startTestSidecar(pki, echo.url);
  t.teardown(() => sc.close());
  t.equal((await readyz(sc.adminUrl)).checks.certificatesLoaded, true, 'the test PKI (a valid root) is');
});
