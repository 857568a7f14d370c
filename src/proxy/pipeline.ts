/**
 * The per-connection and per-request path: verify (once per connection) → strip and set headers →
 * quarantine → authorize (route rules on the normalised path) → per-device limits → forward. It is
 * the same for plain requests and upgrades, and nothing is forwarded from a connection until its
 * verdict is known and `ok`, while its certificate is still valid, for a device not quarantined,
 * for a request-target that stays under the upstream base path, that the route rules allow and
 * within its device's limits. Metrics and logs go through the observer.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { CertIdentity, HeaderPlan, RenderedHeaders } from '../identity/index.js';
import { DEFAULT_ROUTE, type Authorizer, type DeviceLimits, type LimitRefusal } from '../policy/index.js';
import { reasonForTlsClientError, type FailureReason, type PeerVerifier, type Verdict, type VerifiedIdentity } from '../verify/index.js';
import { compileUpstreamHeaders, type ForwardedMode, type UpstreamHead } from './upstream-headers.js';
import type { Forwarder, UpstreamErrorKind } from './forwarder.js';
import { pathOf, reportRawAnswer, startFlight, type RequestInFlight, type UpstreamAnswer } from './request-in-flight.js';
import { BAD_TARGET, createAdmission, NOT_AUTHORIZED, QUARANTINED } from './admission.js';
import { writeRawJsonError } from './responses.js';
import type { PipelineObserver } from './telemetry.js';
import type { ClientAddressOf } from './client-address.js';

export interface PipelineOptions {
  readonly verifier: PeerVerifier;
  readonly plan: HeaderPlan;
  readonly forwarder: Forwarder;
  /** `reject`: close refused connections at once. `http`: answer a request 401/403 JSON, then close. */
  readonly failureMode: 'reject' | 'http';
  readonly forwardedHeaders: ForwardedMode;
  /** Keep the client's Host (default) or send the upstream URL's. */
  readonly preserveHost: boolean;
  /** For internal faults only; client-caused lines go through the observer (rate-limited). */
  readonly logger: Logger;
  readonly observer: PipelineObserver;
  /** The client's address for X-Forwarded-For (default: the TCP peer; the PROXY protocol front's otherwise). */
  readonly clientAddressOf?: ClientAddressOf | undefined;
  /**
   * Route rules, judged on the normalised path that is then forwarded. Undefined: every verified
   * request is forwarded, its target as sent (the behaviour without `authorization`).
   */
  readonly authorizer?: Authorizer | undefined;
  /** Devices refused on every request; their connections are closed by whoever changes the list. */
  readonly quarantine?: { has(identity: CertIdentity): boolean } | undefined;
  /** Per-device request rate and connection limits; absent when none is configured. */
  readonly limits?: DeviceLimits | undefined;
}

/** Handles for the composition root. */
export interface Pipeline {
  /** Verified open connections, for closing those of a certificate revoked since. */
  connectionsOf(predicate: (identity: VerifiedIdentity) => boolean): TLSSocket[];
}

/** The verdict of a connection, or its promise while a revocation check runs. */
type ConnectionState = Verdict | Promise<Verdict>;

const REJECTED = 'client_certificate_rejected';

const NO_VERDICT: Verdict = Object.freeze({ ok: false, reason: 'tls_error', detail: 'no verdict for this connection' });
const VERIFICATION_FAILED: Verdict = Object.freeze({ ok: false, reason: 'tls_error', detail: 'verification failed' });
/** The verdict of a connection once its certificate expired while it was open. */
const EXPIRED: Verdict = Object.freeze({ ok: false, reason: 'expired', detail: 'client certificate expired during the connection' });
const UPGRADE_NOT_ALLOWED = Object.freeze({ error: 'upgrade_not_allowed', reason: 'only websocket upgrades are forwarded' });
/** A refused request has no identity to add upstream; its head is read only for its ids and the access line. */
const NO_IDENTITY: RenderedHeaders = [];
/** Node timers take at most 2^31-1 ms (~24.8 days); a longer wait is re-armed in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The HTTP status a refusal gets in `http` mode: 401 when no certificate was offered at all. */
export function statusForReason(reason: FailureReason): number {
  return reason === 'no_certificate' ? 401 : 403;
}

const seconds = (since: bigint) => Number(process.hrtime.bigint() - since) / 1e9;
// The TCP peer, never a PROXY header's client: it pairs the raw and the TLS socket of one connection.
const connKey = (s: { remoteAddress?: string | undefined; remotePort?: number | undefined }) => `${s.remoteAddress}|${s.remotePort}`;

/** Wires the pipeline onto the data server. Never throws from a handler. */
export function attachPipeline(server: Server, options: PipelineOptions): Pipeline {
  const { verifier, plan, forwarder, logger, observer, limits } = options;
  const states = new WeakMap<TLSSocket, ConnectionState>();
  const verified = new Set<TLSSocket>();
  /** Verified connections over a per-device connection limit, and that refusal (`http` mode answers each request with it). */
  const overLimit = new WeakMap<TLSSocket, LimitRefusal>();
  const acceptedAt = new Map<string, bigint>();
  const admit = createAdmission(options);
  const upstreamHeaders = compileUpstreamHeaders({
    strip: plan.strip,
    forwarded: options.forwardedHeaders,
    rewriteHostTo: options.preserveHost ? undefined : forwarder.upstreamHost,
    clientAddressOf: options.clientAddressOf,
  });

  // Runs before the TLS layer wraps the socket, to time the handshake from TCP accept.
  server.prependListener('connection', (raw: Socket) => {
    const key = connKey(raw);
    acceptedAt.set(key, process.hrtime.bigint());
    observer.connectionOpened?.();
    raw.once('close', () => {
      acceptedAt.delete(key);
      observer.connectionClosed?.();
    });
  });
  // Past server.maxConnections (the memory-sized cap, tls/server.ts) Node closes a new TCP
  // connection before any TLS byte; this is its only trace.
  server.on('drop', () => observer.connectionRefused?.('max_connections'));

  function settle(socket: TLSSocket, verdict: Verdict): Verdict {
    const start = acceptedAt.get(connKey(socket));
    acceptedAt.delete(connKey(socket));
    observer.verdict?.(verdict, socket, start === undefined ? 0 : seconds(start));
    if (verdict.ok) {
      if (!socket.destroyed) {
        verified.add(socket);
        socket.once('close', () => verified.delete(socket));
        if (limits !== undefined) admitConnection(limits, socket, verdict.identity);
      }
    } else if (options.failureMode === 'reject') {
      socket.destroy();
    }
    return verdict;
  }

  /**
   * Counts a verified connection against its device's and certificate's limits. Over a limit it
   * is refused like a refused certificate: closed now in `reject` mode; in `http` mode every
   * request on it is answered 429 with `Connection: close`, so the device learns why.
   */
  function admitConnection(limits: DeviceLimits, socket: TLSSocket, identity: VerifiedIdentity): void {
    const { deviceId, fingerprintSha256 } = identity;
    const refusal = limits.admitConnection(deviceId, fingerprintSha256);
    if (refusal === undefined) {
      socket.once('close', () => limits.releaseConnection(deviceId, fingerprintSha256));
      return;
    }
    overLimit.set(socket, refusal);
    observer.connectionRefused?.('device_connections');
    if (options.failureMode === 'reject') socket.destroy();
  }

  server.on('secureConnection', (socket: TLSSocket) => {
    let state: ConnectionState;
    try {
      const v = verifier.verify(socket);
      state =
        v instanceof Promise
          ? v.then((verdict) => {
              states.set(socket, verdict);
              return settle(socket, verdict);
            })
          : settle(socket, v);
    } catch (err) {
      // verify() promises not to throw; if it does, fail closed for this connection only.
      logger.error({ event: 'verify_failed', err }, 'verifier threw; refusing the connection');
      state = settle(socket, { ok: false, reason: 'tls_error', detail: 'internal verification error' });
    }
    states.set(socket, state);
  });

  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    acceptedAt.delete(connKey(socket));
    observer.handshakeFailed?.(reasonForTlsClientError(err), socket, err.code ?? err.message);
  });

  /**
   * Calls `then(arg, verdict)` once the connection's verdict is known (at once unless a revocation
   * check is still running). `arg` is passed through so the request path needs no closure.
   */
  function withVerdict<T>(socket: TLSSocket, arg: T, then: (arg: T, v: Verdict) => void): void {
    const state = states.get(socket);
    if (state instanceof Promise) state.then((v) => then(arg, v), () => then(arg, VERIFICATION_FAILED));
    else then(arg, state ?? NO_VERDICT);
  }

  function upstreamFailed(kind: UpstreamErrorKind, err: Error, req: IncomingMessage): UpstreamAnswer {
    observer.upstreamError?.(kind, { code: (err as NodeJS.ErrnoException).code, message: err.message, method: req.method, path: pathOf(req) });
    return { status: kind === 'timeout' ? 504 : 502, body: { error: kind === 'timeout' ? 'upstream_timeout' : 'upstream_unavailable', reason: kind } };
  }

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    withVerdict(req.socket as TLSSocket, startFlight(req, res, observer, upstreamFailed), proceed);
  });

  /**
   * The verdict as of now: an `ok` one whose identity is past its deadline becomes {@link EXPIRED}
   * for the rest of the connection. Per request this costs one comparison with `Date.now()`.
   */
  function current(socket: TLSSocket, verdict: Verdict): Verdict {
    if (!verdict.ok || Date.now() <= verdict.identity.validUntilMs) return verdict;
    expire(socket, verdict.identity);
    return EXPIRED;
  }

  /** Marks the connection refused as `expired` and reports it, once. */
  function expire(socket: TLSSocket, identity: VerifiedIdentity): void {
    if (states.get(socket) === EXPIRED) return;
    states.set(socket, EXPIRED);
    verified.delete(socket);
    observer.connectionExpired?.(identity, socket, identity.validUntilMs);
  }

  /**
   * Closes an upgraded connection once its certificate expires: its stream carries no further
   * requests to refuse. One unref'd timer per upgraded socket, cleared on close; upgrades are few
   * and long-lived, so this is cheaper than any per-frame check and needs no sweep over sockets.
   */
  function closeAtDeadline(socket: TLSSocket, identity: VerifiedIdentity): void {
    let timer: NodeJS.Timeout | undefined;
    const check = () => {
      const left = identity.validUntilMs - Date.now();
      if (left >= 0) {
        timer = setTimeout(check, Math.min(left + 1, MAX_TIMER_MS)).unref();
        return;
      }
      expire(socket, identity);
      socket.destroy();
    };
    check();
    socket.once('close', () => clearTimeout(timer));
  }

  function proceed(flight: RequestInFlight, connectionVerdict: Verdict): void {
    const { req, res, socket } = flight;
    const verdict = current(socket, connectionVerdict);
    if (!verdict.ok) {
      flight.head = upstreamHeaders(req.rawHeaders, socket, NO_IDENTITY, false);
      // Expired since the handshake: the device is still known, and its refused request says whose it was.
      if (connectionVerdict.ok) flight.identity = connectionVerdict.identity;
      const status = statusForReason(verdict.reason);
      const flag = verdict === EXPIRED ? 'CE' : 'CR';
      // A refused connection stays refused: close it after answering, so it is not reused.
      if (options.failureMode === 'http') flight.answer(status, { error: REJECTED, reason: verdict.reason }, flag, true);
      else {
        flight.flags = flag;
        res.statusCode = status; // what the request record reports: the refusal, not Node's default 200
        socket.destroy();
      }
      return;
    }
    flight.identity = verdict.identity;
    if (res.destroyed) return; // the client left while its verdict was pending
    const head = upstreamHeaders(req.rawHeaders, socket, verdict.identity.headers, false);
    flight.head = head;
    const admitted = admit(verdict.identity, req);
    // A quarantined device gets one answer and loses the connection: it has nothing left to call.
    if ('error' in admitted) return admitted === QUARANTINED ? flight.answer(403, QUARANTINED, 'QD', true) : flight.answer(400, BAD_TARGET, 'BT');
    flight.route = admitted.route;
    if (!admitted.allowed) {
      // `http`: the connection stays usable for the routes this identity may call.
      if (admitted.route.failureMode === 'http') return flight.answer(403, NOT_AUTHORIZED, 'AD');
      flight.flags = 'AD';
      res.statusCode = 403; // what the request record reports
      socket.destroy();
      return;
    }
    // Per-device limits (policy/limits): after authorization, right before forwarding.
    if (limits !== undefined) {
      const refusal = overLimit.get(socket) ?? limits.checkRequest(verdict.identity.deviceId, verdict.identity.fingerprintSha256, admitted.route.name);
      if (refusal instanceof Promise) return void refusal.then((r) => forwardUnlessLimited(flight, head, r)).catch((err: unknown) => limitCheckFailed(err, flight.res));
      if (refusal !== undefined) return answerLimited(flight, refusal);
    }
    flight.handle = forwarder.web(req, res, head, flight);
  }

  /**
   * The asynchronous limit check (or what ran after it) threw, which its contract says it never
   * does: fail closed for this request only, never as an unhandled rejection that ends the process.
   */
  function limitCheckFailed(err: unknown, stream: { destroy(): void }): void {
    logger.error({ event: 'limit_check_failed', err }, 'per-device limit check failed; closing the request');
    stream.destroy();
  }

  /** Forwards a request whose limit check was asynchronous (Redis), unless it was refused or the client left. */
  function forwardUnlessLimited(flight: RequestInFlight, head: UpstreamHead, refusal: LimitRefusal | undefined): void {
    if (flight.res.destroyed) return;
    if (refusal !== undefined) return answerLimited(flight, refusal);
    flight.handle = forwarder.web(flight.req, flight.res, head, flight);
  }

  /** 429 with Retry-After; the connection stays usable unless it is itself over the connection limit. */
  function answerLimited(flight: RequestInFlight, refusal: LimitRefusal): void {
    const overConnections = refusal.limit === 'device_connections';
    flight.answer(429, limitedBody(refusal), overConnections ? 'CL' : 'RL', overConnections, { 'retry-after': String(refusal.retryAfterSeconds) });
  }

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const tlsSocket = req.socket as TLSSocket;
    socket.on('error', () => socket.destroy());
    withVerdict(tlsSocket, undefined, (_, connectionVerdict) => {
      const verdict = current(tlsSocket, connectionVerdict);
      if (!verdict.ok) {
        const status = statusForReason(verdict.reason);
        const refusedHead = upstreamHeaders(req.rawHeaders, tlsSocket, NO_IDENTITY, true);
        if (options.failureMode === 'http') writeRawJsonError(socket, status, { error: REJECTED, reason: verdict.reason }, refusedHead.requestId);
        else socket.destroy();
        // Logged and counted like a refused plain request (it was missing from both).
        reportRawAnswer(observer, req, status, undefined, refusedHead, verdict === EXPIRED ? 'CE' : 'CR');
        return;
      }
      const upstreamHead = upstreamHeaders(req.rawHeaders, tlsSocket, verdict.identity.headers, true);
      const admitted = admit(verdict.identity, req);
      if (admitted === QUARANTINED) {
        writeRawJsonError(socket, 403, QUARANTINED, upstreamHead.requestId);
        reportRawAnswer(observer, req, 403, verdict.identity, upstreamHead, 'QD');
        tlsSocket.destroy();
        return;
      }
      const route = 'error' in admitted ? DEFAULT_ROUTE : admitted.route;
      if (!('error' in admitted) && !admitted.allowed) {
        if (route.failureMode === 'http') writeRawJsonError(socket, 403, NOT_AUTHORIZED, upstreamHead.requestId);
        else socket.destroy();
        reportRawAnswer(observer, req, 403, verdict.identity, upstreamHead, 'AD', route);
        return;
      }
      const refusal = 'error' in admitted ? BAD_TARGET : !isWebSocketUpgrade(req.headers.upgrade) ? UPGRADE_NOT_ALLOWED : undefined;
      if (refusal !== undefined) {
        writeRawJsonError(socket, 400, refusal, upstreamHead.requestId);
        reportRawAnswer(observer, req, 400, verdict.identity, upstreamHead, refusal === BAD_TARGET ? 'BT' : 'BU', route);
        return;
      }
      const forwardUpgrade = (refusal: LimitRefusal | undefined) => {
        if (refusal !== undefined) {
          writeRawJsonError(socket, 429, limitedBody(refusal), upstreamHead.requestId, { 'retry-after': String(refusal.retryAfterSeconds) });
          reportRawAnswer(observer, req, 429, verdict.identity, upstreamHead, refusal.limit === 'device_connections' ? 'CL' : 'RL', route);
          return;
        }
        if (socket.destroyed) return; // the client left while its limit was checked
        closeAtDeadline(tlsSocket, verdict.identity);
        forwarder.ws(req, socket, head, upstreamHead, (kind, err) => {
          const answer = upstreamFailed(kind, err, req);
          writeRawJsonError(socket, answer.status, answer.body, upstreamHead.requestId);
        });
      };
      // Per-device limits (policy/limits): an upgrade is a request like any other.
      if (limits === undefined) return forwardUpgrade(undefined);
      const limited = overLimit.get(tlsSocket) ?? limits.checkRequest(verdict.identity.deviceId, verdict.identity.fingerprintSha256, route.name);
      if (limited instanceof Promise) void limited.then(forwardUpgrade).catch((err: unknown) => limitCheckFailed(err, socket));
      else forwardUpgrade(limited);
    });
  });

  return {
    connectionsOf(predicate) {
      return [...verified].filter((s) => {
        const state = states.get(s);
        return state !== undefined && !(state instanceof Promise) && state.ok && predicate(state.identity);
      });
    },
  };
}

/** The 429 body: one error code for every limit, the limit's name as the reason. */
function limitedBody(refusal: LimitRefusal): Record<string, string> {
  return { error: 'rate_limited', reason: refusal.limit };
}

/**
 * Only WebSocket upgrades are forwarded. Any other protocol (h2c above all) would turn the
 * connection into a tunnel whose later requests the sidecar never sees: their client-chosen
 * identity headers would reach the upstream unstripped ("h2c smuggling"). Pure.
 */
export function isWebSocketUpgrade(upgrade: string | undefined): boolean {
  return upgrade !== undefined && upgrade.trim().toLowerCase() === 'websocket';
}
