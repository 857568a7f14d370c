/**
 * Expected refusals of the CA's APIs are values, not exceptions: a stable machine-readable `code`
 * (the JSON error code clients switch on, and a metric label), the HTTP status, and a message for
 * humans. Codes are a public surface: add, never rename.
 */
export type RefusalCode =
  | 'bad_request'
  | 'body_too_large'
  | 'unsupported_media_type'
  | 'invalid_device_id'
  | 'invalid_code'
  | 'code_expired'
  | 'code_used'
  | 'code_locked'
  | 'csr_invalid'
  | 'key_policy'
  | 'rate_limited'
  | 'cert_required'
  | 'unknown_certificate'
  | 'revoked'
  | 'expired'
  | 'unauthorized'
  | 'not_found'
  | 'method_not_allowed'
  | 'internal_error';

const STATUS: Record<RefusalCode, number> = {
  bad_request: 400,
  body_too_large: 413,
  unsupported_media_type: 415,
  invalid_device_id: 400,
  invalid_code: 403,
  code_expired: 403,
  code_used: 403,
  code_locked: 403,
  csr_invalid: 400,
  key_policy: 400,
  rate_limited: 429,
  cert_required: 401,
  unknown_certificate: 403,
  revoked: 403,
  expired: 403,
  unauthorized: 401,
  not_found: 404,
  method_not_allowed: 405,
  internal_error: 500,
};

/** One refusal. */
export interface Refusal {
  readonly ok: false;
  readonly code: RefusalCode;
  readonly status: number;
  readonly message: string;
}

/** Makes a refusal with the code's HTTP status. */
export function refusal(code: RefusalCode, message: string): Refusal {
  return { ok: false, code, status: STATUS[code], message };
}

/** Either a value or a refusal. */
export type Outcome<T> = ({ readonly ok: true } & T) | Refusal;
