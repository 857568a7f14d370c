/**
 * "Now revoked" events for long-lived connections.
 *
 * Remembers (LRU, bounded) the certificates `check()` has answered, with their last answer. When
 * a CRL load changes an issuer's CRLs, only the remembered certificates of that issuer are looked
 * up again (≤ maxTracked lookups, not a diff of two million-entry sets); when an OCSP exchange
 * says `revoked`, the one certificate is looked up. Each certificate that turns revoked is
 * reported once, so the proxy can close its connections.
 */
import { LRUCache } from 'lru-cache';
import type { CertScopeFacts } from './crl-store.js';
import type { RevocationLogger, RevocationStatus, RevokedListener } from './types.js';

/** A certificate as remembered. */
export interface TrackedCert {
  readonly issuerKeyHash: string;
  readonly serialKey: string;
  readonly serialHex: string;
  readonly facts: CertScopeFacts;
}

/** The tracker. All methods are sync and never throw (listener errors are logged). */
export interface RevocationEvents {
  /** Records the answer `check()` gave. */
  note(cert: TrackedCert, status: RevocationStatus): void;
  subscribe(listener: RevokedListener): void;
  /** After a CRL change: re-asks `lookup` for remembered certificates of these issuers. */
  reevaluate(issuerKeyHashes: ReadonlySet<string>, lookup: (cert: TrackedCert) => RevocationStatus): void;
  /** After an OCSP exchange about one certificate. */
  reportStatus(issuerKeyHash: string, serialHex: string, status: RevocationStatus): void;
  /** Drops listeners and memory. */
  clear(): void;
}

interface Tracked {
  readonly cert: TrackedCert;
  revoked: boolean;
}

/** Creates the tracker; `maxTracked` 0 disables remembering (and so the events). */
export function createRevocationEvents(maxTracked: number, logger: RevocationLogger): RevocationEvents {
  const tracked = maxTracked > 0 ? new LRUCache<string, Tracked>({ max: maxTracked }) : undefined;
  const listeners: RevokedListener[] = [];
  const keyOf = (issuerKeyHash: string, serialHex: string): string => `${issuerKeyHash}:${serialHex}`;

  const emit = (t: Tracked): void => {
    t.revoked = true;
    logger.warn({ issuerKeyHash: t.cert.issuerKeyHash, serial: t.cert.serialHex }, 'certificate now revoked');
    for (const listener of listeners) {
      try {
        listener(t.cert.issuerKeyHash, t.cert.serialHex);
      } catch (err) {
        logger.error({ err }, 'onRevoked listener threw');
      }
    }
  };

  return {
    note(cert, status) {
      tracked?.set(keyOf(cert.issuerKeyHash, cert.serialHex), { cert, revoked: status === 'revoked' });
    },
    subscribe(listener) {
      listeners.push(listener);
    },
    reevaluate(issuerKeyHashes, lookup) {
      if (tracked === undefined) return;
      const turned: Tracked[] = [];
      // forEach does not refresh recency: re-evaluating must not keep stale entries alive.
      tracked.forEach((t) => {
        if (!t.revoked && issuerKeyHashes.has(t.cert.issuerKeyHash) && lookup(t.cert) === 'revoked') turned.push(t);
      });
      for (const t of turned) emit(t);
    },
    reportStatus(issuerKeyHash, serialHex, status) {
      if (status !== 'revoked') return;
      const t = tracked?.peek(keyOf(issuerKeyHash, serialHex));
      if (t !== undefined && !t.revoked) emit(t);
    },
    clear() {
      listeners.length = 0;
      tracked?.clear();
    },
  };
}
