// Bad input to the device CA: reused, expired, wrong and guessed codes, CSRs with a bad signature
// or a weak key (made by openssl, a peer nobody here wrote), garbage and huge bodies, missing or
// wrong credentials. Each gets its stable error code; nothing is issued; the CA keeps serving.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { createCsr, generateKey } from '../../src/pki/index.js';
import { startTestCa } from '../fixtures/device-ca.js';

const run = promisify(execFile);
let skewMs = 0;
const ca = await startTestCa(
  (c) => {
    c.enroll.rateLimit = { perMinute: 100_000, burst: 10_000 };
  },
  { now: () => new Date(Date.now() + skewMs) },
);
t.teardown(() => ca.close());

const p256 = await generateKey('p256');
const goodCsr = (await createCsr(p256, 'CN=ignored')).pem;
const enroll = (body: unknown) => ca.enroll('/v1/enroll', JSON.stringify(body));
const errorCode = (r: { json: any }) => r.json?.error?.code as string | undefined;

async function opensslCsr(name: string, args: string[]): Promise<string> {
  const key = join(ca.dir, `${name}.key`);
  const csr = join(ca.dir, `${name}.csr`);
  await run('openssl', ['req', '-new', ...args, '-nodes', '-keyout', key, '-subj', '/CN=weak', '-out', csr]);
  return readFileSync(csr, 'utf8');
}

async function issuedCount(): Promise<number> {
  const text = await ca.ca.metrics.registry.getSingleMetricAsString('mtls_ca_certificates_issued_total');
  return [...text.matchAll(/^mtls_ca_certificates_issued_total\{[^}]*\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
}

t.test('codes: wrong, for another device, reused, expired, guessed too often', async (t) => {
  const code = await ca.code('dev-a');
  t.equal(errorCode(await enroll({ deviceId: 'dev-a', code: '00000000', csr: goodCsr })), 'invalid_code', 'wrong code');
  t.equal(errorCode(await enroll({ deviceId: 'dev-b', code, csr: goodCsr })), 'invalid_code', "dev-a's code does not work for dev-b");
  const ok = await enroll({ deviceId: 'dev-a', code, csr: goodCsr });
  t.equal(ok.status, 201, 'the right code works once');
  const again = await enroll({ deviceId: 'dev-a', code, csr: goodCsr });
  t.equal(again.status, 403);
  t.equal(errorCode(again), 'code_used', 'a used code is refused');

  const short = await ca.code('dev-c', { ttlSeconds: 30 });
  skewMs = 31_000;
  t.teardown(() => void (skewMs = 0));
  t.equal(errorCode(await enroll({ deviceId: 'dev-c', code: short, csr: goodCsr })), 'code_expired', 'an expired code is refused');
  skewMs = 0;

  const long = await ca.admin('POST', '/v1/admin/codes', { deviceId: 'dev-d', ttlSeconds: 3_600 });
  t.equal(errorCode(long), 'bad_request', 'the admin API cannot make a code outlive enroll.codes.ttlSeconds');

  const target = await ca.code('dev-e');
  for (let i = 1; i <= 4; i++) t.equal(errorCode(await enroll({ deviceId: 'dev-e', code: `1234567${i}`, csr: goodCsr })), 'invalid_code', `guess ${i}`);
  t.equal(errorCode(await enroll({ deviceId: 'dev-e', code: '12345675', csr: goodCsr })), 'code_locked', 'the fifth wrong guess locks it');
  t.equal(errorCode(await enroll({ deviceId: 'dev-e', code: target, csr: goodCsr })), 'code_locked', 'then even the right code is refused');
  const fresh = await ca.code('dev-e');
  t.equal((await enroll({ deviceId: 'dev-e', code: fresh, csr: goodCsr })).status, 201, 'a new code from the admin API works');
  t.equal(await issuedCount(), 2, 'exactly the two good enrollments were issued');
});

t.test('CSRs: bad signature, weak or unsupported keys, SHA-1, garbage', async (t) => {
  const before = await issuedCount();
  const tampered = Buffer.from((await createCsr(p256, 'CN=x')).der);
  tampered[tampered.length - 5]! ^= 0x01; // inside the signature
  const cases: Array<[string, string, string]> = [
    ['bad signature', tampered.toString('base64'), 'csr_invalid'],
    ['RSA-1024 (openssl)', await opensslCsr('rsa1024', ['-newkey', 'rsa:1024']), 'key_policy'],
    ['secp256k1 (openssl)', await opensslCsr('k1', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:secp256k1']), 'key_policy'],
    ['SHA-1 signature (openssl)', await opensslCsr('sha1', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-sha1']), 'csr_invalid'],
    ['not base64', 'hello world', 'csr_invalid'],
    ['a certificate instead of a CSR', ca.rootPem, 'csr_invalid'],
    ['random DER', Buffer.concat([Buffer.from([0x30, 0x82, 0x01, 0x00]), Buffer.alloc(256, 7)]).toString('base64'), 'csr_invalid'],
  ];
  for (const [name, csr, expected] of cases) {
    const code = await ca.code('dev-csr');
    const r = await enroll({ deviceId: 'dev-csr', code, csr });
    t.equal(r.status, 400, `${name}: 400`);
    t.equal(errorCode(r), expected, `${name}: ${expected}`);
    t.type(r.json.error.message, 'string');
  }
  const openssl = await opensslCsr('good', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384']);
  const code = await ca.code('dev-csr');
  t.equal((await enroll({ deviceId: 'dev-csr', code, csr: openssl })).status, 201, 'an openssl P-384 CSR is accepted, and the code survived the bad CSRs');
  const ed = await opensslCsr('ed25519', ['-newkey', 'ed25519']);
  const edCode = await ca.code('dev-ed');
  const edIssued = await enroll({ deviceId: 'dev-ed', code: edCode, csr: ed });
  t.equal(edIssued.status, 201, 'an Ed25519 CSR (openssl) is accepted');
  t.equal(new X509Certificate(edIssued.json.certificate).publicKey.asymmetricKeyType, 'ed25519', 'and certified as Ed25519');
  t.equal(await issuedCount(), before + 2, 'nothing was issued for the bad ones');
});

t.test('bodies: not JSON, wrong type, wrong shape, huge', async (t) => {
  const cases: Array<[string, string | Buffer, Record<string, string>, number, string]> = [
    ['not JSON', '{"deviceId":', { 'content-type': 'application/json' }, 400, 'bad_request'],
    ['a JSON array', '[1,2]', { 'content-type': 'application/json' }, 400, 'bad_request'],
    ['form encoded', 'deviceId=x', { 'content-type': 'application/x-www-form-urlencoded' }, 415, 'unsupported_media_type'],
    ['missing fields', '{}', { 'content-type': 'application/json' }, 400, 'invalid_device_id'],
    ['device id with a comma', JSON.stringify({ deviceId: 'a,O=evil', code: '1', csr: goodCsr }), { 'content-type': 'application/json' }, 400, 'invalid_device_id'],
    ['binary garbage', Buffer.from([0, 255, 1, 254]), { 'content-type': 'application/json' }, 400, 'bad_request'],
    ['1 MiB', Buffer.alloc(1 << 20, 0x20), { 'content-type': 'application/json' }, 413, 'body_too_large'],
  ];
  for (const [name, body, headers, status, code] of cases) {
    const r = await ca.enroll('/v1/enroll', body, headers);
    t.equal(r.status, status, `${name}: ${status}`);
    t.equal(errorCode(r), code, `${name}: ${code}`);
  }
  const huge = await ca.admin('POST', '/v1/admin/codes', { deviceId: 'x', userId: 'u'.repeat(100_000) });
  t.equal(errorCode(huge), 'body_too_large', 'admin bodies are bounded too');
  t.equal((await ca.enroll('/v1/nope', '{}')).status, 404);
});

t.test('renewal needs a current certificate of this CA', async (t) => {
  t.equal(errorCode(await ca.enroll('/v1/renew', JSON.stringify({ csr: goodCsr }))), 'cert_required', 'no client certificate');
  const { issueCertificate } = await import('../../src/pki/index.js');
  const rogueKey = await generateKey('p256');
  const rogue = await issueCertificate({ subject: 'CN=rogue', key: rogueKey, extendedKeyUsage: ['clientAuth'] });
  const r = await ca.enroll('/v1/renew', JSON.stringify({ csr: goodCsr }), { 'content-type': 'application/json' }, { cert: rogue.pem, key: rogueKey.privateKeyPem });
  t.equal(errorCode(r), 'unknown_certificate', 'a self-signed certificate is not this CA\'s');
});

t.test('admin API: no token, wrong token, then rate-limited', async (t) => {
  t.equal((await ca.admin('GET', '/v1/admin/devices', undefined, '')).status, 401, 'no token');
  const wrong = await ca.admin('GET', '/v1/admin/devices', undefined, 'x'.repeat(43));
  t.equal(wrong.status, 401, 'wrong token');
  t.equal(wrong.headers['www-authenticate'], 'Bearer');
  let limited = 0;
  for (let i = 0; i < 12; i++) if ((await ca.admin('GET', '/v1/admin/devices', undefined, 'nope')).status === 429) limited++;
  t.ok(limited > 0, `failed authentications are rate-limited (${limited} of 12 got 429)`);
  t.equal((await ca.admin('GET', '/v1/admin/devices')).status, 200, 'the right token still works');
});

t.test('TLS garbage and aborted connections do not disturb the CA', async (t) => {
  const port = Number(new URL(ca.ca.enrollUrl).port);
  for (const payload of [Buffer.from('GET / HTTP/1.1\r\n\r\n'), Buffer.alloc(4096, 0x16), Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff])]) {
    await new Promise<void>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => s.end(payload));
      s.on('error', () => resolve());
      s.on('close', () => resolve());
      s.resume();
    });
  }
  const code = await ca.code('dev-after');
  t.equal((await enroll({ deviceId: 'dev-after', code, csr: goodCsr })).status, 201, 'still enrolling afterwards');
});

t.test('per-address rate limit on the enrollment listener', async (t) => {
  const small = await startTestCa((c) => {
    c.enroll.rateLimit = { perMinute: 6, burst: 3 };
  });
  t.teardown(() => small.close());
  const statuses: number[] = [];
  for (let i = 0; i < 5; i++) statuses.push((await small.enroll('/v1/enroll', '{}')).status);
  t.same(statuses, [400, 400, 400, 429, 429], 'burst of 3, then 429');
  const r = await small.enroll('/v1/enroll', '{}');
  t.equal(r.json.error.code, 'rate_limited');
  t.ok(Number(r.headers['retry-after']) >= 1, 'with Retry-After');
});
