/**
 * Wires the revocation checker into the running sidecar: the gate the verifier consults for every
 * new connection, metrics from the checker's hooks, and the enforcement on long-lived
 * connections — when any certificate of a connection's verified path (the leaf or a CA below the
 * root) becomes revoked (a new CRL, an OCSP refresh), the connection is closed at once. A CRL
 * change is learned when the CRL is re-read; an OCSP answer is re-asked before its `good` passes
 * `ocsp.maxGoodAgeSeconds`, because open connections are re-checked on `recheckIntervalMs`.
 */
import type { X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import type { RevocationOptions } from '../config/index.js';
import type { Metrics } from '../metrics.js';
import { formatRfc4514, serialHexOfCertificate } from '../pki/index.js';
import type { Pipeline } from '../proxy/index.js';
import { computeIssuerKeyHash, createRevocationChecker, type RevocationChecker } from '../revocation/index.js';
import type { RevocationGate, VerifiedIdentity } from '../verify/index.js';
import type { TrustConsumer } from './trust-owner.js';

export interface RevocationEnforcement extends TrustConsumer {
  readonly gate: RevocationGate;
  /** Starts closing revoked connections of this pipeline. */
  enforceOn(pipeline: Pipeline): void;
  /** True once configured CRL sources were attempted once, and none of them is failing now. */
  ready(): boolean;
  /** Resolves once configured CRL sources were attempted once (loaded or failed). Never rejects. */
  whenReady(): Promise<void>;
  /** Why revocation is slower than configured (the feed is down), for /readyz; undefined when not. */
  degraded(): string | undefined;
  close(): Promise<void>;
}

/**
 * How often the certificates of open connections are checked again. CRL changes arrive as events,
 * so for CRLs this only backs them up (`crl.refreshIntervalSeconds`). OCSP answers are re-asked
 * only when checked: a quarter of `ocsp.maxGoodAgeSeconds` means a tick finds each held good
 * between 75 % of that age (where a hit re-asks in the background) and 100 %, so no open
 * connection rests on a good older than maxGoodAge (plus one exchange) while the responder
 * answers. A tick costs one cached lookup per certificate of the open connections' paths.
 */
function recheckIntervalMs(options: RevocationOptions): number {
  const crl = options.crl.refreshIntervalSeconds * 1000;
  return options.mode.includes('ocsp') ? Math.min(crl, (options.ocsp.maxGoodAgeSeconds * 1000) / 4) : crl;
}

/** `undefined` when `mode: none`. Sync; throws only on a CA that cannot be parsed. */
export function createRevocationEnforcement(
  options: RevocationOptions,
  deps: { trustedCas: readonly X509Certificate[]; logger: Logger; metrics: Metrics },
): RevocationEnforcement | undefined {
  if (options.mode === 'none') return undefined;
  const { logger, metrics: m } = deps;
  // Label values: the issuer DN in RFC 4514 form (one line), from CAs the operator trusts.
  const label = (issuer: string) => {
    try {
      return formatRfc4514(issuer) || issuer;
    } catch {
      return 'unknown';
    }
  };
  // Down from the start until the first connect.
  let feedLost: { since: number; error: string } | undefined = options.feed.url === undefined ? undefined : { since: Date.now(), error: 'not connected yet' };
  if (options.feed.url !== undefined) m.feedConnected.set(0);
  const checker: RevocationChecker = createRevocationChecker(options, {
    trustedCas: deps.trustedCas,
    logger: logger.child({ component: 'revocation' }),
    observer: {
      crlCurrent(issuer, entries, nextUpdateMs) {
        const l = { issuer: label(issuer) };
        m.crlEntries.set(l, entries);
        m.crlLastRefresh.set(l, Date.now() / 1000);
        m.crlNextUpdate.set(l, nextUpdateMs / 1000);
      },
      crlFailed: (issuer) => m.crlRefreshFailures.inc({ issuer: issuer === 'unknown' ? issuer : label(issuer) }),
      crlPolled: (kind, result) => m.crlPolls.inc({ kind, result }),
      ocspExchange(seconds, outcome) {
        m.ocspRequestDuration.observe(seconds);
        if (outcome !== 'ok') m.ocspErrors.inc({ kind: outcome });
      },
      feed(e) {
        if (e.type === 'connected') {
          feedLost = undefined;
          m.feedConnected.set(1);
          logger.info({ event: 'revocation_feed_connected', url: options.feed.url }, 'revocation feed connected');
        } else if (e.type === 'disconnected') {
          feedLost ??= { since: Date.now(), error: e.reason };
          feedLost.error = e.reason;
          m.feedConnected.set(0);
          m.feedDisconnects.inc();
          logger.warn({ event: 'revocation_feed_lost', url: options.feed.url, error: e.reason, retryInMs: e.retryInMs }, 'revocation feed down; CRL polling and OCSP continue');
        } else {
          m.feedEvents.inc({ outcome: e.outcome });
          if (e.outcome === 'refused') logger.warn({ event: 'revocation_feed_refused', url: options.feed.url, id: e.id }, 'revocation feed sent a CRL that did not verify; the previous CRL stays');
        }
      },
    },
  });
  let isReady = false;
  const readyPromise = checker.ready().then(() => {
    isReady = true;
  });
  const keyHashes = new WeakMap<X509Certificate, string>();
  const keyHashOf = (ca: X509Certificate) => {
    let h = keyHashes.get(ca);
    if (h === undefined) keyHashes.set(ca, (h = computeIssuerKeyHash(ca)));
    return h;
  };
  let timer: NodeJS.Timeout | undefined;
  let generation = 0;
  checker.onRevoked(() => generation++);

  function closeConnections(pipeline: Pipeline, match: (id: VerifiedIdentity) => boolean, why: string, status: 'revoked' | 'unknown' = 'revoked'): void {
    const sockets = pipeline.connectionsOf(match);
    if (sockets.length === 0) return;
    for (const socket of sockets) socket.destroy();
    if (status === 'revoked') {
      m.connectionsClosed.inc({ reason: 'revoked' }, sockets.length);
      logger.warn({ event: 'revoked_connections_closed', count: sockets.length, detail: why }, 'closed connections of a certificate revoked since it connected');
    } else {
      m.connectionsClosed.inc({ reason: 'revocation_unknown' }, sockets.length);
      logger.warn({ event: 'unknown_connections_closed', count: sockets.length, detail: why }, 'closed connections whose revocation status became unknown (onUnknown: fail-closed)');
    }
  }

  /** True if the certificate `serialHex` of the issuer with `issuerKeyHash` is in this path below its root. */
  const pathHolds = (id: VerifiedIdentity, issuerKeyHash: string, serialHex: string): boolean => {
    const certs = id.path.certificates;
    for (let i = 0; i + 1 < certs.length; i++) {
      if (serialHexOfCertificate(certs[i]!) === serialHex.toUpperCase() && keyHashOf(certs[i + 1]!) === issuerKeyHash) return true;
    }
    return false;
  };

  return {
    gate: {
      onUnknown: options.onUnknown,
      generation: () => generation,
      check: (cert, issuer, role) => checker.check(cert, issuer, role),
    },
    trustChanged(cas) {
      void checker.setTrustedCas(cas).then(() => logger.info({ event: 'revocation_trust_changed', cas: cas.length }, 'revocation signers follow the new CA bundle; CRL sources read again'));
    },
    enforceOn(pipeline) {
      checker.onRevoked((issuerKeyHash, serialHex) => closeConnections(pipeline, (id) => pathHolds(id, issuerKeyHash, serialHex), 'revocation event'));
      // OCSP answers are only refreshed when asked, so open connections are re-asked on an
      // interval (cheap: answers are cached, refreshed ahead of maxGoodAge, single-flight).
      timer = setInterval(() => {
        const seen = new Map<string, VerifiedIdentity>();
        pipeline.connectionsOf((id) => {
          seen.set(id.fingerprintSha256, id);
          return false;
        });
        for (const id of seen.values()) {
          const certs = id.path.certificates;
          for (let i = 0; i + 1 < certs.length; i++) {
            void checker.check(certs[i]!, certs[i + 1]!, i === 0 ? 'leaf' : 'ca').then((r) => {
              const same = (other: VerifiedIdentity) => other.fingerprintSha256 === id.fingerprintSha256;
              if (r.status === 'revoked') closeConnections(pipeline, same, r.detail ?? 'revoked');
              // Fail-closed refuses a new connection whose status is unknown (a held OCSP good that
              // expired while the responder is unreachable, a stale CRL): an open one must not outlive it.
              else if (r.status === 'unknown' && options.onUnknown === 'fail-closed') closeConnections(pipeline, same, r.detail ?? 'unknown', 'unknown');
            });
          }
        }
      }, recheckIntervalMs(options));
      timer.unref();
    },
    ready: () => isReady && checker.failingSources().length === 0,
    degraded: () => (feedLost === undefined ? undefined : `revocation feed down since ${new Date(feedLost.since).toISOString()} (${feedLost.error}); CRL polling and OCSP continue`),
    whenReady: () => readyPromise,
    async close() {
      clearInterval(timer);
      await checker.close();
    },
  };
}
