/**
 * Key generation and certificate issuing with @peculiar/x509 over Node's WebCrypto.
 *
 * Why not node-forge: it cannot handle ECDSA keys, and device keys from the iOS Secure Enclave and
 * Android Keystore are ECDSA P-256. Why not the openssl CLI: the dev PKI and the tests must run
 * in-process, and the enrollment CA will issue from the same code.
 */
import { createPrivateKey, createPublicKey, webcrypto } from 'node:crypto';
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
  /** Certificate policy OIDs (certificatePolicies, non-critical), e.g. for authorization rules. */
  readonly policies?: readonly string[];
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
  if (spec.policies?.length) extensions.push(new x509.CertificatePolicyExtension([...spec.policies], false));
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
const DER_NULL = new Uint8Array([0x05, 0x00]);
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
