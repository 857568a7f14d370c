/**
 * The public types of the revocation library (re-exported by index.ts).
 */
import type { X509Certificate } from 'node:crypto';
import type { CrlFeedStatus, FeedEvent } from './crl-feed.js';

/** What a revocation source says about one certificate. */
export type RevocationStatus = 'good' | 'revoked' | 'unknown';

/** Which method produced the answer (`none`: checking disabled, or no method could answer). */
export type RevocationMethod = 'crl' | 'ocsp' | 'none';

/** The answer of `RevocationChecker.check`. */
export interface RevocationResult {
  readonly status: RevocationStatus;
  readonly method: RevocationMethod;
  /** True when answered from memory (a loaded CRL counts as memory; an OCSP cache hit too). */
  readonly cached: boolean;
  /** Human-readable why, for logs (never for clients). */
  readonly detail?: string;
}

/** Called once per certificate that a refresh learns is now revoked. */
export type RevokedListener = (issuerKeyHash: string, serialHex: string) => void;

/** Pino-compatible subset: structured object first, message second. */
export interface RevocationLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Revocation checking of client certificates by CRL and OCSP, with caches. */
export interface RevocationChecker {
  /**
   * Async; never throws or rejects (internal faults answer `unknown` and are logged). `leaf` is the
   * certificate to check, `issuer` the certificate that signed it, both from a chain Node's TLS
   * has already verified. Works for any (certificate, issuer) pair of a verified path: `role`
   * `ca` (default `leaf`) applies `intermediates` — `skip` answers good unasked, `if-published`
   * answers good when no source could speak about that CA certificate, `required` treats it as a
   * leaf. Does not apply `onUnknown`: the caller maps `unknown` to accept or reject.
   */
  check(leaf: X509Certificate, issuer: X509Certificate, role?: 'leaf' | 'ca'): Promise<RevocationResult>;
  /**
   * Subscribes to "now revoked" events: a newly loaded CRL or an OCSP refresh found that a
   * certificate seen by `check()` (and not already answered `revoked`) is revoked. Listeners are
   * called synchronously; one that throws is logged and does not affect the others.
   */
  onRevoked(listener: RevokedListener): void;
  /**
   * The trusted CA bundle changed (a reload): the CRL and OCSP signer set becomes `cas` plus the
   * intermediates learned from verified paths, CRLs of CAs no longer trusted are dropped, and
   * every CRL source is read again. Sync swap; the promise resolves when the sources have been
   * read (checks meanwhile wait for it rather than answer unknown). Throws `SidecarError` before
   * changing anything if a certificate cannot be parsed.
   */
  setTrustedCas(cas: readonly X509Certificate[]): Promise<void>;
  /** Resolves once every configured CRL file and URL has been loaded once or has failed. Never rejects. */
  ready(): Promise<void>;
  /**
   * Configured CRL files and URLs whose last read failed (missing, unreadable, not a CRL, refused
   * as a whole) and that hold no CRL from an earlier read, for readiness. One whose CRL names an
   * issuer not known yet is not failing.
   */
  failingSources(): readonly string[];
  /** The revocation feed's state; undefined without `feed.url`. */
  feedStatus(): CrlFeedStatus | undefined;
  /** Stops timers, aborts fetches, drops listeners. Idempotent; never rejects. Later checks answer `unknown`. */
  close(): Promise<void>;
}

/**
 * Hooks for metrics; every one optional and never allowed to throw into the checker. Issuer
 * values are the CRL issuer names of CAs the operator trusts (a bounded set); a CRL that could
 * not be attributed reports `unknown`.
 */
export interface RevocationObserver {
  /** A CRL was loaded, or confirmed current (unchanged file on poll, HTTP 304). */
  crlCurrent?(issuer: string, entries: number, nextUpdateMs: number): void;
  /** A CRL was refused or could not be read/fetched; the previous one (if any) is kept. */
  crlFailed?(issuer: string): void;
  /**
   * One poll of a CRL file or URL (distribution points count as URLs): `parsed` (new bytes read
   * and loaded, whatever the verdict on each CRL in them), `not_modified` (HTTP 304, or a file
   * whose stat did not change), `unchanged` (the same bytes as last time: not parsed again), or
   * `failed` (not fetched or not read).
   */
  crlPolled?(kind: 'file' | 'url', result: 'parsed' | 'not_modified' | 'unchanged' | 'failed'): void;
  /** One OCSP round trip: `ok`, or the failure reason (timeout, http-status, signature, …). */
  ocspExchange?(seconds: number, outcome: string): void;
  /** The revocation feed connected, lost its stream, or delivered a CRL. */
  feed?(event: FeedEvent): void;
}

/** What the checker needs from the composition root. */
export interface RevocationDeps {
  /** Metrics hooks (optional). */
  readonly observer?: RevocationObserver;
  /** The trusted CA bundle: CRL signers and OCSP delegators. */
  readonly trustedCas: readonly X509Certificate[];
  readonly logger: RevocationLogger;
  /** Clock in ms since the epoch (tests inject one to age responses). Defaults to `Date.now`. */
  readonly now?: () => number;
  /** HTTP client (tests may inject). Defaults to the global `fetch`. */
  readonly fetch?: typeof fetch;
}
