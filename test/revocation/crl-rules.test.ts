/**
 * CRL rules beyond plain lookups, on CRLs from `openssl ca -gencrl`: RSA PKCS#1 v1.5 and RSA-PSS
 * signatures; CRLs we must refuse (delta, unknown critical extension, reason-partitioned,
 * malformed or truncated DER, bad PEM); Issuing Distribution Point scopes; rollback to an older
 * CRL; a CRL signed by an intermediate that is only learned from a verified chain.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { revocationSchema } from '../../src/config/revocation-schema.js';
import { loadCrls } from '../../src/revocation/crl-load.js';
import { createIssuerRegistry } from '../../src/revocation/issuer-registry.js';
import { decodeDerOrPem } from '../../src/pki/index.js';
import { createRevocationChecker } from '../../src/revocation/index.js';
import { captureLogger } from '../fixtures/capturing-logger.js';
import { PARTITION_A_URL, createOpensslPki } from '../fixtures/openssl-pki.js';
import { waitFor } from '../fixtures/wait.js';

const ec = await createOpensslPki();
const rsa = await createOpensslPki({ keyType: 'rsa', caName: 'RSA Issuing CA', rootName: 'RSA Root' });
t.teardown(() => Promise.all([ec.cleanup(), rsa.cleanup()]));
const rsaRevoked = await rsa.issue('rsa-revoked');
await rsa.revoke(rsaRevoked);
const ecRevoked = await ec.issue('ec-revoked');
await ec.revoke(ecRevoked);
const ecGood = await ec.issue('ec-good');

const registry = createIssuerRegistry([ec.root.x509, ec.ca.x509, rsa.root.x509, rsa.ca.x509], 10);
const load = async (bytes: Buffer) => loadCrls(bytes, { issuers: registry, reuse: () => undefined, sliceMs: 5 });

t.test('RSA PKCS#1 v1.5 and RSA-PSS signed CRLs verify and list the revoked serial', async (t) => {
  for (const sigopts of [[], ['rsa_padding_mode:pss', 'rsa_pss_saltlen:32']]) {
    const { crls, failures } = await load(await readFile(await rsa.genCrl(`rsa-${sigopts.length}`, { sigopts })));
    t.same(failures, [], sigopts.length ? 'PSS' : 'PKCS#1');
    t.equal(crls[0]?.serials.size, 1);
    t.ok(crls[0]?.serials.has(Buffer.from(rsaRevoked.x509.serialNumber, 'hex').toString('latin1')));
  }
});

t.test('CRLs that must be refused', async (t) => {
  const cases: [string, string][] = [
    ['crl_delta', 'crl-unsupported'],
    ['crl_unknown_critical', 'crl-unsupported'],
    ['crl_idp_reasons', 'crl-unsupported'],
  ];
  for (const [section, reason] of cases) {
    const { crls, failures } = await load(await readFile(await ec.genCrl(section, { crlexts: section })));
    t.equal(crls.length, 0, section);
    t.equal(failures[0]?.reason, reason, `${section}: ${failures[0]?.message}`);
  }
});

t.test('malformed input never throws: truncations, flipped bytes, bad PEM', async (t) => {
  const der = await readFile(await ec.genCrl('for-truncation', { format: 'der' }));
  const reasons = new Set<string>();
  for (let cut = 1; cut < der.length; cut += 7) {
    const { crls, failures } = await load(der.subarray(0, cut));
    t.equal(crls.length, 0);
    reasons.add(failures[0]?.reason ?? 'none');
  }
  t.same([...reasons], ['der'], 'every truncation is a DER failure');
  for (let i = 0; i < der.length; i += 11) {
    const bent = Buffer.from(der);
    bent[i] = (bent[i] as number) ^ 0x55;
    const { crls, failures } = await load(bent);
    t.equal(crls.length + failures.length, 1, `flip at ${i}: one outcome`);
    if (crls.length === 1) t.equal(crls[0]?.serials.size, 1, 'an accepted CRL is intact'); // a flip in the unsigned outer parts
  }
  for (const text of ['', 'hello', '-----BEGIN X509 CRL-----\nAAAA', '-----BEGIN X509 CRL-----\n!!!!\n-----END X509 CRL-----\n']) {
    const { failures } = await load(Buffer.from(text));
    t.equal(failures[0]?.reason, 'pem', JSON.stringify(text));
  }
});

t.test('a PEM body is decoded across slices, whatever its line length', async (t) => {
  const der = await readFile(await ec.genCrl('for-pem', { format: 'der' }));
  for (const width of [64, 76, 3, 100_000]) {
    const body = der.toString('base64').replace(new RegExp(`.{1,${width}}`, 'g'), '$&\r\n');
    const { crls, failures } = await load(Buffer.from(`junk\n-----BEGIN X509 CRL-----\n${body}-----END X509 CRL-----\n`));
    t.same(failures, [], `width ${width}`);
    t.equal(crls.length, 1);
  }
});

t.test('a large PEM body splits across 64 KB pieces mid base64 group and still decodes exactly', async (t) => {
  const der = Buffer.concat([Buffer.from([0x30]), randomBytes(300_001)]);
  for (const width of [77, 3, 65_537]) {
    const body = der.toString('base64').replace(new RegExp(`.{1,${width}}`, 'g'), '$&\n');
    const [a, b] = await decodeDerOrPem(Buffer.from(`-----BEGIN X509 CRL-----\n${body}-----END X509 CRL-----\n`.repeat(2)), 'X509 CRL');
    t.ok(a?.equals(der) && b?.equals(der), `width ${width}`);
  }
});

t.test('Issuing Distribution Point: a partition CRL only covers certificates naming it', async (t) => {
  const inPartition = await ec.issue('in-partition', { cdp: [PARTITION_A_URL] });
  const elsewhere = await ec.issue('elsewhere', { cdp: ['http://127.0.0.1:9/partition-b.crl'] });
  await ec.revoke(inPartition);
  const partitionCrl = await ec.genCrl('partition-a', { crlexts: 'crl_idp_a' });
  const caOnlyCrl = await ec.genCrl('ca-only', { crlexts: 'crl_idp_ca_only' });
  const opts = (files: string[]) => revocationSchema.parse({ mode: 'crl', crl: { files, fetchDistributionPoints: false } });
  const checker = createRevocationChecker(opts([partitionCrl]), { trustedCas: [ec.root.x509, ec.ca.x509], logger: captureLogger() });
  t.teardown(() => checker.close());
  await checker.ready();
  t.equal((await checker.check(inPartition.x509, ec.ca.x509)).status, 'revoked');
  const r = await checker.check(elsewhere.x509, ec.ca.x509);
  t.equal(r.status, 'unknown');
  t.match(r.detail, /no loaded CRL covers/);
  const caOnly = createRevocationChecker(opts([caOnlyCrl]), { trustedCas: [ec.root.x509, ec.ca.x509], logger: captureLogger() });
  t.teardown(() => caOnly.close());
  await caOnly.ready();
  t.equal((await caOnly.check(ecGood.x509, ec.ca.x509)).status, 'unknown', 'a CA-only CRL says nothing about leaves');
});

t.test('an older CRL replacing a newer one is ignored (no un-revoking by replay)', async (t) => {
  const older = await ec.genCrl('older'); // lists ec-revoked only
  const victim = await ec.issue('replay-victim');
  await ec.revoke(victim);
  const newer = await ec.genCrl('newer'); // higher CRL number, lists the victim too
  const file = join(ec.dir, 'replayed.pem');
  await copyFile(newer, file);
  const logger = captureLogger();
  const checker = createRevocationChecker(
    revocationSchema.parse({ mode: 'crl', crl: { files: [file], fetchDistributionPoints: false, filePollIntervalSeconds: 1 } }),
    { trustedCas: [ec.root.x509, ec.ca.x509], logger },
  );
  t.teardown(() => checker.close());
  await checker.ready();
  t.equal((await checker.check(victim.x509, ec.ca.x509)).status, 'revoked');
  await writeFile(file, await readFile(older));
  t.ok(await waitFor(() => logger.find('warn', 'older than the one held').length === 1, 5000), 'replay logged');
  t.equal((await checker.check(victim.x509, ec.ca.x509)).status, 'revoked');
});

t.test('a CRL signed by an intermediate the bundle lacks loads once a verified chain shows it', async (t) => {
  const root = await createOpensslPki({ caName: 'Chain Issuing CA', rootName: 'Chain Root' });
  t.teardown(() => root.cleanup());
  const leaf = await root.issue('chain-leaf');
  await root.revoke(leaf);
  const crl = await root.genCrl('chain');
  const logger = captureLogger();
  const checker = createRevocationChecker(
    revocationSchema.parse({ mode: 'crl', crl: { files: [crl], fetchDistributionPoints: false } }),
    { trustedCas: [root.root.x509], logger }, // the issuing CA is not in the bundle
  );
  t.teardown(() => checker.close());
  await checker.ready();
  t.equal(logger.find('warn', 'CRL rejected', { reason: 'issuer-unknown' }).length, 1, 'first attempt: issuer unknown');
  const first = await checker.check(leaf.x509, root.ca.x509); // the handshake's verified chain carries it
  // The first check waits for the re-run its issuer started: fail-open would otherwise forward a listed certificate.
  t.equal(first.status, 'revoked', 'the first sight waits for the CRL its issuer unlocks');
  t.ok(await waitFor(() => logger.find('info', 'CRL loaded').length === 1, 5000), 'reloaded once the issuer was learned');
  t.equal((await checker.check(leaf.x509, root.ca.x509)).status, 'revoked');
});
