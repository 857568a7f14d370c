/**
 * The device CA's OCSP responder, served on a loopback HTTP server (POST and GET forms) and asked
 * by `openssl ocsp` (a peer nobody here wrote) and by our own client-side parser: good, revoked
 * (time and reason) and unknown, nonces, several key types, delegated and issuer-signed answers,
 * and the fault cases (garbage, other CAs, too many CertIDs, failing lookups, fuzzed input).
 */
import { execFile } from 'node:child_process';
import { createHash, verify, X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import t from 'tap';
import { revocationSchema } from '../../src/config/revocation-schema.js';
import type { CertStatus } from '../../src/enroll/enroll-service.js';
import { createOcspResponder, type OcspResponder } from '../../src/enroll/ocsp-responder.js';
import { issueOcspSigner } from '../../src/enroll/ocsp-signer.js';
import { generateKey, issueCertificate, type IssuedCertificate, type KeyAlgorithm, type SigningIdentity } from '../../src/pki/index.js';
import { parseCertificate } from '../../src/pki/index.js';
import { createRevocationChecker } from '../../src/revocation/index.js';
import { createIssuerRegistry } from '../../src/revocation/issuer-registry.js';
import { buildOcspRequest } from '../../src/revocation/ocsp-request.js';
import { verifyOcspResponse, type OcspAnswer } from '../../src/revocation/ocsp-response.js';
import { captureLogger } from '../fixtures/capturing-logger.js';

const run = promisify(execFile);
const dir = await mkdtemp(join(tmpdir(), 'enroll-ocsp-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

async function buildPki(algorithm: KeyAlgorithm, name: string) {
  const rootKey = await generateKey(algorithm);
  const root: SigningIdentity = { ...(await issueCertificate({ subject: `CN=${name} Root`, key: rootKey, isCa: true, pathLength: 1 })), key: rootKey };
  const caKey = await generateKey(algorithm);
  const ca: SigningIdentity = { ...(await issueCertificate({ subject: `CN=${name} Issuing CA`, key: caKey, issuer: root, isCa: true, pathLength: 0 })), key: caKey };
  const signer = await issueOcspSigner(ca, { validityDays: 1 });
  const leaf = async () => issueCertificate({ subject: `CN=${name} device`, key: await generateKey('p256'), issuer: ca, extendedKeyUsage: ['clientAuth'] });
  return { root, ca, signer, leaf };
}

const serialOf = (c: IssuedCertificate) => c.certificate.serialNumber.toLowerCase();
const REVOKED_AT = new Date('2024-01-02T03:04:05Z');
const pki = await buildPki('p256', 'Enroll');
const other = await buildPki('p256', 'Other');
const [good, revoked, revokedPlain, unknown, foreign] = [await pki.leaf(), await pki.leaf(), await pki.leaf(), await pki.leaf(), await other.leaf()];
const statuses = new Map<string, CertStatus>([
  [serialOf(good), { status: 'good' }],
  [serialOf(revoked), { status: 'revoked', revokedAt: REVOKED_AT, reason: 'keyCompromise' }],
  [serialOf(revokedPlain), { status: 'revoked', revokedAt: REVOKED_AT, reason: 'unspecified' }],
]);
const lookups: string[] = [];
const lookup = async (serial: string): Promise<CertStatus> => {
  lookups.push(serial);
  return statuses.get(serial) ?? { status: 'unknown' };
};
const files: Record<string, string> = { 'root.pem': pki.root.pem, 'ca.pem': pki.ca.pem, 'good.pem': good.pem, 'revoked.pem': revoked.pem, 'plain.pem': revokedPlain.pem,
  'unknown.pem': unknown.pem, 'other-ca.pem': other.ca.pem, 'foreign.pem': foreign.pem, 'ca.key': pki.ca.key.privateKeyPem };
for (const [name, pem] of Object.entries(files)) await writeFile(join(dir, name), pem);

/** Serves a responder like the CA's publishing listener: POST /ocsp and GET /ocsp/{base64}. */
async function serve(responder: OcspResponder): Promise<string> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let der: Buffer | undefined;
      if (req.method === 'POST' && req.url === '/ocsp' && req.headers['content-type'] === 'application/ocsp-request') der = Buffer.concat(chunks);
      // Node's base64 decoder takes both alphabets, so base64url and %-encoded standard base64 both work.
      if (req.method === 'GET' && req.url?.startsWith('/ocsp/')) der = Buffer.from(decodeURIComponent(req.url.slice(6)), 'base64');
      if (der === undefined) return void res.writeHead(404).end();
      void responder.respond(der).then((body) => res.writeHead(200, { 'content-type': 'application/ocsp-response' }).end(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}/ocsp`;
}

const responder = createOcspResponder({ issuer: pki.ca.certificate, signer: pki.signer, lookup, validitySeconds: 300 });
const url = await serve(responder);

/** Runs openssl in the temp dir; resolves with its combined output whatever its exit code. */
async function openssl(args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run('openssl', args, { cwd: dir });
    return stdout + stderr;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return `${e.stdout ?? ''}${e.stderr ?? ''}`;
  }
}
const ask = (certs: string[], extra: string[] = [], at = url, issuer = 'ca.pem') =>
  openssl(['ocsp', '-issuer', issuer, ...certs.flatMap((c) => ['-cert', c]), '-url', at, '-CAfile', 'root.pem', '-resp_text', ...extra]);

const statusOf = (der: Buffer) => new pkijs.OCSPResponse({ schema: asn1js.fromBER(der).result }).responseStatus.valueBlock.valueDec;
const basicOf = (der: Buffer) => {
  const r = new pkijs.OCSPResponse({ schema: asn1js.fromBER(der).result });
  return new pkijs.BasicOCSPResponse({ schema: asn1js.fromBER(r.responseBytes!.response.valueBlock.valueHexView).result });
};

t.test('openssl ocsp: good, revoked (time, reason) and unknown, with a nonce, delegated signer, no -VAfile', async (t) => {
  const g = await ask(['good.pem']);
  t.match(g, /good\.pem: good/);
  t.match(g, /Response verify OK/);
  t.match(g, /OCSP Nonce/, 'the nonce is echoed');
  t.notMatch(g, /WARNING/);
  t.match(g, /Responder Id: [0-9A-F]{40}\n/, 'responderID byKey');
  const r = await ask(['revoked.pem']);
  t.match(r, /revoked\.pem: revoked/);
  t.match(r, /Reason: keyCompromise/);
  t.match(r, /Revocation Time: Jan {2}2 03:04:05 2024 GMT/);
  t.match(r, /Response verify OK/);
  const p = await ask(['plain.pem']);
  t.match(p, /plain\.pem: revoked/);
  t.notMatch(p, /Reason:/, 'unspecified is not encoded');
  const u = await ask(['unknown.pem']);
  t.match(u, /unknown\.pem: unknown/);
  t.match(u, /Response verify OK/);
});

t.test('openssl ocsp: -no_nonce, several certificates, SHA-256 CertIDs', async (t) => {
  const n = await ask(['good.pem'], ['-no_nonce']);
  t.match(n, /good\.pem: good/);
  t.match(n, /Response verify OK/);
  t.notMatch(n, /OCSP Nonce/);
  const many = await openssl(['ocsp', '-issuer', 'ca.pem', '-sha256', '-cert', 'good.pem', '-cert', 'revoked.pem', '-cert', 'unknown.pem', '-url', url, '-CAfile', 'root.pem', '-resp_text']);
  t.match(many, /Hash Algorithm: sha256/);
  t.match(many, /good\.pem: good[\s\S]*revoked\.pem: revoked[\s\S]*unknown\.pem: unknown/);
  t.match(many, /Response verify OK/);
  const signed = await ask(['good.pem'], ['-signer', 'ca.pem', '-signkey', 'ca.key']);
  t.match(signed, /good\.pem: good/, 'a signed request is answered (its signature is not required)');
});

t.test('openssl ocsp: another CA\'s certificate is unauthorized', async (t) => {
  t.match(await ask(['foreign.pem'], [], url, 'other-ca.pem'), /Responder Error: unauthorized \(6\)/);
});

const issuerInfo = createIssuerRegistry([], 4).learn(new X509Certificate(pki.ca.der)).info;
async function ourParser(leaf: IssuedCertificate, hash: 'sha1' | 'sha256', nonce: boolean, method: 'POST' | 'GET' | 'GETurl' = 'POST'): Promise<OcspAnswer> {
  const fields = parseCertificate(leaf.der);
  const req = buildOcspRequest(fields, issuerInfo.fields, hash, nonce);
  const res =
    method === 'POST'
      ? await fetch(url, { method, body: req.der, headers: { 'content-type': 'application/ocsp-request' } })
      : await fetch(`${url}/${method === 'GET' ? encodeURIComponent(req.der.toString('base64')) : req.der.toString('base64url')}`);
  const body = Buffer.from(await res.arrayBuffer());
  return verifyOcspResponse(body, { leaf: fields, issuer: issuerInfo, now: Date.now(), skewMs: 5_000, ...(req.nonce ? { nonce: req.nonce } : {}) });
}

t.test('our own client parser accepts the answers (POST, GET std base64, GET base64url)', async (t) => {
  t.match(await ourParser(good, 'sha1', false), { status: 'good', signer: 'delegated' });
  t.match(await ourParser(revoked, 'sha256', true), { status: 'revoked', signer: 'delegated' });
  t.match(await ourParser(unknown, 'sha1', true, 'GET'), { status: 'unknown' });
  t.match(await ourParser(revoked, 'sha256', false, 'GETurl'), { status: 'revoked' });
  const a = await ourParser(good, 'sha1', true);
  t.equal(a.nextUpdate! - a.thisUpdate, 300_000, 'nextUpdate = thisUpdate + validity');
});

t.test('the revocation checker, pointed at the responder, decides good/revoked/unknown', async (t) => {
  const options = revocationSchema.parse({ mode: 'ocsp', ocsp: { overrideUrl: url, hash: 'sha256', nonce: true } });
  const checker = createRevocationChecker(options, { trustedCas: [new X509Certificate(pki.root.der), new X509Certificate(pki.ca.der)], logger: captureLogger() });
  t.teardown(() => checker.close());
  const ca = new X509Certificate(pki.ca.der);
  t.match(await checker.check(new X509Certificate(good.der), ca), { status: 'good', method: 'ocsp' });
  t.match(await checker.check(new X509Certificate(revoked.der), ca), { status: 'revoked', method: 'ocsp' });
  t.match(await checker.check(new X509Certificate(unknown.der), ca), { status: 'unknown' });
});

function certIdFor(serial: Uint8Array, hashOid = '1.3.14.3.2.26', hash = 'sha1', issuer = issuerInfo.fields): pkijs.Request {
  return new pkijs.Request({
    reqCert: new pkijs.CertID({
      hashAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: hashOid, algorithmParams: new asn1js.Null() }),
      issuerNameHash: new asn1js.OctetString({ valueHex: createHash(hash).update(issuer.subjectName).digest() }),
      issuerKeyHash: new asn1js.OctetString({ valueHex: createHash(hash).update(issuer.publicKeyBits).digest() }),
      serialNumber: new asn1js.Integer({ valueHex: serial }),
    }),
  });
}
function requestOf(requests: pkijs.Request[], nonce?: Uint8Array): Buffer {
  const req = new pkijs.OCSPRequest();
  req.tbsRequest.requestList = requests;
  if (nonce) {
    const extnValue = new asn1js.OctetString({ valueHex: nonce }).toBER();
    req.tbsRequest.requestExtensions = [new pkijs.Extension({ extnID: '1.3.6.1.5.5.7.48.1.2', extnValue })];
  }
  return Buffer.from(req.toSchema(true).toBER());
}
const goodSerial = Buffer.from(serialOf(good), 'hex');
const otherFields = parseCertificate(other.ca.der);

t.test('faults: malformed, unauthorized, too many CertIDs, bad nonces, failing lookups', async (t) => {
  const valid = requestOf([certIdFor(goodSerial)]);
  t.equal(statusOf(await responder.respond(valid)), 0);
  for (const [what, body] of [
    ['garbage', Buffer.from('hello, OCSP')],
    ['empty', Buffer.alloc(0)],
    ['truncated', valid.subarray(0, valid.length - 3)],
    ['trailing bytes', Buffer.concat([valid, Buffer.of(0)])],
    ['indefinite length', Buffer.of(0x30, 0x80, 0x00, 0x00)],
    ['11 CertIDs', requestOf(Array.from({ length: 11 }, () => certIdFor(goodSerial)))],
    ['129-octet nonce', requestOf([certIdFor(goodSerial)], new Uint8Array(129))],
    ['empty nonce', requestOf([certIdFor(goodSerial)], new Uint8Array(0))],
  ] as const) {
    t.equal(statusOf(await responder.respond(body)), 1, `${what} → malformedRequest`);
  }
  t.equal(statusOf(await responder.respond(requestOf(Array.from({ length: 10 }, () => certIdFor(goodSerial))))), 0, '10 CertIDs are fine');
  t.equal(statusOf(await responder.respond(requestOf([certIdFor(goodSerial, '1.3.14.3.2.26', 'sha1', otherFields)]))), 6, 'other CA → unauthorized');
  t.equal(statusOf(await responder.respond(requestOf([certIdFor(goodSerial, '2.16.840.1.101.3.4.2.4', 'sha224')]))), 6, 'unsupported hash → unauthorized');

  lookups.length = 0;
  const mixed = basicOf(await responder.respond(requestOf([certIdFor(goodSerial), certIdFor(Buffer.from(serialOf(foreign), 'hex'), '1.3.14.3.2.26', 'sha1', otherFields)])));
  t.same(mixed.tbsResponseData.responses.map((r) => (r.certStatus as asn1js.BaseBlock).idBlock.tagNumber), [0, 2], 'ours good, the other CA\'s unknown');
  t.same(lookups, [serialOf(good)], 'no lookup for another CA\'s serial');

  const errors: unknown[] = [];
  const failing = createOcspResponder({ issuer: pki.ca.der, signer: pki.signer, lookup: () => Promise.reject(new Error('store down')), validitySeconds: 60, onError: (e) => errors.push(e) });
  t.equal(statusOf(await failing.respond(valid)), 2, 'lookup failure → internalError');
  t.match(errors, [{ message: 'store down' }]);
});

t.test('serials: a leading 00 is stripped, negative serials are never looked up', async (t) => {
  lookups.length = 0;
  await responder.respond(requestOf([certIdFor(Buffer.of(0x00, 0x80, 0x01)), certIdFor(Buffer.of(0x80, 0x01)), certIdFor(Buffer.of(0x00))]));
  t.same(lookups, ['8001', '00']);
});

t.test('fuzzed requests are answered, never thrown', async (t) => {
  const seed = requestOf([certIdFor(goodSerial), certIdFor(Buffer.of(1))], new Uint8Array(16).fill(7));
  let state = 42;
  const rand = (n: number) => ((state = (state * 1103515245 + 12345) % 2 ** 31) % n);
  const seen = new Set<number>();
  for (let i = 0; i < 3000; i++) {
    const body = Buffer.from(seed);
    for (let k = 0; k < 1 + rand(3); k++) body[rand(body.length)] = rand(256);
    const cut = rand(10) === 0 ? body.subarray(0, rand(body.length)) : body;
    seen.add(statusOf(await responder.respond(cut)));
  }
  t.ok([...seen].every((s) => [0, 1, 6].includes(s)), `statuses seen: ${[...seen].join(',')}`);
});

t.test('the signature is the signer\'s, over tbsResponseData; the signer certificate travels', async (t) => {
  const fixed = createOcspResponder({ issuer: pki.ca.der, signer: pki.signer, lookup, validitySeconds: 3_600, now: () => new Date('2030-01-01T00:00:00.750Z') });
  const basic = basicOf(await fixed.respond(requestOf([certIdFor(goodSerial)])));
  const tbs = basic.tbsResponseData.tbsView;
  const sig = basic.signature.valueBlock.valueHexView;
  t.equal(basic.signatureAlgorithm.algorithmId, '1.2.840.10045.4.3.2', 'ecdsa-with-SHA256');
  t.ok(verify('sha256', tbs, new X509Certificate(pki.signer.der).publicKey, sig), 'verifies with the signer key');
  t.notOk(verify('sha256', tbs, new X509Certificate(pki.ca.der).publicKey, sig), 'not with the CA key');
  t.same(Buffer.from(basic.certs![0]!.toSchema().toBER()), pki.signer.der, 'certs holds the signer certificate');
  const keyHash = createHash('sha1').update(parseCertificate(pki.signer.der).publicKeyBits).digest();
  t.same(Buffer.from((basic.tbsResponseData.responderID as asn1js.OctetString).valueBlock.valueHexView), keyHash, 'responderID byKey');
  const single = basic.tbsResponseData.responses[0]!;
  t.equal(basic.tbsResponseData.producedAt.toISOString(), '2030-01-01T00:00:00.000Z');
  t.equal(single.thisUpdate.toISOString(), '2030-01-01T00:00:00.000Z');
  t.equal(single.nextUpdate?.toISOString(), '2030-01-01T01:00:00.000Z');
});

t.test('P-384 and RSA PKIs, and an issuer signing its own answers', async (t) => {
  for (const [algorithm, sigName] of [['p384', 'ecdsa-with-SHA384'], ['rsa2048', 'sha256WithRSAEncryption']] as const) {
    const p = await buildPki(algorithm, algorithm);
    const leaf = await p.leaf();
    const prefix = `${algorithm}-`;
    await Promise.all([writeFile(join(dir, `${prefix}root.pem`), p.root.pem), writeFile(join(dir, `${prefix}ca.pem`), p.ca.pem), writeFile(join(dir, `${prefix}leaf.pem`), leaf.pem)]);
    const at = await serve(createOcspResponder({ issuer: p.ca.der, signer: p.signer, lookup: async () => ({ status: 'good' }), validitySeconds: 60 }));
    const out = await openssl(['ocsp', '-issuer', `${prefix}ca.pem`, '-cert', `${prefix}leaf.pem`, '-url', at, '-CAfile', `${prefix}root.pem`, '-resp_text']);
    t.match(out, new RegExp(`Signature Algorithm: ${sigName}`), `${algorithm}: ${sigName}`);
    t.match(out, new RegExp(`${prefix}leaf\\.pem: good`));
    t.match(out, /Response verify OK/, `${algorithm}: openssl verifies`);
  }
  const self = await serve(createOcspResponder({ issuer: pki.ca.certificate, signer: pki.ca, lookup, validitySeconds: 60 }));
  const out = await ask(['revoked.pem'], [], self);
  t.match(out, /revoked\.pem: revoked/);
  t.match(out, /Response verify OK/, 'issuer-signed answer verifies');
  t.notMatch(out, /BEGIN CERTIFICATE/, 'no certificate needs to travel');
});

t.test('issueOcspSigner: OCSPSigning only, ocsp-nocheck, not a CA, never outliving the issuer', async (t) => {
  const cert = new X509Certificate(pki.signer.der);
  t.equal(cert.subject, 'CN=Enroll Issuing CA OCSP Responder');
  t.same(cert.keyUsage, ['1.3.6.1.5.5.7.3.9']);
  t.equal(cert.ca, false);
  t.ok(cert.checkIssued(new X509Certificate(pki.ca.der)));
  const nocheck = parseCertificate(pki.signer.der).extensions.get('1.3.6.1.5.5.7.48.1.5');
  t.same(nocheck && { critical: nocheck.critical, value: Buffer.from(nocheck.value).toString('hex') }, { critical: false, value: '0500' });
  t.equal(pki.signer.key.algorithm, 'p256', 'key type follows the issuer by default');
  const long = await issueOcspSigner(pki.ca, { validityDays: 100_000, algorithm: 'p384' });
  t.equal(long.key.algorithm, 'p384');
  t.equal(long.certificate.notAfter.getTime(), pki.ca.certificate.notAfter.getTime(), 'cut to the issuer\'s notAfter');
  await t.rejects(issueOcspSigner(pki.ca, { validityDays: 0 }), RangeError);
});

t.test('a signer the issuer did not authorize is refused at construction', async (t) => {
  const options = { issuer: pki.ca.der, lookup, validitySeconds: 60 };
  t.throws(() => createOcspResponder({ ...options, signer: other.signer }), { code: 'ERR_PKI', fault: 'ocsp-signer' }, 'signer of another CA');
  const leafKey = await generateKey('p256');
  const noEku = await issueCertificate({ subject: 'CN=not a responder', key: leafKey, issuer: pki.ca, extendedKeyUsage: ['clientAuth'] });
  t.throws(() => createOcspResponder({ ...options, signer: { ...noEku, key: leafKey } }), /id-kp-OCSPSigning/, 'no OCSPSigning EKU');
  t.throws(() => createOcspResponder({ ...options, signer: { ...pki.signer, key: leafKey } }), /does not match/, 'key of another certificate');
});
