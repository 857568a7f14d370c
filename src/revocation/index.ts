/**
 * Revocation checking of client certificates (CRL and OCSP, cached). The folder's only entry point.
 *
 * Usage (composition root):
 *   const checker = createRevocationChecker(config.revocation, { trustedCas, logger });
 *   checker.onRevoked((issuerKeyHash, serialHex) => closeConnectionsOf(issuerKeyHash, serialHex));
 *   await checker.ready();               // readiness: configured CRLs attempted once
 *   const r = await checker.check(leaf, issuer);   // per connection, never throws
 *   // r.status 'unknown' → apply config.revocation.onUnknown
 *
 * Connections are matched to events by `computeIssuerKeyHash(issuer)` and `leaf.serialNumber`.
 * For long-lived connections, call `check()` again periodically (more often than
 * `ocsp.maxGoodAgeSeconds` when OCSP is used): CRL changes are pushed through `onRevoked`, and a
 * repeated check keeps the OCSP answer fresh (refresh-ahead), which also feeds `onRevoked`.
 */
export { createRevocationChecker } from './checker.js';
export { computeIssuerKeyHash } from './issuer-key-hash.js';
export { inspectCrlBytes, type CrlLoadFailure } from './crl-load.js';
export type { CrlFeedStatus, FeedEvent } from './crl-feed.js';
export type {
  RevocationChecker,
  RevocationDeps,
  RevocationLogger,
  RevocationMethod,
  RevocationObserver,
  RevocationResult,
  RevocationStatus,
  RevokedListener,
} from './types.js';
export type { RevocationOptions } from '../config/index.js';
