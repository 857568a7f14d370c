import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import t from 'tap';
import { generateKey, issueCertificate } from '../../src/pki/index.js';
import { loadTlsMaterial } from '../../src/tls/index.js';
import { SidecarError } from '../../src/errors.js';
import { createTestPki } from '../fixtures/pki.js';
import { thrownBy } from '../fixtures/thrown.js';

const pki = await createTestPki();
t.teardown(() => pki.cleanup());
const good = { cert: pki.serverCertFile, key: pki.serverKeyFile, caBundle: [pki.caBundleFile] };

const failure = (paths: Parameters<typeof loadTlsMaterial>[0]): SidecarError => thrownBy(SidecarError, () => loadTlsMaterial(paths));

t.test('good material loads', async (t) => {
  const m = loadTlsMaterial(good);
  t.equal(m.caCertificates.length, 1);
  t.ok(m.serverCertificate.subject.includes('CN=localhost'));
});

t.test('every bad file is named with what is wrong', async (t) => {
  const otherKey = await generateKey('p256');
  const dir = join(pki.dir, 'adir');
  mkdirSync(dir, { recursive: true });
  const cases: Array<[string, Parameters<typeof loadTlsMaterial>[0], string, RegExp]> = [
    ['missing cert', { ...good, cert: '/nonexistent/server.pem' }, 'tls.cert', /does not exist/],
    ['cert is a directory', { ...good, cert: dir }, 'tls.cert', /is a directory/],
    ['cert is not PEM', { ...good, cert: pki.write('junk.pem', 'hello') }, 'tls.cert', /no PEM CERTIFICATE/],
    ['cert is DER', { ...good, cert: pki.write('der.crt', pki.root.der) }, 'tls.cert', /binary \(DER\?\)/],
    ['key does not match', { ...good, key: pki.write('other.key', otherKey.privateKeyPem) }, 'tls.key', /does not match the certificate/],
    ['key is a cert', { ...good, key: pki.serverCertFile }, 'tls.key', /not a PEM private key/],
    ['empty CA bundle', { ...good, caBundle: [pki.write('empty.pem', '')] }, 'clientAuth.caBundle', /no PEM CERTIFICATE/],
    ['non-CA in bundle', { ...good, caBundle: [pki.serverCertFile] }, 'clientAuth.caBundle', /is not a CA certificate/],
  ];
  for (const [name, paths, fault, message] of cases) {
    const err = failure(paths);
    t.equal(err.code, 'ERR_TLS_MATERIAL', name);
    t.equal(err.fault, fault, `${name}: fault`);
    t.match(err.message, message, `${name}: message`);
  }
});

t.test('an encrypted key is refused with a hint', async (t) => {
  const enc = join(pki.dir, 'enc.key');
  execFileSync('openssl', ['pkey', '-in', pki.serverKeyFile, '-aes256', '-passout', 'pass:secret', '-out', enc]);
  t.match(failure({ ...good, key: enc }).message, /is encrypted/);
});

t.test('an expired server certificate is refused', async (t) => {
  const k = await generateKey('p256');
  const old = await issueCertificate({ subject: 'CN=localhost', key: k, issuer: pki.root, notBefore: new Date(Date.now() - 2e9), notAfter: new Date(Date.now() - 1e9) });
  const err = failure({ ...good, cert: pki.write('old.pem', old.pem), key: pki.write('old.key', k.privateKeyPem) });
  t.match(err.message, /expired on/);
});

t.test('no key material appears in error messages', async (t) => {
  const err = failure({ ...good, key: pki.serverCertFile });
  t.notMatch(err.message, /BEGIN|PRIVATE/);
});
