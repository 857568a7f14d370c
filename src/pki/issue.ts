/**
 * Key generation and certificate issuing with @peculiar/x509 over Node's WebCrypto.
 *
 * Why not node-forge: it cannot handle ECDSA keys, and device keys from the iOS Secure Enclave and
 * Android Keystore are ECDSA P-256. Why not the openssl CLI: the dev PKI and the tests must run
 * in-process, and the enrollment CA will issue from the same code.
 */
import { createPrivateKey, createPublicKey, KeyObject, sign as signWithKey, webcrypto } from 'node:crypto';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { promisify } from 'node:util';
import type * as x509 from '@peculiar/x509';
import { loadPeculiarX509 } from './peculiar.js';

const subtle = webcrypto.subtle;
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
type SignAlgorithm = webcrypto.Algorithm | webcrypto.EcdsaParams;

/** The key types a device or a CA may use. */
export type KeyAlgorithm = 'p256' | 'p384' | 'rsa2048' | 'rsa3072';

/** A generated key pair together with its PKCS#8 PEM (the only form written to disk). */
export interface GeneratedKey {
  readonly algorithm: KeyAlgorithm;
  readonly keys: CryptoKeyPair;
  readonly privateKeyPem: string;
}

const RSA_EXPONENT = new Uint8Array([1, 0, 1]);

function keyParams(algorithm: KeyAlgorithm): webcrypto.RsaHashedKeyGenParams | webcrypto.EcKeyGenParams {
  switch (algorithm) {
    case 'p256':
      return { name: 'ECDSA', namedCurve: 'P-256' };
    case 'p384':
      return { name: 'ECDSA', namedCurve: 'P-384' };
    case 'rsa2048':
      return { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: RSA_EXPONENT, hash: 'SHA-256' };
    case 'rsa3072':
      return { name: 'RSASSA-PKCS1-v1_5', modulusLength: 3072, publicExponent: RSA_EXPONENT, hash: 'SHA-256' };
  }
}

/** The signature algorithm a key of this type signs certificates with. */
function signingAlgorithm(algorithm: KeyAlgorithm): SignAlgorithm {
  if (algorithm === 'p384') return { name: 'ECDSA', hash: 'SHA-384' } as webcrypto.EcdsaParams;
  if (algorithm === 'p256') return { name: 'ECDSA', hash: 'SHA-256' } as webcrypto.EcdsaParams;
  return { name: 'RSASSA-PKCS1-v1_5' };
}

/** Generates an extractable key pair. Async; rejects only if WebCrypto fails. */
export async function generateKey(algorithm: KeyAlgorithm): Promise<GeneratedKey> {
  const keys = (await subtle.generateKey(keyParams(algorithm), true, ['sign', 'verify'])) as CryptoKeyPair;
  const pkcs8 = Buffer.from(await subtle.exportKey('pkcs8', keys.privateKey));
  return { algorithm, keys, privateKeyPem: toPem('PRIVATE KEY', pkcs8) };
}

/** Wraps DER in a PEM block with 64-column lines. */
export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Extended key usages by name, so callers need not know OIDs. */
export type ExtendedKeyUsageName = 'serverAuth' | 'clientAuth' | 'ocspSigning' | 'codeSigning';

const EKU_OID: Record<ExtendedKeyUsageName, string> = {
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  codeSigning: '1.3.6.1.5.5.7.3.3',
  ocspSigning: '1.3.6.1.5.5.7.3.9',
};

/** What to put in a certificate. Omitted issuer means self-signed. */
export interface CertificateSpec {
  /** RFC 4514 string, e.g. `CN=Device 42,O=Example`. */
  readonly subject: string;
  readonly key: GeneratedKey | { readonly algorithm: KeyAlgorithm; readonly publicKey: CryptoKey };
  readonly issuer?: IssuedCertificate & { readonly key: GeneratedKey };
  /** Hex serial; random 128-bit positive when omitted. */
  readonly serialHex?: string;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  readonly isCa?: boolean;
  readonly pathLength?: number;
  readonly extendedKeyUsage?: readonly ExtendedKeyUsageName[];
  readonly san?: { readonly dns?: readonly string[]; readonly ip?: readonly string[]; readonly uri?: readonly string[]; readonly email?: readonly string[] };
  readonly crlDistributionPoints?: readonly string[];
  readonly ocspUrls?: readonly string[];
  /**
   * Adds id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1, non-critical): clients need not check the
   * revocation of this (delegated OCSP signer) certificate. Meant for short-lived signers only.
   */
  readonly ocspNoCheck?: boolean;
}

/** An issued certificate in the forms callers need. */
export interface IssuedCertificate {
  readonly pem: string;
  readonly der: Buffer;
  readonly certificate: x509.X509Certificate;
}

/** A random positive serial of 128 bits (RFC 5280 caps serials at 20 octets; CAs use >= 64 random bits). */
export function randomSerialHex(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  // 0x10..0x7f: positive (no 00 pad byte in DER) and no leading zero digit, so the hex is the same
  // whichever way a tool prints it (OpenSSL, Node and our store all agree; lookups never miss).
  bytes[0] = 0x10 + (bytes[0]! % 0x70);
  return Buffer.from(bytes).toString('hex');
}

/**
 * Issues (signs) one certificate. Async; rejects if the spec cannot be encoded or signed.
 * CA certificates get keyCertSign+cRLSign; leaves get digitalSignature (+keyEncipherment for RSA).
 */
export async function issueCertificate(spec: CertificateSpec): Promise<IssuedCertificate> {
  const x509 = await loadPeculiarX509();
  const publicKey = 'keys' in spec.key ? spec.key.keys.publicKey : spec.key.publicKey;
  const signer = spec.issuer?.key ?? (spec.key as GeneratedKey);
  if (!('keys' in signer)) throw new TypeError('a self-signed certificate needs the private key');
  const now = Date.now();
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(spec.isCa === true, spec.isCa ? spec.pathLength : undefined, true),
    new x509.KeyUsagesExtension(keyUsages(x509, spec), true),
    await x509.SubjectKeyIdentifierExtension.create(publicKey, false),
  ];
  const issuerPublic = spec.issuer ? spec.issuer.key.keys.publicKey : publicKey;
  extensions.push(await x509.AuthorityKeyIdentifierExtension.create(issuerPublic, false));
  if (spec.extendedKeyUsage?.length) {
    extensions.push(new x509.ExtendedKeyUsageExtension(spec.extendedKeyUsage.map((n) => EKU_OID[n]), false));
  }
  const names: x509.JsonGeneralName[] = [
    ...(spec.san?.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(spec.san?.ip ?? []).map((value) => ({ type: 'ip' as const, value })),
    ...(spec.san?.uri ?? []).map((value) => ({ type: 'url' as const, value })),
    ...(spec.san?.email ?? []).map((value) => ({ type: 'email' as const, value })),
  ];
  if (names.length) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
  if (spec.crlDistributionPoints?.length) extensions.push(new x509.CRLDistributionPointsExtension([...spec.crlDistributionPoints]));
  if (spec.ocspUrls?.length) extensions.push(new x509.AuthorityInfoAccessExtension({ ocsp: [...spec.ocspUrls] }));
  if (spec.ocspNoCheck) extensions.push(new x509.Extension(OCSP_NOCHECK_OID, false, DER_NULL));

  const certificate = await x509.X509CertificateGenerator.create(
    {
      serialNumber: spec.serialHex ?? randomSerialHex(),
      subject: spec.subject,
      // The issuer's Name object, not its string: the bytes then equal the CA's subject exactly, which
      // strict chain builders and OCSP's issuerNameHash compare (a string round trip can change string types).
      issuer: spec.issuer ? spec.issuer.certificate.subjectName : spec.subject,
      notBefore: spec.notBefore ?? new Date(now - 60_000),
      notAfter: spec.notAfter ?? new Date(now + 365 * 86_400_000),
      signingAlgorithm: signingAlgorithm(signer.algorithm),
      publicKey,
      signingKey: signer.keys.privateKey,
      extensions,
    },
    webcrypto as never,
  );
  const der = Buffer.from(certificate.rawData);
  return { pem: toPem('CERTIFICATE', der), der, certificate };
}

function keyUsages(x509: typeof import('@peculiar/x509'), spec: CertificateSpec): x509.KeyUsageFlags {
  if (spec.isCa) return x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature;
  const rsa = spec.key.algorithm.startsWith('rsa');
  return x509.KeyUsageFlags.digitalSignature | (rsa ? x509.KeyUsageFlags.keyEncipherment : 0);
}

const OCSP_NOCHECK_OID = '1.3.6.1.5.5.7.48.1.5';
const CRL_NUMBER_OID = '2.5.29.20';
const DER_NULL = new Uint8Array([0x05, 0x00]);

/** RFC 5280 §5.3.1 CRLReason names (code 7 is unassigned). */
export type CrlReason = keyof typeof CRL_REASON_CODES;

/** The ENUMERATED code of each {@link CrlReason} (shared by CRL entries and OCSP RevokedInfo). */
export const CRL_REASON_CODES = Object.freeze({
  unspecified: 0, keyCompromise: 1, cACompromise: 2, affiliationChanged: 3, superseded: 4,
  cessationOfOperation: 5, certificateHold: 6, removeFromCRL: 8, privilegeWithdrawn: 9, aACompromise: 10,
} as const);

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
 *
 * Why encoded here rather than by @peculiar/x509's X509CrlGenerator: it checks for duplicate
 * serials with a linear scan per entry (20,000 entries took 25 s, blocking the event loop) and
 * writes an empty crlEntryExtensions SEQUENCE for entries without a reason (RFC 5280 requires at
 * least one extension when present).
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
    const serial = serialContent(r.serialHex);
    const key = serial.toString('hex');
    if (seen.has(key)) throw new Error(`serial ${r.serialHex} is listed twice`);
    seen.add(key);
    const code = r.reason === undefined ? 0 : CRL_REASON_CODES[r.reason];
    const reason = code === 0 ? [] : [der(0x30, [reasonExtension(code)])];
    entries.push(der(0x30, [der(0x02, [serial]), derTime(r.revokedAt ?? fallbackDate), ...reason]));
    if (entries.length % 4096 === 0) await yieldToEventLoop(); // ~30 ms slices: the CA keeps answering OCSP meanwhile
  }
  const algId = SIGNATURE_ALGORITHM_IDS[algorithm];
  const tbs = der(0x30, [
    Buffer.of(0x02, 0x01, 0x01), // v2
    algId,
    new Uint8Array(spec.issuer.certificate.subjectName.toArrayBuffer()),
    derTime(spec.thisUpdate ?? fallbackDate),
    derTime(spec.nextUpdate),
    ...(entries.length ? [der(0x30, entries)] : []),
    der(0xa0, [der(0x30, extensions)]),
  ]);
  const hash = algorithm === 'p384' ? 'sha384' : 'sha256'; // as signingAlgorithm() signs certificates
  const signature = await signAsync(hash, tbs, { key: KeyObject.from(keys.privateKey), dsaEncoding: 'der' });
  const crl = der(0x30, [tbs, algId, der(0x03, [Buffer.of(0), signature])]);
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

/** One DER TLV around the concatenated parts (an array, not a spread: a CRL may list 100,000+ entries). */
function der(tag: number, parts: readonly Uint8Array[]): Buffer {
  const length = parts.reduce((n, p) => n + p.length, 0);
  const octets: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) octets.unshift(n & 0xff);
  const head = length < 0x80 ? [tag, length] : [tag, 0x80 | octets.length, ...octets];
  return Buffer.concat([Buffer.from(head), ...parts]);
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds. */
function derTime(date: Date): Buffer {
  const iso = date.toISOString(); // throws RangeError for an invalid date
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  const year = date.getUTCFullYear();
  return year >= 1950 && year < 2050 ? der(0x17, [Buffer.from(digits.slice(2), 'latin1')]) : der(0x18, [Buffer.from(digits, 'latin1')]);
}

/** INTEGER content of a hex serial as certificates encode it: minimal, positive. */
function serialContent(hex: string): Buffer {
  if (!/^[0-9a-f]+$/i.test(hex)) throw new TypeError(`not a hex serial: "${hex}"`);
  let bytes = Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex');
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  bytes = bytes.subarray(i);
  return bytes[0]! & 0x80 ? Buffer.concat([Buffer.of(0), bytes]) : bytes;
}

/** The CRLReason entry extension (non-critical) for a reason code. */
function reasonExtension(code: number): Buffer {
  return der(0x30, [Buffer.from('0603551d15', 'hex'), der(0x04, [Buffer.of(0x0a, 0x01, code)])]);
}

/** DER INTEGER of a non-negative bigint of at most 20 content octets (RFC 5280 §5.2.3). */
function derInteger(value: bigint): Uint8Array {
  if (value < 0n) throw new RangeError('a CRL number cannot be negative');
  let hex = value.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  if (parseInt(hex.slice(0, 2), 16) & 0x80) hex = `00${hex}`; // keep it positive
  const content = Buffer.from(hex, 'hex');
  if (content.length > 20) throw new RangeError('a CRL number is at most 20 octets');
  return der(0x02, [content]);
}

/** A CA's certificate together with its private key, ready to sign (what `issuer` fields take). */
export type SigningIdentity = IssuedCertificate & { readonly key: GeneratedKey };

/**
 * Imports a certificate and its PKCS#8 private key from PEM into a signing identity. Async;
 * throws (TypeError, or Node's key-parsing error) if the key type is not one of {@link KeyAlgorithm} or does not match the
 * certificate. The key is imported extractable only because `GeneratedKey` keeps its PEM.
 */
export async function loadSigningIdentity(certPem: string, keyPem: string): Promise<SigningIdentity> {
  const x509 = await loadPeculiarX509();
  const certificate = new x509.X509Certificate(certPem);
  const der = Buffer.from(certificate.rawData);
  const spki = Buffer.from(certificate.publicKey.rawData);
  const algorithm = keyAlgorithmOfSpki(spki);
  const params = keyParams(algorithm);
  const importParams = 'namedCurve' in params ? params : { name: params.name, hash: 'SHA-256' };
  // Through Node's KeyObject so SEC1 ("EC PRIVATE KEY") and PKCS#1 files import too.
  const pkcs8 = createPrivateKey(keyPem).export({ type: 'pkcs8', format: 'der' });
  const privateKey = await subtle.importKey('pkcs8', pkcs8, importParams, true, ['sign']);
  const publicKey = await subtle.importKey('spki', spki, importParams, true, ['verify']);
  const probe = new Uint8Array([1, 2, 3]);
  const sig = await subtle.sign(signingAlgorithm(algorithm), privateKey, probe);
  if (!(await subtle.verify(signingAlgorithm(algorithm), publicKey, sig, probe))) {
    throw new TypeError('the private key does not match the certificate');
  }
  return { pem: toPem('CERTIFICATE', der), der, certificate, key: { algorithm, keys: { privateKey, publicKey }, privateKeyPem: keyPem } };
}

/** The {@link KeyAlgorithm} of a SubjectPublicKeyInfo (DER). Throws a TypeError for other keys. */
export function keyAlgorithmOfSpki(spki: Uint8Array): KeyAlgorithm {
  const key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ec' && d.namedCurve === 'prime256v1') return 'p256';
  if (key.asymmetricKeyType === 'ec' && d.namedCurve === 'secp384r1') return 'p384';
  if (key.asymmetricKeyType === 'rsa' && d.modulusLength === 2048) return 'rsa2048';
  if (key.asymmetricKeyType === 'rsa' && d.modulusLength === 3072) return 'rsa3072';
  throw new TypeError(`unsupported CA key: ${key.asymmetricKeyType} ${d.namedCurve ?? d.modulusLength ?? ''}`.trim());
}
