/**
 * What a sidecar in front of an openssl-made PKI needs: its own server certificate from a separate
 * throwaway root (devices trust that root), and the PKI's root and issuing CA as its client CA
 * bundle, all written into the PKI's temp dir.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKey, issueCertificate } from '../../../src/pki/index.js';
import type { TestPki as SidecarTestPki } from '../../fixtures/pki.js';
import type { TestPki } from './pki.js';

export interface SidecarPki {
  /** Files for `startTestSidecar` (only the fields it reads are set). */
  readonly files: SidecarTestPki;
  /** The root of the sidecar's server certificate, for clients. */
  readonly serverRootPem: string;
}

export async function sidecarPkiFor(pki: TestPki): Promise<SidecarPki> {
  const serverRootKey = await generateKey('p256');
  const serverRoot = await issueCertificate({ subject: 'CN=Server Root', key: serverRootKey, isCa: true });
  const serverKey = await generateKey('p256');
  const serverCert = await issueCertificate({ subject: 'CN=localhost', key: serverKey, issuer: { ...serverRoot, key: serverRootKey }, san: { dns: ['localhost'], ip: ['127.0.0.1'] }, extendedKeyUsage: ['serverAuth'] });
  const write = (name: string, data: string) => {
    const f = join(pki.dir, name);
    writeFileSync(f, data);
    return f;
  };
  const files = {
    dir: pki.dir,
    serverCertFile: write('sidecar-server.pem', serverCert.pem),
    serverKeyFile: write('sidecar-server.key', serverKey.privateKeyPem),
    caBundleFile: write('device-cas.pem', readFileSync(pki.root.certPath, 'utf8') + readFileSync(pki.ca.certPath, 'utf8')),
  } as unknown as SidecarTestPki;
  return { files, serverRootPem: serverRoot.pem };
}
