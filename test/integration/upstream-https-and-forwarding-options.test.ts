// An HTTPS upstream verified with its own CA, Host rewriting, and X-Forwarded-* append mode.
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { generateKey, issueCertificate } from '../../src/pki/index.js';
import { startEchoUpstream } from '../../src/dev/echo-upstream.js';
import { call } from '../fixtures/client.js';
import { createTestPki } from '../fixtures/pki.js';
import { startTestSidecar } from '../fixtures/sidecar.js';

const pki = await createTestPki();
const client = await pki.client({ deviceId: 'fwd-1' });
const echo = await startEchoUpstream();

// The upstream has its own, private CA (not the client CA, not a public root).
const upCaKey = await generateKey('p256');
const upCa = await issueCertificate({ subject: 'CN=Upstream Private CA', key: upCaKey, isCa: true });
const upKey = await generateKey('p256');
const upCert = await issueCertificate({ subject: 'CN=api.internal', key: upKey, issuer: { ...upCa, key: upCaKey }, san: { dns: ['api.internal'], ip: ['127.0.0.1'] }, extendedKeyUsage: ['serverAuth'] });
const upstream = https.createServer({ key: upKey.privateKeyPem, cert: upCert.pem }, (req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ tls: true, host: req.headers.host, deviceId: req.headers['x-device-id'] }));
});
await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
const upPort = (upstream.address() as AddressInfo).port;
const upCaFile = pki.write('upstream-ca.pem', upCa.pem);
t.teardown(async () => {
  upstream.closeAllConnections();
  await new Promise((r) => upstream.close(r));
  await echo.close();
  pki.cleanup();
});

const get = (port: number, headers = {}) => call({ port, ca: pki.rootPem, cert: client.chainPem, key: client.keyPem, headers });

t.test('https upstream verified with upstream.ca (by IP and by serverName)', async (t) => {
  const byIp = await startTestSidecar(pki, `https://127.0.0.1:${upPort}`, { upstream: { ca: upCaFile } });
  t.teardown(() => byIp.close());
  const res = await get(byIp.port);
  t.same(res.json, { tls: true, host: `127.0.0.1:${byIp.port}`, deviceId: 'fwd-1' });
  const byName = await startTestSidecar(pki, `https://127.0.0.1:${upPort}`, { upstream: { ca: upCaFile, serverName: 'api.internal' } });
  t.teardown(() => byName.close());
  t.equal((await get(byName.port)).json?.deviceId, 'fwd-1');
});

t.test('an https upstream that also offers HTTP/2 is still spoken to in HTTP/1.1', async (t) => {
  // undici 8 would pick h2 by ALPN; the headers the sidecar builds (Host, Connection, upgrades) are HTTP/1.1's.
  const h2 = http2.createSecureServer({ key: upKey.privateKeyPem, cert: upCert.pem, allowHTTP1: true }, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ httpVersion: req.httpVersion, deviceId: req.headers['x-device-id'] }));
  });
  await new Promise<void>((r) => h2.listen(0, '127.0.0.1', r));
  const sc = await startTestSidecar(pki, `https://127.0.0.1:${(h2.address() as AddressInfo).port}`, { upstream: { ca: upCaFile } });
  t.teardown(async () => {
    await sc.close();
    await new Promise((r) => h2.close(r));
  });
  t.same((await get(sc.port)).json, { httpVersion: '1.1', deviceId: 'fwd-1' });
});

t.test('an https upstream that does not verify gets 502 tls, never a silent downgrade', async (t) => {
  const wrongCa = await startTestSidecar(pki, `https://127.0.0.1:${upPort}`, { upstream: { ca: pki.caBundleFile } });
  t.teardown(() => wrongCa.close());
  const res = await get(wrongCa.port);
  t.equal(res.status, 502);
  t.same(res.json, { error: 'upstream_unavailable', reason: 'tls' });
  const wrongName = await startTestSidecar(pki, `https://127.0.0.1:${upPort}`, { upstream: { ca: upCaFile, serverName: 'other.internal' } });
  t.teardown(() => wrongName.close());
  t.equal((await get(wrongName.port)).json?.reason, 'tls');
});

t.test('preserveHost: false sends the upstream URL host', async (t) => {
  const sc = await startTestSidecar(pki, echo.url, { upstream: { preserveHost: false } });
  t.teardown(() => sc.close());
  const res = await get(sc.port);
  t.equal(res.json.headers.host, new URL(echo.url).host);
  t.equal(res.json.headers['x-forwarded-host'], `127.0.0.1:${sc.port}`, 'the original host is in X-Forwarded-Host');
});

t.test('forwardedHeaders: replace (default) drops client values; append keeps a trusted hop', async (t) => {
  const spoof = { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'http', 'x-forwarded-host': 'evil.example', forwarded: 'for=6.6.6.6' };
  const replace = await startTestSidecar(pki, echo.url);
  t.teardown(() => replace.close());
  const r = (await get(replace.port, spoof)).json.headers;
  t.equal(r['x-forwarded-for'], '127.0.0.1');
  t.equal(r['x-forwarded-proto'], 'https');
  t.equal(r['x-forwarded-host'], `127.0.0.1:${replace.port}`);
  t.equal(r.forwarded, undefined);
  const append = await startTestSidecar(pki, echo.url, { upstream: { forwardedHeaders: 'append' } });
  t.teardown(() => append.close());
  const a = (await get(append.port, spoof)).json.headers;
  t.equal(a['x-forwarded-for'], '6.6.6.6, 127.0.0.1');
  t.equal(a['x-forwarded-host'], 'evil.example');
});

t.test('keep-alive: many requests on one client connection reuse one upstream connection', async (t) => {
  const sc = await startTestSidecar(pki, echo.url);
  t.teardown(() => sc.close());
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: pki.rootPem, cert: client.chainPem, key: client.keyPem });
  t.teardown(() => agent.destroy());
  let upstreamConnections = 0;
  const onConn = () => upstreamConnections++;
  echo.server.on('connection', onConn);
  t.teardown(() => echo.server.off('connection', onConn));
  for (let i = 0; i < 20; i++) {
    const status = await new Promise<number | undefined>((resolve, reject) => {
      https.get({ host: '127.0.0.1', port: sc.port, servername: 'localhost', path: `/n/${i}`, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      }).on('error', reject);
    });
    t.equal(status, 200);
  }
  t.equal(upstreamConnections, 1, 'the upstream pool kept one connection alive');
});
