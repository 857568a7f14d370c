/**
 * OCSP against a real `openssl ocsp` responder: good, revoked and unknown certificates via the AIA
 * URL; SHA-256 CertIDs; nonces; an override URL; a delegated responder certificate; caching;
 * answers without nextUpdate (cached only while fresh, refused once old).
 */
import t from 'tap';
import { revocationSchema } from '../../src/config/revocation-schema.js';
import { createRevocationChecker } from '../../src/revocation/index.js';
import { captureLogger } from '../fixtures/capturing-logger.js';
import { freePort } from '../fixtures/net.js';
import { opensslPkiWithResponder, startOpensslResponder } from '../fixtures/openssl-responder.js';
import { waitFor } from '../fixtures/wait.js';

const { pki, responder, good, revoked, stray, trustedCas, extra } = await opensslPkiWithResponder(t, {
  straySerial: '00D00D',
  beforeStart: async (pki) => ({ noAia: await pki.issue('no-aia'), delegate: await pki.issue('ocsp-signer', { eku: 'OCSPSigning' }) }),
});
const { noAia, delegate } = extra;

const ocspOptions = (ocsp: Record<string, unknown> = {}) => revocationSchema.parse({ mode: 'ocsp', ocsp });

t.test('good, revoked and unknown through the AIA responder URL', async (t) => {
  const checker = createRevocationChecker(ocspOptions(), { trustedCas, logger: captureLogger() });
  t.teardown(() => checker.close());
  t.match(await checker.check(good.x509, pki.ca.x509), { status: 'good', method: 'ocsp', cached: false });
  t.match(await checker.check(revoked.x509, pki.ca.x509), { status: 'revoked', method: 'ocsp' });
  t.match(await checker.check(stray.x509, pki.ca.x509), { status: 'unknown', method: 'ocsp' });
});

t.test('a second check is answered from the cache', async (t) => {
  const checker = createRevocationChecker(ocspOptions(), { trustedCas, logger: captureLogger() });
  t.teardown(() => checker.close());
  await new Promise((r) => setTimeout(r, 100)); // earlier tests' requests reach openssl's log
  const start = responder.requests();
  t.match(await checker.check(revoked.x509, pki.ca.x509), { status: 'revoked', cached: false });
  t.ok(await waitFor(() => responder.requests() === start + 1, 2000), 'the responder logged the first request');
  const before = responder.requests();
  t.match(await checker.check(revoked.x509, pki.ca.x509), { status: 'revoked', cached: true });
  await new Promise((r) => setTimeout(r, 100)); // let a (wrong) second request show up in openssl's log
  t.equal(responder.requests(), before, 'no new request reached the responder');
});

t.test('SHA-256 CertID and a nonce', async (t) => {
  const checker = createRevocationChecker(ocspOptions({ hash: 'sha256', nonce: true }), { trustedCas, logger: captureLogger() });
  t.teardown(() => checker.close());
  t.equal((await checker.check(good.x509, pki.ca.x509)).status, 'good');
  t.equal((await checker.check(revoked.x509, pki.ca.x509)).status, 'revoked');
});

t.test('no AIA: unknown, unless an override URL is configured', async (t) => {
  const plain = createRevocationChecker(ocspOptions(), { trustedCas, logger: captureLogger() });
  t.teardown(() => plain.close());
  const r = await plain.check(noAia.x509, pki.ca.x509);
  t.equal(r.status, 'unknown');
  t.match(r.detail, /no OCSP responder URL/);
  const overridden = createRevocationChecker(ocspOptions({ overrideUrl: responder.url }), { trustedCas, logger: captureLogger() });
  t.teardown(() => overridden.close());
  t.equal((await overridden.check(noAia.x509, pki.ca.x509)).status, 'good');
});

t.test('a responder certificate delegated by the issuer (id-kp-OCSPSigning) is accepted', async (t) => {
  const delegatedPort = await freePort();
  const delegated = await startOpensslResponder(pki, delegatedPort, delegate);
  t.teardown(() => delegated.stop());
  const checker = createRevocationChecker(ocspOptions({ overrideUrl: delegated.url }), { trustedCas, logger: captureLogger() });
  t.teardown(() => checker.close());
  const r = await checker.check(revoked.x509, pki.ca.x509);
  t.equal(r.status, 'revoked');
  t.match(r.detail, /delegated-signed/);
});

t.test('no nextUpdate: cached only until thisUpdate + maxAgeWithoutNextUpdateSeconds, refused once older', async (t) => {
  const undated = await startOpensslResponder(pki, await freePort(), pki.ca, [], null); // no -nmin: no nextUpdate
  t.teardown(() => undated.stop());
  const logger = captureLogger();
  const outcomes: string[] = [];
  let offset = 0;
  // maxGoodAgeSeconds above the 60 s bound, so that bound is what this test sees.
  const checker = createRevocationChecker(ocspOptions({ overrideUrl: undated.url, maxAgeWithoutNextUpdateSeconds: 60, maxGoodAgeSeconds: 120 }), {
    trustedCas,
    logger,
    now: () => Date.now() + offset,
    observer: { ocspExchange: (_seconds, outcome) => void outcomes.push(outcome) },
  });
  t.teardown(() => checker.close());
  t.match(await checker.check(good.x509, pki.ca.x509), { status: 'good', cached: false }, 'a fresh answer is accepted');
  offset = 30_000;
  t.match(await checker.check(good.x509, pki.ca.x509), { status: 'good', cached: true }, 'and cached while fresh');
  // 61 s on: the cached answer's thisUpdate + 60 s has passed, and the responder's next answer,
  // stamped with its own (real) clock, is 61 s old by ours.
  offset = 61_000;
  const r = await checker.check(good.x509, pki.ca.x509);
  t.match(r, { status: 'unknown', cached: false }, 'not served from the cache past the bound, and the old answer refused');
  t.match(r.detail, /ocsp-stale/);
  t.equal(logger.find('warn', 'OCSP check failed', { reason: 'ocsp-stale' }).length, 1, 'logged with reason ocsp-stale');
  t.same(outcomes, ['ok', 'ocsp-stale'], 'counted by the exchange observer');
});
