// The PROXY protocol reader: every form the spec allows, each malformed one refused, and every
// prefix of a valid header answered `incomplete` (a header split across TCP segments).
import t from 'tap';
import { MAX_V1_BYTES, MAX_V2_BYTES, parseProxyHeader, startsLikeProxyHeader } from '../../src/tls/proxy-header.js';

const SIG = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
const CLIENT_HELLO_START = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]);

/** A v2 header: version/command byte, family/transport byte, address block (and TLVs). */
function v2(verCmd: number, famProto: number, block: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(block.length);
  return Buffer.concat([SIG, Buffer.from([verCmd, famProto]), len, block]);
}
function inet4Block(src: number[], dst: number[], sport: number, dport: number): Buffer {
  const b = Buffer.alloc(12);
  b.set(src, 0);
  b.set(dst, 4);
  b.writeUInt16BE(sport, 8);
  b.writeUInt16BE(dport, 10);
  return b;
}
function inet6Block(src: string, dst: string, sport: number, dport: number): Buffer {
  const b = Buffer.alloc(36);
  Buffer.from(src, 'hex').copy(b, 0);
  Buffer.from(dst, 'hex').copy(b, 16);
  b.writeUInt16BE(sport, 32);
  b.writeUInt16BE(dport, 34);
  return b;
}

t.test('v1 TCP4, TCP6 and UNKNOWN, with the ClientHello after them', async (t) => {
  const line = 'PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n';
  const r = parseProxyHeader(Buffer.concat([Buffer.from(line), CLIENT_HELLO_START]));
  t.same(r, { kind: 'header', version: 1, length: line.length, client: { address: '203.0.113.7', port: 51234, family: 'IPv4' } });
  t.match(parseProxyHeader(Buffer.from('PROXY TCP6 2001:db8::1 ::1 1 65535\r\n')), { kind: 'header', client: { address: '2001:db8::1', port: 1, family: 'IPv6' } });
  t.same(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n')), { kind: 'header', version: 1, length: 15, client: undefined });
  t.match(parseProxyHeader(Buffer.from('PROXY UNKNOWN ffff::1 ::1 1 2\r\n')), { kind: 'header', client: undefined });
});

t.test('v1 malformed lines are invalid, never a client', async (t) => {
  const bad = [
    'PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\n', // LF without CR
    'PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\rX', // CR without LF
    'PROXY TCP4  203.0.113.7 10.0.0.1 51234 443\r\n', // two spaces
    'PROXY TCP4 203.0.113.7 10.0.0.1 51234\r\n', // a field missing
    'PROXY TCP4 203.0.113.7 10.0.0.1 51234 443 x\r\n', // one too many
    'PROXY TCP5 203.0.113.7 10.0.0.1 51234 443\r\n', // protocol
    'PROXY TCP4 2001:db8::1 10.0.0.1 51234 443\r\n', // family mismatch
    'PROXY TCP6 203.0.113.7 ::1 51234 443\r\n',
    'PROXY TCP4 203.0.113.256 10.0.0.1 51234 443\r\n', // octet
    'PROXY TCP4 203.0.113.7 10.0.0.1 65536 443\r\n', // port range
    'PROXY TCP4 203.0.113.7 10.0.0.1 051234 443\r\n', // leading zero
    'PROXY TCP4 203.0.113.7 10.0.0.1 -1 443\r\n',
    'PROXY TCP4 203.0.113.7 10.0.0.1 1e3 443\r\n',
    'PROXY tcp4 203.0.113.7 10.0.0.1 1 443\r\n',
    'PROXY TCP4 203.0.113.7\t10.0.0.1 1 443\r\n', // control byte
  ];
  for (const line of bad) t.equal(parseProxyHeader(Buffer.from(line, 'latin1')).kind, 'invalid', JSON.stringify(line));
  t.equal(parseProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\u00e9\r\n', 'utf8')).kind, 'invalid', 'a non-ASCII byte');
});

t.test('v1 is bounded at 107 bytes: a longer line is refused without waiting for more', async (t) => {
  const longest = `PROXY UNKNOWN ${'x'.repeat(MAX_V1_BYTES - 'PROXY UNKNOWN \r\n'.length)}\r\n`;
  t.equal(longest.length, MAX_V1_BYTES);
  t.equal(parseProxyHeader(Buffer.from(longest)).kind, 'header', 'exactly 107 bytes is allowed');
  t.match(parseProxyHeader(Buffer.from(`PROXY UNKNOWN ${'x'.repeat(200)}`)), { kind: 'invalid', detail: /no CRLF within 107/ });
  t.equal(parseProxyHeader(Buffer.from(`PROXY UNKNOWN ${'x'.repeat(MAX_V1_BYTES - 15)}`)).kind, 'incomplete', '106 bytes without CRLF: wait');
});

t.test('v2 PROXY over IPv4 and IPv6, TLVs skipped, the rest left for TLS', async (t) => {
  const tlv = Buffer.from([0xea, 0x00, 0x05, 0x01, 0x76, 0x70, 0x63, 0x65]); // AWS VPC endpoint TLV
  const h4 = v2(0x21, 0x11, Buffer.concat([inet4Block([198, 51, 100, 9], [10, 0, 0, 2], 40000, 8443), tlv]));
  t.same(parseProxyHeader(Buffer.concat([h4, CLIENT_HELLO_START])), {
    kind: 'header',
    version: 2,
    length: h4.length,
    client: { address: '198.51.100.9', port: 40000, family: 'IPv4' },
  });
  const h6 = v2(0x21, 0x21, inet6Block('20010db8000000000000000000000005', '00000000000000000000000000000001', 1234, 443));
  t.match(parseProxyHeader(h6), { kind: 'header', client: { address: '2001:db8::5', port: 1234, family: 'IPv6' } });
  const mapped = v2(0x21, 0x21, inet6Block('00000000000000000000ffffc0000201', '00000000000000000000000000000001', 1, 2));
  t.match(parseProxyHeader(mapped), { client: { address: '::ffff:192.0.2.1' } }, 'IPv4-mapped written as Node writes it');
});

t.test('v2 LOCAL, AF_UNSPEC and AF_UNIX name no client: the socket address stands', async (t) => {
  t.same(parseProxyHeader(v2(0x20, 0x00, Buffer.alloc(0))), { kind: 'header', version: 2, length: 16, client: undefined });
  t.match(parseProxyHeader(v2(0x20, 0x11, inet4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2))), { kind: 'header', client: undefined }, 'LOCAL ignores its addresses');
  t.match(parseProxyHeader(v2(0x21, 0x00, Buffer.alloc(0))), { kind: 'header', client: undefined });
  t.match(parseProxyHeader(v2(0x21, 0x31, Buffer.alloc(216))), { kind: 'header', client: undefined, length: 232 });
});

t.test('v2 malformed headers are invalid', async (t) => {
  const cases: Array<[string, Buffer]> = [
    ['version 1 in a v2 signature', v2(0x11, 0x11, inet4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2))],
    ['version 3', v2(0x31, 0x11, inet4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2))],
    ['command 2', v2(0x22, 0x11, inet4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2))],
    ['family 4', v2(0x21, 0x41, Buffer.alloc(12))],
    ['transport 3', v2(0x21, 0x13, Buffer.alloc(12))],
    ['UDP', v2(0x21, 0x12, inet4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2))],
    ['AF_INET block too short', v2(0x21, 0x11, Buffer.alloc(11))],
    ['AF_INET6 block too short', v2(0x21, 0x21, Buffer.alloc(35))],
  ];
  for (const [what, buf] of cases) t.equal(parseProxyHeader(buf).kind, 'invalid', what);
});

t.test('v2 length is bounded before any byte of it is waited for', async (t) => {
  const huge = Buffer.concat([SIG, Buffer.from([0x21, 0x11, 0xff, 0xff])]);
  t.match(parseProxyHeader(huge), { kind: 'invalid', detail: /exceeds/ }, 'a 64 KiB length is refused from its 16 bytes');
  const atLimit = v2(0x21, 0x11, Buffer.concat([inet4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2), Buffer.alloc(MAX_V2_BYTES - 16 - 12)]));
  t.equal(parseProxyHeader(atLimit).kind, 'header', `${MAX_V2_BYTES} bytes in all is allowed`);
});

t.test('every prefix of a valid header is incomplete, and the whole one parses', async (t) => {
  const headers = [
    Buffer.from('PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n'),
    v2(0x21, 0x11, inet4Block([198, 51, 100, 9], [10, 0, 0, 2], 40000, 8443)),
    v2(0x21, 0x21, inet6Block('20010db8000000000000000000000005', '00000000000000000000000000000001', 1234, 443)),
  ];
  for (const h of headers) {
    for (let n = 0; n < h.length; n++) t.equal(parseProxyHeader(h.subarray(0, n)).kind, 'incomplete', `${n}/${h.length} bytes`);
    t.equal(parseProxyHeader(h).kind, 'header');
  }
});

t.test('anything that is not a signature is absent, decided from its first differing byte', async (t) => {
  t.equal(parseProxyHeader(CLIENT_HELLO_START).kind, 'absent', 'a TLS ClientHello');
  t.equal(parseProxyHeader(Buffer.from('GET / HTTP/1.1\r\n')).kind, 'absent');
  t.equal(parseProxyHeader(Buffer.from('PROXX')).kind, 'absent');
  t.equal(parseProxyHeader(Buffer.from([0x0d, 0x0a, 0x0d, 0x0b])).kind, 'absent');
  t.equal(startsLikeProxyHeader(CLIENT_HELLO_START), 'no');
  t.equal(startsLikeProxyHeader(Buffer.from('PRO')), 'maybe');
  t.equal(startsLikeProxyHeader(Buffer.from('PROXY ')), 'yes');
  t.equal(startsLikeProxyHeader(SIG.subarray(0, 5)), 'maybe');
  t.equal(startsLikeProxyHeader(SIG), 'yes');
});

t.test('random garbage never throws', async (t) => {
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  for (let i = 0; i < 5_000; i++) {
    const prefix = i % 3 === 0 ? Buffer.from('PROXY ') : i % 3 === 1 ? SIG : Buffer.alloc(0);
    const tail = Buffer.from(Array.from({ length: Math.floor(rand() * 120) }, () => Math.floor(rand() * 256)));
    parseProxyHeader(Buffer.concat([prefix, tail]));
  }
  t.pass('5,000 random inputs parsed without an exception');
});
