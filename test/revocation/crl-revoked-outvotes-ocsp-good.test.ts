// Found by review: with mode ocsp-then-crl (accepted with a feed: "needs a mode that reads CRLs"), a CRL
// delivered by the feed that listed the device was never consulted while OCSP answered `good` from its
// cache — and a network attacker who blocks the plain-HTTP OCSP responder kept that cached `good`
// alive until the OCSP answer's own expiry (maxCacheTtlSeconds, default 1 h), well past
// maxGoodAgeSeconds: the sidecar admitted a device that a CRL it held said was revoked. A CRL
// that lists the certificate now refuses it whatever the method order.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import t from 'tap';
import { revocationSchema } from '../../src/config/revocation-schema.js';
import { createRevocationChecker } from '../../src/revocation/index.js';
import { captureLogger } from '../fixtures/capturing-logger.js';
import { createOpensslPki } from '../fixtures/openssl-pki.js';
import { startHttpServer } from '../fixtures/http-server.js';

const pki = await createOpensslPki();
t.teardown(() => pki.cleanup());
const trustedCas = [pki.root.x509, pki.ca.x509];

let ocspBlocked = false;
const ocsp = await startHttpServer(async (_req, body, res) => {
  if (ocspBlocked) return void res.destroy(); // the attacker drops the exchange
  res.writeHead(200, { 'content-type': 'application/ocsp-response' });
  res.end(await pki.respond(body, pki.ca, { nmin: 60 }));
});
t.teardown(() => ocsp.close());

// A genuine feed: sends whatever CRL we hand it.
const streams = new Set<http.ServerResponse>();
const feed = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  res.write(': hi\n\n');
  streams.add(res);
});
await new Promise<void>((r) => feed.listen(0, '127.0.0.1', r));
t.teardown(() => {
  for (const s of streams) s.destroy();
  feed.close();
});
const feedUrl = `http://127.0.0.1:${(feed.address() as AddressInfo).port}/feed`;

t.test('a device a held CRL lists is refused despite a cached or held OCSP good', async (t) => {
  const victim = await pki.issue('victim');
  let offset = 0;
  const applied: string[] = [];
  const options = revocationSchema.parse({
    mode: 'ocsp-then-crl',
    crl: { fetchDistributionPoints: false },
    ocsp: { overrideUrl: ocsp.url, maxGoodAgeSeconds: 30, negativeCacheSeconds: 30, maxCacheTtlSeconds: 3600 },
    feed: { url: feedUrl, reconnectMinMs: 100, reconnectMaxMs: 200 },
  });
  const checker = createRevocationChecker(options, {
    trustedCas,
    logger: captureLogger(),
    now: () => Date.now() + offset,
    observer: { feed: (e) => void (e.type === 'crl' && applied.push(e.outcome)) },
  });
  t.teardown(() => checker.close());
  t.equal((await checker.check(victim.x509, pki.ca.x509)).status, 'good', 'good before the revocation');

  await pki.revoke(victim);
  const der = await readFile(await pki.genCrl('after', { format: 'der' }));
  for (let i = 0; i < 50 && streams.size === 0; i++) await new Promise((r) => setTimeout(r, 50));
  for (const s of streams) s.write(`id: 2\nevent: crl\ndata: ${der.toString('base64')}\n\n`);
  for (let i = 0; i < 50 && applied.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
  t.same(applied, ['applied'], 'the feed applied the CRL that lists the victim');

  const r1 = await checker.check(victim.x509, pki.ca.x509);
  t.equal(r1.status, 'revoked', `right after the feed applied it (got ${r1.status}: ${r1.detail})`);

  ocspBlocked = true;
  offset = 10 * 60_000; // ten minutes later, attacker still blocking OCSP
  const r2 = await checker.check(victim.x509, pki.ca.x509);
  t.equal(r2.status, 'revoked', `10 min later with OCSP blocked (got ${r2.status}: ${r2.detail})`);
});
