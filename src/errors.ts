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
  /**
   * What is at fault, machine-readable, within `code`: the config field (`tls.key`,
   * `revocation.crl.files[0]`), the file or command-line option, or the step that failed
   * (`der`, `feed-idle`, `issuer-unknown`, the CA's error code). Not a client refusal's reason:
   * those are `Verdict` values.
   */
  readonly fault: string;

  constructor(code: SidecarErrorCode, fault: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SidecarError';
    this.code = code;
    this.fault = fault;
  }
}

/**
 * True for a SidecarError of this module instance (a plain `instanceof`: an error from a second
 * copy of this module, e.g. another bundle, is not recognised).
 */
export function isSidecarError(err: unknown): err is SidecarError {
  return err instanceof SidecarError;
}
