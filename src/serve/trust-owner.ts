/**
 * The one owner of trust: the client CA bundle as loaded, the trust index that paths are built
 * against, and the revocation signer set. A reload that changes the bundle swaps them together and
 * tells every consumer, so no module keeps a CA list of its own: a CA added by reload can sign the
 * CRL of its first client, and a removed CA stops being a CRL or OCSP signer at once.
 */
import type { X509Certificate } from 'node:crypto';
import { createTrustIndex, type TrustIndex } from '../verify/index.js';

/** Something that must follow the trusted bundle (the revocation checker). */
export interface TrustConsumer {
  /** Adopts the new CAs. Sync swap; throws before changing anything if it cannot. */
  trustChanged(cas: readonly X509Certificate[]): void;
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
          consumer.trustChanged(nextCas);
          told.push(consumer);
        }
      } catch (err) {
        restoreTls();
        for (const consumer of told) consumer.trustChanged(index.certificates);
        throw err;
      }
      index = nextIndex;
      key = nextKey;
    },
  };
}
