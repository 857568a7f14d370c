/**
 * The device CA's RFC 6960 OCSP responder: DER OCSPRequest in, signed DER OCSPResponse out.
 *
 * Built for a hot, unauthenticated path: the request is walked once by pki/'s strict DER reader
 * (pki/asn1/reader.ts says why not pkijs), and the response is assembled from pieces computed at start
 * (issuer hashes for every accepted CertID hash, responderID, signature AlgorithmIdentifier, the
 * encoded signer certificate); per request there are the lookups and one WebCrypto signature with
 * the key imported once.
 *
 * Hostile input is answered, never thrown: anything that is not a well-formed request is
 * malformedRequest, a request about no certificate of our issuer is unauthorized (RFC 5019 §2.2.3:
 * we never sign "unknown" for the whole world), and a failing lookup is internalError.
 */
import { createHash, createPublicKey, KeyObject, webcrypto, X509Certificate } from 'node:crypto';
import { SidecarError } from '../errors.js';
import {
  OCSP_CERT_ID_HASHES, caSerialHexOf, ecdsaSignatureToDer, encodeOcspResponse, encodeOcspResponseData,
  encodeOcspStatusOnly, encodeOcspTimes, encodeResponderIdByKey, encodeSignatureAlgorithmId, parseCertificate,
  parseOcspRequest, type OcspCertId, type OcspTimes, type SigningIdentity
} from '../pki/index.js';
import type { CertStatus } from './enroll-service.js';

/** What the responder needs. */
export interface OcspResponderOptions {
  /** The issuing CA this responder speaks for: its certificate as DER, or an @peculiar/x509 `X509Certificate` (anything with `rawData`). */
  readonly issuer: Uint8Array | { readonly rawData: ArrayBuffer };
  /** Signs responses: a delegated signer (issued by `issuer`, EKU id-kp-OCSPSigning), or the issuer itself. */
  readonly signer: SigningIdentity;
  /** Status of one of our serials (lower-case hex, no leading 00). A rejection becomes internalError. */
  readonly lookup: (serialHex: string) => Promise<CertStatus>;
  /** nextUpdate = thisUpdate + this (> 0). */
  readonly validitySeconds: number;
  readonly now?: () => Date;
  /** Most CertIDs one request may carry (default 10); more is malformedRequest. */
  readonly maxCertIds?: number;
  /** Told of every failure answered with internalError (a lookup or signing error). Must not throw. */
  readonly onError?: (err: unknown) => void;
}

/** A responder; between requests it keeps only the encoded times of the current second. */
export interface OcspResponder {
  /**
   * Answers one DER OCSPRequest with a DER OCSPResponse. Async; never rejects: failures are
   * answered with an unsigned status (malformedRequest, unauthorized, internalError).
   */
  respond(requestDer: Uint8Array): Promise<Buffer>;
}

const MALFORMED = encodeOcspStatusOnly(1);
const INTERNAL_ERROR = encodeOcspStatusOnly(2);
const UNAUTHORIZED = encodeOcspStatusOnly(6);
const OCSP_SIGNING_EKU = '1.3.6.1.5.5.7.3.9';

function configError(message: string, cause?: unknown): SidecarError {
  return new SidecarError('ERR_PKI', 'ocsp-signer', message, cause === undefined ? undefined : { cause });
}

interface SignaturePlan {
  /** The AlgorithmIdentifier DER. */
  readonly algId: Buffer;
  readonly params: webcrypto.AlgorithmIdentifier | webcrypto.EcdsaParams;
  /** ECDSA coordinate size: WebCrypto returns r||s, X.509 wants SEQUENCE { r, s }. */
  readonly ecSize?: number;
}

function signaturePlan(signer: SigningIdentity): SignaturePlan {
  const alg = signer.key.algorithm;
  if (alg === 'p256') return { algId: encodeSignatureAlgorithmId('1.2.840.10045.4.3.2', false), params: { name: 'ECDSA', hash: 'SHA-256' }, ecSize: 32 };
  if (alg === 'p384') return { algId: encodeSignatureAlgorithmId('1.2.840.10045.4.3.3', false), params: { name: 'ECDSA', hash: 'SHA-384' }, ecSize: 48 };
  const hash = (signer.key.keys.privateKey.algorithm as webcrypto.RsaHashedKeyAlgorithm).hash.name;
  const rsaOid = { 'SHA-256': '1.2.840.113549.1.1.11', 'SHA-384': '1.2.840.113549.1.1.12', 'SHA-512': '1.2.840.113549.1.1.13' }[hash];
  if (rsaOid === undefined) throw configError(`unsupported RSA signing hash ${hash}`);
  return { algId: encodeSignatureAlgorithmId(rsaOid, true), params: { name: 'RSASSA-PKCS1-v1_5' } };
}

/**
 * Builds a responder. Sync; throws `SidecarError` ERR_PKI (fault 'ocsp-signer') if a certificate
 * cannot be parsed, the signer's key does not match its certificate, or the signer is neither the
 * issuer nor a certificate the issuer signed with EKU id-kp-OCSPSigning: such a responder's every
 * answer would be refused by clients, so it is refused at start instead.
 */
export function createOcspResponder(options: OcspResponderOptions): OcspResponder {
  const now = options.now ?? (() => new Date());
  const maxCertIds = options.maxCertIds ?? 10;
  if (!(options.validitySeconds > 0)) throw new RangeError('validitySeconds must be positive');
  const validityMs = options.validitySeconds * 1000;
  const issuerDer = Buffer.from('rawData' in options.issuer ? new Uint8Array(options.issuer.rawData) : options.issuer);
  const signer = options.signer;
  let issuer: { subject: Uint8Array; keyBits: Uint8Array };
  let signerKeyBits: Uint8Array;
  try {
    const fields = parseCertificate(issuerDer);
    issuer = { subject: fields.subjectName, keyBits: fields.publicKeyBits };
    signerKeyBits = parseCertificate(Buffer.from(signer.der)).publicKeyBits;
  } catch (err) {
    throw configError('the OCSP issuer or signer certificate is not DER X.509', err);
  }
  const signerCert = new X509Certificate(signer.der);
  const spki = (k: KeyObject) => k.export({ type: 'spki', format: 'der' });
  if (!spki(createPublicKey(KeyObject.from(signer.key.keys.privateKey))).equals(spki(signerCert.publicKey))) {
    throw configError("the OCSP signer's private key does not match its certificate");
  }
  const delegated = !Buffer.from(signerKeyBits).equals(issuer.keyBits);
  if (delegated) {
    const issuerCert = new X509Certificate(issuerDer);
    if (!signerCert.checkIssued(issuerCert) || !signerCert.verify(issuerCert.publicKey)) {
      throw configError(`the OCSP signer ${signerCert.subject} is not issued by ${issuerCert.subject}`);
    }
    if (!(signerCert.keyUsage ?? []).includes(OCSP_SIGNING_EKU)) throw configError(`the OCSP signer ${signerCert.subject} lacks EKU id-kp-OCSPSigning`);
  }

  const issuerHashes = new Map<string, { nameHash: Buffer; keyHash: Buffer }>();
  for (const hash of OCSP_CERT_ID_HASHES) {
    issuerHashes.set(hash, { nameHash: createHash(hash).update(issuer.subject).digest(), keyHash: createHash(hash).update(issuer.keyBits).digest() });
  }
  const isOurs = (id: OcspCertId) => {
    const h = id.hash === undefined ? undefined : issuerHashes.get(id.hash);
    return h !== undefined && h.nameHash.equals(id.nameHash) && h.keyHash.equals(id.keyHash);
  };
  const responderId = encodeResponderIdByKey(createHash('sha1').update(signerKeyBits).digest());
  // The issuer's own certificate is already with every client; only a delegate must travel.
  const signerCertificate = delegated ? signer.der : undefined;
  const plan = signaturePlan(signer);
  const privateKey = signer.key.keys.privateKey;

  // thisUpdate/producedAt and nextUpdate change once a second: encode them once a second.
  let second = NaN;
  let times: OcspTimes | undefined;
  const timesAt = (ms: number): OcspTimes => {
    const s = Math.floor(ms / 1000);
    if (s !== second || times === undefined) {
      times = encodeOcspTimes(s * 1000, s * 1000 + validityMs);
      second = s;
    }
    return times;
  };

  async function sign(tbs: Buffer): Promise<Buffer> {
    const raw = new Uint8Array(await webcrypto.subtle.sign(plan.params, privateKey, tbs));
    return plan.ecSize === undefined ? Buffer.from(raw) : ecdsaSignatureToDer(raw, plan.ecSize);
  }

  return {
    async respond(requestDer) {
      let request: ReturnType<typeof parseOcspRequest>;
      try {
        request = parseOcspRequest(requestDer, maxCertIds);
      } catch {
        return Buffer.from(MALFORMED);
      }
      try {
        const ours = request.certIds.map(isOurs);
        if (!ours.includes(true)) return Buffer.from(UNAUTHORIZED);
        // Another CA's certificate in a mixed request: "unknown", RFC 6960 §2.2.
        const statuses = await Promise.all(
          request.certIds.map((id, k) => {
            const serial = ours[k] ? caSerialHexOf(id.serial) : undefined;
            return serial === undefined ? ({ status: 'unknown' } as const) : options.lookup(serial);
          }),
        );
        const tbs = encodeOcspResponseData(responderId, timesAt(now().getTime()), request.certIds, statuses, request.nonce);
        return encodeOcspResponse(tbs, plan.algId, await sign(tbs), signerCertificate);
      } catch (err) {
        try {
          options.onError?.(err);
        } catch {
          // an observer's failure must not turn an answer into a rejection
        }
        return Buffer.from(INTERNAL_ERROR);
      }
    },
  };
}
