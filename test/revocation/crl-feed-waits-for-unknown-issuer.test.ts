// A CRL on the revocation feed whose issuer is not known yet (an intermediate the bundle does not
// hold, learned only from a client's verified path) is neither lost nor counted as applied: it is
// reported `waiting`, the cursor does not move past it, and it takes effect the moment a check
// learns its issuer (found by review: it was reported `unchanged` and the cursor skipped it).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import t from 'tap';
import { revocationSchema } from '../../src/config/revocation-schema.js';
import { createRevocationChecker, type FeedEvent } from '../../src/revocation/index.js';
import { captureLogger } from '../fixtures/capturing-logger.js';
import { createOpensslPki } from '../fixtures/openssl-pki.js';

const pki = await createOpensslPki();
t.teardown(() => pki.cleanup());

const streams = new Set<http.ServerResponse>();
const lastEventIds: string[] = [];
const feed = http.createServer((req, res) => {
  lastEventIds.push(String(req.headers['last-event-id'] ?? ''));
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  res.write(': hi\n\n');
  streams.add(res);
  res.once('close', () => streams.delete(res));
});
await new Promise<void>((r) => feed.listen(0, '127.0.0.1', r));
t.teardown(() => {
  for (const s of streams) s.destroy();
  feed.close();
});

t.test('a feed CRL of a not-yet-known issuer waits, then revokes once the issuer is learned', async (t) => {
  const device = await pki.issue('waiting-device');
  await pki.revoke(device);
  const der = await readFile(await pki.genCrl('issuing', { format: 'der' }));
  const events: FeedEvent[] = [];
  const checker = createRevocationChecker(
    revocationSchema.parse({
      mode: 'crl',
      onUnknown: 'fail-closed',
      crl: { fetchDistributionPoints: false },
      feed: { url: `http://127.0.0.1:${(feed.address() as AddressInfo).port}/feed`, reconnectMinMs: 50, reconnectMaxMs: 100 },
    }),
    { trustedCas: [pki.root.x509], logger: captureLogger(), observer: { feed: (e) => void events.push(e) } },
  );
  t.teardown(() => checker.close());
  for (let i = 0; i < 100 && streams.size === 0; i++) await new Promise((r) => setTimeout(r, 20));
  for (const s of streams) s.write(`id: 7\nevent: crl\ndata: ${der.toString('base64')}\n\n`);
  for (let i = 0; i < 100 && !events.some((e) => e.type === 'crl'); i++) await new Promise((r) => setTimeout(r, 20));
  t.match(events.find((e) => e.type === 'crl'), { type: 'crl', outcome: 'waiting', id: '7' }, 'reported waiting, not applied or unchanged');
  t.equal(checker.feedStatus()?.cursor, undefined, 'the cursor did not move past it');

  // A client's verified path shows the issuing CA: the held CRL now speaks for its certificates.
  const r = await checker.check(device.x509, pki.ca.x509);
  t.equal(r.status, 'revoked', `the waiting CRL applies once its issuer is learned (${r.detail})`);
});
