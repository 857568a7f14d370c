/**
 * `check-config`: everything `serve` would refuse or be unable to use, found before it starts:
 * the TLS material, the upstream CA, the admin token and quarantine files, and every configured
 * CRL file (readable, a CRL, signed by a CA of the bundle or naming one not in it — that may be a
 * client-sent intermediate's). What `serve` refuses, check-config refuses with the same
 * `SidecarError` (and so the same exit status).
 */
import { readFileSync } from 'node:fs';
import type { SidecarConfig } from '../config/index.js';
import { SidecarError } from '../errors.js';
import { inspectCrlBytes } from '../revocation/index.js';
import { loadTlsMaterial } from '../tls/index.js';
import { readAdminToken, readQuarantineFile } from './quarantine.js';
import { readUpstreamCa } from './upstream-ca.js';

/** Async; rejects with a `SidecarError` naming the field and file at fault. */
export async function checkConfig(config: SidecarConfig): Promise<void> {
  const material = loadTlsMaterial({ cert: config.tls.cert, key: config.tls.key, caBundle: config.clientAuth.caBundle });
  if (config.upstream.ca) readUpstreamCa(config.upstream.ca);
  readAdminToken(config.admin.tokenFile);
  if (config.quarantine.file !== undefined) readQuarantineFile(config.quarantine.file, undefined);
  if (config.revocation.mode === 'none' || config.revocation.mode === 'ocsp') return;
  for (const [i, file] of config.revocation.crl.files.entries()) {
    const field = `revocation.crl.files[${i}]`;
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch (cause) {
      throw new SidecarError('ERR_REVOCATION_SOURCE', field, `${field} ${file} cannot be read: ${(cause as Error).message}`, { cause });
    }
    const problems = await inspectCrlBytes(bytes, material.caCertificates);
    if (problems.length > 0) {
      throw new SidecarError('ERR_REVOCATION_SOURCE', field, `${field} ${file}: ${problems.map((p) => `${p.reason}: ${p.message}`).join('; ')}`);
    }
  }
}
