/**
 * The identity facts of a verified client certificate, computed once per certificate (the
 * verifier caches them by fingerprint), never per request.
 */
import type { X509Certificate } from 'node:crypto';
import { formatRfc4514, parseSubjectAltName, serialHexOfCertificate } from '../pki/index.js';

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
 * Extracts the identity of `leaf`. Pure apart from hashing; returns `undefined` when no rule
 * yields a device id (the verifier turns that into `no_device_id`).
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
  });
}
