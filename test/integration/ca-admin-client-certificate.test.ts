// The admin API with an admin client CA instead of (or besides) the token: a certificate from
// that CA is admitted, a certificate from any other CA is not, and no credential is 401.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { generateKey, issueCertificate } from '../../src/pki/index.js';
import { startTestCa } from '../fixtures/device-ca.js';

const adminRootKey = await generateKey('p256');
const adminRoot = await issueCertificate({ subject: 'CN=Ops Admin CA', key: adminRootKey, isCa: true });
const operatorKey = await generateKey('p256');
const operator = await issueCertificate({ subject: 'CN=backend', key: operatorKey, issuer: { ...adminRoot, key: adminRootKey }, extendedKeyUsage: ['clientAuth'] });

const ca = await startTestCa((c) => {
  c.admin.clientCa = ['admin-ca.pem']; // relative to ca.yaml, like every path
  delete c.admin.tokenFile;
}, { beforeStart: (dir) => writeFileSync(join(dir, 'admin-ca.pem'), adminRoot.pem) });
t.teardown(() => ca.close());

t.test('an admin client certificate is admitted; nothing else is', async (t) => {
  const withCert = await ca.admin('GET', '/v1/admin/devices', undefined, '', { cert: operator.pem, key: operatorKey.privateKeyPem });
  t.equal(withCert.status, 200, 'certificate from the admin CA: 200');
  const none = await ca.admin('GET', '/v1/admin/devices', undefined, '');
  t.equal(none.status, 401, 'no credential: 401');
  const selfSignedKey = await generateKey('p256');
  const selfSigned = await issueCertificate({ subject: 'CN=backend', key: selfSignedKey, extendedKeyUsage: ['clientAuth'] });
  const rogue = await ca.admin('GET', '/v1/admin/devices', undefined, '', { cert: selfSigned.pem, key: selfSignedKey.privateKeyPem });
  t.equal(rogue.status, 401, 'a certificate from another CA: 401');
  const tokenOnly = await ca.admin('GET', '/v1/admin/devices', undefined, ca.token);
  t.equal(tokenOnly.status, 401, 'the token file is not configured, so a token is not accepted');
});
