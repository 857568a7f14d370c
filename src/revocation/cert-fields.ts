/**
 * The few certificate fields revocation needs, read straight from the DER.
 *
 * Node's `X509Certificate` gives strings (subject, infoAccess) but not the raw issuer/subject Name
 * bytes, the public-key bits OCSP hashes, nor the CRL distribution points, so we read them here.
 * (These are generic PKI helpers; they may move to `src/pki/` once that folder settles.)
 */
import { createHash, type X509Certificate } from 'node:crypto';
import {
  TAG,
  childrenOf,
  contentOf,
  contextTag,
  decodeTime,
  derError,
  encodingOf,
  expectTlv,
  readOid,
  readTlv,
  serialHexOf,
  serialKeyOf,
  type Tlv,
} from './der.js';

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
  /** Serial as Node's `X509Certificate.serialNumber` prints it. */
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
 * Parses a DER certificate. Sync; throws `SidecarError` (ERR_REVOCATION_SOURCE) if it is not a
 * well-formed X.509 certificate. Never verifies anything.
 */
export function parseCertificate(raw: Buffer): CertFields {
  const cert = expectTlv(raw, 0, raw.length, TAG.SEQUENCE, 'Certificate');
  const tbs = expectTlv(raw, cert.contentStart, cert.end, TAG.SEQUENCE, 'TBSCertificate');
  const fields = childrenOf(raw, tbs);
  let i = 0;
  if (fields[i]?.tag === contextTag(0, true)) i++; // version
  const serial = need(fields[i++], TAG.INTEGER, 'serialNumber');
  need(fields[i++], TAG.SEQUENCE, 'signature');
  const issuer = need(fields[i++], TAG.SEQUENCE, 'issuer');
  const validity = need(fields[i++], TAG.SEQUENCE, 'validity');
  const subject = need(fields[i++], TAG.SEQUENCE, 'subject');
  const spki = need(fields[i++], TAG.SEQUENCE, 'subjectPublicKeyInfo');
  const extensions = new Map<string, CertExtension>();
  for (; i < fields.length; i++) {
    const f = fields[i] as Tlv;
    if (f.tag !== contextTag(3, true)) continue; // issuer/subject unique IDs
    const list = expectTlv(raw, f.contentStart, f.end, TAG.SEQUENCE, 'extensions');
    for (const ext of childrenOf(raw, list)) {
      const [oid, second, third] = childrenOf(raw, ext);
      if (oid === undefined || second === undefined) throw derError('short extension');
      const critical = second.tag === TAG.BOOLEAN && raw[second.contentStart] !== 0;
      const value = second.tag === TAG.BOOLEAN ? third : second;
      extensions.set(readOid(raw, oid), { critical, value: contentOf(raw, need(value, TAG.OCTET_STRING, 'extnValue')) });
    }
  }
  const [, keyBits] = childrenOf(raw, spki);
  const bits = need(keyBits, TAG.BIT_STRING, 'subjectPublicKey');
  const [nb, na] = childrenOf(raw, validity);
  const serialKey = serialKeyOf(contentOf(raw, serial));
  return {
    raw,
    serialKey,
    serialHex: serialHexOf(serialKey),
    serialContent: contentOf(raw, serial),
    issuerName: encodingOf(raw, issuer),
    subjectName: encodingOf(raw, subject),
    publicKeyBits: raw.subarray(bits.contentStart + 1, bits.end),
    notBefore: timeOf(raw, nb),
    notAfter: timeOf(raw, na),
    extensions,
  };
}

function need(tlv: Tlv | undefined, tag: number, what: string): Tlv {
  if (tlv === undefined || tlv.tag !== tag) throw derError(`certificate ${what} missing or mistyped`);
  return tlv;
}

function timeOf(raw: Buffer, tlv: Tlv | undefined): number {
  if (tlv === undefined) throw derError('certificate validity incomplete');
  return decodeTime(raw, tlv);
}

/**
 * The hex SHA-256 of an issuer's public-key bits: the `issuerKeyHash` this library uses to name an
 * issuer (in `onRevoked` and cache keys). Keyed on the key, not the name, so two CAs that share a
 * name never share revocation state. Sync; never throws for a certificate Node has parsed.
 */
export function computeIssuerKeyHash(issuer: X509Certificate | CertFields): string {
  const fields = 'publicKeyBits' in issuer ? issuer : parseCertificate(issuer.raw);
  return createHash('sha256').update(fields.publicKeyBits).digest('hex');
}

/** Reads a GeneralNames SEQUENCE (or an implicitly tagged one) and returns its URI entries. */
export function uriNamesOf(buf: Uint8Array, names: Tlv): string[] {
  const uris: string[] = [];
  for (const name of childrenOf(buf, names)) {
    if (name.tag === contextTag(6, false)) uris.push(Buffer.from(contentOf(buf, name)).toString('latin1'));
  }
  return uris;
}

/** Reads the single TLV that makes up an extension value. */
export function extensionRoot(value: Uint8Array): Tlv {
  const root = readTlv(value, 0, value.length);
  if (root.end !== value.length) throw derError('trailing bytes in extension');
  return root;
}
