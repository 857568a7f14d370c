import t from 'tap';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, sign, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSubjectAltName } from '../../src/pki/san.js';
import { oid, oidBody, tlv, type Bytes } from '../fixtures/der.js';

// Real certificates throughout; Node's own text is asserted as well, so a Node release that
// prints subjectAltName differently fails here first.

// A minimal DER writer and self-signed certificate, to put into a SAN bytes no CLI will write.

const seq = (...parts: Bytes[]): Buffer => tlv(0x30, ...parts);
const uri = (v: Bytes): Buffer => tlv(0x86, v);
const dns = (v: Bytes): Buffer => tlv(0x82, v);
const email = (v: Bytes): Buffer => tlv(0x81, v);
const ip = (bytes: number[]): Buffer => tlv(0x87, bytes);
const simpleName = (cn: string): Buffer => seq(tlv(0x31, seq(oid('2.5.4.3'), tlv(0x0c, cn))));

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
/** Node's `subjectAltName` of a self-signed certificate whose SAN holds these GeneralNames. */
function sanOf(...generalNames: Buffer[]): string | undefined {
  const alg = seq(oid('1.2.840.10045.4.3.2'));
  const time = (d: Date): Buffer => tlv(0x17, `${d.toISOString().replace(/[-:T]/g, '').slice(2, 14)}Z`);
  const name = simpleName('san-test');
  const ext = tlv(0xa3, seq(seq(oid('2.5.29.17'), tlv(0x04, seq(...generalNames)))));
  const tbs = seq(tlv(0xa0, tlv(0x02, [2])), tlv(0x02, [1]), alg, name, seq(time(new Date(Date.now() - 60_000)), time(new Date(Date.now() + 86_400_000))), name, publicKey.export({ type: 'spki', format: 'der' }), ext);
  return new X509Certificate(seq(tbs, alg, tlv(0x03, [0], sign('sha256', tbs, privateKey)))).subjectAltName;
}

t.test('the common case, from a certificate made by openssl', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'san-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-days', '1', '-subj', '/CN=dev', '-addext', 'subjectAltName=DNS:a.example,URI:urn:device:1,IP:127.0.0.1,email:x@y.example,IP:::1,DNS:*.b.example'], { stdio: 'ignore' });
  const text = new X509Certificate(readFileSync(join(dir, 'c.pem'))).subjectAltName;
  t.equal(text, 'DNS:a.example, URI:urn:device:1, IP Address:127.0.0.1, email:x@y.example, IP Address:0:0:0:0:0:0:0:1, DNS:*.b.example');
  t.same(parseSubjectAltName(text), { uri: ['urn:device:1'], dns: ['a.example', '*.b.example'], email: ['x@y.example'], ip: ['127.0.0.1', '::1'] });
});

t.test('no SAN extension gives empty lists', async (t) => {
  // An empty GeneralNames SEQUENCE (invalid: RFC 5280 says SIZE (1..MAX)). Node 20 prints it as "";
  // Node 24 (OpenSSL 3.5) throws instead. extractIdentity reads it inside the verifier's try, so
  // there such a certificate is refused (no_device_id), never half-read.
  const printed = ((): string | undefined | NodeJS.ErrnoException => {
    try {
      return sanOf();
    } catch (err) {
      return err as NodeJS.ErrnoException;
    }
  })();
  if (printed instanceof Error) t.equal(printed.code, 'ERR_CRYPTO_OPERATION_FAILED', 'Node 24: an empty SEQUENCE cannot be printed');
  else t.equal(printed, '', 'Node 20: an empty SEQUENCE prints as ""');
  t.same(parseSubjectAltName(''), { uri: [], dns: [], email: [], ip: [] });
  t.same(parseSubjectAltName(undefined), { uri: [], dns: [], email: [], ip: [] });
});

t.test('crafted values stay one entry each', async (t) => {
  const text = sanOf(
    uri('urn:x", URI:"urn:evil'),
    dns('a.example, DNS:b.example'),
    uri('urn:a,b'),
    uri('urn:\\u002c'),
    uri('"urn:q"'),
    uri("urn:it's"),
    email('a"b@c.example'),
    uri('urn:a\r\nX-Injected: 1'),
    uri([0x75, 0x3a, 0x7f, 0x00]),
    uri(' urn:spaces '),
    uri(''),
  );
  t.equal(
    text,
    'URI:"urn:x\\"\\u002c URI:\\"urn:evil", DNS:"a.example\\u002c DNS:b.example", URI:"urn:a\\u002cb", URI:"urn:\\\\u002c", ' +
      'URI:"\\"urn:q\\"", URI:"urn:it\'s", email:"a\\"b@c.example", URI:"urn:a\\u000d\\u000aX-Injected: 1", URI:"u:\\u007f\\u0000", ' +
      'URI: urn:spaces , URI:',
  );
  t.same(parseSubjectAltName(text), {
    uri: ['urn:x", URI:"urn:evil', 'urn:a,b', 'urn:\\u002c', '"urn:q"', "urn:it's", 'urn:a\r\nX-Injected: 1', 'u:\x7f\0', ' urn:spaces ', ''],
    dns: ['a.example, DNS:b.example'],
    email: ['a"b@c.example'],
    ip: [],
  });
});

t.test('other kinds are skipped, including text in them that looks like a URI', async (t) => {
  const otherName = (type: string, value: Buffer): Buffer => tlv(0xa0, oid(type), tlv(0xa0, value));
  const text = sanOf(
    tlv(0xa4, simpleName('dn", URI:urn:fake')),
    otherName('1.3.6.1.4.1.311.20.2.3', tlv(0x0c, 'user@realm, URI:urn:fake')),
    otherName('1.2.3.4', tlv(0x0c, 'URI:urn:fake')),
    tlv(0x88, oidBody('1.2.3.4')),
    tlv(0xa3, seq()),
    tlv(0xa5, tlv(0xa1, tlv(0x0c, 'p'))),
    uri('urn:real'),
  );
  t.equal(
    text,
    'DirName:"CN=dn\\\\\\"\\\\\\u002c URI:urn:fake", othername:"UPN:user@realm\\u002c URI:urn:fake", othername:<unsupported>, ' +
      'Registered ID:1.2.3.4, X400Name:<unsupported>, EdiPartyName:<unsupported>, URI:urn:real',
  );
  t.same(parseSubjectAltName(text), { uri: ['urn:real'], dns: [], email: [], ip: [] });
});

t.test('IPv6 addresses come out in RFC 5952 form', async (t) => {
  const v6 = (groups: number[]): number[] => groups.flatMap((g) => [g >> 8, g & 0xff]);
  const cases: Array<[number[], string]> = [
    [v6([0, 0, 0, 0, 0, 0, 0, 1]), '::1'],
    [v6([0, 0, 0, 0, 0, 0, 0, 0]), '::'],
    [v6([0xfe80, 0, 0, 0, 0, 0, 1, 0xabcd]), 'fe80::1:abcd'],
    [v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0]), '2001:db8::'],
    [v6([1, 0, 0, 1, 0, 0, 0, 1]), '1:0:0:1::1'],
    [v6([1, 0, 0, 2, 0, 0, 3, 4]), '1::2:0:0:3:4'],
    [v6([1, 0, 2, 3, 4, 5, 6, 7]), '1:0:2:3:4:5:6:7'],
    [v6([1, 2, 3, 4, 5, 6, 7, 8]), '1:2:3:4:5:6:7:8'],
    [v6([0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201]), '::ffff:192.0.2.1'],
    [[10, 0, 0, 255], '10.0.0.255'],
  ];
  const text = sanOf(...cases.map(([bytes]) => ip(bytes)));
  t.match(text, /^IP Address:0:0:0:0:0:0:0:1, IP Address:0:0:0:0:0:0:0:0, IP Address:FE80:0:0:0:0:0:1:ABCD, /);
  const parsed = parseSubjectAltName(text).ip;
  t.same(parsed, cases.map(([, expected]) => expected));
  // Cross-check with an independent serializer (WHATWG URL compresses the same way, but does not
  // dot IPv4-mapped addresses).
  for (const addr of parsed.slice(0, 8)) t.equal(new URL(`http://[${addr}]/`).hostname, `[${addr}]`);
});

t.test('fails closed', async (t) => {
  const bad: Array<[string, string | null | undefined]> = [
    ['a Latin-1 byte in a URI', sanOf(uri([0x75, 0x3a, 0xe9]))],
    ['UTF-8 bytes in a DNS name', sanOf(dns(Buffer.from('bücher.example', 'utf8')))],
    ['an IP of 3 bytes', sanOf(ip([1, 2, 3]), uri('urn:x'))],
    ['null (Node could not print the extension)', null],
    ['no type', 'a.example'],
    ['a type that swallowed a comma', 'x, URI:urn:a'],
    ['unterminated quote', 'URI:"urn:a'],
    ['text after a quoted value', 'URI:"urn:a"b, DNS:x'],
    ['a bad JSON escape', 'URI:"urn:\\x41"'],
    ['an unquoted comma', 'DNS:a,DNS:b'],
    ['an unquoted quote', 'URI:urn:"a"'],
    ['an IPv4 octet over 255', 'IP Address:1.2.3.256'],
    ['a short IPv6', 'IP Address:FE80:0:0:1'],
  ];
  for (const [name, text] of bad) {
    t.throws(() => parseSubjectAltName(text), { code: 'ERR_PKI', fault: 'subjectAltName' }, name);
  }
  t.equal(sanOf(uri([0x75, 0x3a, 0xe9])), 'URI:"u:\\u00e9"', 'Node escapes each non-ASCII byte of an IA5String as \\u00XX');
  t.equal(sanOf(ip([1, 2, 3])), 'IP Address:<invalid length=3>');
});
