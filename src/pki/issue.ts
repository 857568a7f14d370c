/**
 * Key generation and certificate issuing with @peculiar/x509 over Node's WebCrypto.
 *
 * Why not node-forge: it cannot handle ECDSA keys, and device keys from the iOS Secure Enclave and
 * Android Keystore are ECDSA P-256. Why not the openssl CLI: the dev PKI and the tests must run
 * in-process, and the enrollment CA will issue from the same code.
 */
// @peculiar/x509 resolves its ASN.1 services through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

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
  bytes[0] = (bytes[0]! & 0x7f) | 0x01; // positive, and no leading zero byte to strip
  return Buffer.from(bytes).toString('hex');
}

/**
 * Issues (signs) one certificate. Async; rejects if the spec cannot be encoded or signed.
 * CA certificates get keyCertSign+cRLSign; leaves get digitalSignature (+keyEncipherment for RSA).
 */
export async function issueCertificate(spec: CertificateSpec): Promise<IssuedCertificate> {
  const publicKey = 'keys' in spec.key ? spec.key.keys.publicKey : spec.key.publicKey;
  const signer = spec.issuer?.key ?? (spec.key as GeneratedKey);
  if (!('keys' in signer)) throw new TypeError('a self-signed certificate needs the private key');
  const now = Date.now();
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(spec.isCa === true, spec.isCa ? spec.pathLength : undefined, true),
    new x509.KeyUsagesExtension(keyUsages(spec), true),
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

  const certificate = await x509.X509CertificateGenerator.create(
    {
      serialNumber: spec.serialHex ?? randomSerialHex(),
      subject: spec.subject,
      issuer: spec.issuer ? spec.issuer.certificate.subject : spec.subject,
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

function keyUsages(spec: CertificateSpec): x509.KeyUsageFlags {
  if (spec.isCa) return x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature;
  const rsa = spec.key.algorithm.startsWith('rsa');
  return x509.KeyUsageFlags.digitalSignature | (rsa ? x509.KeyUsageFlags.keyEncipherment : 0);
}

/** What a CRL lists. */
export interface CrlSpec {
  readonly issuer: IssuedCertificate & { readonly key: GeneratedKey };
  readonly revoked?: ReadonlyArray<{ readonly serialHex: string; readonly revokedAt?: Date }>;
  readonly thisUpdate?: Date;
  readonly nextUpdate: Date;
}

/** Signs a CRL (v2, with the issuer's key identifier). Async; rejects if it cannot be signed. */
export async function issueCrl(spec: CrlSpec): Promise<{ readonly pem: string; readonly der: Buffer }> {
  const crl = await x509.X509CrlGenerator.create(
    {
      issuer: spec.issuer.certificate.subject,
      thisUpdate: spec.thisUpdate ?? new Date(Date.now() - 60_000),
      nextUpdate: spec.nextUpdate,
      signingAlgorithm: signingAlgorithm(spec.issuer.key.algorithm),
      signingKey: spec.issuer.key.keys.privateKey,
      extensions: [await x509.AuthorityKeyIdentifierExtension.create(spec.issuer.key.keys.publicKey, false)],
      entries: (spec.revoked ?? []).map((r) => ({ serialNumber: r.serialHex, revocationDate: r.revokedAt ?? new Date(Date.now() - 60_000) })),
    },
    webcrypto as never,
  );
  const der = Buffer.from(crl.rawData);
  return { pem: toPem('X509 CRL', der), der };
}
