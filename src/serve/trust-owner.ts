/**
 * The one owner of trust: the client CA bundle as loaded, the trust index that paths are built
 * against, and the revocation signer set. A reload that changes the bundle swaps them together and
 * tells every consumer, so no module keeps a CA list of its own: a CA added by reload can sign the
 * CRL of its first client, and a removed CA stops being a CRL or OCSP signer at once.
 */
import type { X509Certificate } from 'node:crypto';
import type { Logger } from '../logging.js';
import type { Metrics } from '../metrics.js';
import type { Pipeline } from '../proxy/index.js';
import { createTrustIndex, type TrustIndex } from '../verify/index.js';

/** Something that must follow the trusted bundle (the revocation checker, open connections). */
export interface TrustConsumer {
  /** Adopts the new CAs (`previous`: the ones before). Sync; throws before changing anything if it cannot. */
  trustChanged(next: readonly X509Certificate[], previous: readonly X509Certificate[]): void;
}

/** Holds the current trust snapshot. */
export interface TrustOwner {
  /** The snapshot the next handshake is verified against. */
  current(): TrustIndex;
  /**
   * Swaps to `cas` (identified by their PEMs) all-or-nothing: `installTls` swaps the listener's
   * secure context, then every consumer is told; if one throws, `restoreTls` puts the old context
   * back, the consumers already told are given the old CAs again, and the error is rethrown, so
   * TLS, paths and revocation never disagree. A bundle equal to the current one only runs `installTls`.
   */
  replace(cas: readonly X509Certificate[], pems: readonly string[], installTls: () => void, restoreTls: () => void): void;
}

/** Creates the owner with the bundle loaded at start. Sync; never throws. */
export function createTrustOwner(cas: readonly X509Certificate[], pems: readonly string[], consumers: readonly TrustConsumer[]): TrustOwner {
  let index = createTrustIndex(cas);
  let key = pems.join('');
  return {
    current: () => index,
    replace(nextCas, nextPems, installTls, restoreTls) {
      const nextKey = nextPems.join('');
      if (nextKey === key) {
        installTls();
        return;
      }
      const nextIndex = createTrustIndex(nextCas);
      installTls();
      const told: TrustConsumer[] = [];
      try {
        for (const consumer of consumers) {
          consumer.trustChanged(nextCas, index.certificates);
          told.push(consumer);
        }
      } catch (err) {
        restoreTls();
        for (const consumer of told) consumer.trustChanged(index.certificates, nextCas);
        throw err;
      }
      index = nextIndex;
      key = nextKey;
    },
  };
}

/**
 * The consumer that closes open connections whose verified path runs through a CA the new bundle
 * no longer holds (a removed root or configured intermediate): a verdict is per connection, so
 * without this a device of a removed CA would keep its keep-alive or WebSocket connection. New
 * connections are refused by the new TLS context and trust index anyway. Never throws.
 */
export function closeConnectionsOfRemovedCas(pipeline: () => Pipeline | undefined, logger: Logger, metrics: Metrics): TrustConsumer {
  return {
    trustChanged(next, previous) {
      const kept = new Set(next.map((c) => c.fingerprint256));
      const removed = new Set(previous.filter((c) => !kept.has(c.fingerprint256)).map((c) => c.fingerprint256));
      if (removed.size === 0) return;
      const sockets = pipeline()?.connectionsOf((id) => id.path.certificates.some((c) => removed.has(c.fingerprint256))) ?? [];
      for (const socket of sockets) socket.destroy();
      if (sockets.length === 0) return;
      metrics.connectionsClosed.inc({ reason: 'untrusted' }, sockets.length);
      logger.warn({ event: 'untrusted_connections_closed', count: sockets.length }, 'closed connections whose CA was removed from the bundle');
    },
  };
}
