import t from 'tap';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, sign, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatRfc4514 } from '../../src/pki/dn.js';
import { oid, tlv, type Bytes } from '../fixtures/der.js';

// Every expectation below was taken from real certificates: Node's `subject` text is asserted
// too, so a Node release that prints names differently fails here first.

const dir = mkdtempSync(join(tmpdir(), 'dn-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** `openssl req -x509 -subj ...`: returns [Node's subject, OpenSSL's RFC 2253 subject]. */
function viaOpenssl(subj: string): [string, string] {
  const base = join(dir, `o${n++}`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${base}.key`, '-out', `${base}.crt`, '-days', '1', '-utf8', '-multivalue-rdn', '-subj', subj], { stdio: 'ignore' });
  return [new X509Certificate(readFileSync(`${base}.crt`)).subject, opensslRfc2253(`${base}.crt`)];
}

function opensslRfc2253(file: string): string {
  return execFileSync('openssl', ['x509', '-in', file, '-noout', '-subject', '-nameopt', 'RFC2253'], { encoding: 'utf8' }).replace(/^subject=/, '').replace(/\n$/, '');
}

// Certificates built byte by byte put into a name what no CLI will write (control characters,
// a T61String, a SEQUENCE as a value).
type Rdn = Array<[string, number, Bytes]>; // [type OID, value tag, value bytes]
const CN = '2.5.4.3';
const O = '2.5.4.10';
const UTF8 = 0x0c;
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
function viaDer(rdns: Rdn[]): [string, string] {
  const name = tlv(0x30, ...rdns.map((rdn) => tlv(0x31, ...rdn.map(([type, tag, v]) => tlv(0x30, oid(type), tlv(tag, v))))));
  const alg = tlv(0x30, oid('1.2.840.10045.4.3.2'));
  const time = (d: Date): Buffer => tlv(0x17, `${d.toISOString().replace(/[-:T]/g, '').slice(2, 14)}Z`);
  const validity = tlv(0x30, time(new Date(Date.now() - 60_000)), time(new Date(Date.now() + 86_400_000)));
  const tbs = tlv(0x30, tlv(0xa0, tlv(0x02, [2])), tlv(0x02, [1]), alg, name, validity, name, publicKey.export({ type: 'spki', format: 'der' }));
  const der = tlv(0x30, tbs, alg, tlv(0x03, [0], sign('sha256', tbs, privateKey)));
  const file = join(dir, `d${n++}.crt`);
  writeFileSync(file, `-----BEGIN CERTIFICATE-----\n${der.toString('base64').match(/.{1,64}/g)?.join('\n')}\n-----END CERTIFICATE-----\n`);
  return [new X509Certificate(der).subject, opensslRfc2253(file)];
}

const HEADER_SAFE = /^[\x20-\x7e]*[\x21-\x7e]$|^$/;

t.test('RFC 2253 specials, non-ASCII and a multi-valued RDN: identical to openssl -nameopt RFC2253', async (t) => {
  const [node, ossl] = viaOpenssl('/C=US/O=Acme\\, Inc./OU=x\\+y/CN=Zoë "q" \\\\ back/CN=#hash/CN=semi;lt<gt>eq=/CN=日本 😀/emailAddress=a@b.example/UID=u1+CN=mv');
  t.equal(
    node,
    'C=US\nO=Acme\\, Inc.\nOU=x\\+y\nCN=Zoë \\"q\\" \\\\ back\nCN=\\#hash\nCN=semi\\;lt\\<gt\\>eq=\nCN=日本 😀\nemailAddress=a@b.example\nCN=mv + UID=u1',
    "Node's text: OpenSSL escapes, raw UTF-8, certificate order",
  );
  const expected =
    'UID=u1+CN=mv,emailAddress=a@b.example,CN=\\E6\\97\\A5\\E6\\9C\\AC \\F0\\9F\\98\\80,CN=semi\\;lt\\<gt\\>eq=,CN=\\#hash,CN=Zo\\C3\\AB \\"q\\" \\\\ back,OU=x\\+y,O=Acme\\, Inc.,C=US';
  t.equal(formatRfc4514(node), expected);
  t.equal(formatRfc4514(node), ossl);
  t.match(formatRfc4514(node), HEADER_SAFE);
});

t.test('leading and trailing spaces become \\20 where OpenSSL writes "\\ "', async (t) => {
  const [node, ossl] = viaOpenssl('/CN=  two  /OU=p /O= q');
  t.equal(node, 'CN=\\  two \\ \nOU=p\\ \nO=\\ q');
  t.equal(formatRfc4514(node), 'O=\\20q,OU=p\\20,CN=\\20 two \\20');
  t.equal(formatRfc4514(node), ossl.replaceAll('\\ ', '\\20'));
  t.notMatch(formatRfc4514(node), / $/, 'a trailing space cannot be trimmed off the header value');
});

t.test('control characters cannot forge RDNs or break the header', async (t) => {
  const [node, ossl] = viaDer([
    [[CN, UTF8, 'x\nCN=admin']],
    [[CN, UTF8, 'x + O=admin']],
    [[CN, UTF8, 'a,O=admin']],
    [[O, UTF8, Buffer.from('cr\rlf\ntab\tnul\0del\x7f')]],
  ]);
  t.equal(node, 'CN=x\\0ACN=admin\nCN=x \\+ O=admin\nCN=a\\,O=admin\nO=cr\\0Dlf\\0Atab\\09nul\\00del\\7F');
  const out = formatRfc4514(node);
  t.equal(out, 'O=cr\\0Dlf\\0Atab\\09nul\\00del\\7F,CN=a\\,O=admin,CN=x \\+ O=admin,CN=x\\0ACN=admin');
  t.equal(out, ossl);
  t.match(out, HEADER_SAFE);
});

t.test('a multi-valued RDN whose value ends in a backslash or a space next to " + "', async (t) => {
  const [node, ossl] = viaDer([[[CN, UTF8, 'a\\'], [O, UTF8, 'b ']], [[CN, UTF8, 'c']]]);
  t.equal(node, 'CN=a\\\\ + O=b\\ \nCN=c');
  t.equal(formatRfc4514(node), 'CN=c,O=b\\20+CN=a\\\\');
  t.equal(formatRfc4514(node), ossl.replaceAll('\\ ', '\\20'));
});

t.test('where Node and OpenSSL part ways', async (t) => {
  // OpenSSL escapes a leading "#" only when it is not also the last character.
  const [lone, lossl] = viaDer([[[CN, UTF8, '#']]]);
  t.equal(lone, 'CN=#');
  t.equal(lossl, 'CN=#');
  t.equal(formatRfc4514(lone), 'CN=\\#', 'RFC 4514 wants a leading # escaped');

  // A T61String is read as Latin-1 and converted to UTF-8 by both.
  const [t61, tossl] = viaDer([[[CN, 0x14, [0x5a, 0x6f, 0xeb]]]]);
  t.equal(t61, 'CN=Zoë');
  t.equal(formatRfc4514(t61), tossl);

  // An unknown OID: OpenSSL's RFC2253 mode dumps #hex DER, Node prints the text, and a value
  // that is not a string at all comes out as its DER bytes (Latin-1), escaped.
  const [odd, oossl] = viaDer([[['1.2.3.4', UTF8, 'text']], [['1.2.3.5', 0x30, tlv(UTF8, 'x,y')]]]);
  t.equal(odd, '1.2.3.4=text\n1.2.3.5=0\\05\\0C\\03x\\,y');
  t.equal(oossl, '1.2.3.5=#30050C03782C79,1.2.3.4=#0C0474657874');
  t.equal(formatRfc4514(odd), '1.2.3.5=0\\05\\0C\\03x\\,y,1.2.3.4=text');
});

t.test('an empty name and an empty value', async (t) => {
  t.equal(formatRfc4514(undefined), '');
  t.equal(formatRfc4514(''), '');
  const [empty] = viaDer([[[CN, UTF8, '']]]);
  t.equal(formatRfc4514(empty), 'CN=');
  const [none] = viaDer([]);
  // Node 20 gives undefined for an empty subject (typed as string), Node 24 gives ''; both format as ''.
  t.ok(none === undefined || none === '', 'Node gives undefined (20) or "" (24) for an empty subject');
  t.equal(formatRfc4514(none), '');
});

t.test('unescapes and re-escapes rather than passing text through', async (t) => {
  // Not Node output, but must still come out well-formed and header-safe.
  t.equal(formatRfc4514('CN=a,b\nO=x"y'), 'O=x\\"y,CN=a\\,b');
  t.equal(formatRfc4514('CN=tab\there'), 'CN=tab\\09here');
  t.equal(formatRfc4514('CN=\\41\\62'), 'CN=Ab', 'hex pairs are bytes');
  t.equal(formatRfc4514('CN=\\e6\\97\\a5'), 'CN=\\E6\\97\\A5');
});

t.test('rejects text that is not in Node format', async (t) => {
  for (const bad of ['CN', 'CN=a\n\nO=b', 'CN=a\\', 'CN=a\\4', 'CN=a\\4G', '=x', 'C N=x', 'CN=a + b', 'CN=a\n']) {
    t.throws(() => formatRfc4514(bad), { code: 'ERR_PKI', fault: 'dn' }, JSON.stringify(bad));
  }
});
