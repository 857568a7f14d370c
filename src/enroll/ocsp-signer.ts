/**
 * The delegated OCSP signing certificate (RFC 6960 §4.2.2.2).
 *
 * Why delegate at all: the issuing CA's key then signs only certificates and CRLs, a few times a
 * day, and can live in an HSM or offline; the OCSP responder signs on every request with a key
 * whose compromise costs one short-lived certificate, not the CA. The certificate says exactly
 * that and no more: EKU id-kp-OCSPSigning only (it cannot pass as a TLS client or server), not a
 * CA, and id-pkix-ocsp-nocheck, because a client cannot ask this responder about the responder's
 * own certificate without a loop; short validity is the compensating control.
 */
import { escapeRdnValue, generateKey, issueCertificate, type KeyAlgorithm, type SigningIdentity } from '../pki/index.js';

/** How to issue the OCSP signer. */
export interface OcspSignerOptions {
  /** Validity in days (> 0); cut short so it never outlives the issuer. */
  readonly validityDays: number;
  /** Key type of the signer; defaults to the issuer's. */
  readonly algorithm?: KeyAlgorithm;
  /** Issuing time (test hook); defaults to now. */
  readonly now?: Date;
}

/**
 * Generates a key and issues a delegated OCSP signing certificate for `issuer`, subject
 * `CN=<issuer CN> OCSP Responder`. Async; rejects with a RangeError for a non-positive validity,
 * or if key generation or signing fails. Writes nothing to disk: the caller stores the result.
 */
export async function issueOcspSigner(issuer: SigningIdentity, options: OcspSignerOptions): Promise<SigningIdentity> {
  if (!Number.isFinite(options.validityDays) || options.validityDays <= 0) {
    throw new RangeError(`validityDays must be a positive number, not ${options.validityDays}`);
  }
  const now = (options.now ?? new Date()).getTime();
  const issuerCn = issuer.certificate.subjectName.getField('CN')[0];
  const subject = `CN=${escapeRdnValue(issuerCn === undefined ? 'OCSP Responder' : `${issuerCn} OCSP Responder`)}`;
  const notAfter = Math.min(now + options.validityDays * 86_400_000, issuer.certificate.notAfter.getTime());
  const key = await generateKey(options.algorithm ?? issuer.key.algorithm);
  const issued = await issueCertificate({
    subject,
    key,
    issuer,
    notBefore: new Date(now - 60_000), // a minute of grace for clients whose clocks run behind
    notAfter: new Date(notAfter),
    extendedKeyUsage: ['ocspSigning'],
    ocspNoCheck: true,
  });
  return { ...issued, key };
}
