/**
 * CRL entry extensions (RFC 5280 §5.3). reasonCode, invalidityDate and holdInstructionCode, as
 * `openssl ca` writes them, load. A CRL with an unrecognised critical entry extension, or with a
 * certificateIssuer entry extension (critical or not: an indirect CRL), is refused whole
 * (reason crl-unsupported, the OID named), and through a real file source the previous CRL is kept.
 * openssl writes no such entries, so those CRLs are built here and signed by the test CA's key.
 */
import { createPrivateKey, sign } from 'node:crypto';
import { readFile, writeFile, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { revocationSchema } from '../../src/config/revocation-schema.js';
import { parseCertificate } from '../../src/pki/index.js';
import { loadCrls } from '../../src/revocation/crl-load.js';
import { createRevocationChecker } from '../../src/revocation/index.js';
import { createIssuerRegistry } from '../../src/revocation/issuer-registry.js';
import { oid, tlv } from '../fixtures/der.js';
import { captureLogger } from '../fixtures/capturing-logger.js';
import { createOpensslPki, openssl } from '../fixtures/openssl-pki.js';
import { waitFor } from '../fixtures/wait.js';

const pki = await createOpensslPki();
t.teardown(() => pki.cleanup());
const trustedCas = [pki.root.x509, pki.ca.x509];
const registry = createIssuerRegistry(trustedCas, 10);
const load = async (bytes: Buffer) => loadCrls(bytes, { issuers: registry, reuse: () => undefined, sliceMs: 5 });

// --- hand-built CRLs of the test CA -----------------------------------------------------------
const caKey = createPrivateKey(await readFile(pki.ca.keyPath));
const caName = Buffer.from(parseCertificate(pki.ca.x509.raw).subjectName);
const ECDSA_SHA256 = tlv(0x30, oid('1.2.840.10045.4.3.2'));
const utc = (ms: number) => tlv(0x17, `${new Date(ms).toISOString().slice(2, 19).replace(/[-T:]/g, '')}Z`);
const BOOLEAN = { critical: tlv(0x01, [0xff]), explicitFalse: tlv(0x01, [0x00]), absent: Buffer.alloc(0) };

/** One Extension: OID, the BOOLEAN (if any) and an OCTET STRING value. */
const extension = (dotted: string, flag: Buffer, value: Buffer) => tlv(0x30, oid(dotted), flag, tlv(0x04, value));
const reasonCode = extension('2.5.29.21', BOOLEAN.absent, tlv(0x0a, [1]));
const certificateIssuer = (flag: Buffer) => extension('2.5.29.29', flag, tlv(0x30, tlv(0xa4, caName)));

/** A CRL listing `serialHex` with `entryExtensions`, CRL number 0x7f (newer than openssl's), signed by the CA. */
function handBuiltCrl(serialHex: string, entryExtensions: Buffer[]): Buffer {
  const entry = tlv(0x30, tlv(0x02, Buffer.from(serialHex, 'hex')), utc(Date.now() - 60_000), tlv(0x30, ...entryExtensions));
  const crlNumber = tlv(0xa0, tlv(0x30, extension('2.5.29.20', BOOLEAN.absent, tlv(0x02, [0x7f]))));
  const tbs = tlv(0x30, tlv(0x02, [1]), ECDSA_SHA256, caName, utc(Date.now()), utc(Date.now() + 86_400_000), tlv(0x30, entry), crlNumber);
  return tlv(0x30, tbs, ECDSA_SHA256, tlv(0x03, [0], sign('sha256', tbs, caKey)));
}

const refused: [string, Buffer, RegExp][] = [
  ['an unknown critical entry extension', extension('1.2.3.4.5.6', BOOLEAN.critical, tlv(0x05)), /unknown critical CRL entry extension 1\.2\.3\.4\.5\.6/],
  ['a non-critical certificateIssuer entry extension', certificateIssuer(BOOLEAN.absent), /certificateIssuer \(2\.5\.29\.29\)/],
  ['a critical certificateIssuer entry extension', certificateIssuer(BOOLEAN.critical), /certificateIssuer \(2\.5\.29\.29\)/],
];

t.test('reasonCode, invalidityDate and holdInstructionCode entries from openssl ca load', async (t) => {
  const compromised = await pki.issue('compromised');
  const held = await pki.issue('held');
  const superseded = await pki.issue('superseded');
  const ca = ['ca', '-config', 'ca.cnf', '-revoke'];
  await openssl([...ca, compromised.certPath, '-crl_compromise', '20240102030405Z'], pki.dir); // invalidityDate
  await openssl([...ca, held.certPath, '-crl_hold', 'holdInstructionCallIssuer'], pki.dir); // holdInstructionCode
  await openssl([...ca, superseded.certPath, '-crl_reason', 'superseded'], pki.dir);
  const pem = await pki.genCrl('reasons');
  const text = await openssl(['crl', '-in', pem, '-noout', '-text'], pki.dir);
  for (const ext of ['Invalidity Date', 'Hold Instruction Code', 'CRL Reason Code']) t.match(text, ext, `openssl wrote a ${ext} entry extension`);
  const { crls, failures } = await load(await readFile(pem));
  t.same(failures, []);
  for (const cert of [compromised, held, superseded]) {
    t.ok(crls[0]?.serials.has(Buffer.from(cert.x509.serialNumber, 'hex').toString('latin1')), `${cert.name} listed`);
  }
});

t.test('a CRL is refused whole for an entry extension that changes its meaning', async (t) => {
  for (const [label, ext, message] of refused) {
    const { crls, failures } = await load(handBuiltCrl('7E57', [reasonCode, ext]));
    t.equal(crls.length, 0, label);
    t.equal(failures[0]?.reason, 'crl-unsupported', label);
    t.match(failures[0]?.message, message, label);
  }
});

t.test('non-critical unknown entry extensions are ignored', async (t) => {
  for (const flag of [BOOLEAN.absent, BOOLEAN.explicitFalse]) {
    const { crls, failures } = await load(handBuiltCrl('7E57', [extension('1.2.3.4.5.6', flag, tlv(0x05)), reasonCode]));
    t.same(failures, []);
    t.ok(crls[0]?.serials.has('\x7e\x57'));
  }
});

t.test('through a reloaded CRL file: a refused CRL keeps the previous one', async (t) => {
  const revoked = await pki.issue('file-revoked');
  const victim = await pki.issue('file-victim');
  await pki.revoke(revoked);
  const file = join(pki.dir, 'reloaded.pem');
  await copyFile(await pki.genCrl('before-reload'), file);
  const logger = captureLogger();
  const options = revocationSchema.parse({ mode: 'crl', crl: { files: [file], fetchDistributionPoints: false, filePollIntervalSeconds: 1 } });
  const checker = createRevocationChecker(options, { trustedCas, logger });
  t.teardown(() => checker.close());
  await checker.ready();
  t.equal((await checker.check(revoked.x509, pki.ca.x509)).status, 'revoked');
  const rejections = () => logger.find('warn', 'CRL rejected', { reason: 'crl-unsupported' });
  for (const [i, [label, ext, message]] of refused.entries()) {
    // Newer and validly signed: only the entry extension stands between it and the victim's un-revoking.
    await writeFile(file, handBuiltCrl(victim.x509.serialNumber, [ext]));
    t.ok(await waitFor(() => rejections().length === i + 1, 5000), `${label}: refused`);
    t.match(rejections()[i]?.obj.detail, message);
    t.equal((await checker.check(revoked.x509, pki.ca.x509)).status, 'revoked', `${label}: previous CRL still answers`);
    t.equal((await checker.check(victim.x509, pki.ca.x509)).status, 'good');
  }
  // Control: the same CRL with a non-critical unknown extension replaces the previous one.
  await writeFile(file, handBuiltCrl(victim.x509.serialNumber, [extension('1.2.3.4.5.6', BOOLEAN.absent, tlv(0x05))]));
  t.ok(await waitFor(() => logger.find('info', 'CRL loaded').length === 2, 5000), 'the acceptable CRL loads');
  t.equal((await checker.check(victim.x509, pki.ca.x509)).status, 'revoked');
});
