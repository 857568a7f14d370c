/**
 * The identity facts of a verified client certificate, computed once per certificate (the
 * verifier caches them by fingerprint), never per request.
 */
import type { X509Certificate } from 'node:crypto';
import { certificatePolicyOids, formatRfc4514, nameAttributes, parseCertificate, parseSubjectAltName, serialHexOfCertificate } from '../pki/index.js';

/** How to pick the device id: the first source that matches wins. */
export type DeviceIdRule =
  | { readonly source: 'uri'; readonly prefix: string; readonly stripPrefix: boolean }
  | { readonly source: 'spiffe' }
  | { readonly source: 'dns' }
  | { readonly source: 'cn' }
  | { readonly source: 'serial' };

/** What the upstream learns about the client. Strings are raw; header encoding happens later. */
export interface CertIdentity {
  readonly deviceId: string;
  /** RFC 4514, printable ASCII only. */
  readonly subject: string;
  readonly issuer: string;
  /** Upper-case hex, as OpenSSL prints it. */
  readonly serialHex: string;
  /** Lower-case hex SHA-256 of the DER, no separators. */
  readonly fingerprintSha256: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly sanUri: readonly string[];
  readonly sanDns: readonly string[];
  readonly leafDer: Buffer;
  /** The CA certificates above the leaf, nearest first, the trust anchor excluded. */
  readonly chainDer: readonly Buffer[];
  /** The subject's attributes the authorization policy matches on, each in certificate order (usually one each). */
  readonly subjectFields: SubjectFields;
  /**
   * Every CA of the verified path above the leaf, nearest first, the trust anchor included: lower-case
   * hex SHA-256 of each DER, and each subject in RFC 4514. For "devices of CA X" rules.
   */
  readonly caFingerprintsSha256: readonly string[];
  readonly caSubjects: readonly string[];
  /** The certificate policy OIDs of the client certificate, dotted. */
  readonly policyOids: readonly string[];
}

/** Subject attributes as text (UTF-8 decoded, unescaped). */
export interface SubjectFields {
  readonly cn: readonly string[];
  readonly ou: readonly string[];
  readonly o: readonly string[];
}

/** The CN, OU and O values of a Node multi-line subject. Throws (from pki) on text not in Node's format. */
function subjectFieldsOf(nodeSubject: string): SubjectFields {
  const cn: string[] = [];
  const ou: string[] = [];
  const o: string[] = [];
  for (const { type, value } of nameAttributes(nodeSubject)) {
    if (type === 'CN') cn.push(value);
    else if (type === 'OU') ou.push(value);
    else if (type === 'O') o.push(value);
  }
  return Object.freeze({ cn: Object.freeze(cn), ou: Object.freeze(ou), o: Object.freeze(o) });
}

/** The CN of a Node multi-line subject, if exactly findable. */
function commonName(nodeSubject: string): string | undefined {
  for (const line of nodeSubject.split('\n')) if (line.startsWith('CN=')) return line.slice(3);
  return undefined;
}

/** Applies the rules in order. Pure; `undefined` when none matches. */
export function pickDeviceId(
  rules: readonly DeviceIdRule[],
  facts: { sanUri: readonly string[]; sanDns: readonly string[]; cn: string | undefined; serialHex: string },
): string | undefined {
  for (const rule of rules) {
    switch (rule.source) {
      case 'uri': {
        const uri = facts.sanUri.find((u) => u.startsWith(rule.prefix) && u.length > rule.prefix.length);
        if (uri) return rule.stripPrefix ? uri.slice(rule.prefix.length) : uri;
        break;
      }
      case 'spiffe': {
        const uri = facts.sanUri.find((u) => /^spiffe:\/\/[^/]+\/./.test(u));
        if (uri) return uri;
        break;
      }
      case 'dns':
        if (facts.sanDns[0]) return facts.sanDns[0];
        break;
      case 'cn':
        if (facts.cn) return facts.cn;
        break;
      case 'serial':
        return facts.serialHex;
    }
  }
  return undefined;
}

/**
 * Extracts the identity of `leaf`; `chainAboveLeaf` is the verified path above it, nearest first
 * (the anchor may be included). Pure apart from hashing; returns `undefined` when no rule yields a
 * device id (the verifier turns that into `no_device_id`); throws (from pki) on names it cannot read.
 */
export function extractIdentity(
  leaf: X509Certificate,
  chainAboveLeaf: readonly X509Certificate[],
  rules: readonly DeviceIdRule[],
): CertIdentity | undefined {
  const san = parseSubjectAltName(leaf.subjectAltName);
  const serialHex = serialHexOfCertificate(leaf);
  const deviceId = pickDeviceId(rules, { sanUri: san.uri, sanDns: san.dns, cn: commonName(leaf.subject), serialHex });
  if (deviceId === undefined) return undefined;
  const last = chainAboveLeaf[chainAboveLeaf.length - 1];
  const anchorIncluded = last !== undefined && last.subject === last.issuer;
  const intermediates = anchorIncluded ? chainAboveLeaf.slice(0, -1) : chainAboveLeaf;
  return Object.freeze({
    deviceId,
    subject: formatRfc4514(leaf.subject),
    issuer: formatRfc4514(leaf.issuer),
    serialHex,
    fingerprintSha256: leaf.fingerprint256.replace(/:/g, '').toLowerCase(),
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
    sanUri: Object.freeze([...san.uri]),
    sanDns: Object.freeze([...san.dns]),
    leafDer: leaf.raw,
    chainDer: Object.freeze(intermediates.map((c) => c.raw)),
    subjectFields: subjectFieldsOf(leaf.subject),
    caFingerprintsSha256: Object.freeze(chainAboveLeaf.map((c) => c.fingerprint256.replace(/:/g, '').toLowerCase())),
    caSubjects: Object.freeze(chainAboveLeaf.map((c) => formatRfc4514(c.subject))),
    policyOids: Object.freeze(certificatePolicyOids(parseCertificate(leaf.raw))),
  });
}
