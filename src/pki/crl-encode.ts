/**
 * CRL encoding for the device CA (RFC 5280 §5), with the shared DER writer.
 */
import { KeyObject, sign as signWithKey } from 'node:crypto';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { promisify } from 'node:util';
import { encodeCertificateTime, encodeOid, encodeUnsignedInteger, serialContentOfHex, tlv, tlvOfList } from './asn1/index.js';
import { toPem, type GeneratedKey, type IssuedCertificate, type KeyAlgorithm } from './issue.js';
import { loadPeculiarX509 } from './peculiar.js';
import { CRL_REASON_CODES, type CrlReason } from './reasons.js';

const CRL_NUMBER_OID = '2.5.29.20';

/** What a CRL lists. */
export interface CrlSpec {
  readonly issuer: IssuedCertificate & { readonly key: GeneratedKey };
  /**
   * Revoked certificates. `reason` becomes the CRLReason entry extension; 'unspecified' and
   * omitted both leave it out (RFC 5280 §5.3.1: unspecified SHOULD NOT be encoded).
   */
  readonly revoked?: ReadonlyArray<{ readonly serialHex: string; readonly revokedAt?: Date; readonly reason?: CrlReason }>;
  readonly thisUpdate?: Date;
  readonly nextUpdate: Date;
  /** The CRL Number extension (non-critical; 0 to 2^159-1); omitted when undefined. */
  readonly crlNumber?: bigint;
}

/**
 * Signs a CRL (v2, with the issuer's key identifier and, if given, its CRL number). Async; rejects
 * if it cannot be signed, with a RangeError for a CRL number out of range, or an Error for a serial
 * listed twice. The issuer Name is the CA certificate's subject, byte for byte.
 */
export async function issueCrl(spec: CrlSpec): Promise<{ readonly pem: string; readonly der: Buffer }> {
  const x509 = await loadPeculiarX509();
  const { algorithm, keys } = spec.issuer.key;
  const aki = await x509.AuthorityKeyIdentifierExtension.create(keys.publicKey, false);
  const extensions = [new Uint8Array(aki.rawData)];
  if (spec.crlNumber !== undefined) extensions.push(new Uint8Array(new x509.Extension(CRL_NUMBER_OID, false, derInteger(spec.crlNumber)).rawData));
  const fallbackDate = new Date(Date.now() - 60_000);
  const seen = new Set<string>();
  const entries: Buffer[] = [];
  for (const r of spec.revoked ?? []) {
    const serial = serialContentOfHex(r.serialHex);
    const key = serial.toString('hex');
    if (seen.has(key)) throw new Error(`serial ${r.serialHex} is listed twice`);
    seen.add(key);
    const code = r.reason === undefined ? 0 : CRL_REASON_CODES[r.reason];
    const reason = code === 0 ? [] : [tlv(0x30, reasonExtension(code))];
    entries.push(tlv(0x30, tlv(0x02, serial), encodeCertificateTime((r.revokedAt ?? fallbackDate).getTime()), ...reason));
    if (entries.length % 4096 === 0) await yieldToEventLoop(); // ~30 ms slices: the CA keeps answering OCSP meanwhile
  }
  const algId = SIGNATURE_ALGORITHM_IDS[algorithm];
  const tbs = tlv(
    0x30,
    Buffer.of(0x02, 0x01, 0x01), // v2
    algId,
    new Uint8Array(spec.issuer.certificate.subjectName.toArrayBuffer()),
    encodeCertificateTime((spec.thisUpdate ?? fallbackDate).getTime()),
    encodeCertificateTime(spec.nextUpdate.getTime()),
    ...(entries.length ? [tlvOfList(0x30, entries)] : []),
    tlv(0xa0, tlvOfList(0x30, extensions)),
  );
  const hash = algorithm === 'p384' ? 'sha384' : 'sha256'; // as signingAlgorithm() signs certificates
  const signature = await signAsync(hash, tbs, { key: KeyObject.from(keys.privateKey), dsaEncoding: 'der' });
  const crl = tlv(0x30, tbs, algId, tlv(0x03, Buffer.of(0), signature));
  return { pem: toPem('X509 CRL', crl), der: crl };
}

const signAsync = promisify(signWithKey);

/** AlgorithmIdentifier DER of the signature each key type makes (ecdsa-with-SHA256/384, sha256WithRSAEncryption). */
const SHA256_WITH_RSA = Buffer.from('300d06092a864886f70d01010b0500', 'hex');
const SIGNATURE_ALGORITHM_IDS: Readonly<Record<KeyAlgorithm, Buffer>> = {
  p256: Buffer.from('300a06082a8648ce3d040302', 'hex'),
  p384: Buffer.from('300a06082a8648ce3d040303', 'hex'),
  rsa2048: SHA256_WITH_RSA,
  rsa3072: SHA256_WITH_RSA,
};

/** The CRLReason entry extension (non-critical) for a reason code. */
function reasonExtension(code: number): Buffer {
  return tlv(0x30, encodeOid('2.5.29.21'), tlv(0x04, tlv(0x0a, Buffer.of(code))));
}

/** DER INTEGER of a non-negative bigint of at most 20 content octets (RFC 5280 §5.2.3). */
function derInteger(value: bigint): Uint8Array {
  if (value < 0n) throw new RangeError('a CRL number cannot be negative');
  let hex = value.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  const integer = encodeUnsignedInteger(Buffer.from(hex, 'hex'));
  if (integer.length - 2 > 20) throw new RangeError('a CRL number is at most 20 octets');
  return integer;
}
