/**
 * Issues a device's client certificate. Everything in it comes from the CA's config and the
 * enrollment's binding, never from the CSR beyond its public key: subject and SAN URI are
 * rendered from templates with the bound device id, validity is short (30 days by default), the
 * serial is 128 random bits, the EKU is clientAuth only, and the CRL and OCSP URLs point at this
 * CA's publishing listener so the proxy finds them without extra config.
 */
import { createHash } from 'node:crypto';
import { caSerialHexOfCertificate, escapeRdnValue, issueCertificate, randomSerialHex, type KeyAlgorithm, type SigningIdentity } from '../pki/index.js';
import type { CaIssuanceOptions } from '../config/index.js';
import type { CheckedCsr } from './csr-check.js';
import type { NewCertificate } from './store/index.js';

/** A certificate issued to a device, in the forms the API and the store need. */
export interface IssuedDeviceCertificate {
  readonly record: NewCertificate;
  readonly pem: string;
}

/** What issuing needs besides the CSR. */
export interface DeviceIssuer {
  readonly ca: SigningIdentity;
  readonly issuance: CaIssuanceOptions;
  /** The publishing listener's public base URL: CDP is `${base}/crl`, OCSP is `${base}/ocsp`. */
  readonly publishBaseUrl: string;
}

/**
 * Signs a certificate for `deviceId` over the CSR's key. Async; rejects only if signing fails
 * (a broken CA key), which the caller reports as an internal error with nothing recorded.
 */
export async function issueDeviceCertificate(
  issuer: DeviceIssuer,
  deviceId: string,
  csr: CheckedCsr,
  kind: 'enroll' | 'renew',
  supersedes: string | null,
  now: Date,
): Promise<IssuedDeviceCertificate> {
  const notBefore = new Date(now.getTime() - 60_000); // one minute of grace for device clocks
  const notAfter = new Date(now.getTime() + issuer.issuance.validityDays * 86_400_000);
  const base = issuer.publishBaseUrl.replace(/\/+$/, '');
  const subject = issuer.issuance.subjectTemplate.replaceAll('{deviceId}', escapeRdnValue(deviceId));
  const issued = await issueCertificate({
    subject,
    // The label only selects key usages (keyEncipherment for RSA); the key itself is the CSR's.
    key: { algorithm: keyUsageLabel(csr), publicKey: csr.publicKey },
    issuer: issuer.ca,
    serialHex: randomSerialHex(),
    notBefore,
    notAfter,
    extendedKeyUsage: ['clientAuth'],
    san: { uri: [issuer.issuance.sanUriTemplate.replaceAll('{deviceId}', uriSafe(deviceId))] },
    crlDistributionPoints: [`${base}/crl`],
    ocspUrls: [`${base}/ocsp`],
  });
  const record: NewCertificate = {
    serialHex: caSerialHexOfCertificate(issued.certificate),
    deviceId,
    subject: issued.certificate.subject,
    notBefore,
    notAfter,
    fingerprintSha256: createHash('sha256').update(issued.der).digest('hex'),
    der: issued.der,
    issuedAt: now,
    kind,
    supersedes,
  };
  return { record, pem: issued.pem };
}

function keyUsageLabel(csr: CheckedCsr): KeyAlgorithm {
  if (csr.keyType === 'rsa') return 'rsa2048';
  return csr.keyType === 'p384' ? 'p384' : 'p256';
}

function uriSafe(value: string): string {
  return encodeURIComponent(value).replace(/%3A/gi, ':');
}
