// What a reload or a changed revocation source does to connections and verdicts already under way:
// a CA removed by reload closes its open connections, a verdict reached on the old trust is not
// delivered, serving another CA's CRL at a CRL URL cannot make a revoked intermediate "unpublished",
// an intermediate learned from clients keeps its CRL source working across a reload, and an h2c
// upgrade (a tunnel the sidecar could not inspect) is refused. Each counts upstream hits.
import { readFile, writeFile } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { startEchoUpstream } from '../../src/dev/echo-upstream.js';
import { call } from '../fixtures/client.js';
import { crlOf, mint, type Minted } from '../fixtures/chain-corpus.js';
import { openKeepAlive, sleep } from '../fixtures/keep-alive.js';
import { freePort } from '../fixtures/net.js';
import { createTestPki } from '../fixtures/pki.js';
import { rawExchange, splitResponse } from '../fixtures/raw-request.js';
import { startTestSidecar } from '../fixtures/sidecar.js';
import { createOpensslPki, openssl } from '../fixtures/openssl-pki.js';

const pki = await createTestPki();
const echo = await startEchoUpstream();
t.teardown(async () => {
  await echo.close();
  pki.cleanup();
});
const root = await mint({ subject: 'CN=Trust Change Root', ca: true });
const via = (port: number) => (leaf: Minted, chain: Minted[]) => call({ port, ca: pki.rootPem, cert: [leaf, ...chain].map((m) => m.pem).join(''), key: leaf.key.privateKeyPem });

t.test('a CA removed by reload closes the open connections of its devices', async (t) => {
  const other = await mint({ subject: 'CN=Removed Root', ca: true });
  const leaf = await mint({ subject: 'CN=removed', issuer: other, uri: 'urn:device:removed-ca' });
  const stays = await mint({ subject: 'CN=stays', issuer: root, uri: 'urn:device:stays' });
  const file = pki.write('removed-bundle.pem', root.pem + other.pem);
  const sc = await startTestSidecar(pki, echo.url, { clientAuth: { caBundle: [file] } });
  t.teardown(() => sc.close());
  const gone = await openKeepAlive({ port: sc.port, ca: pki.rootPem, cert: leaf.pem, key: leaf.key.privateKeyPem });
  const kept = await openKeepAlive({ port: sc.port, ca: pki.rootPem, cert: stays.pem, key: stays.key.privateKeyPem });
  t.equal((await gone.get('/before')).status, 200, 'trusted: forwarded');
  t.equal((await kept.get('/before')).status, 200);
  writeFileSync(file, root.pem);
  sc.sidecar.reload('test');
  const before = echo.requests();
  t.match(await gone.get('/after'), { error: 'closed' }, 'the removed CA’s connection is closed');
  t.equal(echo.requests(), before, 'nothing reached the upstream');
  t.equal((await kept.get('/after')).status, 200, 'a connection under a CA that stays is untouched');
  t.match(await sc.sidecar.metrics.registry.getSingleMetricAsString('mtls_connections_closed_total'), /reason="untrusted"\} 1/);
  kept.close();
});

t.test('a verdict reached on the old trust is not delivered after a reload removed the CA', async (t) => {
  const ossl = await createOpensslPki();
  t.teardown(() => ossl.cleanup());
  const port = await freePort();
  const leaf = await ossl.issue('race', { ocsp: [`http://127.0.0.1:${port}/`] });
  let n = 0;
  // A slow but honest responder: `openssl ocsp` answers "good" after 1.5 s.
  const responder = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const reqPath = join(ossl.dir, `race-req-${++n}.der`);
      const respPath = join(ossl.dir, `race-resp-${n}.der`);
      await writeFile(reqPath, Buffer.concat(chunks));
      await openssl(['ocsp', '-index', 'index.txt', '-CA', 'ca.crt', '-rsigner', ossl.ca.certPath, '-rkey', ossl.ca.keyPath, '-reqin', reqPath, '-respout', respPath, '-nmin', '10'], ossl.dir);
      const body = await readFile(respPath);
      await sleep(1500);
      res.writeHead(200, { 'content-type': 'application/ocsp-response' }).end(body);
    });
  });
  await new Promise<void>((r) => responder.listen(port, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => responder.close(r)));
  const file = pki.write('race-bundle.pem', root.pem + (await readFile(ossl.root.certPath, 'utf8')));
  const sc = await startTestSidecar(pki, echo.url, { clientAuth: { caBundle: [file] }, revocation: { mode: 'ocsp', intermediates: 'skip', ocsp: { timeoutMs: 5000 } } });
  t.teardown(() => sc.close());
  const chain = (await readFile(leaf.certPath, 'utf8')) + (await readFile(ossl.ca.certPath, 'utf8'));
  const pending = call({ port: sc.port, ca: pki.rootPem, cert: chain, key: await readFile(leaf.keyPath, 'utf8') });
  await sleep(400);
  writeFileSync(file, root.pem); // the operator removes that root while the OCSP answer is awaited
  sc.sidecar.reload('test');
  const before = echo.requests();
  const r = await pending;
  t.not(r.status, 200, 'refused');
  t.equal(echo.requests(), before, 'nothing reached the upstream');
});

t.test("serving another CA's valid CRL at the root's CRL URL cannot make a revoked intermediate pass", async (t) => {
  const revokedCa = await mint({ subject: 'CN=Omitted Revoked CA', ca: true, issuer: root, pathLen: 0 });
  const device = await mint({ subject: 'CN=under-omitted', issuer: revokedCa, uri: 'urn:device:under-omitted' });
  let rootBody = await crlOf(root, [revokedCa], 'cACompromise');
  const issuingBody = await crlOf(revokedCa);
  const srv: Server = createServer((req, res) => res.end(req.url === '/root.crl' ? rootBody : issuingBody));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => srv.close(r)));
  const base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  const sc = await startTestSidecar(pki, echo.url, {
    clientAuth: { caBundle: [pki.write('omit-root.pem', root.pem)] },
    revocation: { mode: 'crl', crl: { urls: [`${base}/root.crl`, `${base}/issuing.crl`], refreshIntervalSeconds: 1, fetchDistributionPoints: false } },
  });
  t.teardown(() => sc.close());
  t.not((await via(sc.port)(device, [revokedCa])).status, 200, 'refused while the root CRL lists the CA');
  rootBody = issuingBody; // valid, current, signed by a known CA: just not the root's
  await sleep(2500);
  const before = echo.requests();
  t.not((await via(sc.port)(device, [revokedCa])).status, 200, 'still refused');
  t.equal(echo.requests(), before, 'nothing reached the upstream');
  t.ok(sc.logs.some((l) => String(l.msg).startsWith('source no longer provides the CRL')), 'the omission is logged');
});

t.test('an intermediate learned from clients keeps its CRL source working across a reload', async (t) => {
  const unrelated = await mint({ subject: 'CN=Unrelated Root', ca: true });
  let body = '';
  const srv: Server = createServer((_req, res) => res.end(body));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => srv.close(r)));
  const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/issuing.crl`;
  const issuing = await mint({ subject: 'CN=Learned Issuing', ca: true, issuer: root });
  const d1 = await mint({ subject: 'CN=l1', issuer: issuing, uri: 'urn:device:learned-1', cdp: [url] });
  const d2 = await mint({ subject: 'CN=l2', issuer: issuing, uri: 'urn:device:learned-2', cdp: [url] });
  body = await crlOf(issuing);
  const file = pki.write('learned-bundle.pem', root.pem);
  const sc = await startTestSidecar(pki, echo.url, { clientAuth: { caBundle: [file] }, revocation: { mode: 'crl', intermediates: 'skip', crl: { refreshIntervalSeconds: 1 } } });
  t.teardown(() => sc.close());
  t.equal((await via(sc.port)(d2, [issuing])).status, 200, 'd2 teaches the issuer; its CRL loads');
  writeFileSync(file, root.pem + unrelated.pem);
  sc.sidecar.reload('test');
  await sleep(1100);
  body = await crlOf(issuing, [d1]); // a newer CRL revoking d1, published after the reload
  await sleep(2500);
  const before = echo.requests();
  t.not((await via(sc.port)(d1, [issuing])).status, 200, 'd1 is refused');
  t.equal(echo.requests(), before, 'nothing reached the upstream');
});

t.test('a revocation learned while a verdict is pending is not missed', async (t) => {
  // The device's own CRL is read at once; the check of its CA waits for a slow distribution point.
  // The device is revoked in between: the verdict must be reached again, not delivered as "good".
  let rootCrl = await crlOf(root);
  const cdp: Server = createServer((_req, res) => void setTimeout(() => res.end(rootCrl), 3_000));
  await new Promise<void>((r) => cdp.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => {
    cdp.closeAllConnections();
    cdp.close(r);
  }));
  const url = `http://127.0.0.1:${(cdp.address() as AddressInfo).port}/root.crl`;
  const issuing = await mint({ subject: 'CN=Pending Issuing CA', ca: true, issuer: root, cdp: [url] });
  rootCrl = await crlOf(root);
  const leaf = await mint({ subject: 'CN=pending', issuer: issuing, uri: 'urn:device:pending' });
  const issuingCrlFile = pki.write('pending-issuing.crl', await crlOf(issuing));
  const sc = await startTestSidecar(pki, echo.url, {
    clientAuth: { caBundle: [pki.write('pending-root.pem', root.pem)], failureMode: 'http' },
    revocation: { mode: 'crl', crl: { files: [issuingCrlFile], filePollIntervalSeconds: 1, fetchTimeoutMs: 8_000 } },
  });
  t.teardown(() => sc.close());
  const before = echo.requests();
  const conn = await openKeepAlive({ port: sc.port, ca: pki.rootPem, cert: leaf.pem + issuing.pem, key: leaf.key.privateKeyPem });
  t.teardown(() => conn.close());
  const first = conn.get('/first'); // waits for the verdict
  await sleep(300);
  writeFileSync(issuingCrlFile, await crlOf(issuing, [leaf], 'keyCompromise'));
  await sleep(2_000);
  t.ok(sc.logs.some((l) => l.msg === 'CRL loaded' && l.entries === 1), 'the CRL listing the device loaded while the verdict was pending');
  const r1 = await first;
  t.not(r1.status, 200, 'the pending request is refused');
  t.equal(echo.requests(), before, 'nothing reached the upstream');
});

t.test('an h2c (or any non-WebSocket) upgrade is refused, never tunnelled', async (t) => {
  const leaf = await mint({ subject: 'CN=h2c', issuer: root, uri: 'urn:device:h2c' });
  const sc = await startTestSidecar(pki, echo.url, { clientAuth: { caBundle: [pki.write('h2c-root.pem', root.pem)] } });
  t.teardown(() => sc.close());
  const before = echo.requests();
  const text = await rawExchange(
    { port: sc.port, ca: pki.rootPem, cert: leaf.pem, key: leaf.key.privateKeyPem },
    'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n',
  );
  const { status, body } = splitResponse(text);
  t.equal(status, 400);
  t.match(body, /upgrade_not_allowed/);
  t.equal(echo.requests(), before, 'nothing reached the upstream');
});
