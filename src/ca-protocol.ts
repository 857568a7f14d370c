/**
 * The device CA's answer to a successful enroll or renew (HTTP 201, JSON): the one contract its
 * server (`enroll/`) writes and its clients (`device/`, the apps) read. The two sides share no
 * code but this, because they talk only over HTTP.
 */
export interface IssuedCertificate {
  readonly deviceId: string;
  /** Hex, as the CA's store keeps it (lower-case). */
  readonly serial: string;
  /** ISO 8601. */
  readonly notBefore: string;
  readonly notAfter: string;
  /** PEM of the issued leaf. */
  readonly certificate: string;
  /** PEM of the issuing CA, then its parents up to the root. */
  readonly chain: string;
}

/** Every field of {@link IssuedCertificate}; a client refuses an answer that lacks one. */
export const ISSUED_CERTIFICATE_FIELDS = ['deviceId', 'serial', 'notBefore', 'notAfter', 'certificate', 'chain'] as const satisfies readonly (keyof IssuedCertificate)[];
