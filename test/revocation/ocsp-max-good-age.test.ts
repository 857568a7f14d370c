/**
 * Bounded OCSP staleness (`ocsp.maxGoodAgeSeconds`), with a loopback responder whose signed answers
 * come from `openssl ocsp -reqin` (nextUpdate 10 minutes away, as a real responder would say) and a
 * clock the test moves: a held `good` is trusted at most maxGoodAge, re-asked ahead of it in the
 * background, waited for past it; `revoked` answers are not re-asked; and a responder that fails
 * keeps the held `good` until the answer itself expires, asked at most once per
 * negativeCacheSeconds, never on every check.
 */
import t from 'tap';
import { revocationSchema } from '../../src/config/revocation-schema.js';
import { createRevocationChecker } from '../../src/revocation/index.js';
import { captureLogger } from '../fixtures/capturing-logger.js';
import { createOpensslPki } from '../fixtures/openssl-pki.js';
import { startHttpServer } from '../fixtures/http-server.js';
import { within } from '../fixtures/wait.js';

const pki = await createOpensslPki();
t.teardown(() => pki.cleanup());
const trustedCas = [pki.root.x509, pki.ca.x509];

let failing = false;
const server = await startHttpServer(async (_req, body, res) => {
  if (failing) {
    res.writeHead(503);
    res.end();
    return;
  }
  res.writeHead(200, { 'content-type': 'application/ocsp-response' });
  res.end(await pki.respond(body, pki.ca, { nmin: 10 }));
});
t.teardown(() => server.close());

function makeChecker(ocsp: Record<string, unknown>) {
  let offset = 0;
  const options = revocationSchema.parse({ mode: 'ocsp', ocsp: { overrideUrl: server.url, ...ocsp } });
  const checker = createRevocationChecker(options, { trustedCas, logger: captureLogger(), now: () => Date.now() + offset });
  return { checker, at: (ms: number) => void (offset = ms) };
}

t.test('a good older than maxGoodAgeSeconds is not served: the check waits for the responder', async (t) => {
  failing = false;
  const victim = await pki.issue('good-age-victim');
  const { checker, at } = makeChecker({ maxGoodAgeSeconds: 2 });
  t.teardown(() => checker.close());
  const before = server.requests();
  t.match(await checker.check(victim.x509, pki.ca.x509), { status: 'good', cached: false });
  const revokedEvent = new Promise<string>((resolve) => checker.onRevoked((_ikh, serial) => resolve(serial)));
  await pki.revoke(victim);
  at(1_000);
  t.match(await checker.check(victim.x509, pki.ca.x509), { status: 'good', cached: true }, 'within maxGoodAge: from the cache');
  t.equal(server.requests() - before, 1, 'without asking');
  at(2_100);
  t.match(await checker.check(victim.x509, pki.ca.x509), { status: 'revoked', cached: false }, 'past maxGoodAge (nextUpdate 10 min away): asked, and waited for');
  t.equal(await within(revokedEvent, 1_000, 'onRevoked'), victim.x509.serialNumber, 'onRevoked fired: open connections can be closed');
  at(60_000);
  t.match(await checker.check(victim.x509, pki.ca.x509), { status: 'revoked', cached: true }, 'a revoked answer keeps its own lifetime');
  t.equal(server.requests() - before, 2);
});

t.test('a certificate in use is re-asked from 75 % of maxGoodAge in the background, and never waits', async (t) => {
  failing = false;
  const victim = await pki.issue('good-age-ahead');
  const { checker, at } = makeChecker({ maxGoodAgeSeconds: 4 });
  t.teardown(() => checker.close());
  t.equal((await checker.check(victim.x509, pki.ca.x509)).status, 'good');
  const revokedEvent = new Promise<string>((resolve) => checker.onRevoked((_ikh, serial) => resolve(serial)));
  await pki.revoke(victim);
  at(3_100);
  t.match(await checker.check(victim.x509, pki.ca.x509), { status: 'good', cached: true }, 'served at once, re-asked behind it');
  t.equal(await within(revokedEvent, 3_000, 'onRevoked'), victim.x509.serialNumber);
  t.match(await checker.check(victim.x509, pki.ca.x509), { status: 'revoked', cached: true }, 'the next check knows');
});

// A good is never trusted past maxGoodAge: with the responder down (or the exchange dropped by someone
// on the plain-HTTP path) it turns unknown and onUnknown decides. Holding it until nextUpdate let a
// revoked device in for up to maxCacheTtlSeconds while the responder was blocked (found by review).
t.test('a failing responder: a good past maxGoodAge turns unknown, and the responder is asked once per negativeCacheSeconds', async (t) => {
  failing = false;
  const device = await pki.issue('good-age-dead-responder');
  const { checker, at } = makeChecker({ maxGoodAgeSeconds: 2, negativeCacheSeconds: 10, maxCacheTtlSeconds: 60 });
  t.teardown(() => checker.close());
  t.equal((await checker.check(device.x509, pki.ca.x509)).status, 'good');
  const before = server.requests();
  failing = true;
  at(2_500);
  const first = await checker.check(device.x509, pki.ca.x509);
  t.match(first, { status: 'unknown', cached: false }, 'the re-ask failed: a good 2.5 s old (over maxGoodAge 2 s) is not trusted');
  t.match(first.detail, /ocsp-stale-good: the last good is 3 s old/);
  t.equal(server.requests() - before, 1);
  for (const ms of [3_000, 5_000, 8_000, 12_000]) {
    at(ms);
    t.match(await checker.check(device.x509, pki.ca.x509), { status: 'unknown', cached: true }, `at ${ms} ms: still unknown, without asking`);
  }
  t.equal(server.requests() - before, 1, 'within negativeCacheSeconds of the failure: not asked');
  at(13_000);
  t.match(await checker.check(device.x509, pki.ca.x509), { status: 'unknown', cached: false }, 'then the next check asks again (and fails again)');
  for (const ms of [14_000, 16_000, 20_000]) {
    at(ms);
    await checker.check(device.x509, pki.ca.x509);
  }
  t.equal(server.requests() - before, 2, 'not on every check: a dead responder is not hammered');
  at(61_000);
  t.match(await checker.check(device.x509, pki.ca.x509), { status: 'unknown' }, 'past maxCacheTtlSeconds nothing stands for it: fail-closed rules apply');
  // (Recovery is the next test's: here the checker's clock is 61 s ahead of the responder's, and
  // without a nonce a good is not trusted past its own thisUpdate + maxGoodAge + a tolerance.)
});

t.test('the responder back after a failure: its fresh answer replaces the held one', async (t) => {
  failing = false;
  const victim = await pki.issue('good-age-recovered');
  const { checker, at } = makeChecker({ maxGoodAgeSeconds: 2, negativeCacheSeconds: 5 });
  t.teardown(() => checker.close());
  t.equal((await checker.check(victim.x509, pki.ca.x509)).status, 'good');
  failing = true;
  at(2_500);
  t.equal((await checker.check(victim.x509, pki.ca.x509)).status, 'unknown', 'past maxGoodAge with the responder failing: unknown');
  await pki.revoke(victim);
  failing = false;
  const revokedEvent = new Promise<string>((resolve) => checker.onRevoked((_ikh, serial) => resolve(serial)));
  at(5_000);
  t.match(await checker.check(victim.x509, pki.ca.x509), { status: 'unknown', cached: true }, 'within negativeCacheSeconds of the failure: not asked yet');
  at(7_600);
  t.match(await checker.check(victim.x509, pki.ca.x509), { status: 'revoked', cached: false }, 'after it: asked again, and waited for');
  t.equal(await within(revokedEvent, 1_000, 'onRevoked'), victim.x509.serialNumber);
});

t.test('past the refresh point, a failing responder is asked once, not on every hit', async (t) => {
  failing = false;
  const device = await pki.issue('good-age-refresh-fails');
  const { checker, at } = makeChecker({ maxCacheTtlSeconds: 4 });
  t.teardown(() => checker.close());
  t.equal((await checker.check(device.x509, pki.ca.x509)).status, 'good');
  const before = server.requests();
  failing = true;
  at(3_100); // past 75 % of the 4 s lifetime: a hit re-asks in the background
  for (let i = 0; i < 5; i++) {
    t.match(await checker.check(device.x509, pki.ca.x509), { status: 'good', cached: true });
    await new Promise((r) => setTimeout(r, 50)); // the background re-ask fails meanwhile
  }
  t.equal(server.requests() - before, 1, 'five hits, one request');
});
