/**
 * `mtls-sidecar ca init`: everything a device CA needs, in one folder, ready for `ca serve`:
 *   root-ca.pem/.key        the root (10 years); keep its key offline after init
 *   issuing-ca.pem/.key     signs device certificates and CRLs (5 years, path length 0)
 *   ocsp-signer.pem/.key    the delegated OCSP signer (OCSPSigning EKU, ocsp-nocheck; 1 year)
 *   server.pem/.key         TLS certificate of the enrollment and admin listeners (root-signed,
 *                           serverAuth only, so it can never pass as a device certificate)
 *   pin-signing.key/.pub.pem signs the pin set; the app ships the public key
 *   pin-backup.key          a spare server key whose pin is listed as backup; keep it offline
 *   code-pepper.key, admin-token   random secrets
 *   ca.yaml                 a config naming all of the above
 * Private keys and secrets are written with mode 0600. It never overwrites: an existing CA in the
 * folder is an error, so a mistyped command cannot destroy a CA key.
 */
import { createPublicKey, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SidecarError } from '../errors.js';
import { generateKey, issueCertificate, type KeyAlgorithm } from '../pki/index.js';
import { issueOcspSigner } from './ocsp-signer.js';
import { spkiPin } from './pins.js';

export interface CaInitOptions {
  readonly dir: string;
  /** The CA's name, used in the subjects (e.g. "Example Bank Devices"). */
  readonly name: string;
  readonly algorithm: KeyAlgorithm;
  /** Names the enrollment/admin TLS certificate covers (localhost and loopback are always added). */
  readonly hostnames: readonly string[];
  /** The publishing listener's public base URL, written into every device certificate. */
  readonly publishBaseUrl: string;
}

/** What init wrote. */
export interface CaInitResult {
  readonly config: string;
  readonly rootCert: string;
  readonly issuingCert: string;
  readonly pinSigningPublicKey: string;
  readonly adminToken: string;
}

const YEAR_MS = 365 * 86_400_000;

/** Creates the CA folder. Async; throws ERR_USAGE if the folder already holds a CA. */
export async function initCa(o: CaInitOptions): Promise<CaInitResult> {
  const file = (name: string) => join(o.dir, name);
  if (existsSync(file('issuing-ca.key')) || existsSync(file('root-ca.key')) || existsSync(file('ca.yaml'))) {
    throw new SidecarError('ERR_USAGE', 'dir', `${o.dir} already holds a CA; init never overwrites one`);
  }
  mkdirSync(o.dir, { recursive: true, mode: 0o700 });
  const now = Date.now();
  const rootKey = await generateKey(o.algorithm);
  const root = await issueCertificate({ subject: `CN=${o.name} Root CA`, key: rootKey, isCa: true, pathLength: 1, notAfter: new Date(now + 10 * YEAR_MS) });
  const rootId = { ...root, key: rootKey };
  const issuingKey = await generateKey(o.algorithm);
  const issuing = await issueCertificate({ subject: `CN=${o.name} Issuing CA`, key: issuingKey, issuer: rootId, isCa: true, pathLength: 0, notAfter: new Date(now + 5 * YEAR_MS) });
  const signer = await issueOcspSigner({ ...issuing, key: issuingKey }, { validityDays: 365 });
  const serverKey = await generateKey('p256');
  const names = [...new Set([...o.hostnames, 'localhost'])];
  const server = await issueCertificate({
    subject: `CN=${names[0]}`,
    key: serverKey,
    issuer: rootId,
    extendedKeyUsage: ['serverAuth'],
    san: { dns: names, ip: ['127.0.0.1', '::1'] },
    notAfter: new Date(now + YEAR_MS),
  });
  const pinKey = await generateKey('p256');
  const backupKey = await generateKey('p256');
  const pinPublic = toPublicPem(pinKey.privateKeyPem);
  const adminToken = randomBytes(32).toString('base64url');

  const secret = (name: string, text: string) => writeFileSync(file(name), text, { mode: 0o600, flag: 'wx' });
  const plain = (name: string, text: string) => writeFileSync(file(name), text, { mode: 0o644, flag: 'wx' });
  secret('root-ca.key', rootKey.privateKeyPem);
  plain('root-ca.pem', root.pem);
  secret('issuing-ca.key', issuingKey.privateKeyPem);
  plain('issuing-ca.pem', issuing.pem);
  secret('ocsp-signer.key', signer.key.privateKeyPem);
  plain('ocsp-signer.pem', signer.pem);
  secret('server.key', serverKey.privateKeyPem);
  plain('server.pem', server.pem);
  secret('pin-signing.key', pinKey.privateKeyPem);
  plain('pin-signing.pub.pem', pinPublic);
  secret('pin-backup.key', backupKey.privateKeyPem);
  secret('code-pepper.key', `${randomBytes(32).toString('hex')}\n`);
  secret('admin-token', `${adminToken}\n`);
  plain('ca.yaml', caYaml(o, names, spkiPin(backupKey.privateKeyPem)));
  return { config: file('ca.yaml'), rootCert: file('root-ca.pem'), issuingCert: file('issuing-ca.pem'), pinSigningPublicKey: file('pin-signing.pub.pem'), adminToken: file('admin-token') };
}

function toPublicPem(privateKeyPem: string): string {
  return createPublicKey(privateKeyPem).export({ type: 'spki', format: 'pem' }).toString();
}

function caYaml(o: CaInitOptions, names: readonly string[], backupPin: string): string {
  return `# Written by \`mtls-sidecar ca init\`; every field is documented in config/ca.example.yaml.
version: 1
ca:
  cert: issuing-ca.pem
  key: issuing-ca.key
  chain: [root-ca.pem]
store:
  path: ca.db
enroll:
  listen: { host: 0.0.0.0, port: 8444 }
  tls: { cert: server.pem, key: server.key }
  codes: { pepperFile: code-pepper.key }
admin:
  listen: { host: 127.0.0.1, port: 8445 }
  tls: { cert: server.pem, key: server.key }
  tokenFile: admin-token
publish:
  listen: { host: 0.0.0.0, port: 8080 }
  baseUrl: ${o.publishBaseUrl}
  ocsp: { signerCert: ocsp-signer.pem, signerKey: ocsp-signer.key }
pins:
  signingKey: pin-signing.key
  domains: [${names.map((n) => JSON.stringify(n)).join(', ')}]
  # Replace with the API servers' (the sidecar's) certificates; next: the key you will rotate to.
  current: [server.pem]
  next: []
  backup: ["${backupPin}"]
  version: 1
`;
}
