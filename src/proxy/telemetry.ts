/**
 * Turns pipeline events into metrics and log lines: one access line per request, one line per
 * refused handshake (rate-limited, with a summary of what was dropped). Labels come from closed
 * sets only; device ids and fingerprints go to logs, never to metric labels.
 */
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { methodLabel, statusClass, type Metrics } from '../metrics.js';
import type { FailureReason, Verdict, VerifiedIdentity } from '../verify/index.js';
import { peerAddressOf, type ClientAddressOf } from './client-address.js';
import type { UpstreamErrorKind } from './forwarder.js';
import { traceIdOf } from './request-ids.js';
import type { ResponseFlag } from './response-flags.js';

/** What the pipeline reports; every hook optional so tests can observe only what they need. */
export interface PipelineObserver {
  connectionOpened?(): void;
  connectionClosed?(): void;
  /** A connection refused by a limit: the global cap (before its handshake) or its device's connection limit. */
  connectionRefused?(reason: 'max_connections' | 'device_connections'): void;
  verdict?(verdict: Verdict, socket: TLSSocket, seconds: number): void;
  handshakeFailed?(reason: FailureReason, socket: TLSSocket, detail: string): void;
  /** A verified connection's certificate expired while it was open: refused from then on. Once per connection. */
  connectionExpired?(identity: VerifiedIdentity, socket: TLSSocket, deadlineMs: number): void;
  requestDone?(request: RequestRecord): void;
  upstreamError?(kind: UpstreamErrorKind, detail: { code?: string | undefined; message: string; method?: string | undefined; path: string }): void;
}

/**
 * One answered request. Raw facts only: the access line formats them (and bounds the client's
 * strings) only when it is written, so a sidecar without access log pays for none of it.
 */
export interface RequestRecord {
  readonly route: string;
  readonly method: string;
  readonly path: string;
  /** `1.1`, as Node parsed it. */
  readonly httpVersion: string;
  /** Client-sent, unbounded: see {@link MAX_LOGGED_HEADER}. */
  readonly host: string | undefined;
  readonly userAgent: string | undefined;
  readonly requestId: string | undefined;
  /** As sent upstream (version 00); undefined only for a client that left before it was read. */
  readonly traceparent: string | undefined;
  readonly status: number;
  /** The upstream's Content-Length, if it sent one. */
  readonly bytes: number | undefined;
  /** Request body bytes forwarded upstream (0 when nothing was forwarded). */
  readonly bytesReceived: number;
  readonly seconds: number;
  readonly upstreamSeconds: number | undefined;
  /** `host:port` the request was forwarded to; undefined when it was not. */
  readonly upstream: string | undefined;
  readonly flags: ResponseFlag | undefined;
  /** False when the client went away before the response was complete. */
  readonly completed: boolean;
  readonly identity: VerifiedIdentity | undefined;
  readonly socket: TLSSocket;
}

/** The limiter the telemetry uses for client-caused lines. */
export interface LineLimiter {
  allow(event: string, detail?: string): boolean;
}

export interface TelemetryOptions {
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly limiter: LineLimiter;
  readonly accessLog: boolean;
  readonly now?: () => number;
  /** The client's address for log lines (default: the TCP peer; the PROXY protocol front's otherwise). */
  readonly clientAddressOf?: ClientAddressOf | undefined;
}

/**
 * Builds the observer. Never throws from a hook: the pipeline calls them from socket and request
 * events, where a throw would be an uncaught exception: a hook that fails (a metric refusing a
 * value, a logger stream error) is caught and logged as `telemetry_failed`, rate-limited per hook.
 */
export function createTelemetry(options: TelemetryOptions): PipelineObserver {
  return guardHooks(observerOf(options), options.logger, options.limiter);
}

/** Each hook of `observer` wrapped so that it never throws. */
function guardHooks(observer: Required<PipelineObserver>, logger: Logger, limiter: LineLimiter): PipelineObserver {
  const guarded: Record<string, (...args: never[]) => void> = {};
  for (const [hook, fn] of Object.entries(observer) as Array<[string, (...args: never[]) => void]>) {
    guarded[hook] = (...args) => {
      try {
        fn(...args);
      } catch (err) {
        try {
          if (limiter.allow('telemetry_failed', hook)) logger.error({ event: 'telemetry_failed', hook, err }, 'telemetry hook failed; the data path continues');
        } catch {
          // Logging is what failed: nothing left to tell.
        }
      }
    };
  }
  return guarded as PipelineObserver;
}

function observerOf(options: TelemetryOptions): Required<PipelineObserver> {
  const { metrics: m, logger, limiter } = options;
  const now = options.now ?? Date.now;
  const clientAddressOf = options.clientAddressOf ?? peerAddressOf;
  return {
    connectionOpened: () => m.activeConnections.inc(),
    connectionClosed: () => m.activeConnections.dec(),
    connectionRefused(reason) {
      m.connectionsRefused.inc({ reason });
      if (limiter.allow('connection_refused', reason)) {
        logger.warn({ event: 'connection_refused', reason }, reason === 'max_connections' ? 'connection refused: limits.maxConnections reached' : 'connection refused: over the per-device connection limit');
      }
    },
    verdict(verdict, socket, seconds) {
      const tls = socket.getProtocol() ?? 'unknown';
      if (verdict.revocation) {
        m.revocationChecks.inc({ method: verdict.revocation.method, status: verdict.revocation.status, cache: verdict.revocation.cached ? 'hit' : 'miss' });
      }
      if (verdict.ok) {
        m.handshakes.inc({ result: 'accepted', reason: 'none', tls_version: tls });
        m.handshakeDuration.observe({ result: 'accepted' }, seconds);
        m.clientCertRemainingValidity.observe(Math.max(0, (verdict.identity.notAfter.getTime() - now()) / 1000));
        return;
      }
      m.handshakes.inc({ result: 'rejected', reason: verdict.reason, tls_version: tls });
      m.handshakeDuration.observe({ result: 'rejected' }, seconds);
      if (limiter.allow('handshake_rejected', verdict.reason)) {
        logger.warn(
          { event: 'handshake_rejected', reason: verdict.reason, detail: verdict.detail, remote: clientAddressOf(socket), peer: verdict.peer, tls },
          'client certificate rejected',
        );
      }
    },
    handshakeFailed(reason, socket, detail) {
      m.handshakes.inc({ result: 'rejected', reason, tls_version: 'none' });
      if (limiter.allow('handshake_failed', reason)) {
        logger.warn({ event: 'handshake_failed', reason, detail, remote: clientAddressOf(socket) }, 'TLS handshake failed');
      }
    },
    connectionExpired(identity, socket, deadlineMs) {
      // Not a handshake: the handshake was counted as accepted; this is a later closing.
      m.connectionsClosed.inc({ reason: 'expired' });
      if (limiter.allow('connection_expired', 'expired')) {
        logger.warn(
          {
            event: 'connection_expired',
            reason: 'expired',
            deviceId: identity.deviceId,
            fingerprint: identity.fingerprintSha256,
            validUntil: new Date(deadlineMs).toISOString(),
            remote: clientAddressOf(socket),
            tls: socket.getProtocol() ?? 'unknown',
          },
          'client certificate expired on an open connection; refused and closed',
        );
      }
    },
    requestDone(r) {
      const method = methodLabel(r.method);
      m.requests.inc({ route: r.route, method, status_class: statusClass(r.status) });
      if (r.flags === 'RL' || r.flags === 'CL') m.requestsLimited.inc({ route: r.route, limit: r.flags === 'RL' ? 'rate' : 'device_connections' });
      m.requestDuration.observe({ route: r.route, method }, r.seconds);
      if (r.upstreamSeconds !== undefined) m.upstreamDuration.observe({ route: r.route }, r.upstreamSeconds);
      if (r.flags === 'AD' || r.flags === 'QD') {
        const reason = r.flags === 'AD' ? 'not_authorized' : 'quarantined';
        m.authorizationDenied.inc({ route: r.route, reason });
        // Also without the access log: an operator must see who was refused where (rate-limited, a device can cause it in bulk).
        if (limiter.allow('authorization_denied', reason)) {
          logger.warn({ event: 'authorization_denied', reason, route: r.route, deviceId: r.identity?.deviceId, fingerprint: r.identity?.fingerprintSha256, method: r.method, path: r.path, requestId: r.requestId }, 'request refused by authorization');
        }
      }
      if (!options.accessLog) return;
      // The field list is the README's access-log table; keep the two in step.
      logger.info(
        {
          event: 'access',
          requestId: r.requestId,
          traceId: r.traceparent === undefined ? undefined : traceIdOf(r.traceparent),
          deviceId: r.identity?.deviceId,
          fingerprint: r.identity?.fingerprintSha256,
          method: r.method,
          path: r.path,
          route: r.route,
          protocol: `HTTP/${r.httpVersion}`,
          host: bounded(r.host),
          userAgent: bounded(r.userAgent),
          status: r.status,
          bytes: r.bytes,
          bytesReceived: r.bytesReceived,
          durationMs: round(r.seconds * 1000),
          upstreamMs: r.upstreamSeconds === undefined ? undefined : round(r.upstreamSeconds * 1000),
          upstream: r.upstream,
          flags: r.flags,
          tls: r.socket.getProtocol(),
          remote: clientAddressOf(r.socket),
          ...(r.completed ? {} : { aborted: true }),
        },
        'request',
      );
    },
    upstreamError(kind, detail) {
      m.upstreamErrors.inc({ kind });
      if (limiter.allow('upstream_error', kind)) logger.error({ event: 'upstream_error', kind, ...detail }, 'upstream request failed');
    },
  };
}

/** The most of a client-sent header (Host, User-Agent) an access line carries. */
export const MAX_LOGGED_HEADER = 256;

/** A client's header value cut to {@link MAX_LOGGED_HEADER} characters (pino escapes the rest). */
function bounded(value: string | undefined): string | undefined {
  return value === undefined || value.length <= MAX_LOGGED_HEADER ? value : `${value.slice(0, MAX_LOGGED_HEADER)}…`;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
