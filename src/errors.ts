/**
 * Operational failures (bad config, unreadable key material, a port in use) are thrown as
 * `SidecarError`s with a stable machine-readable `code`. Expected rejections of clients are not
 * errors: they are `Verdict` values (see verify/).
 */
export type SidecarErrorCode =
  | 'ERR_CONFIG_INVALID'
  | 'ERR_CONFIG_READ'
  | 'ERR_TLS_MATERIAL'
  | 'ERR_LISTEN'
  | 'ERR_USAGE'
  | 'ERR_REVOCATION_SOURCE'
  | 'ERR_PKI'
  | 'ERR_ENROLL'
  | 'ERR_STORE';

/** An operational failure with a stable `code` (never a client rejection). */
export class SidecarError extends Error {
  readonly code: SidecarErrorCode;
  /** Machine-readable detail, e.g. the config field or the file at fault. */
  readonly reason: string;

  constructor(code: SidecarErrorCode, reason: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SidecarError';
    this.code = code;
    this.reason = reason;
  }
}

/** True for a SidecarError, across module copies. */
export function isSidecarError(err: unknown): err is SidecarError {
  return err instanceof SidecarError;
}
