/**
 * Decoders for the certificate extensions revocation checking reads: CRL distribution points,
 * the AIA OCSP responder, extended and plain key usage, basic constraints.
 * Each is sync and throws `SidecarError` (fault 'der') on a malformed extension; callers decide
 * whether that means "no URL" or "reject".
 */
import type { X509Certificate } from 'node:crypto';
import type { CertFields } from './cert-fields.js';
import { extensionRoot, parseCertificate, uriNamesOf } from './cert-fields.js';
import { TAG, childrenOf, contextTag, readOid } from './der.js';

/** Extension and access-method OIDs. */
export const OID = {
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  crlDistributionPoints: '2.5.29.31',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
  accessOcsp: '1.3.6.1.5.5.7.48.1',
  kpOcspSigning: '1.3.6.1.5.5.7.3.9',
} as const;

/** KeyUsage bit numbers (RFC 5280 §4.2.1.3). */
export const KEY_USAGE = { digitalSignature: 0, keyCertSign: 5, cRLSign: 6 } as const;

/**
 * URIs of the distribution points whose CRL is issued by the certificate's own issuer (points
 * with a cRLIssuer, i.e. indirect CRLs, are skipped: we do not support them).
 */
export function crlDistributionPointUrls(cert: CertFields): string[] {
  const ext = cert.extensions.get(OID.crlDistributionPoints);
  if (ext === undefined) return [];
  const buf = ext.value;
  const urls: string[] = [];
  for (const point of childrenOf(buf, extensionRoot(buf))) {
    const parts = childrenOf(buf, point);
    if (parts.some((p) => p.tag === contextTag(2, true))) continue; // cRLIssuer
    const name = parts.find((p) => p.tag === contextTag(0, true));
    if (name === undefined) continue;
    const fullName = childrenOf(buf, name).find((p) => p.tag === contextTag(0, true));
    if (fullName !== undefined) urls.push(...uriNamesOf(buf, fullName));
  }
  return urls;
}

/** URIs of the OCSP access descriptions in the Authority Information Access extension. */
export function ocspResponderUrls(cert: CertFields): string[] {
  const ext = cert.extensions.get(OID.authorityInfoAccess);
  if (ext === undefined) return [];
  const buf = ext.value;
  const urls: string[] = [];
  for (const desc of childrenOf(buf, extensionRoot(buf))) {
    const [method, location] = childrenOf(buf, desc);
    if (method === undefined || location === undefined) continue;
    if (readOid(buf, method) === OID.accessOcsp && location.tag === contextTag(6, false)) {
      urls.push(Buffer.from(buf.subarray(location.contentStart, location.end)).toString('latin1'));
    }
  }
  return urls;
}

/** Extended key usage OIDs, or `undefined` when the extension is absent. */
export function extendedKeyUsages(cert: CertFields): string[] | undefined {
  const ext = cert.extensions.get(OID.extKeyUsage);
  if (ext === undefined) return undefined;
  return childrenOf(ext.value, extensionRoot(ext.value)).map((oid) => readOid(ext.value, oid));
}

/** True if the KeyUsage extension is absent or asserts `bit` (absent means "any", RFC 5280). */
export function keyUsageAllows(cert: CertFields, bit: number): boolean {
  const ext = cert.extensions.get(OID.keyUsage);
  if (ext === undefined) return true;
  const root = extensionRoot(ext.value);
  if (root.tag !== TAG.BIT_STRING) return false;
  const byte = ext.value[root.contentStart + 1 + (bit >> 3)];
  return byte !== undefined && (byte & (0x80 >> (bit & 7))) !== 0;
}

/** True if basicConstraints says cA=TRUE. */
export function isCaCertificate(cert: CertFields): boolean {
  const ext = cert.extensions.get(OID.basicConstraints);
  if (ext === undefined) return false;
  const [first] = childrenOf(ext.value, extensionRoot(ext.value));
  return first?.tag === TAG.BOOLEAN && ext.value[first.contentStart] !== 0;
}

/**
 * The pathLenConstraint of basicConstraints: how many CA certificates may follow this one below
 * it in a path; `undefined` when absent (unlimited) or when the certificate is not a CA.
 */
export function pathLengthConstraint(cert: CertFields): number | undefined {
  const ext = cert.extensions.get(OID.basicConstraints);
  if (ext === undefined) return undefined;
  const parts = childrenOf(ext.value, extensionRoot(ext.value));
  const len = parts.find((p) => p.tag === TAG.INTEGER);
  if (len === undefined) return undefined;
  // A negative length is malformed: read it as the most restrictive value.
  if (((ext.value[len.contentStart] ?? 0) & 0x80) !== 0) return 0;
  let n = 0;
  for (let i = len.contentStart; i < len.end; i++) n = n * 256 + (ext.value[i] as number);
  // More than 2^32 CA levels is "unlimited" for any path we would build.
  return len.end - len.contentStart > 4 ? undefined : n;
}

/** {@link pathLengthConstraint} of a Node certificate. Sync; never throws (unreadable DER gives 0). */
export function readPathLengthConstraint(cert: X509Certificate): number | undefined {
  try {
    return pathLengthConstraint(parseCertificate(cert.raw));
  } catch {
    return 0; // unreadable constraints: allow no CA below it (fail closed)
  }
}
