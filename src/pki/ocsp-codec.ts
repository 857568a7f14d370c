/**
 * The DER of the CA's OCSP responder (RFC 6960): reading an OCSPRequest and assembling a
 * BasicOCSPResponse from pieces the responder prepares once. Per request: one walk of the
 * request with the shared reader, one allocation per TLV written. (The sidecar's OCSP client,
 * revocation/ocsp-request.ts and ocsp-response.ts, uses pkijs instead: it runs once per cache
 * miss, not on an anonymous hot path.)
 */
import {
  TAG, childrenOf, contentOf, derError, encodeGeneralizedTime, encodeOid, expectTag, readTlv, tlv, tlvOfList, type Tlv
} from './asn1/index.js';
import { CRL_REASON_CODES, type CrlReason } from './reasons.js';

const { SEQUENCE: SEQ, INTEGER: INT, OCTET_STRING: OCTETS, OID, ENUMERATED } = TAG;
const ZERO = Buffer.of(0);
const EMPTY = Buffer.alloc(0);
/** The largest OCSPRequest read; a request for 10 CertIDs with a nonce is well under 1 KB. */
const MAX_OCSP_REQUEST_BYTES = 65_536;
const NONCE_OID = encodeOid('1.3.6.1.5.5.7.48.1.2');
const BASIC_RESPONSE_OID = encodeOid('1.3.6.1.5.5.7.48.1.1');
/** CertID hash algorithms (node:crypto names), keyed by the hex of the OID's content octets. */
const CERT_ID_HASHES = new Map(
  [['1.3.14.3.2.26', 'sha1'], ['2.16.840.1.101.3.4.2.1', 'sha256'], ['2.16.840.1.101.3.4.2.2', 'sha384'], ['2.16.840.1.101.3.4.2.3', 'sha512']].map(
    ([dotted, hash]) => [encodeOid(dotted!).subarray(2).toString('hex'), hash!] as const,
  ),
);

/** The hash algorithms (node:crypto names) a CertID may use here. */
export const OCSP_CERT_ID_HASHES: readonly string[] = [...CERT_ID_HASHES.values()];

/** One CertID of a request. */
export interface OcspCertId {
  /** The CertID exactly as sent: echoed in the response so any client's comparison succeeds. */
  readonly raw: Buffer;
  /** node:crypto name of its hash, or undefined for one not in {@link OCSP_CERT_ID_HASHES}. */
  readonly hash: string | undefined;
  readonly nameHash: Buffer;
  readonly keyHash: Buffer;
  /** The serialNumber INTEGER's content octets (non-empty). */
  readonly serial: Buffer;
}

const contentBytes = (b: Buffer, t: Tlv) => b.subarray(t.contentStart, t.end);

/**
 * Reads an OCSPRequest (RFC 6960 §4.1.1). A signature on the request is tolerated, not checked.
 * Sync; throws `derError` for anything but a well-formed v1 request of 1 to `maxCertIds` CertIDs
 * within {@link MAX_OCSP_REQUEST_BYTES}, with at most one nonce of 1 to 128 octets (RFC 9654).
 */
export function parseOcspRequest(input: Uint8Array, maxCertIds: number): { certIds: OcspCertId[]; nonce?: Buffer } {
  if (input.length > MAX_OCSP_REQUEST_BYTES) throw derError('OCSP request too large');
  const b = Buffer.from(input.buffer, input.byteOffset, input.byteLength); // a view, not a copy
  const top = expectTag(readTlv(b, 0, b.length), SEQ, 'OCSPRequest');
  if (top.end !== b.length) throw derError('trailing bytes after OCSPRequest');
  const [tbsTlv, signature] = childrenOf(b, top, 2);
  if (signature !== undefined && signature.tag !== 0xa0) throw derError('OCSPRequest optionalSignature');
  const fields = childrenOf(b, expectTag(tbsTlv, SEQ, 'TBSRequest'), 4);
  let i = 0;
  if (fields[i]?.tag === 0xa0) {
    const version = expectTag(childrenOf(b, fields[i++]!, 1)[0], INT, 'OCSP version');
    if (version.end - version.contentStart !== 1 || b[version.contentStart] !== 0) throw derError('OCSP version is not v1');
  }
  if (fields[i]?.tag === 0xa1) i++; // requestorName: informational
  const list = childrenOf(b, expectTag(fields[i++], SEQ, 'requestList'), maxCertIds);
  let nonce: Buffer | undefined;
  if (fields[i]?.tag === 0xa2) nonce = findNonce(b, expectTag(childrenOf(b, fields[i++]!, 1)[0], SEQ, 'requestExtensions'));
  if (i !== fields.length || list.length === 0) throw derError('TBSRequest fields');
  const certIds = list.map((request) => {
    const [certId, extensions] = childrenOf(b, expectTag(request, SEQ, 'Request'), 2);
    if (extensions !== undefined && extensions.tag !== 0xa0) throw derError('singleRequestExtensions');
    const id = expectTag(certId, SEQ, 'CertID');
    const [alg, nameHash, keyHash, serial] = childrenOf(b, id, 4);
    const algOid = expectTag(childrenOf(b, expectTag(alg, SEQ, 'hashAlgorithm'), 2)[0], OID, 'hashAlgorithm OID');
    const serialTlv = expectTag(serial, INT, 'serialNumber');
    if (serialTlv.end === serialTlv.contentStart) throw derError('empty serialNumber');
    return {
      raw: b.subarray(id.start, id.end),
      hash: CERT_ID_HASHES.get(contentBytes(b, algOid).toString('hex')),
      nameHash: contentBytes(b, expectTag(nameHash, OCTETS, 'issuerNameHash')),
      keyHash: contentBytes(b, expectTag(keyHash, OCTETS, 'issuerKeyHash')),
      serial: contentBytes(b, serialTlv),
    };
  });
  return nonce === undefined ? { certIds } : { certIds, nonce };
}

/** The nonce extension's extnValue content, echoed verbatim; RFC 9654 caps the nonce at 128 octets. */
function findNonce(b: Buffer, extensions: Tlv): Buffer | undefined {
  let nonce: Buffer | undefined;
  for (const ext of childrenOf(b, extensions, 16)) {
    const parts = childrenOf(b, expectTag(ext, SEQ, 'Extension'), 3);
    const id = expectTag(parts[0], OID, 'extnID');
    const value = expectTag(parts[parts.length - 1], OCTETS, 'extnValue');
    if (!NONCE_OID.equals(b.subarray(id.start, id.end))) continue;
    if (nonce !== undefined) throw derError('two nonces');
    nonce = contentBytes(b, value);
    let inner = nonce.length; // RFC 9654: an OCTET STRING inside; old clients put the raw bytes
    try {
      const t = readTlv(nonce, 0, nonce.length);
      if (t.tag === OCTETS && t.end === nonce.length) inner = contentOf(nonce, t).length;
    } catch {
      // raw legacy nonce
    }
    if (inner === 0 || inner > 128) throw derError('nonce length');
  }
  return nonce;
}

/** An unsigned OCSPResponse with only a status: 1 malformedRequest, 2 internalError, 6 unauthorized. */
export function encodeOcspStatusOnly(code: 1 | 2 | 6): Buffer {
  return tlv(SEQ, tlv(ENUMERATED, Buffer.of(code)));
}

/** The certStatus of a SingleResponse: good, unknown, or revoked at a time with a reason. */
export type OcspCertStatus = { status: 'good' } | { status: 'unknown' } | { status: 'revoked'; revokedAt: Date; reason: CrlReason };

const GOOD = Buffer.of(0x80, 0x00);
const UNKNOWN = Buffer.of(0x82, 0x00);

function encodeCertStatus(s: OcspCertStatus): Buffer {
  if (s.status === 'good') return GOOD;
  if (s.status !== 'revoked') return UNKNOWN;
  const code = CRL_REASON_CODES[s.reason] as number | undefined;
  // As in the CRL, 'unspecified' is left out rather than encoded (RFC 5280 §5.3.1).
  const reason = code === undefined || code === 0 ? EMPTY : tlv(0xa0, tlv(ENUMERATED, Buffer.of(code)));
  return tlv(0xa1, encodeGeneralizedTime(s.revokedAt.getTime()), reason);
}

/** The times of a response: thisUpdate (also producedAt) and nextUpdate, encoded once per second. */
export interface OcspTimes {
  readonly thisUpdate: Buffer;
  readonly nextUpdate: Buffer;
}

/** Encodes thisUpdate and nextUpdate (whole seconds). Sync; throws RangeError for an invalid time. */
export function encodeOcspTimes(thisUpdateMs: number, nextUpdateMs: number): OcspTimes {
  return { thisUpdate: encodeGeneralizedTime(thisUpdateMs), nextUpdate: tlv(0xa0, encodeGeneralizedTime(nextUpdateMs)) };
}

/** ResponderID byKey: the SHA-1 of the signer's public-key bits, given as `keyHash`. */
export function encodeResponderIdByKey(keyHash: Uint8Array): Buffer {
  return tlv(0xa2, tlv(OCTETS, keyHash));
}

/** The DER ResponseData (what is signed) answering `certIds` with `statuses`, echoing the nonce if any. */
export function encodeOcspResponseData(
  responderId: Buffer,
  times: OcspTimes,
  certIds: readonly OcspCertId[],
  statuses: readonly OcspCertStatus[],
  nonce: Buffer | undefined,
): Buffer {
  const singles = certIds.map((id, k) => tlv(SEQ, id.raw, encodeCertStatus(statuses[k]!), times.thisUpdate, times.nextUpdate));
  const extensions = nonce === undefined ? EMPTY : tlv(0xa1, tlv(SEQ, tlv(SEQ, NONCE_OID, tlv(OCTETS, nonce))));
  return tlv(SEQ, responderId, times.thisUpdate, tlvOfList(SEQ, singles), extensions);
}

/**
 * The successful OCSPResponse around a signed ResponseData: `algorithmId` is the signature's
 * AlgorithmIdentifier DER, `signature` its value as X.509 carries it, `signerCertificate` the
 * delegated signer's DER (omitted when the issuer signs: clients already hold it).
 */
export function encodeOcspResponse(tbs: Buffer, algorithmId: Buffer, signature: Uint8Array, signerCertificate: Uint8Array | undefined): Buffer {
  const certs = signerCertificate === undefined ? EMPTY : tlv(0xa0, tlv(SEQ, signerCertificate));
  const basic = tlv(SEQ, tbs, algorithmId, tlv(TAG.BIT_STRING, ZERO, signature), certs);
  return tlv(SEQ, tlv(ENUMERATED, ZERO), tlv(0xa0, tlv(SEQ, BASIC_RESPONSE_OID, tlv(OCTETS, basic))));
}

/** The AlgorithmIdentifier DER of a signature OID (with a NULL parameter for RSA PKCS#1 v1.5). */
export function encodeSignatureAlgorithmId(dottedOid: string, nullParameters: boolean): Buffer {
  return nullParameters ? tlv(SEQ, encodeOid(dottedOid), Buffer.of(TAG.NULL, 0)) : tlv(SEQ, encodeOid(dottedOid));
}
