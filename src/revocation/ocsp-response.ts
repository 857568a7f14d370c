/**
 * OCSP response parsing (pkijs) and verification (node:crypto), RFC 6960 §3.2 and §4.2.2.2.
 *
 * A response is believed only if: it is signed by the certificate's issuer, or by a responder
 * certificate that this issuer signed and marked with id-kp-OCSPSigning (and that is valid now);
 * its CertID matches the certificate asked about; thisUpdate is not in the future and nextUpdate
 * not in the past (both with clock-skew tolerance), or, without nextUpdate, thisUpdate is recent
 * (see `maxAgeWithoutNextUpdateMs`); and, when we sent a nonce, it echoes it.
 * The delegated responder's own revocation status is not checked (RFC 6960 §4.2.2.2.1 leaves it
 * to policy; responders usually carry id-pkix-ocsp-nocheck and are short-lived).
 */
import { createHash, X509Certificate } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { SidecarError } from '../errors.js';
import { OID, extendedKeyUsages, parseCertificate, serialKeyOf, type CertFields, type SignatureAlgorithm } from '../pki/index.js';
import type { IssuerInfo } from './issuer-registry.js';
import { CERT_ID_HASHES, OCSP_NONCE_OID } from './ocsp-request.js';
import { verifySignature } from './signature.js';
import type { RevocationStatus } from './types.js';

/** A verified answer about one certificate. */
export interface OcspAnswer {
  readonly status: RevocationStatus;
  readonly thisUpdate: number;
  readonly nextUpdate?: number;
  /** Not to be used (nor cached) after this: nextUpdate, or thisUpdate + maxAgeWithoutNextUpdateMs. */
  readonly validUntil: number;
  readonly signer: 'issuer' | 'delegated';
}

/** What the response must be about, and the checking context. */
export interface OcspExpectation {
  readonly leaf: CertFields;
  readonly issuer: IssuerInfo;
  readonly nonce?: Buffer;
  readonly now: number;
  readonly skewMs: number;
  /**
   * How old (now − thisUpdate, no skew added) an answer without nextUpdate may be. Such an answer
   * says newer information is always available (RFC 6960 §4.2.2.1), so it is worth something only
   * while fresh. Absent: 0, which refuses every such answer whose thisUpdate is past.
   */
  readonly maxAgeWithoutNextUpdateMs?: number;
}

const BASIC_RESPONSE_OID = '1.3.6.1.5.5.7.48.1.1';
const RESPONSE_STATUS = ['successful', 'malformedRequest', 'internalError', 'tryLater', '(4)', 'sigRequired', 'unauthorized'];

/** The error for a response this module does not believe: ERR_REVOCATION_SOURCE, `fault` naming the check that failed. */
function ocspError(fault: string, message: string, cause?: unknown): SidecarError {
  return new SidecarError('ERR_REVOCATION_SOURCE', fault, message, cause === undefined ? undefined : { cause });
}

function decode<T>(bytes: Uint8Array, build: (schema: asn1js.AsnType) => T, what: string): T {
  const parsed = asn1js.fromBER(bytes);
  if (parsed.offset === -1 || parsed.offset !== bytes.byteLength) throw ocspError('ocsp-malformed', `${what} is not valid DER`);
  try {
    return build(parsed.result);
  } catch (err) {
    throw ocspError('ocsp-malformed', `${what} does not match its ASN.1 schema`, err);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

type ResponderId = pkijs.RelativeDistinguishedNames | asn1js.OctetString;

function matchesResponderId(id: ResponderId, cert: CertFields): boolean {
  if (id instanceof pkijs.RelativeDistinguishedNames) return sameBytes(new Uint8Array(id.valueBeforeDecode), cert.subjectName);
  return sameBytes(id.valueBlock.valueHexView, createHash('sha1').update(cert.publicKeyBits).digest());
}

function algorithmOf(alg: pkijs.AlgorithmIdentifier): SignatureAlgorithm {
  const params = alg.algorithmParams as asn1js.BaseBlock | undefined;
  if (params === undefined || params instanceof asn1js.Null) return { oid: alg.algorithmId };
  return { oid: alg.algorithmId, params: new Uint8Array(params.toBER()) };
}

/** Finds the key that may sign for `exp.issuer` and matches the responder ID. */
function authorizedSigners(basic: pkijs.BasicOCSPResponse, exp: OcspExpectation): { kind: OcspAnswer['signer']; cert: X509Certificate }[] {
  const id = basic.tbsResponseData.responderID as ResponderId;
  const out: { kind: OcspAnswer['signer']; cert: X509Certificate }[] = [];
  if (matchesResponderId(id, exp.issuer.fields)) out.push({ kind: 'issuer', cert: exp.issuer.cert });
  for (const embedded of basic.certs ?? []) {
    let cert: X509Certificate;
    let fields: CertFields;
    try {
      const der = Buffer.from(embedded.toSchema().toBER());
      cert = new X509Certificate(der);
      fields = parseCertificate(der);
    } catch {
      continue;
    }
    if (!matchesResponderId(id, fields)) continue;
    if (sameBytes(fields.publicKeyBits, exp.issuer.fields.publicKeyBits)) continue; // the issuer itself
    // Delegation: issued by this very issuer, marked for OCSP signing, valid now.
    if (!cert.checkIssued(exp.issuer.cert) || !cert.verify(exp.issuer.publicKey)) continue;
    if (!(extendedKeyUsages(fields) ?? []).includes(OID.kpOcspSigning)) continue;
    if (exp.now + exp.skewMs < fields.notBefore || exp.now - exp.skewMs > fields.notAfter) continue;
    out.push({ kind: 'delegated', cert });
  }
  return out;
}

function matchesCertId(single: pkijs.SingleResponse, exp: OcspExpectation): boolean {
  const id = single.certID;
  const hash = CERT_ID_HASHES[id.hashAlgorithm.algorithmId];
  if (hash === undefined) return false;
  return (
    serialKeyOf(id.serialNumber.valueBlock.valueHexView) === exp.leaf.serialKey &&
    sameBytes(id.issuerNameHash.valueBlock.valueHexView, createHash(hash).update(exp.issuer.fields.subjectName).digest()) &&
    sameBytes(id.issuerKeyHash.valueBlock.valueHexView, createHash(hash).update(exp.issuer.fields.publicKeyBits).digest())
  );
}

function checkNonce(basic: pkijs.BasicOCSPResponse, nonce: Buffer): void {
  const ext = basic.tbsResponseData.responseExtensions?.find((e) => e.extnID === OCSP_NONCE_OID);
  if (ext === undefined) throw ocspError('ocsp-nonce', 'response does not echo our nonce');
  const value = ext.extnValue.valueBlock.valueHexView;
  // RFC 8954 wraps the nonce in an OCTET STRING; some old responders put it raw.
  const wrapped = Buffer.from(new asn1js.OctetString({ valueHex: nonce }).toBER());
  if (!sameBytes(value, nonce) && !sameBytes(value, wrapped)) throw ocspError('ocsp-nonce', 'response nonce differs from ours');
}

function statusOf(single: pkijs.SingleResponse): RevocationStatus {
  const tag = (single.certStatus as asn1js.BaseBlock).idBlock;
  if (tag.tagClass === 3 && tag.tagNumber === 0) return 'good';
  if (tag.tagClass === 3 && tag.tagNumber === 1) return 'revoked';
  if (tag.tagClass === 3 && tag.tagNumber === 2) return 'unknown';
  throw ocspError('ocsp-malformed', 'unrecognised certStatus');
}

/**
 * Parses and verifies a DER OCSPResponse for `exp.leaf`. Async; rejects with `SidecarError`
 * (code ERR_REVOCATION_SOURCE) whose `fault` names the failure: 'ocsp-malformed',
 * 'ocsp-status' (responder said tryLater/unauthorized/…), 'ocsp-signer' (no authorized signer),
 * 'ocsp-signature', 'ocsp-certid', 'ocsp-future', 'ocsp-expired', 'ocsp-stale' (no nextUpdate and
 * thisUpdate too old), 'ocsp-nonce'.
 */
export async function verifyOcspResponse(body: Uint8Array, exp: OcspExpectation): Promise<OcspAnswer> {
  const response = decode(body, (schema) => new pkijs.OCSPResponse({ schema }), 'OCSPResponse');
  const status = response.responseStatus.valueBlock.valueDec;
  if (status !== 0) throw ocspError('ocsp-status', `responder answered ${RESPONSE_STATUS[status] ?? status}`);
  const bytes = response.responseBytes;
  if (bytes === undefined || bytes.responseType !== BASIC_RESPONSE_OID) throw ocspError('ocsp-malformed', 'not a basic OCSP response');
  const basic = decode(bytes.response.valueBlock.valueHexView, (schema) => new pkijs.BasicOCSPResponse({ schema }), 'BasicOCSPResponse');

  const signers = authorizedSigners(basic, exp);
  if (signers.length === 0) throw ocspError('ocsp-signer', 'response not signed by the issuer or a responder it delegated to');
  const alg = algorithmOf(basic.signatureAlgorithm);
  const signature = basic.signature.valueBlock.valueHexView;
  let signer: OcspAnswer['signer'] | undefined;
  let why = '';
  for (const candidate of signers) {
    const verdict = await verifySignature(alg, basic.tbsResponseData.tbsView, signature, candidate.cert.publicKey);
    if (verdict.ok) {
      signer = candidate.kind;
      break;
    }
    why = verdict.reason;
  }
  if (signer === undefined) throw ocspError('ocsp-signature', `response signature invalid: ${why}`);

  const single = basic.tbsResponseData.responses.find((r) => matchesCertId(r, exp));
  if (single === undefined) throw ocspError('ocsp-certid', 'response is about another certificate (CertID mismatch)');
  const thisUpdate = single.thisUpdate.getTime();
  const nextUpdate = single.nextUpdate?.getTime();
  if (thisUpdate > exp.now + exp.skewMs) throw ocspError('ocsp-future', `thisUpdate ${single.thisUpdate.toISOString()} is in the future`);
  if (nextUpdate !== undefined && nextUpdate < exp.now - exp.skewMs) {
    throw ocspError('ocsp-expired', `nextUpdate ${new Date(nextUpdate).toISOString()} has passed`);
  }
  let validUntil = nextUpdate;
  if (validUntil === undefined) {
    const maxAge = exp.maxAgeWithoutNextUpdateMs ?? 0;
    validUntil = thisUpdate + maxAge;
    if (validUntil < exp.now) {
      throw ocspError('ocsp-stale', `no nextUpdate, and thisUpdate ${single.thisUpdate.toISOString()} is more than ${maxAge / 1000} s old`);
    }
  }
  if (exp.nonce !== undefined) checkNonce(basic, exp.nonce);
  const answer = { status: statusOf(single), thisUpdate, validUntil, signer };
  return nextUpdate === undefined ? answer : { ...answer, nextUpdate };
}
