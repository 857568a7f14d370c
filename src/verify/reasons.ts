/**
 * The closed set of reasons a client certificate is refused. Each is a metric label value, a log
 * field and the `reason` of the JSON error body, so the names are a public surface: add, never rename.
 */
export const FAILURE_REASONS = [
  'no_certificate',
  'unknown_ca',
  'expired',
  'not_yet_valid',
  'bad_signature',
  'bad_key_usage',
  'chain_too_long',
  'no_device_id',
  'revoked',
  'revocation_unknown',
  'tls_error',
  'handshake_timeout',
] as const;

export type FailureReason = (typeof FAILURE_REASONS)[number];

/**
 * OpenSSL verify error codes (as Node names them in `authorizationError`) to our reasons. Anything
 * not listed is `unknown_ca`: the chain did not verify for a reason we do not single out, and
 * "not trusted" is the safe, truthful summary.
 */
const BY_OPENSSL_CODE: Readonly<Record<string, FailureReason>> = {
  CERT_HAS_EXPIRED: 'expired',
  CRL_HAS_EXPIRED: 'expired',
  CERT_NOT_YET_VALID: 'not_yet_valid',
  CERT_SIGNATURE_FAILURE: 'bad_signature',
  UNABLE_TO_DECRYPT_CERT_SIGNATURE: 'bad_signature',
  UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY: 'bad_signature',
  INVALID_PURPOSE: 'bad_key_usage',
  KEYUSAGE_NO_CERTSIGN: 'bad_key_usage',
  INVALID_CA: 'bad_key_usage',
  CERT_CHAIN_TOO_LONG: 'chain_too_long',
  PATH_LENGTH_EXCEEDED: 'chain_too_long',
  CERT_REVOKED: 'revoked',
};

/** Maps Node's `authorizationError` code to a reason. Pure. */
export function reasonForVerifyError(code: string): FailureReason {
  return BY_OPENSSL_CODE[code] ?? 'unknown_ca';
}

/** Maps a `tlsClientError` (the handshake itself failed) to a reason. Pure. */
export function reasonForTlsClientError(err: { code?: string }): FailureReason {
  return err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT' ? 'handshake_timeout' : 'tls_error';
}
