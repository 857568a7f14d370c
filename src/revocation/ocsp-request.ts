/**
 * OCSP request construction (RFC 6960 §4.1) with pkijs; hashes with node:crypto.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import type { CertFields } from '../pki/index.js';

/** CertID hash algorithms we send, by config name. */
export const CERT_ID_HASH_OIDS = { sha1: '1.3.14.3.2.26', sha256: '2.16.840.1.101.3.4.2.1' } as const;

/** Hash algorithms we accept in a response's CertID, by OID (node:crypto names). */
export const CERT_ID_HASHES: Readonly<Record<string, string>> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

/** id-pkix-ocsp-nonce. */
export const OCSP_NONCE_OID = '1.3.6.1.5.5.7.48.1.2';

/** A DER OCSPRequest and the nonce it carries (if any). */
export interface BuiltOcspRequest {
  readonly der: Buffer;
  readonly nonce?: Buffer;
}

/**
 * Builds an unsigned OCSPRequest for one certificate: CertID over the issuer's Name and key bits
 * with `hash`, and with `withNonce` a fresh 16-octet nonce (RFC 8954 size). Sync; never throws for
 * parsed certificates.
 */
export function buildOcspRequest(
  leaf: CertFields,
  issuer: CertFields,
  hash: keyof typeof CERT_ID_HASH_OIDS,
  withNonce: boolean,
): BuiltOcspRequest {
  const certId = new pkijs.CertID({
    hashAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: CERT_ID_HASH_OIDS[hash], algorithmParams: new asn1js.Null() }),
    issuerNameHash: new asn1js.OctetString({ valueHex: createHash(hash).update(issuer.subjectName).digest() }),
    issuerKeyHash: new asn1js.OctetString({ valueHex: createHash(hash).update(issuer.publicKeyBits).digest() }),
    serialNumber: new asn1js.Integer({ valueHex: leaf.serialContent }),
  });
  const request = new pkijs.OCSPRequest();
  request.tbsRequest.requestList = [new pkijs.Request({ reqCert: certId })];
  let nonce: Buffer | undefined;
  if (withNonce) {
    nonce = randomBytes(16);
    request.tbsRequest.requestExtensions = [
      new pkijs.Extension({
        extnID: OCSP_NONCE_OID,
        critical: false,
        extnValue: new asn1js.OctetString({ valueHex: nonce }).toBER(),
      }),
    ];
  }
  const der = Buffer.from(request.toSchema(true).toBER());
  return nonce === undefined ? { der } : { der, nonce };
}
