/**
 * The trust snapshot of one CA bundle load: which certificates are trust anchors and which
 * configured CA certificates may stand in a path. It only indexes; every signature and validity
 * check happens in path.ts.
 */
import type { X509Certificate } from 'node:crypto';

/** The trust snapshot of one CA bundle load. Immutable; a reload builds a new one. */
export interface TrustIndex {
  readonly certificates: readonly X509Certificate[];
  /** Configured CA certificates whose subject is `cert`'s issuer name (candidates, unchecked). */
  candidatesFor(cert: X509Certificate): readonly X509Certificate[];
  /**
   * True for a configured, self-issued certificate (a root). Paths end only there, as OpenSSL's
   * do without partial-chain trust; configured intermediates are candidates, not anchors, so
   * their revocation is checked like a client-sent one's.
   */
  isAnchor(cert: X509Certificate): boolean;
}

/** Builds the index. Pure; never throws. */
export function createTrustIndex(certificates: readonly X509Certificate[]): TrustIndex {
  const bySubject = new Map<string, X509Certificate[]>();
  const anchors = new Set<string>();
  for (const c of certificates) {
    const list = bySubject.get(c.subject) ?? [];
    list.push(c);
    bySubject.set(c.subject, list);
    if (isSelfIssued(c)) anchors.add(c.fingerprint256);
  }
  return Object.freeze({
    certificates,
    candidatesFor: (cert: X509Certificate) => bySubject.get(cert.issuer) ?? [],
    isAnchor: (cert: X509Certificate) => anchors.has(cert.fingerprint256),
  });
}

/** A certificate that names itself as issuer and whose signature its own key verifies (a root). */
export function isSelfIssued(cert: X509Certificate): boolean {
  if (cert.subject !== cert.issuer) return false;
  try {
    return cert.verify(cert.publicKey);
  } catch {
    return false;
  }
}
