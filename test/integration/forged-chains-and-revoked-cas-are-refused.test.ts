// The verification core over real TLS: a look-alike intermediate sent before the real one cannot
// become "the issuer" (for revocation, Client-Cert-Chain or the depth limit), a revoked
// intermediate locks out every device under it, a distribution point cannot swap in another CA's
// CRL, and a CA added by reload can sign the CRL of its very first client. Each case counts what
// reached the upstream.
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { startEchoUpstream } from '../../src/dev/echo-upstream.js';
import { call } from '../fixtures/client.js';
import { createChainCorpus, crlOf, mint, type Minted } from '../fixtures/chain-corpus.js';
import { createTestPki } from '../fixtures/pki.js';
import { startTestSidecar } from '../fixtures/sidecar.js';
import { freePort } from '../fixtures/net.js';
import { startOpensslResponder } from '../fixtures/openssl-responder.js';
import type { OpensslPki } from '../fixtures/openssl-pki.js';

const pki = await createTestPki();
const echo = await startEchoUpstream();
const corpus = await createChainCorpus();
const { root, issuing, lookAlike } = corpus;
t.teardown(async () => {
  await echo.close();
  pki.cleanup();
});

const bundle = pki.write('corpus-root.pem', root.pem);
const via = (port: number) => (leaf: Minted, chain: Minted[]) => call({ port, ca: pki.rootPem, cert: [leaf, ...chain].map((m) => m.pem).join(''), key: leaf.key.privateKeyPem });

t.test('a look-alike before the real issuing CA cannot hide a revoked device (fail-open CRL)', async (t) => {
  const revoked = await corpus.device('urn:device:revoked-1');
  const crl = pki.write('issuing-1.crl', await crlOf(issuing, [revoked]));
  const sc = await startTestSidecar(pki, echo.url, {
    clientAuth: { caBundle: [bundle] },
    revocation: { mode: 'crl', onUnknown: 'fail-open', crl: { files: [crl], fetchDistributionPoints: false } },
  });
  t.teardown(() => sc.close());
  const get = via(sc.port);
  const before = echo.requests();
  const forged = await get(revoked, [lookAlike, issuing]);
  t.not(forged.status, 200, 'refused with the look-alike in front');
  const honest = await get(revoked, [issuing]);
  t.not(honest.status, 200, 'and refused with the honest chain afterwards (no cached look-alike)');
  t.equal(echo.requests(), before, 'nothing reached the upstream');
  t.ok(sc.logs.some((l) => l.reason === 'revoked'), 'refused as revoked, not as unknown');
});

t.test('an OCSP answer signed by the look-alike is not the issuing CA speaking (openssl ocsp as the responder)', async (t) => {
  // Whoever answers the plain-HTTP OCSP request holds the look-alike's key and says "good" with it.
  const port = await freePort();
  const revoked = await corpus.device('urn:device:ocsp-revoked', { ocsp: [`http://127.0.0.1:${port}/`] });
  const asOpenssl = (m: Minted, name: string) => ({ name, certPath: pki.write(`${name}.pem`, m.pem), keyPath: pki.write(`${name}.key`, m.key.privateKeyPem), x509: m.x509 });
  const signer = asOpenssl(lookAlike, 'look-alike');
  const expiry = '491231235959Z';
  const index = pki.write('look-alike-index.txt', `V\t${expiry}\t\t${revoked.serialHex}\tunknown\t/O=Corpus Devices/CN=ocsp-revoked\n`);
  const responder = await startOpensslResponder({ dir: pki.dir, indexPath: index, ca: signer } as unknown as OpensslPki, port, signer);
  t.teardown(() => responder.stop());
  const sc = await startTestSidecar(pki, echo.url, { clientAuth: { caBundle: [bundle] }, revocation: { mode: 'ocsp' } });
  t.teardown(() => sc.close());
  const before = echo.requests();
  const r = await via(sc.port)(revoked, [lookAlike, issuing]);
  t.not(r.status, 200, 'refused');
  t.equal(echo.requests(), before, 'nothing reached the upstream');
  t.ok(responder.requests() > 0, 'the responder was asked');
});

t.test('Client-Cert-Chain carries the verified intermediate, never the look-alike', async (t) => {
  const good = await corpus.device('urn:device:good-1');
  const sc = await startTestSidecar(pki, echo.url, { clientAuth: { caBundle: [bundle] }, identity: { rfc9440: { enabled: true, includeChain: true } } });
  t.teardown(() => sc.close());
  const r = await via(sc.port)(good, [lookAlike, issuing]);
  t.equal(r.status, 200);
  t.equal(r.json?.headers['client-cert-chain'], `:${issuing.der.toString('base64')}:`, 'the real issuing CA');
});

t.test('maxChainDepth counts the verified path, not a shorter forged one', async (t) => {
  const mid = await mint({ subject: 'CN=Depth Mid', ca: true, issuer: root });
  const low = await mint({ subject: 'CN=Depth Low', ca: true, issuer: mid });
  const leaf = await mint({ subject: 'CN=deep', issuer: low, uri: 'urn:device:deep' });
  // Claims to be "Depth Low" issued straight by the root: one level shorter, signed by nobody real.
  const key = low.key;
  const shortcut = await mint({ subject: 'CN=Depth Low', ca: true, key, issuer: { ...root, key }, ski: low.ski, aki: root.ski, fromDays: -30, toDays: -1 });
  const sc = await startTestSidecar(pki, echo.url, { clientAuth: { caBundle: [bundle], maxChainDepth: 2 } });
  t.teardown(() => sc.close());
  const before = echo.requests();
  const r = await via(sc.port)(leaf, [shortcut, low, mid]);
  t.not(r.status, 200, 'refused');
  t.equal(echo.requests(), before, 'nothing reached the upstream');
  t.ok(sc.logs.some((l) => l.reason === 'chain_too_long'), 'as chain_too_long');
});

t.test('a revoked intermediate locks out every device under it', async (t) => {
  const otherIssuing = await mint({ subject: 'CN=Corpus Issuing CA 2', ca: true, issuer: root, pathLen: 0 });
  const device = await mint({ subject: 'CN=d2', issuer: otherIssuing, uri: 'urn:device:under-revoked-ca' });
  const fine = await corpus.device('urn:device:under-good-ca');
  const rootCrl = pki.write('root.crl', await crlOf(root, [otherIssuing], 'cACompromise'));
  const issuingCrl = pki.write('issuing-empty.crl', await crlOf(issuing));
  for (const intermediates of ['if-published', 'required'] as const) {
    const sc = await startTestSidecar(pki, echo.url, {
      clientAuth: { caBundle: [bundle] },
      revocation: { mode: 'crl', intermediates, crl: { files: [rootCrl, issuingCrl], fetchDistributionPoints: false } },
    });
    const before = echo.requests();
    const r = await via(sc.port)(device, [otherIssuing]);
    t.not(r.status, 200, `${intermediates}: refused`);
    t.equal(echo.requests(), before, `${intermediates}: nothing reached the upstream`);
    const line = sc.logs.find((l) => l.reason === 'revoked');
    t.match(String(line?.detail ?? ''), /CA certificate .*Corpus Issuing CA 2/, 'the detail names the revoked CA');
    t.equal((await via(sc.port)(fine, [issuing])).status, 200, `${intermediates}: a device under a good CA still passes`);
    await sc.close();
  }
  const skip = await startTestSidecar(pki, echo.url, {
    clientAuth: { caBundle: [bundle] },
    revocation: { mode: 'crl', intermediates: 'skip', crl: { files: [rootCrl, issuingCrl], fetchDistributionPoints: false } },
  });
  t.teardown(() => skip.close());
  // The leaf's own issuer has no CRL here, so fail-closed refuses it as unknown: the point is that
  // the refusal no longer names the revoked CA.
  await via(skip.port)(device, [otherIssuing]);
  t.notOk(skip.logs.some((l) => l.reason === 'revoked'), 'skip: the CA is not checked');
});

t.test('required: a CA certificate with no revocation source is unknown; if-published lets it pass', async (t) => {
  const device = await corpus.device('urn:device:no-ca-source');
  const issuingCrl = pki.write('issuing-only.crl', await crlOf(issuing));
  for (const [intermediates, expected] of [['required', 403], ['if-published', 200]] as const) {
    const sc = await startTestSidecar(pki, echo.url, {
      clientAuth: { caBundle: [bundle], failureMode: 'http' },
      revocation: { mode: 'crl', intermediates, crl: { files: [issuingCrl], fetchDistributionPoints: false } },
    });
    t.equal((await via(sc.port)(device, [issuing])).status, expected, intermediates);
    await sc.close();
  }
});

t.test('if-published: a leftover CRL of another CA does not count as the root\'s; an unreadable one does', async (t) => {
  const device = await corpus.device('urn:device:leftover');
  const issuingCrl = pki.write('issuing-for-leftover.crl', await crlOf(issuing));
  const decommissioned = await mint({ subject: 'CN=Decommissioned CA', ca: true });
  const leftover = pki.write('decommissioned.crl', await crlOf(decommissioned));
  const garbage = pki.write('garbage.crl', '-----BEGIN X509 CRL-----\nnot a crl\n-----END X509 CRL-----\n');
  for (const [extra, expected, why] of [
    [leftover, 200, 'a CRL naming an untrusted CA cannot be the root\'s: the issuing CA has no source and passes'],
    [garbage, 403, 'an unreadable configured CRL might be the root\'s: the issuing CA is unknown and fail-closed refuses'],
  ] as const) {
    const sc = await startTestSidecar(pki, echo.url, {
      clientAuth: { caBundle: [bundle], failureMode: 'http' },
      revocation: { mode: 'crl', crl: { files: [issuingCrl, extra], fetchDistributionPoints: false } },
    });
    t.equal((await via(sc.port)(device, [issuing])).status, expected, why);
    await sc.close();
  }
});

t.test("a distribution point cannot replace the issuer's CRL with another CA's", async (t) => {
  let body = await crlOf(issuing, []);
  const cdp: Server = createServer((_req, res) => res.end(body));
  await new Promise<void>((r) => cdp.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => cdp.close(r)));
  const url = `http://127.0.0.1:${(cdp.address() as AddressInfo).port}/issuing.crl`;
  const revoked = await corpus.device('urn:device:cdp-revoked', { cdp: [url] });
  body = await crlOf(issuing, [revoked]);
  const sc = await startTestSidecar(pki, echo.url, {
    clientAuth: { caBundle: [bundle] },
    revocation: { mode: 'crl', onUnknown: 'fail-open', crl: { refreshIntervalSeconds: 1 } },
  });
  t.teardown(() => sc.close());
  const get = via(sc.port);
  t.not((await get(revoked, [issuing])).status, 200, 'revoked by the CRL at its distribution point');
  // The URL now serves a validly signed CRL of another trusted CA (the root).
  body = await crlOf(root, []);
  await new Promise((r) => setTimeout(r, 2_500));
  const before = echo.requests();
  t.not((await get(revoked, [issuing])).status, 200, 'still revoked: the issuing CA kept its CRL');
  t.equal(echo.requests(), before, 'nothing reached the upstream');
  t.ok(sc.logs.some((l) => l.reason === 'issuer-mismatch'), 'the foreign CRL was logged and refused');
});

t.test('a CA added by reload signs the CRL of its first client; a removed CA signs nothing', async (t) => {
  const newRoot = await mint({ subject: 'CN=Added Root', ca: true });
  const newDevice = await mint({ subject: 'CN=new', issuer: newRoot, uri: 'urn:device:new-root' });
  const crl = pki.write('added-root.crl', await crlOf(newRoot));
  const bundleFile = pki.write('reload-bundle.pem', root.pem);
  const sc = await startTestSidecar(pki, echo.url, {
    clientAuth: { caBundle: [bundleFile], failureMode: 'http' },
    revocation: { mode: 'crl', crl: { files: [crl], fetchDistributionPoints: false } },
  });
  t.teardown(() => sc.close());
  t.ok(sc.logs.some((l) => l.reason === 'issuer-unknown'), 'at start the CRL names a CA nobody trusts');
  writeFileSync(bundleFile, root.pem + newRoot.pem);
  sc.sidecar.reload('test');
  const r = await via(sc.port)(newDevice, []);
  t.equal(r.status, 200, 'the first client of the added CA passes');
  writeFileSync(bundleFile, root.pem);
  const rejectedBefore = sc.logs.filter((l) => l.reason === 'issuer-unknown').length;
  sc.sidecar.reload('test');
  await new Promise((r) => setTimeout(r, 500));
  t.ok(sc.logs.filter((l) => l.reason === 'issuer-unknown').length > rejectedBefore, 'after removal its CRL is refused again');
});
