/**
 * Every `mode`, with a real `openssl ca` CRL and a real `openssl ocsp` responder: which method
 * answers, and the fallback to the second method only when the first answers unknown.
 */
import t from 'tap';
import { revocationSchema, type RevocationOptions } from '../../src/config/revocation-schema.js';
import { createRevocationChecker } from '../../src/revocation/index.js';
import { captureLogger } from '../fixtures/capturing-logger.js';
import { freePort } from '../fixtures/net.js';
import { opensslPkiWithResponder } from '../fixtures/openssl-responder.js';
import { waitFor } from '../fixtures/wait.js';

const { pki, responder, good, revoked, stray, trustedCas, extra: crl } = await opensslPkiWithResponder(t, {
  straySerial: '5A5A',
  beforeStart: (pki) => pki.genCrl('crl'),
});

async function checkerFor(mode: RevocationOptions['mode'], withCrl: boolean, ocsp: Record<string, unknown> = {}) {
  const options = revocationSchema.parse({ mode, crl: { files: withCrl ? [crl] : [], fetchDistributionPoints: false }, ocsp });
  const checker = createRevocationChecker(options, { trustedCas, logger: captureLogger() });
  await checker.ready();
  return checker;
}

/** The responder's request count once its log has settled. */
async function settledRequests(): Promise<number> {
  await new Promise((r) => setTimeout(r, 100));
  return responder.requests();
}

t.test('none: checking disabled answers good without asking anyone', async (t) => {
  const before = await settledRequests();
  const checker = await checkerFor('none', true);
  t.teardown(() => checker.close());
  t.match(await checker.check(revoked.x509, pki.ca.x509), { status: 'good', method: 'none' });
  t.equal(await settledRequests(), before);
});

t.test('crl only', async (t) => {
  const checker = await checkerFor('crl', true);
  t.teardown(() => checker.close());
  t.match(await checker.check(good.x509, pki.ca.x509), { status: 'good', method: 'crl' });
  t.match(await checker.check(revoked.x509, pki.ca.x509), { status: 'revoked', method: 'crl' });
  const noCrl = await checkerFor('crl', false);
  t.teardown(() => noCrl.close());
  t.match(await noCrl.check(good.x509, pki.ca.x509), { status: 'unknown', method: 'crl' });
});

t.test('ocsp only', async (t) => {
  const checker = await checkerFor('ocsp', true);
  t.teardown(() => checker.close());
  t.match(await checker.check(good.x509, pki.ca.x509), { status: 'good', method: 'ocsp' });
  t.match(await checker.check(revoked.x509, pki.ca.x509), { status: 'revoked', method: 'ocsp' });
  t.match(await checker.check(stray.x509, pki.ca.x509), { status: 'unknown', method: 'ocsp' });
});

t.test('crl-then-ocsp: the CRL answers, OCSP is not asked', async (t) => {
  const checker = await checkerFor('crl-then-ocsp', true);
  t.teardown(() => checker.close());
  const before = await settledRequests();
  t.match(await checker.check(revoked.x509, pki.ca.x509), { status: 'revoked', method: 'crl' });
  t.match(await checker.check(good.x509, pki.ca.x509), { status: 'good', method: 'crl' });
  t.equal(await settledRequests(), before, 'responder not contacted');
});

t.test('crl-then-ocsp: no CRL for the issuer, OCSP answers', async (t) => {
  const checker = await checkerFor('crl-then-ocsp', false);
  t.teardown(() => checker.close());
  t.match(await checker.check(revoked.x509, pki.ca.x509), { status: 'revoked', method: 'ocsp' });
  t.match(await checker.check(good.x509, pki.ca.x509), { status: 'good', method: 'ocsp' });
});

t.test('ocsp-then-crl: OCSP answers first', async (t) => {
  const checker = await checkerFor('ocsp-then-crl', true);
  t.teardown(() => checker.close());
  const before = await settledRequests();
  t.match(await checker.check(good.x509, pki.ca.x509), { status: 'good', method: 'ocsp' });
  t.ok(await waitFor(() => responder.requests() > before, 2000), 'responder contacted');
});

t.test('ocsp-then-crl: responder says unknown, the CRL answers', async (t) => {
  const checker = await checkerFor('ocsp-then-crl', true);
  t.teardown(() => checker.close());
  t.match(await checker.check(stray.x509, pki.ca.x509), { status: 'good', method: 'crl' });
});

t.test('ocsp-then-crl: responder unreachable, the CRL answers', async (t) => {
  const dead = `http://127.0.0.1:${await freePort()}/`;
  const checker = await checkerFor('ocsp-then-crl', true, { overrideUrl: dead, timeoutMs: 500 });
  t.teardown(() => checker.close());
  t.match(await checker.check(revoked.x509, pki.ca.x509), { status: 'revoked', method: 'crl' });
});

t.test('both methods unknown: unknown, with both reasons', async (t) => {
  const checker = await checkerFor('crl-then-ocsp', false);
  t.teardown(() => checker.close());
  const r = await checker.check(stray.x509, pki.ca.x509);
  t.match(r, { status: 'unknown', method: 'ocsp' });
  t.match(r.detail, /crl: no CRL loaded.*; ocsp: OCSP responder .* says unknown/);
});

t.test('an issuer that did not issue the certificate answers unknown', async (t) => {
  const checker = await checkerFor('crl', true);
  t.teardown(() => checker.close());
  const r = await checker.check(good.x509, pki.root.x509);
  t.equal(r.status, 'unknown');
  t.match(r.detail, /did not issue/);
});

t.test('after close(), checks answer unknown', async (t) => {
  const checker = await checkerFor('crl', true);
  await checker.close();
  await checker.close();
  t.match(await checker.check(good.x509, pki.ca.x509), { status: 'unknown', detail: /closed/ });
});
