/**
 * The throwaway development PKI of `mtls-sidecar dev`: a root CA, a server certificate for
 * localhost/127.0.0.1/::1 and one device certificate (ECDSA P-256, like a phone's Secure Enclave
 * key) with its PKCS#12 bundle. Written under a git-ignored folder, keys with mode 0600. Reused
 * while valid, so a curl line printed once keeps working across restarts.
 */
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPkcs12, generateKey, issueCertificate, issueCrl } from '../pki/index.js';

/** Where each file of the dev PKI lives. */
export interface DevPki {
  readonly dir: string;
  readonly caCert: string;
  /** The dev CA's CRL (empty), so the demo runs with revocation checking on. */
  readonly caCrl: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly deviceCert: string;
  readonly deviceKey: string;
  readonly deviceP12: string;
  readonly p12Password: string;
  readonly deviceId: string;
}

/** The PKCS#12 password of the dev bundle: a demo value, printed, never for real devices. */
export const DEV_P12_PASSWORD = 'dev-only';

function paths(dir: string): DevPki {
  return {
    dir,
    caCert: join(dir, 'ca.pem'),
    caCrl: join(dir, 'ca.crl'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server.key'),
    deviceCert: join(dir, 'device.pem'),
    deviceKey: join(dir, 'device.key'),
    deviceP12: join(dir, 'device.p12'),
    p12Password: DEV_P12_PASSWORD,
    deviceId: 'dev-device-1',
  };
}

function stillValid(file: string, minRemainingMs: number): boolean {
  if (!existsSync(file)) return false;
  try {
    return new Date(new X509Certificate(readFileSync(file)).validTo).getTime() - Date.now() > minRemainingMs;
  } catch {
    return false;
  }
}

function writeSecret(file: string, data: string | Buffer): void {
  writeFileSync(file, data, { mode: 0o600 });
  chmodSync(file, 0o600); // writeFileSync keeps the mode of an existing file
}

/** Creates the dev PKI under `dir` unless a complete, valid one is there. Async; rejects on I/O failure. */
export async function ensureDevPki(dir: string): Promise<DevPki & { created: boolean }> {
  const p = paths(dir);
  const files = [p.caCert, p.caCrl, p.serverCert, p.serverKey, p.deviceCert, p.deviceKey, p.deviceP12];
  if (files.every(existsSync) && stillValid(p.serverCert, 86_400_000) && stillValid(p.deviceCert, 86_400_000)) return { ...p, created: false };

  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const day = 86_400_000;
  const now = Date.now();
  const caKey = await generateKey('p256');
  const ca = await issueCertificate({ subject: 'CN=mtls-sidecar dev root CA (throwaway),O=mtls-sidecar dev', key: caKey, isCa: true, pathLength: 1, notAfter: new Date(now + 365 * day) });
  const issuer = { ...ca, key: caKey };
  const serverKey = await generateKey('p256');
  const server = await issueCertificate({
    subject: 'CN=localhost',
    key: serverKey,
    issuer,
    san: { dns: ['localhost'], ip: ['127.0.0.1', '::1'] },
    extendedKeyUsage: ['serverAuth'],
    notAfter: new Date(now + 90 * day),
  });
  const deviceKey = await generateKey('p256');
  const device = await issueCertificate({
    subject: `CN=${p.deviceId},O=mtls-sidecar dev`,
    key: deviceKey,
    issuer,
    san: { uri: [`urn:device:${p.deviceId}`] },
    extendedKeyUsage: ['clientAuth'],
    notAfter: new Date(now + 30 * day),
  });
  const p12 = await createPkcs12({ keyPem: deviceKey.privateKeyPem, certPem: device.pem, chainPem: [ca.pem], password: DEV_P12_PASSWORD, friendlyName: p.deviceId });

  // Valid as long as the device certificate: the PKI is recreated before either runs out.
  const crl = await issueCrl({ issuer, nextUpdate: new Date(now + 30 * day) });
  writeFileSync(p.caCert, ca.pem);
  writeFileSync(p.caCrl, crl.pem);
  writeFileSync(p.serverCert, server.pem);
  writeSecret(p.serverKey, serverKey.privateKeyPem);
  writeFileSync(p.deviceCert, device.pem);
  writeSecret(p.deviceKey, deviceKey.privateKeyPem);
  writeSecret(p.deviceP12, p12);
  // The CA key is not kept: a throwaway CA that cannot issue again is the safest kind.
  return { ...p, created: true };
}
