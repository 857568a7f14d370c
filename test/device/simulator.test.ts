import t from 'tap';
import 'reflect-metadata';
import { execFile } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, webcrypto, X509Certificate } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import * as x509 from '@peculiar/x509';
import { DEFAULT_P12_PASSWORD, enrollDevice, renewDevice } from '../../src/device/index.js';
import { generateKey, issueCertificate, keyAlgorithmOfSpki, type GeneratedKey, type IssuedCertificate } from '../../src/pki/index.js';

// A loopback stand-in for `mtls-sidecar ca serve`, faithful where the client can tell: it
// verifies each CSR's proof of possession, issues from an intermediate with issueCertificate,
// and renews only over mutual TLS with a certificate it issued. `fault` turns it into a fault
// injector for one call.

const run = promisify(execFile);
const work = mkdtempSync(join(tmpdir(), 'device-sim-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

type Authority = IssuedCertificate & { key: GeneratedKey };
type Fault = { status: number; body: string; headers?: Record<string, string> } | 'huge' | 'hang' | 'wrong-key' | undefined;

const rootKey = await generateKey('p256');
const root: Authority = { ...(await issueCertificate({ subject: 'CN=Fake Device Root', key: rootKey, isCa: true, pathLength: 1 })), key: rootKey };
const issuingKey = await generateKey('p256');
const issuing: Authority = { ...(await issueCertificate({ subject: 'CN=Fake Device Issuing CA', key: issuingKey, issuer: root, isCa: true, pathLength: 0 })), key: issuingKey };
const serverKey = await generateKey('p256');
const server = await issueCertificate({ subject: 'CN=127.0.0.1', key: serverKey, issuer: root, san: { ip: ['127.0.0.1'] }, extendedKeyUsage: ['serverAuth'] });
const otherRootKey = await generateKey('p256');
const otherRoot = await issueCertificate({ subject: 'CN=Someone Else', key: otherRootKey, isCa: true });
const caFile = join(work, 'ca.pem');
writeFileSync(caFile, root.pem);
const otherCaFile = join(work, 'other-ca.pem');
writeFileSync(otherCaFile, otherRoot.pem);

const codes = new Map<string, string>([['phone-1', 'CODE-1'], ['phone-2', 'CODE-2'], ['phone-3', 'CODE-3']]);
let fault: Fault;
const seen: Array<{ route: string; keyType: string; peerFingerprint?: string }> = [];

async function issueFor(deviceId: string, csrPem: unknown, route: string, peerFingerprint?: string): Promise<[number, unknown]> {
  if (typeof csrPem !== 'string') return [400, { error: { code: 'bad_request', message: 'csr missing' } }];
  const csr = new x509.Pkcs10CertificateRequest(csrPem);
  if (!(await csr.verify(webcrypto as never))) return [400, { error: { code: 'csr_invalid', message: 'no proof of possession' } }];
  const algorithm = keyAlgorithmOfSpki(Buffer.from(csr.publicKey.rawData));
  const subjectKey = fault === 'wrong-key' ? await generateKey('p256') : { algorithm, publicKey: await csr.publicKey.export(webcrypto as never) };
  const leaf = await issueCertificate({ subject: `CN=${deviceId}`, key: subjectKey, issuer: issuing, extendedKeyUsage: ['clientAuth'] });
  seen.push({ route, keyType: algorithm, ...(peerFingerprint ? { peerFingerprint } : {}) });
  const c = leaf.certificate;
  return [201, { deviceId, serial: c.serialNumber.toLowerCase(), notBefore: c.notBefore.toISOString(), notAfter: c.notAfter.toISOString(), certificate: leaf.pem, chain: issuing.pem + root.pem }];
}

const ca = https.createServer({ cert: server.pem, key: serverKey.privateKeyPem, requestCert: true, rejectUnauthorized: false, ca: [root.pem] }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    void (async (): Promise<[number, unknown]> => {
      const f = fault;
      if (f === 'hang') return [0, undefined];
      if (f === 'huge') {
        res.writeHead(201, { 'content-type': 'application/json' });
        const block = Buffer.alloc(64 * 1024, 0x20);
        for (let i = 0; i < 64 && !res.destroyed; i++) res.write(block); // 4 MiB unless cut off
        res.end();
        return [0, undefined];
      }
      if (f && typeof f === 'object') {
        res.writeHead(f.status, { 'content-type': 'application/json', ...f.headers }).end(f.body);
        return [0, undefined];
      }
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      if (req.headers['content-type'] !== 'application/json') return [415, { error: { code: 'unsupported_media_type', message: 'json please' } }];
      if (req.url === '/v1/enroll') {
        const deviceId = String(body.deviceId);
        if (codes.get(deviceId) !== body.code) return [403, { error: { code: 'invalid_code', message: 'the code is not valid for this device' } }];
        return issueFor(deviceId, body.csr, 'enroll');
      }
      const socket = req.socket as TLSSocket;
      const peer = socket.getPeerX509Certificate();
      if (!peer) return [401, { error: { code: 'cert_required', message: 'renewal needs the current certificate' } }];
      if (!socket.authorized) return [403, { error: { code: 'unknown_certificate', message: String(socket.authorizationError) } }];
      const deviceId = /CN=(.*)/.exec(peer.subject)![1]!;
      return issueFor(deviceId, body.csr, 'renew', createHash('sha256').update(peer.raw).digest('hex'));
    })().then(([status, value]) => {
      if (status) res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
    });
  });
});
await new Promise<void>((resolve) => ca.listen(0, '127.0.0.1', resolve));
const url = `https://127.0.0.1:${(ca.address() as AddressInfo).port}`;
t.teardown(() => {
  ca.closeAllConnections();
  ca.close();
});

/** Every file of a folder with its bytes and mtime, to prove nothing changed. */
function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).sort().map((n) => [n, `${createHash('sha256').update(readFileSync(join(dir, n))).digest('hex')}@${statSync(join(dir, n)).mtimeMs}`]));
}
const fingerprint = (pem: string): string => createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');
const mode = (file: string): number => statSync(file).mode & 0o777;
const openssl = (...args: string[]) => run('openssl', args, { encoding: 'utf8' });

const dir = join(work, 'phone-1');

t.test('enroll: key made here, certificate for it, four files, keys 0600, readable by openssl', async (t) => {
  const got = await enrollDevice({ url, caCertFile: caFile, deviceId: 'phone-1', code: 'CODE-1', outDir: dir });
  t.same(readdirSync(dir).sort(), ['chain.pem', 'device.key', 'device.p12', 'device.pem'], 'no temporary file left');
  t.match(got, { deviceId: 'phone-1', keyAlgorithm: 'p256', keyFile: join(dir, 'device.key'), p12File: join(dir, 'device.p12') });
  t.equal(mode(got.keyFile), 0o600);
  t.equal(mode(got.p12File), 0o600);
  t.equal(mode(dir), 0o700);
  t.same(seen.at(-1), { route: 'enroll', keyType: 'p256' });

  const leaf = new X509Certificate(readFileSync(got.certFile));
  t.equal(leaf.serialNumber.toLowerCase().replace(/^0+/, ''), got.serial.replace(/^0+/, ''));
  t.equal(got.notAfter.getTime(), new Date(leaf.validTo).getTime());
  t.ok(leaf.checkPrivateKey(createPrivateKey(readFileSync(got.keyFile))), 'the certificate is for device.key');
  t.match(readFileSync(got.keyFile, 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/, 'PKCS#8 PEM');
  t.equal(readFileSync(got.certFile, 'utf8').match(/BEGIN CERTIFICATE/g)?.length, 3, 'device.pem = leaf + issuing CA + root');
  t.equal(readFileSync(got.chainFile, 'utf8'), issuing.pem + root.pem);

  const verified = await openssl('verify', '-CAfile', caFile, '-untrusted', got.chainFile, '-purpose', 'sslclient', got.certFile);
  t.match(verified.stdout, /: OK/, 'openssl verify: a client certificate chaining to the root');
  // No -legacy: the bundle is PBES2/AES-256 with an HMAC-SHA256 MAC, OpenSSL 3's default layout.
  const p12 = await openssl('pkcs12', '-in', got.p12File, '-passin', `pass:${DEFAULT_P12_PASSWORD}`, '-nokeys');
  t.equal((p12.stdout.match(/BEGIN CERTIFICATE/g) ?? []).length, 3, 'leaf and chain in the bundle');
  t.match(p12.stdout, /friendlyName: phone-1/);
  const p12Key = await openssl('pkcs12', '-in', got.p12File, '-passin', `pass:${DEFAULT_P12_PASSWORD}`, '-nocerts', '-noenc');
  t.equal(createPublicKey(p12Key.stdout.slice(p12Key.stdout.indexOf('-----BEGIN'))).export({ type: 'spki', format: 'pem' }), createPublicKey(readFileSync(got.keyFile)).export({ type: 'spki', format: 'pem' }));
});

t.test('the CA refusing (invalid_code) is ERR_ENROLL with its code and message, and changes no file', async (t) => {
  const before = snapshot(dir);
  await t.rejects(enrollDevice({ url, caCertFile: caFile, deviceId: 'phone-1', code: 'WRONG', outDir: dir }), {
    name: 'SidecarError',
    code: 'ERR_ENROLL',
    fault: 'invalid_code',
    message: /refused: the code is not valid for this device \(invalid_code, HTTP 403\)/,
  });
  fault = { status: 429, body: JSON.stringify({ error: { code: 'rate_limited', message: 'slow\u001b[31m down' } }), headers: { 'retry-after': '7' } };
  const err = await enrollDevice({ url, caCertFile: caFile, deviceId: 'phone-1', code: 'CODE-1', outDir: dir }).catch((e: unknown) => e);
  t.match(err, { fault: 'rate_limited', message: /slow \[31m down .*retry after 7 s/ }, 'control characters from the server are neutralised');
  t.same(snapshot(dir), before);
});

const faults: Array<[string, Fault, RegExp]> = [
  ['garbage with 201', { status: 201, body: '<html>oops</html>' }, /not a JSON object/],
  ['a 201 missing fields', { status: 201, body: JSON.stringify({ deviceId: 'phone-1', serial: '01' }) }, /without notBefore, notAfter, certificate, chain/],
  ['a 500 without a JSON error', { status: 500, body: 'Internal Server Error' }, /HTTP 500 without a JSON error/],
  ['a redirect (never followed)', { status: 302, body: '', headers: { location: 'https://elsewhere.example/' } }, /HTTP 302/],
  ['a declared 1 MiB body', { status: 201, body: 'x'.repeat(1024 * 1024), headers: { 'content-length': String(1024 * 1024) } }, /declares 1048576 bytes, over the 262144-byte limit/],
  ['a huge streamed body', 'huge', /exceeds the 262144-byte limit/],
  ['a certificate for another key', 'wrong-key', /not for the key this device generated/],
];
for (const [name, f, message] of faults) {
  t.test(`${name} is refused as bad_response, and no file changes`, async (t) => {
    const before = snapshot(dir);
    fault = f;
    t.teardown(() => (fault = undefined));
    await t.rejects(enrollDevice({ url, caCertFile: caFile, deviceId: 'phone-1', code: 'CODE-1', outDir: dir }), { code: 'ERR_ENROLL', fault: 'bad_response', message });
    t.same(snapshot(dir), before);
  });
}

t.test('transport failures: untrusted server is tls, closed port and timeout are network, abort is aborted', async (t) => {
  const before = snapshot(dir);
  const base = { caCertFile: caFile, deviceId: 'phone-1', code: 'CODE-1', outDir: dir };
  await t.rejects(enrollDevice({ ...base, url, caCertFile: otherCaFile }), { code: 'ERR_ENROLL', fault: 'tls', message: /is --ca-cert the CA/ });
  const closed = https.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const closedPort = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  await t.rejects(enrollDevice({ ...base, url: `https://127.0.0.1:${closedPort}` }), { code: 'ERR_ENROLL', fault: 'network', message: /ECONNREFUSED/ });
  fault = 'hang';
  t.teardown(() => (fault = undefined));
  await t.rejects(enrollDevice({ ...base, url, timeoutMs: 300 }), { code: 'ERR_ENROLL', fault: 'network', message: /within 300 ms/ });
  await t.rejects(enrollDevice({ ...base, url, signal: AbortSignal.timeout(200) }), { code: 'ERR_ENROLL', fault: 'aborted' });
  t.same(snapshot(dir), before);
});

t.test('bad options fail before any call or file', async (t) => {
  const base = { url, caCertFile: caFile, deviceId: 'phone-9', code: 'x', outDir: join(work, 'never') };
  await t.rejects(enrollDevice({ ...base, url: 'http://127.0.0.1:1' }), { code: 'ERR_USAGE', fault: 'url' });
  await t.rejects(enrollDevice({ ...base, deviceId: '' }), { code: 'ERR_USAGE', fault: 'deviceId' });
  await t.rejects(enrollDevice({ ...base, caCertFile: join(work, 'missing.pem') }), { code: 'ERR_TLS_MATERIAL', fault: 'caCertFile' });
  await t.rejects(renewDevice({ url, caCertFile: caFile, dir: join(work, 'empty') }), { code: 'ERR_TLS_MATERIAL', fault: join(work, 'empty', 'device.key') });
  t.notOk(readdirSync(work).includes('never'));
});

t.test('renew: presents the current certificate over mTLS, rotates the key, replaces the files', async (t) => {
  const oldKey = readFileSync(join(dir, 'device.key'), 'utf8');
  const oldCert = readFileSync(join(dir, 'device.pem'), 'utf8');
  const got = await renewDevice({ url, caCertFile: caFile, dir, keyAlgorithm: 'rsa2048', p12Password: 'hunter2' });
  const last = seen.at(-1)!;
  t.equal(last.route, 'renew');
  t.equal(last.peerFingerprint, fingerprint(oldCert), 'the old certificate was the TLS client certificate');
  t.equal(last.keyType, 'rsa2048');
  const newKey = readFileSync(got.keyFile, 'utf8');
  t.not(newKey, oldKey, 'a new key');
  t.not(fingerprint(readFileSync(got.certFile, 'utf8')), fingerprint(oldCert), 'a new certificate');
  t.ok(new X509Certificate(readFileSync(got.certFile)).checkPrivateKey(createPrivateKey(newKey)), 'for the new key');
  t.match(got, { deviceId: 'phone-1', keyAlgorithm: 'rsa2048' });
  t.equal(mode(got.keyFile), 0o600);
  t.same(readdirSync(dir).sort(), ['chain.pem', 'device.key', 'device.p12', 'device.pem']);
  await t.resolves(openssl('pkcs12', '-in', got.p12File, '-passin', 'pass:hunter2', '-nokeys'));

  // A renewal the CA refuses keeps the files that still work.
  const before = snapshot(dir);
  fault = { status: 403, body: JSON.stringify({ error: { code: 'revoked', message: 'the client certificate is revoked' } }) };
  t.teardown(() => (fault = undefined));
  await t.rejects(renewDevice({ url, caCertFile: caFile, dir }), { code: 'ERR_ENROLL', fault: 'revoked' });
  t.same(snapshot(dir), before);
});

t.test('renew with a certificate the CA did not issue is refused by the CA, files kept', async (t) => {
  const stranger = join(work, 'stranger');
  const key = await generateKey('p256');
  const self = await issueCertificate({ subject: 'CN=phone-1', key, extendedKeyUsage: ['clientAuth'] });
  await enrollDevice({ url, caCertFile: caFile, deviceId: 'phone-2', code: 'CODE-2', outDir: stranger });
  writeFileSync(join(stranger, 'device.key'), key.privateKeyPem);
  writeFileSync(join(stranger, 'device.pem'), self.pem);
  const before = snapshot(stranger);
  await t.rejects(renewDevice({ url, caCertFile: caFile, dir: stranger }), { code: 'ERR_ENROLL', fault: 'unknown_certificate' });
  t.same(snapshot(stranger), before);
});
