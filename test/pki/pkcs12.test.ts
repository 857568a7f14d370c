import t from 'tap';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { isSidecarError } from '../../src/errors.js';
import { createPkcs12 } from '../../src/pki/pkcs12.js';

// Interop is proven against peers nobody here wrote: the OpenSSL CLI, curl, and Node's own
// PKCS#12 loader. Every key and certificate is made by `openssl` in a temp dir for this run.

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'pkcs12-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const PASSWORD = 'correct horse battery staple';
const path = (name: string): string => join(dir, name);
const read = (name: string): string => readFileSync(path(name), 'utf8');

async function openssl(args: string[], encoding: BufferEncoding = 'utf8'): Promise<{ stdout: string; stderr: string }> {
  return run('openssl', args, { cwd: dir, encoding });
}

/** A self-signed certificate and its unencrypted key, as `<name>.crt` / `<name>.key`. */
async function selfSigned(name: string, newkey: string[], extra: string[] = []): Promise<void> {
  await openssl(['req', '-x509', ...newkey, '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '1', '-subj', `/CN=${name}`, ...extra]);
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
const RSA = ['-newkey', 'rsa:2048'];

t.before(async () => {
  await Promise.all([
    selfSigned('ec', EC),
    selfSigned('rsa', RSA),
    selfSigned('server', EC, ['-addext', 'subjectAltName=IP:127.0.0.1']),
    selfSigned('ca', EC, ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']),
    openssl(['req', '-new', ...EC, '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=leaf']),
  ]);
  await openssl(['x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-out', 'leaf.crt']);
});

async function writeBundle(name: string, opts: { key: string; cert: string; chain?: string[]; password?: string; friendlyName?: string }): Promise<string> {
  const pfx = await createPkcs12({
    keyPem: read(`${opts.key}.key`),
    certPem: read(`${opts.cert}.crt`),
    ...(opts.chain ? { chainPem: opts.chain.map((c) => read(`${c}.crt`)) } : {}),
    password: opts.password ?? PASSWORD,
    ...(opts.friendlyName !== undefined ? { friendlyName: opts.friendlyName } : {}),
  });
  writeFileSync(path(name), pfx);
  return path(name);
}

async function publicKeyOf(args: string[]): Promise<string> {
  return (await openssl(['pkey', '-pubout', ...args])).stdout;
}

for (const kind of ['ec', 'rsa'] as const) {
  t.test(`${kind}: openssl pkcs12 reads the bundle, and the key and certificate are the originals`, async (t) => {
    const p12 = await writeBundle(`${kind}.p12`, { key: kind, cert: kind });

    const info = await openssl(['pkcs12', '-info', '-in', p12, '-passin', `pass:${PASSWORD}`, '-noenc']);
    t.match(info.stdout, /-----BEGIN CERTIFICATE-----/);
    t.match(info.stdout, /-----BEGIN PRIVATE KEY-----/);
    t.match(info.stderr, /MAC: sha256, Iteration 10000/);
    t.match(info.stderr, /Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 10000, PRF hmacWithSHA256/);
    t.match(info.stderr, /PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC, Iteration 10000, PRF hmacWithSHA256/);

    writeFileSync(path(`${kind}.out.key`), (await openssl(['pkcs12', '-in', p12, '-passin', `pass:${PASSWORD}`, '-nocerts', '-noenc'])).stdout);
    t.equal(await publicKeyOf(['-in', `${kind}.out.key`]), await publicKeyOf(['-in', `${kind}.key`]), 'same key');

    const certOut = (await openssl(['pkcs12', '-in', p12, '-passin', `pass:${PASSWORD}`, '-nokeys', '-clcerts'])).stdout;
    t.equal(new X509Certificate(certOut).fingerprint256, new X509Certificate(read(`${kind}.crt`)).fingerprint256, 'same certificate');
  });

  t.test(`${kind}: Node loads it with the password and refuses a wrong one`, async (t) => {
    const pfx = readFileSync(await writeBundle(`${kind}-node.p12`, { key: kind, cert: kind }));
    t.ok(tls.createSecureContext({ pfx, passphrase: PASSWORD }));
    t.throws(() => tls.createSecureContext({ pfx, passphrase: 'wrong' }), /mac verify failure|wrong password|bad decrypt/i);
    await t.rejects(openssl(['pkcs12', '-info', '-in', path(`${kind}-node.p12`), '-passin', 'pass:wrong', '-noenc']), 'openssl refuses a wrong password');
  });
}

/** An HTTPS server on 127.0.0.1:0 that demands a client certificate chaining to `caPem`. */
async function mtlsServer(caPem: string): Promise<{ url: string; seen: X509Certificate[]; close: () => Promise<void> }> {
  const seen: X509Certificate[] = [];
  const server = https.createServer(
    { key: read('server.key'), cert: read('server.crt'), ca: [caPem], requestCert: true, rejectUnauthorized: true },
    (req, res) => {
      const socket = req.socket as tls.TLSSocket;
      const peer = socket.getPeerX509Certificate();
      if (peer) seen.push(peer);
      res.end(`authorized=${String(socket.authorized)}\n`);
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}/`,
    seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

for (const kind of ['ec', 'rsa'] as const) {
  t.test(`${kind}: curl presents the bundle as its client certificate`, async (t) => {
    const p12 = await writeBundle(`${kind}-curl.p12`, { key: kind, cert: kind });
    const server = await mtlsServer(read(`${kind}.crt`));
    t.teardown(server.close);
    const { stdout } = await run('curl', ['-sS', '--cert-type', 'P12', '--cert', `${p12}:${PASSWORD}`, '--cacert', path('server.crt'), server.url]);
    t.equal(stdout, 'authorized=true\n');
    t.equal(server.seen.length, 1);
    t.equal(server.seen[0]?.fingerprint256, new X509Certificate(read(`${kind}.crt`)).fingerprint256, 'the server saw our certificate');
  });
}

t.test('a chain is stored after the leaf and curl authenticates against the CA', async (t) => {
  const p12 = await writeBundle('chain.p12', { key: 'leaf', cert: 'leaf', chain: ['ca'], friendlyName: 'Gerät 7' });
  const info = await openssl(['pkcs12', '-info', '-in', p12, '-passin', `pass:${PASSWORD}`, '-noenc']);
  const certs = [...info.stdout.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)].map((m) => new X509Certificate(m[0]));
  t.same(
    certs.map((c) => c.subject),
    ['CN=leaf', 'CN=ca'],
  );
  // OpenSSL prints each bag's attributes: the key and the leaf share localKeyID and the name.
  // It prints a BMPString's code units as single bytes (Latin-1), as it does for its own -export.
  const attrs = (await openssl(['pkcs12', '-info', '-in', p12, '-passin', `pass:${PASSWORD}`, '-noenc'], 'latin1')).stdout;
  t.equal(attrs.match(/friendlyName: Gerät 7\n/g)?.length, 2, 'friendlyName on key and leaf');
  const ids = [...attrs.matchAll(/localKeyID: ([0-9A-F ]+)/g)].map((m) => m[1]);
  t.equal(ids.length, 2);
  t.equal(ids[0], ids[1]);
  const sha1 = new X509Certificate(read('leaf.crt')).fingerprint.replaceAll(':', ' ');
  t.equal(ids[0]?.trim(), sha1, 'localKeyID is the SHA-1 of the leaf, as OpenSSL computes it');

  const server = await mtlsServer(read('ca.crt'));
  t.teardown(server.close);
  const { stdout } = await run('curl', ['-sS', '--cert-type', 'P12', '--cert', `${p12}:${PASSWORD}`, '--cacert', path('server.crt'), server.url]);
  t.equal(stdout, 'authorized=true\n');
  t.equal(server.seen[0]?.subject, 'CN=leaf');
});

t.test('a non-ASCII password opens the bundle in OpenSSL and Node alike', async (t) => {
  const password = 'pässwörd-日本-🔑';
  const p12 = await writeBundle('unicode.p12', { key: 'ec', cert: 'ec', password });
  t.ok(tls.createSecureContext({ pfx: readFileSync(p12), passphrase: password }));
  const info = await openssl(['pkcs12', '-info', '-in', p12, '-passin', `pass:${password}`, '-noenc']);
  t.match(info.stdout, /BEGIN PRIVATE KEY/);
});

t.test('fails closed with ERR_PKI on bad input', async (t) => {
  const base = { keyPem: read('ec.key'), certPem: read('ec.crt'), password: PASSWORD };
  const cases: Array<[string, Partial<typeof base> & { chainPem?: string[]; friendlyName?: string }, string]> = [
    ['key of another certificate', { keyPem: read('rsa.key') }, 'keyPem'],
    ['unparsable key', { keyPem: 'not a key' }, 'keyPem'],
    ['no certificate', { certPem: read('ec.key') }, 'certPem'],
    ['broken certificate', { certPem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' }, 'certPem'],
    ['empty chain entry', { chainPem: [''] }, 'chainPem[0]'],
    ['empty password', { password: '' }, 'password'],
    ['NUL in password', { password: 'a\0b' }, 'password'],
    ['lone surrogate in password', { password: 'a\uD800' }, 'password'],
    ['friendlyName outside the BMP', { friendlyName: 'key 🔑' }, 'friendlyName'],
  ];
  for (const [name, override, reason] of cases) {
    await t.rejects(createPkcs12({ ...base, ...override }), { code: 'ERR_PKI', fault: reason }, name);
  }
  const err = await createPkcs12({ ...base, keyPem: 'x' }).catch((e: unknown) => e);
  t.ok(isSidecarError(err));
});
