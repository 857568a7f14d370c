/**
 * An index of the configured CA certificates for walking a verified chain up to its anchor.
 * Node's TLS has already verified the chain; this only finds which configured CAs it went through,
 * so the chain length and the issuer are known, also for resumed sessions.
 */
import type { X509Certificate } from 'node:crypto';

/** The trust snapshot of one CA bundle load. Immutable. */
export interface TrustIndex {
  /** The configured CA that issued `cert`, if any (name + key identifier match, no signature check). */
  findIssuer(cert: X509Certificate): X509Certificate | undefined;
  readonly certificates: readonly X509Certificate[];
}

/** Builds the index. Pure; never throws. */
export function createTrustIndex(certificates: readonly X509Certificate[]): TrustIndex {
  const bySubject = new Map<string, X509Certificate[]>();
  for (const c of certificates) {
    const list = bySubject.get(c.subject) ?? [];
    list.push(c);
    bySubject.set(c.subject, list);
  }
  return Object.freeze({
    certificates,
    findIssuer(cert: X509Certificate) {
      return bySubject.get(cert.issuer)?.find((ca) => cert.checkIssued(ca));
    },
  });
}

/** A certificate that names itself as issuer and is signed by its own key (a root). */
export function isSelfIssued(cert: X509Certificate): boolean {
  return cert.subject === cert.issuer && cert.checkIssued(cert);
}

/**
 * The CA certificates above `leaf`, nearest first, ending at a self-issued configured root, or
 * `undefined` when the walk does not reach a configured CA. `sent` is the client's own chain link
 * (Node's `issuerCertificate`), tried before the index so client-sent intermediates count.
 */
export function walkChain(leaf: X509Certificate, trust: TrustIndex, limit = 16): X509Certificate[] | undefined {
  const chain: X509Certificate[] = [];
  let cur = leaf;
  let anchored = false;
  while (chain.length < limit) {
    const viaIndex = trust.findIssuer(cur);
    const next = viaIndex ?? (cur.issuerCertificate && cur.checkIssued(cur.issuerCertificate) ? cur.issuerCertificate : undefined);
    if (!next) break;
    anchored = viaIndex !== undefined; // the walk must end on a configured CA, not a client-sent one
    chain.push(next);
    if (isSelfIssued(next)) break;
    cur = next;
  }
  return anchored ? chain : undefined;
}
