/**
 * Serial and certificate-field handling against what Node and openssl say: our serial hex equals
 * `X509Certificate.serialNumber` (leading-zero and high-bit cases included); CRL lookups find
 * such serials; CDP, AIA and EKU are read from openssl-made certificates; the serial index never
 * confuses keys. (The DER reader's own limits: test/pki/asn1.test.ts.)
 */
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { revocationSchema } from '../../src/config/revocation-schema.js';
import {
  NEGATIVE,
  OID,
  createSerialSetBuilder,
  crlDistributionPointUrls,
  extendedKeyUsages,
  ocspResponderUrls,
  parseCertificate,
  serialHexOf,
  serialKeyFromHex,
  serialKeyOf,
} from '../../src/pki/index.js';
import { computeIssuerKeyHash, createRevocationChecker } from '../../src/revocation/index.js';
import { captureLogger } from '../fixtures/capturing-logger.js';
import { createOpensslPki } from '../fixtures/openssl-pki.js';

const pki = await createOpensslPki();
t.teardown(() => pki.cleanup());

t.test('serial hex matches X509Certificate.serialNumber, and CRL lookups find those serials', async (t) => {
  // 0A: leading zero nibble; 80 and FF01: DER adds a 00 octet; 2D...: first byte is '-' in latin1.
  const serials = ['0A', '7F', '80', 'FF01', '2D4189A89B8E38E5', '00C0FFEE', 'F1E2D3C4B5A6978877665544332211FFEEDDCCBB'];
  const issued = [];
  for (const [i, hex] of serials.entries()) {
    await pki.setNextSerial(hex);
    const cert = await pki.issue(`serial-${i}`);
    t.equal(parseCertificate(cert.x509.raw).serialHex, cert.x509.serialNumber, `serial ${hex}`);
    issued.push(cert);
  }
  for (const cert of issued) await pki.revoke(cert);
  const checker = createRevocationChecker(
    revocationSchema.parse({ mode: 'crl', crl: { files: [await pki.genCrl('serials')], fetchDistributionPoints: false } }),
    { trustedCas: [pki.root.x509, pki.ca.x509], logger: captureLogger() },
  );
  t.teardown(() => checker.close());
  await checker.ready();
  for (const cert of issued) t.equal((await checker.check(cert.x509, pki.ca.x509)).status, 'revoked', cert.x509.serialNumber);
});

t.test('serial keys: canonical, and negatives never collide with positives', async (t) => {
  t.equal(serialKeyOf(Buffer.from([0x00, 0xff, 0x01])), '\xff\x01', 'sign octet stripped');
  t.equal(serialHexOf(serialKeyOf(Buffer.from([0x0a]))), '0A');
  t.equal(serialHexOf(serialKeyOf(Buffer.from([0x00]))), '0');
  const negative = serialKeyOf(Buffer.from([0xff])); // -1
  t.equal(negative, `${NEGATIVE}\x01`);
  t.equal(serialHexOf(negative), '-01');
  t.not(negative, serialKeyOf(Buffer.from([0x01])));
  t.equal(serialKeyFromHex('-01'), negative);
  t.equal(serialKeyFromHex('ff01'), '\xff\x01');
  t.equal(serialKeyFromHex('A'), '\x0a');
});

t.test('the serial index: hits, misses, duplicates, growth, negatives', async (t) => {
  const builder = createSerialSetBuilder(8, 2); // deliberately too small: must grow
  const keys: string[] = [];
  for (let i = 0; i < 5000; i++) {
    const b = randomBytes(3 + (i % 18)); // distinct by construction: bytes 1-2 carry i
    b[0] = i % 7 === 0 ? 0x2d : (b[0] as number) | 1; // some start with '-' (0x2d)
    b.writeUInt16BE(i, 1);
    keys.push(b.toString('latin1'));
    builder.addBytes(b, 0, b.length);
  }
  builder.addBytes(Buffer.from(keys[0] as string, 'latin1'), 0, (keys[0] as string).length); // duplicate
  builder.addKey(`${NEGATIVE}\x05`);
  const set = await builder.finish(5);
  t.equal(set.size, 5001);
  t.ok(keys.every((k) => set.has(k)), 'every key found');
  t.ok(set.has(`${NEGATIVE}\x05`));
  t.notOk(set.has('\x05'));
  let falseHits = 0;
  for (let i = 0; i < 5000; i++) if (set.has(randomBytes(21).toString('latin1'))) falseHits++;
  t.equal(falseHits, 0, 'no false positives');
  const empty = await createSerialSetBuilder(0, 0).finish(5);
  t.equal(empty.size, 0);
  t.notOk(empty.has(''));
});

t.test('CDP, AIA and EKU from openssl-made certificates; issuer key hash', async (t) => {
  const cert = await pki.issue('fields', {
    cdp: ['http://127.0.0.1:1/a.crl', 'http://127.0.0.1:1/b.crl'],
    ocsp: ['http://127.0.0.1:2/'],
    eku: 'clientAuth,OCSPSigning',
  });
  const fields = parseCertificate(cert.x509.raw);
  t.same(crlDistributionPointUrls(fields), ['http://127.0.0.1:1/a.crl', 'http://127.0.0.1:1/b.crl']);
  t.same(ocspResponderUrls(fields), ['http://127.0.0.1:2/']);
  t.same(extendedKeyUsages(fields), ['1.3.6.1.5.5.7.3.2', OID.kpOcspSigning]);
  t.equal(computeIssuerKeyHash(pki.ca.x509), computeIssuerKeyHash(parseCertificate(pki.ca.x509.raw)));
  t.match(computeIssuerKeyHash(pki.ca.x509), /^[0-9a-f]{64}$/);
  t.not(computeIssuerKeyHash(pki.ca.x509), computeIssuerKeyHash(pki.root.x509));
});

