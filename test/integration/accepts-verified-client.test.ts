// A verified client (P-256 and RSA-2048, with a client-sent intermediate) reaches the upstream with
// every identity header, correctly valued.
import { X509Certificate, createHash } from 'node:crypto';
import t from 'tap';
import { call } from '../fixtures/client.js';
import { startSidecarWithEcho, startTestSidecar } from '../fixtures/sidecar.js';

const { pki, echo, sc } = await startSidecarWithEcho(t);

for (const alg of ['p256', 'rsa2048'] as const) {
  t.test(`${alg} client through an intermediate`, async (t) => {
    const client = await pki.client({ alg, deviceId: `phone-${alg}`, san: { uri: [`urn:device:phone-${alg}`, 'https://app.example/x'], dns: ['phone.example'] } });
    const res = await call({ port: sc.port, ca: pki.rootPem, cert: client.chainPem, key: client.keyPem, path: '/v1/accounts?x=1', method: 'POST', body: 'hello' });
    t.equal(res.status, 200);
    const h = res.json.headers as Record<string, string>;
    const x = new X509Certificate(client.certPem);
    t.equal(h['x-client-verified'], 'SUCCESS');
    t.equal(h['x-device-id'], `phone-${alg}`);
    t.equal(h['x-client-cert-subject'], `O=Test Devices,CN=phone-${alg}`);
    t.equal(h['x-client-cert-issuer'], 'O=mtls-sidecar tests,CN=Test Device Issuing CA');
    t.equal(h['x-client-cert-serial'], x.serialNumber.toUpperCase());
    t.equal(h['x-client-cert-fingerprint-sha256'], createHash('sha256').update(x.raw).digest('hex'));
    t.equal(h['x-client-cert-not-after'], new Date(x.validTo).toISOString());
    t.equal(h['x-client-cert-san-uri'], `urn:device:phone-${alg}, https://app.example/x`);
    t.equal(h['x-client-cert-san-dns'], 'phone.example');
    t.equal(h['x-forwarded-proto'], 'https');
    t.equal(h['x-forwarded-for'], '127.0.0.1');
    t.equal(h['x-forwarded-port'], String(sc.port));
    t.equal(h.host, `127.0.0.1:${sc.port}`, 'Host preserved');
    t.equal(h['x-client-cert'], undefined, 'PEM not sent unless enabled');
    t.equal(res.json.method, 'POST');
    t.equal(res.json.url, '/v1/accounts?x=1');
    t.equal(res.json.bodyBytes, 5);
  });
}

t.test('optional PEM, XFCC and RFC 9440 headers', async (t) => {
  const full = await startTestSidecar(pki, echo.url, {
    identity: { includeCertPem: true, xfcc: { enabled: true, includeCert: true, by: 'spiffe://cluster.local/ns/a/sa/api' }, rfc9440: { enabled: true } },
  });
  t.teardown(() => full.close());
  const client = await pki.client({ deviceId: 'xf-1', san: { uri: ['urn:device:xf-1'], dns: ['a.example', 'b.example'] } });
  const res = await call({ port: full.port, ca: pki.rootPem, cert: client.chainPem, key: client.keyPem });
  const h = res.json.headers as Record<string, string>;
  const x = new X509Certificate(client.certPem);
  const hash = createHash('sha256').update(x.raw).digest('hex');
  t.equal(decodeURIComponent(h['x-client-cert']!), x.toString().trim() + '\n');
  t.equal(
    h['x-forwarded-client-cert'],
    `By=spiffe://cluster.local/ns/a/sa/api;Hash=${hash};Cert="${encodeURIComponent(x.toString().trim() + '\n')}";Subject="O=Test Devices,CN=xf-1";URI=urn:device:xf-1;DNS=a.example;DNS=b.example`,
  );
  t.equal(h['client-cert'], `:${x.raw.toString('base64')}:`);
  const inter = new X509Certificate(pki.intermediate.pem);
  t.equal(h['client-cert-chain'], `:${inter.raw.toString('base64')}:`, 'chain = the intermediate, not the root');
});

t.test('device id rules: spiffe, dns, cn and serial fallbacks', async (t) => {
  const cases = [
    { san: { uri: ['spiffe://example.org/ns/mobile/device/7'] }, want: 'spiffe://example.org/ns/mobile/device/7' },
    { san: { dns: ['dev7.devices.example'] }, want: 'dev7.devices.example' },
    { san: {}, subject: 'CN=by-cn,O=X', want: 'by-cn' },
  ];
  for (const c of cases) {
    const client = await pki.client({ san: c.san, ...(c.subject ? { subject: c.subject } : {}) });
    const res = await call({ port: sc.port, ca: pki.rootPem, cert: client.chainPem, key: client.keyPem });
    t.equal(res.json?.headers['x-device-id'], c.want, c.want);
  }
  const serialOnly = await startTestSidecar(pki, echo.url, { identity: { deviceId: [{ source: 'serial' }] } });
  t.teardown(() => serialOnly.close());
  const client = await pki.client({ serialHex: '0a1b2c3d4e5f' });
  const res = await call({ port: serialOnly.port, ca: pki.rootPem, cert: client.chainPem, key: client.keyPem });
  t.equal(res.json?.headers['x-device-id'], new X509Certificate(client.certPem).serialNumber.toUpperCase());
  t.match(res.json?.headers['x-device-id'], /^0?A1B2C3D4E5F$/);
  const strict = await startTestSidecar(pki, echo.url, { identity: { deviceId: [{ source: 'uri', prefix: 'urn:device:' }] }, clientAuth: { failureMode: 'http' } });
  t.teardown(() => strict.close());
  const noId = await pki.client({ san: { dns: ['x.example'] } });
  const refused = await call({ port: strict.port, ca: pki.rootPem, cert: noId.chainPem, key: noId.keyPem });
  t.same(refused.json, { error: 'client_certificate_rejected', reason: 'no_device_id' });
});

t.test('several roots in several bundle files are all trusted', async (t) => {
  const second = pki.write('second-root.pem', pki.foreignRootPem);
  const both = await startTestSidecar(pki, echo.url, { clientAuth: { caBundle: [pki.caBundleFile, second] } });
  t.teardown(() => both.close());
  const ours = await pki.client({ deviceId: 'root-a' });
  const theirs = await pki.client({ deviceId: 'root-b', issuer: 'foreign' });
  t.equal((await call({ port: both.port, ca: pki.rootPem, cert: ours.chainPem, key: ours.keyPem })).json?.headers['x-device-id'], 'root-a');
  t.equal((await call({ port: both.port, ca: pki.rootPem, cert: theirs.chainPem, key: theirs.keyPem })).json?.headers['x-device-id'], 'root-b');
  t.match((await call({ port: both.port, ca: pki.rootPem, cert: theirs.chainPem, key: theirs.keyPem })).json?.headers['x-client-cert-issuer'], 'O=somebody else');
});

t.test('an intermediate configured in the bundle lets clients omit it', async (t) => {
  const bundle = pki.write('root-and-intermediate.pem', pki.rootPem + pki.intermediate.pem);
  const sc2 = await startTestSidecar(pki, echo.url, { clientAuth: { caBundle: [bundle] } });
  t.teardown(() => sc2.close());
  const leafOnly = await pki.client({ deviceId: 'no-chain', sendChain: false });
  t.equal((await call({ port: sc2.port, ca: pki.rootPem, cert: leafOnly.chainPem, key: leafOnly.keyPem })).json?.headers['x-device-id'], 'no-chain');
});
