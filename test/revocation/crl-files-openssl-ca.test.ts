/**
 * CRL files made by `openssl ca -gencrl` (PEM, DER, several CRLs in one PEM): good, revoked and
 * unknown answers; a changed file is picked up and fires onRevoked; a CRL signed by a look-alike
 * CA is rejected with a log line and the previous CRL kept; a stale CRL answers unknown.
 */
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { revocationSchema } from '../../src/config/revocation-schema.js';
import { computeIssuerKeyHash, createRevocationChecker } from '../../src/revocation/index.js';
import { captureLogger } from '../fixtures/capturing-logger.js';
import { createOpensslPki } from '../fixtures/openssl-pki.js';
import { waitFor, within } from '../fixtures/wait.js';

const pki = await createOpensslPki();
const other = await createOpensslPki({ caName: 'Other Issuing CA', rootName: 'Other Root' });
t.teardown(() => Promise.all([pki.cleanup(), other.cleanup()]));

const good = await pki.issue('good');
const revoked = await pki.issue('revoked');
await pki.revoke(revoked);
const crlPem = await pki.genCrl('ca-crl');
const crlDer = await pki.genCrl('ca-crl-der', { format: 'der' });
const stranger = await other.issue('stranger');
const strangerRevoked = await other.issue('stranger-revoked');
await other.revoke(strangerRevoked);
const otherCrl = await other.genCrl('other-crl');
const trustedCas = [pki.root.x509, pki.ca.x509, other.root.x509, other.ca.x509];

const options = (files: string[], extra: Record<string, unknown> = {}) =>
  revocationSchema.parse({ mode: 'crl', crl: { files, fetchDistributionPoints: false, ...extra } });

for (const [label, file] of [['PEM', crlPem], ['DER', crlDer]] as const) {
  t.test(`${label} CRL file: good, revoked, unknown`, async (t) => {
    const logger = captureLogger();
    const checker = createRevocationChecker(options([file]), { trustedCas, logger });
    t.teardown(() => checker.close());
    await checker.ready();
    t.match(await checker.check(good.x509, pki.ca.x509), { status: 'good', method: 'crl', cached: true });
    t.match(await checker.check(revoked.x509, pki.ca.x509), { status: 'revoked', method: 'crl' });
    const unknown = await checker.check(stranger.x509, other.ca.x509);
    t.match(unknown, { status: 'unknown', method: 'crl' });
    t.match(unknown.detail, /no CRL loaded for this issuer/);
    t.equal(logger.find('info', 'CRL loaded').length, 1, 'one CRL loaded and logged');
  });
}

t.test('one PEM file holding the CRLs of two CAs', async (t) => {
  const both = join(pki.dir, 'both.pem');
  await writeFile(both, Buffer.concat([await readFile(crlPem), await readFile(otherCrl)]));
  const checker = createRevocationChecker(options([both]), { trustedCas, logger: captureLogger() });
  t.teardown(() => checker.close());
  await checker.ready();
  t.equal((await checker.check(revoked.x509, pki.ca.x509)).status, 'revoked');
  t.equal((await checker.check(strangerRevoked.x509, other.ca.x509)).status, 'revoked');
  t.equal((await checker.check(stranger.x509, other.ca.x509)).status, 'good');
});

t.test('a changed file is picked up and fires onRevoked for a certificate seen before', async (t) => {
  const file = join(pki.dir, 'live.pem');
  await copyFile(crlPem, file);
  const victim = await pki.issue('victim');
  const checker = createRevocationChecker(options([file], { filePollIntervalSeconds: 1 }), { trustedCas, logger: captureLogger() });
  t.teardown(() => checker.close());
  await checker.ready();
  t.equal((await checker.check(victim.x509, pki.ca.x509)).status, 'good');
  const event = new Promise<[string, string]>((resolve) => checker.onRevoked((...args) => resolve(args)));
  await pki.revoke(victim);
  await copyFile(await pki.genCrl('ca-crl-2'), file);
  const [issuerKeyHash, serial] = await within(event, 5000, 'onRevoked');
  t.equal(issuerKeyHash, computeIssuerKeyHash(pki.ca.x509));
  t.equal(serial, victim.x509.serialNumber, 'serial in the same form as X509Certificate.serialNumber');
  t.equal((await checker.check(victim.x509, pki.ca.x509)).status, 'revoked');
});

t.test('a CRL signed by a look-alike CA is rejected and the previous one kept', async (t) => {
  const lookalike = await createOpensslPki({ caName: 'Revocation Test Issuing CA' });
  t.teardown(() => lookalike.cleanup());
  const forgedCrl = await lookalike.genCrl('forged'); // lists nothing: would "un-revoke" everything
  const file = join(pki.dir, 'target.pem');
  await copyFile(crlPem, file);
  const logger = captureLogger();
  const checker = createRevocationChecker(options([file], { filePollIntervalSeconds: 1 }), { trustedCas, logger });
  t.teardown(() => checker.close());
  await checker.ready();
  t.equal((await checker.check(revoked.x509, pki.ca.x509)).status, 'revoked');
  await copyFile(forgedCrl, file);
  await waitFor(() => logger.find('warn', 'CRL rejected', { reason: 'signature' }).length > 0, 5000);
  t.equal(logger.find('warn', 'CRL rejected', { reason: 'signature' }).length, 1, 'rejection logged with its reason');
  t.equal((await checker.check(revoked.x509, pki.ca.x509)).status, 'revoked', 'previous CRL still answers');
  t.equal((await checker.check(good.x509, pki.ca.x509)).status, 'good');
});

t.test('a stale CRL answers unknown (but a listed serial stays revoked)', async (t) => {
  const day = 24 * 3600 * 1000;
  const logger = captureLogger();
  const checker = createRevocationChecker(options([crlPem], { staleGraceSeconds: 3600 }), {
    trustedCas,
    logger,
    now: () => Date.now() + day + 2 * 3600 * 1000, // past nextUpdate (24 h) + grace (1 h)
  });
  t.teardown(() => checker.close());
  await checker.ready();
  const r = await checker.check(good.x509, pki.ca.x509);
  t.equal(r.status, 'unknown');
  t.match(r.detail, /stale/);
  t.equal(logger.find('warn', 'CRL loaded but already stale').length, 1, 'the operator is told');
  t.equal((await checker.check(revoked.x509, pki.ca.x509)).status, 'revoked');
});

t.test('within the grace period the CRL still answers good', async (t) => {
  const checker = createRevocationChecker(options([crlPem], { staleGraceSeconds: 3600 }), {
    trustedCas,
    logger: captureLogger(),
    now: () => Date.now() + 24 * 3600 * 1000 + 30 * 60 * 1000,
  });
  t.teardown(() => checker.close());
  await checker.ready();
  t.equal((await checker.check(good.x509, pki.ca.x509)).status, 'good');
});
