import t from 'tap';
import { execFile } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createCsr, generateKey, type KeyAlgorithm } from '../../src/pki/index.js';

// The judge of every request is OpenSSL's own parser and verifier, a peer nobody here wrote.

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'csr-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

async function opensslReq(file: string, ...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run('openssl', ['req', '-in', file, ...args], { encoding: 'utf8' });
}

const CASES: Array<{ alg: KeyAlgorithm; key: RegExp; sig: RegExp }> = [
  { alg: 'p256', key: /Public Key Algorithm: id-ecPublicKey[\s\S]*ASN1 OID: prime256v1/, sig: /Signature Algorithm: ecdsa-with-SHA256/ },
  { alg: 'p384', key: /Public Key Algorithm: id-ecPublicKey[\s\S]*ASN1 OID: secp384r1/, sig: /Signature Algorithm: ecdsa-with-SHA384/ },
  { alg: 'rsa2048', key: /Public Key Algorithm: rsaEncryption[\s\S]*Public-Key: \(2048 bit\)[\s\S]*Exponent: 65537/, sig: /Signature Algorithm: sha256WithRSAEncryption/ },
  { alg: 'rsa3072', key: /Public Key Algorithm: rsaEncryption[\s\S]*Public-Key: \(3072 bit\)/, sig: /Signature Algorithm: sha256WithRSAEncryption/ },
];

for (const c of CASES) {
  t.test(`${c.alg}: openssl verifies the request and sees the right key and subject`, async (t) => {
    const key = await generateKey(c.alg);
    const csr = await createCsr(key, 'CN=device-42,O=Example Apps');
    t.match(csr.pem, /^-----BEGIN CERTIFICATE REQUEST-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE REQUEST-----\n$/);
    const body = csr.pem.split('\n').filter((l) => !l.startsWith('-----')).join('');
    t.equal(Buffer.from(body, 'base64').compare(csr.der), 0, 'pem and der are the same request');

    const file = join(dir, `${c.alg}.csr`);
    writeFileSync(file, csr.pem);
    const out = await opensslReq(file, '-verify', '-noout', '-text', '-nameopt', 'RFC2253');
    // OpenSSL 3.0 exits 0 even when the self-signature fails, so the verdict is read from its text.
    t.match(out.stderr, /self-signature verify OK/, 'self-signature verifies');
    t.notMatch(out.stderr, /failure/);
    t.match(out.stdout, /Subject: .*CN=device-42/);
    t.match(out.stdout, /Subject: .*O=Example Apps/);
    t.match(out.stdout, c.key);
    t.match(out.stdout, c.sig);

    const fromCsr = (await opensslReq(file, '-pubkey', '-noout')).stdout;
    const ours = createPublicKey(key.privateKeyPem).export({ type: 'spki', format: 'pem' }) as string;
    t.equal(fromCsr, ours, 'the request carries the generated key');

    const der = join(dir, `${c.alg}.der`);
    writeFileSync(der, csr.der);
    t.match((await opensslReq(der, '-inform', 'DER', '-verify', '-noout')).stderr, /verify OK/, 'the DER form verifies too');
  });
}

t.test('a tampered request fails openssl verification (the verify step is real)', async (t) => {
  const csr = await createCsr(await generateKey('p256'), 'CN=device-1');
  const der = Buffer.from(csr.der);
  // The subject's last character sits inside the signed part; change it, keep the signature.
  const at = der.indexOf(Buffer.from('device-1'));
  t.ok(at > 0);
  der[at + 7] = 0x32; // device-1 -> device-2
  const file = join(dir, 'tampered.der');
  writeFileSync(file, der);
  const out = await opensslReq(file, '-inform', 'DER', '-verify', '-noout');
  t.match(out.stderr, /self-signature verify failure/);
  t.notMatch(out.stderr, /verify OK/);
});

t.test('RFC 4514 escapes in the subject stay one attribute value', async (t) => {
  const csr = await createCsr(await generateKey('p256'), 'CN=evil\\,O=Admins\\+x');
  const file = join(dir, 'escaped.csr');
  writeFileSync(file, csr.pem);
  const out = await opensslReq(file, '-noout', '-subject', '-nameopt', 'RFC2253');
  t.equal(out.stdout.trim(), 'subject=CN=evil\\,O=Admins\\+x');
});

t.test('an empty or unparsable subject is an ERR_PKI naming the subject', async (t) => {
  const key = await generateKey('p256');
  for (const subject of ['', 'not a name', '=x']) {
    await t.rejects(createCsr(key, subject), { name: 'SidecarError', code: 'ERR_PKI', fault: 'subject' }, JSON.stringify(subject));
  }
});
