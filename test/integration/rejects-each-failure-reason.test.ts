// Every failure reason, in both failure modes, over real TLS: the right reason is logged (and in
// `http` mode returned as JSON), and not one request reaches the upstream.
import t from 'tap';
import { startEchoUpstream } from '../../src/dev/echo-upstream.js';
import { call } from '../fixtures/client.js';
import { createTestPki, type ClientSpec } from '../fixtures/pki.js';
import { startTestSidecar } from '../fixtures/sidecar.js';

const pki = await createTestPki();
const echo = await startEchoUpstream();
t.teardown(async () => {
  await echo.close();
  pki.cleanup();
});

const day = 86_400_000;
const cases: Array<{ reason: string; spec?: ClientSpec; noCert?: boolean }> = [
  { reason: 'no_certificate', noCert: true },
  { reason: 'unknown_ca', spec: { issuer: 'foreign' } },
  { reason: 'unknown_ca', spec: { sendChain: false } }, // the intermediate is neither sent nor configured
  { reason: 'expired', spec: { notBefore: new Date(Date.now() - 10 * day), notAfter: new Date(Date.now() - day) } },
  { reason: 'not_yet_valid', spec: { notBefore: new Date(Date.now() + day), notAfter: new Date(Date.now() + 10 * day) } },
  { reason: 'bad_signature', spec: { badSignature: true } },
  { reason: 'bad_key_usage', spec: { eku: ['serverAuth'] } },
  { reason: 'bad_key_usage', spec: { eku: null } }, // requireClientAuthEku: true by default
  { reason: 'chain_too_long', spec: { issuer: 'deep' } },
];

for (const mode of ['http', 'reject'] as const) {
  t.test(`failureMode ${mode}`, async (t) => {
    const sc = await startTestSidecar(pki, echo.url, { clientAuth: { failureMode: mode } });
    t.teardown(() => sc.close());
    for (const c of cases) {
      const before = echo.requests();
      const client = c.noCert ? undefined : await pki.client(c.spec);
      const res = await call({ port: sc.port, ca: pki.rootPem, cert: client?.chainPem, key: client?.keyPem, path: '/secret' });
      const label = `${c.reason}${c.spec ? ` ${JSON.stringify(c.spec)}` : ''}`;
      if (mode === 'http') {
        t.equal(res.status, c.reason === 'no_certificate' ? 401 : 403, `${label}: status`);
        t.same(res.json, { error: 'client_certificate_rejected', reason: c.reason }, `${label}: JSON body`);
      } else {
        t.ok(res.error, `${label}: connection refused (${res.error?.code})`);
        t.equal(res.status, undefined, `${label}: no HTTP response`);
      }
      t.equal(echo.requests(), before, `${label}: nothing reached the upstream`);
      const logged = sc.logs.filter((l) => l.event === 'handshake_rejected').at(-1);
      t.equal(logged?.reason, c.reason, `${label}: logged reason`);
    }
    // And the sidecar still serves a good client after all that.
    const good = await pki.client();
    const ok = await call({ port: sc.port, ca: pki.rootPem, cert: good.chainPem, key: good.keyPem });
    t.equal(ok.status, 200, 'a good client still passes');
  });
}

t.test('requireClientAuthEku: false accepts a certificate without EKU, still refuses a wrong EKU', async (t) => {
  const sc = await startTestSidecar(pki, echo.url, { clientAuth: { failureMode: 'http', requireClientAuthEku: false } });
  t.teardown(() => sc.close());
  const noEku = await pki.client({ eku: null });
  t.equal((await call({ port: sc.port, ca: pki.rootPem, cert: noEku.chainPem, key: noEku.keyPem })).status, 200);
  const wrong = await pki.client({ eku: ['serverAuth'] });
  const res = await call({ port: sc.port, ca: pki.rootPem, cert: wrong.chainPem, key: wrong.keyPem });
  t.equal(res.json?.reason, 'bad_key_usage');
});

t.test('maxChainDepth is configurable', async (t) => {
  const sc = await startTestSidecar(pki, echo.url, { clientAuth: { failureMode: 'http', maxChainDepth: 4 } });
  t.teardown(() => sc.close());
  const deep = await pki.client({ issuer: 'deep' });
  t.equal((await call({ port: sc.port, ca: pki.rootPem, cert: deep.chainPem, key: deep.keyPem })).status, 200, 'four CAs allowed at depth 4');
  const tight = await startTestSidecar(pki, echo.url, { clientAuth: { failureMode: 'http', maxChainDepth: 1 } });
  t.teardown(() => tight.close());
  const viaInt = await pki.client();
  t.equal((await call({ port: tight.port, ca: pki.rootPem, cert: viaInt.chainPem, key: viaInt.keyPem })).json?.reason, 'chain_too_long');
  const direct = await pki.client({ issuer: 'root' });
  t.equal((await call({ port: tight.port, ca: pki.rootPem, cert: direct.chainPem, key: direct.keyPem })).status, 200, 'root-issued passes at depth 1');
});
