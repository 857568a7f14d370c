/**
 * The device CA's RFC 6960 OCSP responder: DER OCSPRequest in, signed DER OCSPResponse out.
 *
 * Built for a hot, unauthenticated path: the request is walked once by a strict DER reader
 * (ocsp-der.ts says why not pkijs), and the response is assembled from pieces computed at start
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
import { CRL_REASON_CODES, type CrlReason, type SigningIdentity } from '../pki/index.js';
import type { CertStatus } from './enroll-service.js';
import {
  DER_ERROR,
  TAG,
  certificateParts,
  children,
  ecdsaSignatureToDer,
  encodeGeneralizedTime,
  encodeOid,
  expectTag,
  readTlv,
  tlv,
  type Tlv,
} from './ocsp-der.js';

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

const { SEQUENCE: SEQ, INTEGER: INT, OCTET_STRING: OCTETS, OID, ENUMERATED } = TAG;
const ZERO = Buffer.of(0);
const EMPTY = Buffer.alloc(0);
const MAX_REQUEST_BYTES = 65_536;
const NONCE_OID = encodeOid('1.3.6.1.5.5.7.48.1.2');
const BASIC_RESPONSE_OID = encodeOid('1.3.6.1.5.5.7.48.1.1');
const OCSP_SIGNING_EKU = '1.3.6.1.5.5.7.3.9';
/** CertID hash algorithms, keyed by the hex of the OID's content octets. */
const CERT_ID_HASHES = new Map(
  [['1.3.14.3.2.26', 'sha1'], ['2.16.840.1.101.3.4.2.1', 'sha256'], ['2.16.840.1.101.3.4.2.2', 'sha384'], ['2.16.840.1.101.3.4.2.3', 'sha512']].map(
    ([dotted, hash]) => [encodeOid(dotted!).subarray(2).toString('hex'), hash!] as const,
  ),
);
const statusOnly = (code: number) => tlv(SEQ, tlv(ENUMERATED, Buffer.of(code)));
const MALFORMED = statusOnly(1);
const INTERNAL_ERROR = statusOnly(2);
const UNAUTHORIZED = statusOnly(6);
const SUCCESSFUL = tlv(ENUMERATED, ZERO);
const GOOD = Buffer.of(0x80, 0x00);
const UNKNOWN = Buffer.of(0x82, 0x00);

const bytesOf = (b: Buffer, t: Tlv) => b.subarray(t.body, t.end);

interface CertId {
  /** The CertID exactly as sent: echoed in the response so any client's comparison succeeds. */
  readonly raw: Buffer;
  readonly hashOid: string;
  readonly nameHash: Buffer;
  readonly keyHash: Buffer;
  readonly serial: Buffer;
}

/** Reads an OCSPRequest (RFC 6960 §4.1.1). A signature on the request is tolerated, not checked. */
function parseRequest(input: Uint8Array, maxCertIds: number): { certIds: CertId[]; nonce?: Buffer } {
  if (input.length > MAX_REQUEST_BYTES) throw DER_ERROR;
  const b = Buffer.from(input.buffer, input.byteOffset, input.byteLength); // a view, not a copy
  const top = expectTag(readTlv(b, 0, b.length), SEQ);
  if (top.end !== b.length) throw DER_ERROR;
  const [tbsTlv, signature] = children(b, top, 2);
  if (signature !== undefined && signature.tag !== 0xa0) throw DER_ERROR;
  const fields = children(b, expectTag(tbsTlv, SEQ), 4);
  let i = 0;
  if (fields[i]?.tag === 0xa0) {
    const version = expectTag(children(b, fields[i++]!, 1)[0], INT);
    if (version.end - version.body !== 1 || b[version.body] !== 0) throw DER_ERROR; // v1 only
  }
  if (fields[i]?.tag === 0xa1) i++; // requestorName: informational
  const list = children(b, expectTag(fields[i++], SEQ), maxCertIds);
  let nonce: Buffer | undefined;
  if (fields[i]?.tag === 0xa2) nonce = findNonce(b, expectTag(children(b, fields[i++]!, 1)[0], SEQ));
  if (i !== fields.length || list.length === 0) throw DER_ERROR;
  const certIds = list.map((request) => {
    const [certId, extensions] = children(b, expectTag(request, SEQ), 2);
    if (extensions !== undefined && extensions.tag !== 0xa0) throw DER_ERROR;
    const id = expectTag(certId, SEQ);
    const [alg, nameHash, keyHash, serial] = children(b, id, 4);
    const algOid = expectTag(children(b, expectTag(alg, SEQ), 2)[0], OID);
    const serialTlv = expectTag(serial, INT);
    if (serialTlv.end === serialTlv.body) throw DER_ERROR;
    return {
      raw: b.subarray(id.start, id.end),
      hashOid: bytesOf(b, algOid).toString('hex'),
      nameHash: bytesOf(b, expectTag(nameHash, OCTETS)),
      keyHash: bytesOf(b, expectTag(keyHash, OCTETS)),
      serial: bytesOf(b, serialTlv),
    };
  });
  return nonce === undefined ? { certIds } : { certIds, nonce };
}

/** The nonce extension's extnValue content, echoed verbatim; RFC 9654 caps the nonce at 128 octets. */
function findNonce(b: Buffer, extensions: Tlv): Buffer | undefined {
  let nonce: Buffer | undefined;
  for (const ext of children(b, extensions, 16)) {
    const parts = children(b, expectTag(ext, SEQ), 3);
    const id = expectTag(parts[0], OID);
    const value = expectTag(parts[parts.length - 1], OCTETS);
    if (!NONCE_OID.equals(b.subarray(id.start, id.end))) continue;
    if (nonce !== undefined) throw DER_ERROR;
    nonce = bytesOf(b, value);
    let inner = nonce.length; // RFC 9654: an OCTET STRING inside; old clients put the raw bytes
    try {
      const t = readTlv(nonce, 0, nonce.length);
      if (t.tag === OCTETS && t.end === nonce.length) inner = t.end - t.body;
    } catch {
      // raw legacy nonce
    }
    if (inner === 0 || inner > 128) throw DER_ERROR;
  }
  return nonce;
}

function configError(message: string, cause?: unknown): SidecarError {
  return new SidecarError('ERR_PKI', 'ocsp-signer', message, cause === undefined ? undefined : { cause });
}

interface SignaturePlan {
  readonly algId: Buffer;
  readonly params: webcrypto.AlgorithmIdentifier | webcrypto.EcdsaParams;
  /** ECDSA coordinate size: WebCrypto returns r||s, X.509 wants SEQUENCE { r, s }. */
  readonly ecSize?: number;
}

function signaturePlan(signer: SigningIdentity): SignaturePlan {
  const alg = signer.key.algorithm;
  if (alg === 'p256') return { algId: tlv(SEQ, encodeOid('1.2.840.10045.4.3.2')), params: { name: 'ECDSA', hash: 'SHA-256' }, ecSize: 32 };
  if (alg === 'p384') return { algId: tlv(SEQ, encodeOid('1.2.840.10045.4.3.3')), params: { name: 'ECDSA', hash: 'SHA-384' }, ecSize: 48 };
  const hash = (signer.key.keys.privateKey.algorithm as webcrypto.RsaHashedKeyAlgorithm).hash.name;
  const rsaOid = { 'SHA-256': '1.2.840.113549.1.1.11', 'SHA-384': '1.2.840.113549.1.1.12', 'SHA-512': '1.2.840.113549.1.1.13' }[hash];
  if (rsaOid === undefined) throw configError(`unsupported RSA signing hash ${hash}`);
  return { algId: tlv(SEQ, encodeOid(rsaOid), Buffer.of(TAG.NULL, 0)), params: { name: 'RSASSA-PKCS1-v1_5' } };
}

/** Serial INTEGER content → our lookup key, or undefined for serials we cannot have issued. */
function serialHexOf(content: Buffer): string | undefined {
  if (content[0]! & 0x80 || content.length > 21) return undefined; // negative, or over RFC 5280's 20 octets
  let i = 0;
  while (i < content.length - 1 && content[i] === 0) i++;
  return content.toString('hex', i);
}

function certStatusDer(s: CertStatus): Buffer {
  if (s.status === 'good') return GOOD;
  if (s.status !== 'revoked') return UNKNOWN;
  const code = CRL_REASON_CODES[s.reason as CrlReason] as number | undefined;
  // As in the CRL, 'unspecified' is left out rather than encoded (RFC 5280 §5.3.1).
  const reason = code === undefined || code === 0 ? EMPTY : tlv(0xa0, tlv(ENUMERATED, Buffer.of(code)));
  return tlv(0xa1, encodeGeneralizedTime(s.revokedAt.getTime()), reason);
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
    issuer = certificateParts(issuerDer);
    signerKeyBits = certificateParts(signer.der).keyBits;
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
  for (const [oidHex, hash] of CERT_ID_HASHES) {
    issuerHashes.set(oidHex, { nameHash: createHash(hash).update(issuer.subject).digest(), keyHash: createHash(hash).update(issuer.keyBits).digest() });
  }
  const isOurs = (id: CertId) => {
    const h = issuerHashes.get(id.hashOid);
    return h !== undefined && h.nameHash.equals(id.nameHash) && h.keyHash.equals(id.keyHash);
  };
  const responderId = tlv(0xa2, tlv(OCTETS, createHash('sha1').update(signerKeyBits).digest()));
  // The issuer's own certificate is already with every client; only a delegate must travel.
  const certs = delegated ? tlv(0xa0, tlv(SEQ, signer.der)) : EMPTY;
  const plan = signaturePlan(signer);
  const privateKey = signer.key.keys.privateKey;

  // thisUpdate/producedAt and nextUpdate change once a second: encode them once a second.
  let times: { second: number; thisUpdate: Buffer; nextUpdate: Buffer } = { second: NaN, thisUpdate: EMPTY, nextUpdate: EMPTY };
  const timesAt = (ms: number) => {
    const second = Math.floor(ms / 1000);
    if (second !== times.second) {
      times = { second, thisUpdate: encodeGeneralizedTime(second * 1000), nextUpdate: tlv(0xa0, encodeGeneralizedTime(second * 1000 + validityMs)) };
    }
    return times;
  };

  async function sign(tbs: Buffer): Promise<Buffer> {
    const raw = new Uint8Array(await webcrypto.subtle.sign(plan.params, privateKey, tbs));
    return plan.ecSize === undefined ? Buffer.from(raw) : ecdsaSignatureToDer(raw, plan.ecSize);
  }

  return {
    async respond(requestDer) {
      let request: ReturnType<typeof parseRequest>;
      try {
        request = parseRequest(requestDer, maxCertIds);
      } catch {
        return Buffer.from(MALFORMED);
      }
      try {
        const ours = request.certIds.map(isOurs);
        if (!ours.includes(true)) return Buffer.from(UNAUTHORIZED);
        // Another CA's certificate in a mixed request: "unknown", RFC 6960 §2.2.
        const statuses = await Promise.all(
          request.certIds.map((id, k) => {
            const serial = ours[k] ? serialHexOf(id.serial) : undefined;
            return serial === undefined ? ({ status: 'unknown' } as const) : options.lookup(serial);
          }),
        );
        const { thisUpdate, nextUpdate } = timesAt(now().getTime());
        const singles = request.certIds.map((id, k) => tlv(SEQ, id.raw, certStatusDer(statuses[k]!), thisUpdate, nextUpdate));
        const extensions = request.nonce === undefined ? EMPTY : tlv(0xa1, tlv(SEQ, tlv(SEQ, NONCE_OID, tlv(OCTETS, request.nonce))));
        const tbs = tlv(SEQ, responderId, thisUpdate, tlv(SEQ, ...singles), extensions);
        const basic = tlv(SEQ, tbs, plan.algId, tlv(TAG.BIT_STRING, ZERO, await sign(tbs)), certs);
        return tlv(SEQ, SUCCESSFUL, tlv(0xa0, tlv(SEQ, BASIC_RESPONSE_OID, tlv(OCTETS, basic))));
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
