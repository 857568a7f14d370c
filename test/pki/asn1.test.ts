/**
 * The one DER reader's limits against hostile input (truncation, indefinite and over-long lengths,
 * too many elements, deep nesting), the writer read back by the reader, times at the UTCTime /
 * GeneralizedTime boundary, and the serial text forms.
 */
import { X509Certificate } from 'node:crypto';
import t from 'tap';
import {
  MAX_CHILDREN,
  MAX_LENGTH_OCTETS,
  caSerialHexOf,
  childrenOf,
  decodeTime,
  encodeCertificateTime,
  encodeGeneralizedTime,
  encodeUnsignedInteger,
  readTlv,
  serialContentOfHex,
  serialHexOf,
  serialKeyOf,
  tlv,
  tlvOfList,
} from '../../src/pki/asn1/index.js';
import { parseCertificate, parseCrlHeader, parseOcspRequest } from '../../src/pki/index.js';
import { generateKey, issueCertificate } from '../../src/pki/index.js';

const DER = { code: 'ERR_PKI', fault: 'der' };

t.test('readTlv refuses truncated, indefinite, over-long and overrunning headers', async (t) => {
  const bad: [string, number[]][] = [
    ['truncated header', [0x30]],
    ['truncated length octets', [0x30, 0x82, 0x01]],
    ['indefinite length (BER)', [0x30, 0x80, 0x00, 0x00]],
    [`length longer than ${MAX_LENGTH_OCTETS} octets`, [0x30, 0x85, 1, 1, 1, 1, 1]],
    ['a 4 GiB length in a short buffer', [0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x00]],
    ['content overruns', [0x30, 0x05, 0x01]],
    ['multi-byte tag', [0x1f, 0x81, 0x01, 0x00]],
  ];
  for (const [what, bytes] of bad) t.throws(() => readTlv(Buffer.from(bytes), 0), DER, what);
  // A child may not end past its parent, even when the buffer goes on.
  const overrunsParent = Buffer.from([0x30, 0x02, 0x04, 0x03, 0x00, 0x00, 0x00]);
  t.throws(() => childrenOf(overrunsParent, readTlv(overrunsParent, 0)), DER, 'a child overrunning its parent');
});

t.test('childrenOf bounds the number of elements', async (t) => {
  const list = tlvOfList(0x30, Array.from({ length: 100 }, () => Buffer.of(0x05, 0x00)));
  t.equal(childrenOf(list, readTlv(list, 0), 100).length, 100, 'exactly the maximum');
  t.throws(() => childrenOf(list, readTlv(list, 0), 99), DER, 'one more than the maximum');
  const long = tlvOfList(0x30, Array.from({ length: MAX_CHILDREN + 1 }, () => Buffer.of(0x05, 0x00)));
  t.equal(childrenOf(long, readTlv(long, 0), Infinity).length, MAX_CHILDREN + 1, 'unbounded only when asked');
  t.throws(() => childrenOf(long, readTlv(long, 0)), { ...DER, message: new RegExp(`more than ${MAX_CHILDREN} elements`) }, `bounded by default (${MAX_CHILDREN})`);
});

// An attacker who serves the CRL (it is fetched over plain HTTP, and parsed before its signature
// is checked) once sent a TBSCertList of 25 million NULLs: every one became an object, 2 GB of heap.
t.test('a CRL whose TBSCertList has more fields than RFC 5280 allows is refused before they are listed', async (t) => {
  const alg = tlvOfList(0x30, [Buffer.of(0x06, 0x03, 0x2b, 0x65, 0x70)]);
  const crl = (fields: number) =>
    tlvOfList(0x30, [tlvOfList(0x30, Array.from({ length: fields }, () => Buffer.of(0x05, 0x00))), alg, Buffer.of(0x03, 0x01, 0x00)]);
  t.throws(() => parseCrlHeader(crl(8)), { ...DER, message: /more than 7 elements/ }, 'eight fields');
  t.throws(() => parseCrlHeader(crl(200_000)), { ...DER, message: /more than 7 elements/ }, '200,000 fields');
});

t.test('deep nesting costs nothing: nothing recurses, the schema decides how deep a reader goes', async (t) => {
  let nested: Buffer = Buffer.of(0x05, 0x00);
  for (let i = 0; i < 5_000; i++) nested = tlv(0x30, nested);
  t.equal(readTlv(nested, 0).end, nested.length, 'five thousand nested SEQUENCEs, well-formed');
  t.throws(() => parseCertificate(nested), DER, 'not a certificate, refused without a stack overflow');
  t.throws(() => parseOcspRequest(nested, 10), DER, 'not an OCSP request either');
  const hostile = (() => {
    try {
      parseCertificate(nested);
    } catch (err) {
      return err as Error;
    }
    return undefined;
  })();
  t.equal(hostile?.stack?.split('\n').length, 1, 'a DER error carries no stack trace, only its message');
});

t.test('the writer uses minimal lengths, read back by the reader', async (t) => {
  for (const size of [0, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0x1000000]) {
    const der = tlv(0x04, Buffer.alloc(size));
    const header = size < 0x80 ? 2 : size < 0x100 ? 3 : size < 0x10000 ? 4 : size < 0x1000000 ? 5 : 6;
    t.equal(der.length, header + size, `${size} octets: a ${header}-octet header`);
    const back = readTlv(der, 0);
    t.same([back.tag, back.contentStart, back.end], [0x04, header, der.length], `${size} octets read back`);
  }
  t.same([...encodeUnsignedInteger(Buffer.of(0, 0, 0x80))], [0x02, 0x02, 0x00, 0x80], 'leading zeros dropped, a 00 kept for the top bit');
  t.same([...encodeUnsignedInteger(Buffer.of(0, 0))], [0x02, 0x01, 0x00], 'zero');
});

t.test('times: UTCTime through 2049, GeneralizedTime from 2050, read back to the second', async (t) => {
  for (const [iso, tag] of [['1950-01-01T00:00:00Z', 0x17], ['2049-12-31T23:59:59Z', 0x17], ['2050-01-01T00:00:00Z', 0x18], ['1949-12-31T23:59:59Z', 0x18]] as const) {
    const ms = Date.parse(iso);
    const der = encodeCertificateTime(ms + 999);
    t.equal(der[0], tag, `${iso}: tag 0x${tag.toString(16)}`);
    t.equal(decodeTime(der, readTlv(der, 0)), ms, `${iso} read back, the fraction cut off`);
  }
  const gt = encodeGeneralizedTime(Date.parse('2026-12-03T19:00:01.500Z'));
  t.equal(gt.toString('latin1', 2), '20261203190001Z');
  t.throws(() => encodeCertificateTime(Number.NaN), RangeError);
  const fraction = Buffer.from('18113230353030313031303030303030' + '2e355a', 'hex');
  t.equal(decodeTime(fraction, readTlv(fraction, 0)), Date.UTC(2050, 0, 1, 0, 0, 0, 500), 'a GeneralizedTime fraction is tolerated on input');
});

t.test('serial text forms: upper-case like Node on the sidecar, lower-case at the CA', async (t) => {
  const key = await generateKey('p256');
  for (const hex of ['0a', '7f', '80', 'ff01', '10f1e2d3c4b5a6978877665544332211']) {
    const issued = await issueCertificate({ subject: 'CN=serial', key, serialHex: hex });
    const node = new X509Certificate(issued.der);
    const fields = parseCertificate(issued.der);
    t.equal(serialHexOf(fields.serialKey), node.serialNumber, `${hex}: sidecar form is Node's`);
    t.equal(caSerialHexOf(fields.serialContent), node.serialNumber.toLowerCase(), `${hex}: CA form is Node's, lower-case`);
    t.equal(serialKeyOf(serialContentOfHex(hex)), fields.serialKey, `${hex}: the encoder and the reader agree`);
  }
  t.equal(caSerialHexOf(Buffer.of(0x80)), undefined, 'a negative serial is none the CA issued');
  t.equal(caSerialHexOf(Buffer.alloc(22, 1)), undefined, 'nor one over 20 octets');
});
