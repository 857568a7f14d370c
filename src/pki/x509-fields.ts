/**
 * The certificate fields and extensions read straight from the DER: the one certificate-field
 * extractor (revocation checking, path building and the CA's OCSP responder all use it).
 *
 * Node's `X509Certificate` gives strings (subject, infoAccess) but not the raw issuer/subject Name
 * bytes, the public-key bits OCSP hashes, the CRL distribution points nor pathLenConstraint.
 * Each reader here is sync and throws `SidecarError` ERR_PKI (fault 'der') on malformed input;
 * callers decide whether that means "no URL" or "reject".
 */
import type { X509Certificate } from 'node:crypto';
import {
  TAG, childrenOf, contentOf, contextTag, decodeTime, derError, encodingOf, expectTag, expectTlv, isCriticalFlag,
  readOid, readTlv, serialHexOf, serialKeyOf, type Tlv
} from './asn1/index.js';

/** One X.509v3 extension: `value` is the content of its extnValue OCTET STRING. */
export interface CertExtension {
  readonly critical: boolean;
  readonly value: Uint8Array;
}

/** Parsed fields of one certificate (views into `raw`). */
export interface CertFields {
  readonly raw: Buffer;
  /** Canonical serial key (see `serialKeyOf`). */
  readonly serialKey: string;
  /** Serial in the sidecar's text form (as Node's `X509Certificate.serialNumber` prints it). */
  readonly serialHex: string;
  /** The serialNumber INTEGER's content octets, as encoded (what an OCSP CertID carries). */
  readonly serialContent: Uint8Array;
  /** DER of the issuer Name. */
  readonly issuerName: Uint8Array;
  /** DER of the subject Name. */
  readonly subjectName: Uint8Array;
  /** Content of subjectPublicKey (without the unused-bits octet): what OCSP's issuerKeyHash hashes. */
  readonly publicKeyBits: Uint8Array;
  readonly notBefore: number;
  readonly notAfter: number;
  /** Extensions by dotted OID. */
  readonly extensions: ReadonlyMap<string, CertExtension>;
}

/**
 * Parses a DER certificate. Sync; throws `SidecarError` ERR_PKI (fault 'der') if it is not a
 * well-formed X.509 certificate. Never verifies anything.
 */
export function parseCertificate(raw: Buffer): CertFields {
  const cert = expectTlv(raw, 0, raw.length, TAG.SEQUENCE, 'Certificate');
  const tbs = expectTlv(raw, cert.contentStart, cert.end, TAG.SEQUENCE, 'TBSCertificate');
  const fields = childrenOf(raw, tbs);
  let i = 0;
  if (fields[i]?.tag === contextTag(0, true)) i++; // version
  const serial = expectTag(fields[i++], TAG.INTEGER, 'certificate serialNumber');
  expectTag(fields[i++], TAG.SEQUENCE, 'certificate signature');
  const issuer = expectTag(fields[i++], TAG.SEQUENCE, 'certificate issuer');
  const validity = expectTag(fields[i++], TAG.SEQUENCE, 'certificate validity');
  const subject = expectTag(fields[i++], TAG.SEQUENCE, 'certificate subject');
  const spki = expectTag(fields[i++], TAG.SEQUENCE, 'certificate subjectPublicKeyInfo');
  const extensions = new Map<string, CertExtension>();
  for (; i < fields.length; i++) {
    const f = fields[i] as Tlv;
    if (f.tag !== contextTag(3, true)) continue; // issuer/subject unique IDs
    const list = expectTlv(raw, f.contentStart, f.end, TAG.SEQUENCE, 'extensions');
    for (const ext of childrenOf(raw, list)) {
      const [oid, second, third] = childrenOf(raw, ext);
      if (oid === undefined || second === undefined) throw derError('short extension');
      const value = second.tag === TAG.BOOLEAN ? third : second;
      extensions.set(readOid(raw, oid), { critical: isCriticalFlag(raw, second), value: contentOf(raw, expectTag(value, TAG.OCTET_STRING, 'certificate extnValue')) });
    }
  }
  const [, keyBits] = childrenOf(raw, spki);
  const bits = expectTag(keyBits, TAG.BIT_STRING, 'certificate subjectPublicKey');
  if (bits.end === bits.contentStart) throw derError('empty subjectPublicKey');
  const [nb, na] = childrenOf(raw, validity);
  if (nb === undefined || na === undefined) throw derError('certificate validity incomplete');
  const serialKey = serialKeyOf(contentOf(raw, serial));
  return {
    raw,
    serialKey,
    serialHex: serialHexOf(serialKey),
    serialContent: contentOf(raw, serial),
    issuerName: encodingOf(raw, issuer),
    subjectName: encodingOf(raw, subject),
    publicKeyBits: raw.subarray(bits.contentStart + 1, bits.end),
    notBefore: decodeTime(raw, nb),
    notAfter: decodeTime(raw, na),
    extensions,
  };
}

/** Reads a GeneralNames SEQUENCE (or an implicitly tagged one) and returns its URI entries. */
export function uriNamesOf(buf: Uint8Array, names: Tlv): string[] {
  const uris: string[] = [];
  for (const name of childrenOf(buf, names)) {
    if (name.tag === contextTag(6, false)) uris.push(Buffer.from(contentOf(buf, name)).toString('latin1'));
  }
  return uris;
}

/** Reads the single TLV that makes up an extension value. Sync; throws on trailing bytes. */
export function extensionRoot(value: Uint8Array): Tlv {
  const root = readTlv(value, 0, value.length);
  if (root.end !== value.length) throw derError('trailing bytes in extension');
  return root;
}

/** Extension and access-method OIDs. */
export const OID = {
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  crlDistributionPoints: '2.5.29.31',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
  accessOcsp: '1.3.6.1.5.5.7.48.1',
  kpOcspSigning: '1.3.6.1.5.5.7.3.9',
  certificatePolicies: '2.5.29.32',
} as const;

/** KeyUsage bit numbers (RFC 5280 §4.2.1.3). */
export const KEY_USAGE = { digitalSignature: 0, keyCertSign: 5, cRLSign: 6 } as const;

/**
 * URIs of the distribution points whose CRL is issued by the certificate's own issuer (points
 * with a cRLIssuer, i.e. indirect CRLs, are skipped: they are not supported).
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
      urls.push(Buffer.from(contentOf(buf, location)).toString('latin1'));
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

/**
 * The certificate policy OIDs (RFC 5280 §4.2.1.4: each PolicyInformation's policyIdentifier), in
 * certificate order; `[]` when the extension is absent. Sync; throws `SidecarError` ERR_PKI
 * (fault 'der') when it is malformed, so unreadable policies are never taken for none.
 */
export function certificatePolicyOids(cert: CertFields): string[] {
  const ext = cert.extensions.get(OID.certificatePolicies);
  if (ext === undefined) return [];
  return childrenOf(ext.value, extensionRoot(ext.value)).map((info) => {
    const id = childrenOf(ext.value, expectTag(info, TAG.SEQUENCE, 'PolicyInformation'))[0];
    return readOid(ext.value, expectTag(id, TAG.OID, 'policyIdentifier'));
  });
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

/**
 * The pathLenConstraint of basicConstraints: how many CA certificates may follow this one below
 * it in a path; `undefined` when absent (unlimited) or when the certificate is not a CA.
 */
function pathLengthConstraint(cert: CertFields): number | undefined {
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

/** The pathLenConstraint of a Node certificate (see above). Sync; never throws (unreadable DER gives 0). */
export function readPathLengthConstraint(cert: X509Certificate): number | undefined {
  try {
    return pathLengthConstraint(parseCertificate(cert.raw));
  } catch {
    return 0; // unreadable constraints: allow no CA below it (fail closed)
  }
}
