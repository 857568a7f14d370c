/** How revocation names an issuer: by the hash of its key. */
import { createHash, type X509Certificate } from 'node:crypto';
import { parseCertificate, type CertFields } from '../pki/index.js';

/**
 * The hex SHA-256 of an issuer's public-key bits: the `issuerKeyHash` this library uses to name an
 * issuer (in `onRevoked` and cache keys). Keyed on the key, not the name, so two CAs that share a
 * name never share revocation state. Sync; never throws for a certificate Node has parsed.
 */
export function computeIssuerKeyHash(issuer: X509Certificate | CertFields): string {
  const fields = 'publicKeyBits' in issuer ? issuer : parseCertificate(issuer.raw);
  return createHash('sha256').update(fields.publicKeyBits).digest('hex');
}
