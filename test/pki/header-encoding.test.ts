import t from 'tap';
import { validateHeaderValue } from 'node:http';
import { encodeHeaderToken, quoteXfccValue, sfBinary } from '../../src/pki/header-encoding.js';

// Every byte value, and the nastiest things a certificate field can carry. (Test names use the
// index: raw U+2028 in a name breaks tap's own reporter.)
const ALL_BYTES = String.fromCharCode(...Array.from({ length: 256 }, (_, i) => i));
const HOSTILE = [
  'urn:a\r\nX-Injected: 1',
  'a\nb',
  'nul\0byte',
  'del\x7f',
  'Zoë',
  '日本 😀',
  '\u2028\u2029\u0085',
  'lone \uD800 surrogate',
  ALL_BYTES,
  ' lead and trail ',
];

t.test('encodeHeaderToken: printable ASCII without , " ; % passes through unchanged', async (t) => {
  for (const v of ['urn:device:1', 'a.example', 'x@y.example', 'https://h/p?q=1&r=2#f', "it's", '<>=\\', '']) {
    t.equal(encodeHeaderToken(v), v);
  }
});

t.test('encodeHeaderToken: percent-encodes UTF-8 bytes, upper-case', async (t) => {
  t.equal(encodeHeaderToken('urn:a,b'), 'urn:a%2Cb');
  t.equal(encodeHeaderToken('a"b;c'), 'a%22b%3Bc');
  t.equal(encodeHeaderToken('a b'), 'a%20b');
  t.equal(encodeHeaderToken('urn:a\r\nX-Injected: 1'), 'urn:a%0D%0AX-Injected:%201');
  t.equal(encodeHeaderToken('Zoë'), 'Zo%C3%AB');
  t.equal(encodeHeaderToken('😀'), '%F0%9F%98%80');
  t.equal(encodeHeaderToken('\0\x7f'), '%00%7F');
  t.equal(encodeHeaderToken('\uD800'), '%EF%BF%BD', 'a lone surrogate is U+FFFD');
  t.equal(encodeHeaderToken('100%'), '100%25', '% is the escape character, so it is escaped too');
  t.equal(encodeHeaderToken('urn:a%20b'), 'urn:a%2520b', 'an already percent-encoded URI is encoded again');
});

t.test('encodeHeaderToken: injective — ids that differ never share a header value', async (t) => {
  const pairs: Array<[string, string]> = [
    ['urn:device:a,b', 'urn:device:a%2Cb'],
    ['a b', 'a%20b'],
    ['a;b', 'a%3Bb'],
    ['a"b', 'a%22b'],
    ['Zoë', 'Zo%C3%AB'],
    ['a\r\nb', 'a%0D%0Ab'],
    ['%', '%25'],
  ];
  for (const [a, b] of pairs) {
    t.not(encodeHeaderToken(a), encodeHeaderToken(b), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
  }
});

t.test('encodeHeaderToken: percent-decoding gives the input back', async (t) => {
  const corpus = [
    '',
    'urn:device:1',
    'urn:device:a,b',
    'urn:device:a%2Cb',
    '100%',
    '%%',
    '%zz',
    '%25',
    'a;b',
    'say "hi"',
    ' lead and trail ',
    'a\tb',
    'Zoë',
    '日本 😀',
    '\u2028\u2029\u0085',
    'urn:a\r\nX-Injected: 1',
    'nul\0byte\x7f',
    ALL_BYTES,
  ];
  for (const [i, v] of corpus.entries()) t.equal(decodeURIComponent(encodeHeaderToken(v)), v, `corpus #${i}`);
  // The caveat: a lone surrogate has no UTF-8 form; it comes back as U+FFFD.
  t.equal(decodeURIComponent(encodeHeaderToken('lone \uD800 surrogate')), 'lone \uFFFD surrogate');
  t.equal(decodeURIComponent(encodeHeaderToken('\uDC00x')), '\uFFFDx');
});

t.test('encodeHeaderToken: output is one token-safe item for any input', async (t) => {
  for (const [i, v] of HOSTILE.entries()) {
    const out = encodeHeaderToken(v);
    t.match(out, /^[\x21-\x7e]*$/, `hostile input #${i}`);
    t.notMatch(out, /[,";]/);
    t.notMatch(out, /%(?![0-9A-F]{2})/, 'every % starts an escape');
    t.doesNotThrow(() => validateHeaderValue('x-test', out), 'Node accepts it as a header value');
  }
});

t.test('quoteXfccValue: quotes like Envoy, escapes " and \\', async (t) => {
  t.equal(quoteXfccValue('urn:device:1'), 'urn:device:1', 'plain values stay bare');
  t.equal(quoteXfccValue('urn:a,b'), '"urn:a,b"');
  t.equal(quoteXfccValue('a;b'), '"a;b"');
  t.equal(quoteXfccValue('k=v'), '"k=v"');
  t.equal(quoteXfccValue('CN=x', { always: true }), '"CN=x"', 'Subject is always quoted');
  t.equal(quoteXfccValue('', { always: true }), '""');
  t.equal(quoteXfccValue(''), '');
  t.equal(quoteXfccValue('a b'), '"a b"');
  t.equal(quoteXfccValue('say "hi"'), '"say \\"hi\\""');
  t.equal(quoteXfccValue('ends with \\'), '"ends with \\\\"', 'cannot escape the closing quote');
  t.equal(quoteXfccValue('CN=Zo\\C3\\AB,O=Acme\\, Inc.', { always: true }), '"CN=Zo\\\\C3\\\\AB,O=Acme\\\\, Inc."');
  t.equal(quoteXfccValue('Zoë'), 'Zo%C3%AB');
  t.equal(quoteXfccValue('a\r\nb'), 'a%0D%0Ab');
});

t.test('quoteXfccValue: never emits a control or non-ASCII byte, and stays one value', async (t) => {
  for (const [i, v] of HOSTILE.entries()) {
    for (const always of [false, true]) {
      const out = quoteXfccValue(v, { always });
      t.match(out, /^[\x20-\x7e]*$/, `hostile input #${i}, always=${String(always)}`);
      t.doesNotThrow(() => validateHeaderValue('x-forwarded-client-cert', out));
      // Bare values hold no delimiter; quoted ones hold no unescaped quote before the last.
      if (out.startsWith('"')) t.match(out, /^"(?:[^"\\]|\\.)*"$/);
      else t.notMatch(out, /[,;="\\ ]/);
    }
  }
});

t.test('sfBinary: RFC 8941 byte sequence', async (t) => {
  t.equal(sfBinary(Buffer.from('hello')), ':aGVsbG8=:');
  t.equal(sfBinary(Buffer.alloc(0)), '::');
  t.equal(sfBinary(Buffer.from([0xfb, 0xff, 0xfe])), ':+//+:', 'standard alphabet, not base64url');
  const slice = Buffer.from('xxhelloxx').subarray(2, 7);
  t.equal(sfBinary(slice), ':aGVsbG8=:', 'honours the view offset of a pooled Buffer');
  t.equal(sfBinary(new Uint8Array([1, 2, 3])), ':AQID:');
  t.match(sfBinary(Buffer.from(ALL_BYTES, 'latin1')), /^:[A-Za-z0-9+/]*={0,2}:$/);
});
