/**
 * The per-connection and per-request path: verify (once per connection) → strip and set headers →
 * forward. It is the same for plain requests and upgrades, and nothing is forwarded from a
 * connection until its verdict is known and `ok`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server } from 'node:https';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { applyIdentityHeaders, type HeaderPlan } from '../identity/index.js';
import { reasonForTlsClientError, type FailureReason, type PeerVerifier, type Verdict } from '../verify/index.js';
import { compileForwardedRewrite, type ForwardedMode } from './forwarded-headers.js';
import type { Forwarder, UpstreamErrorKind } from './forwarder.js';
import { sendJsonError, writeRawJsonError } from './responses.js';

/** Hooks for metrics and connection tracking; every one optional. */
export interface PipelineObserver {
  handshake?(verdict: Verdict, socket: TLSSocket): void;
  handshakeFailed?(reason: FailureReason, socket: TLSSocket): void;
  upstreamError?(kind: UpstreamErrorKind): void;
}

export interface PipelineOptions {
  readonly verifier: PeerVerifier;
  readonly plan: HeaderPlan;
  readonly forwarder: Forwarder;
  /** `reject`: close refused connections at once. `http`: answer each request 401/403 JSON. */
  readonly failureMode: 'reject' | 'http';
  readonly forwardedHeaders: ForwardedMode;
  readonly logger: Logger;
  readonly observer?: PipelineObserver;
}

/** The verdict of a connection, or its promise while a revocation check runs. */
type ConnectionState = Verdict | Promise<Verdict>;

const REJECTED = 'client_certificate_rejected';

/** The HTTP status a refusal gets in `http` mode: 401 when no certificate was offered at all. */
export function statusForReason(reason: FailureReason): number {
  return reason === 'no_certificate' ? 401 : 403;
}

/** Wires the pipeline onto the data server. Returns nothing to call per request; never throws. */
export function attachPipeline(server: Server, options: PipelineOptions): void {
  const { verifier, plan, forwarder, logger, observer } = options;
  const states = new WeakMap<TLSSocket, ConnectionState>();
  const rewriteForwarded = compileForwardedRewrite(options.forwardedHeaders);

  function settle(socket: TLSSocket, verdict: Verdict): Verdict {
    observer?.handshake?.(verdict, socket);
    if (!verdict.ok) {
      logger.warn(
        { event: 'handshake_rejected', reason: verdict.reason, detail: verdict.detail, remote: socket.remoteAddress, peer: verdict.peer, tls: socket.getProtocol() },
        'client certificate rejected',
      );
      if (options.failureMode === 'reject') socket.destroy();
    }
    return verdict;
  }

  server.on('secureConnection', (socket: TLSSocket) => {
    let state: ConnectionState;
    try {
      const v = verifier.verify(socket);
      state = v instanceof Promise ? v.then((verdict) => settle(socket, verdict)) : settle(socket, v);
    } catch (err) {
      // verify() promises not to throw; if it does, fail closed for this connection only.
      logger.error({ event: 'verify_failed', err }, 'verifier threw; refusing the connection');
      state = settle(socket, { ok: false, reason: 'tls_error', detail: 'internal verification error' });
    }
    states.set(socket, state);
  });

  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    const reason = reasonForTlsClientError(err);
    observer?.handshakeFailed?.(reason, socket);
    logger.warn({ event: 'handshake_failed', reason, detail: err.code ?? err.message, remote: socket.remoteAddress }, 'TLS handshake failed');
  });

  function withVerdict(socket: TLSSocket, then: (v: Verdict) => void): void {
    const state = states.get(socket);
    if (state === undefined) return then({ ok: false, reason: 'tls_error', detail: 'no verdict for this connection' });
    if (state instanceof Promise) state.then(then, () => then({ ok: false, reason: 'tls_error', detail: 'verification failed' }));
    else then(state);
  }

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket as TLSSocket;
    withVerdict(socket, (verdict) => {
      if (!verdict.ok) {
        if (options.failureMode === 'http') sendJsonError(res, statusForReason(verdict.reason), { error: REJECTED, reason: verdict.reason });
        else socket.destroy();
        return;
      }
      rewriteForwarded(req.headers, socket, false);
      applyIdentityHeaders(req.headers, plan, verdict.identity.headers);
      forwarder.web(req, res, (kind, err) => {
        observer?.upstreamError?.(kind);
        const status = kind === 'timeout' ? 504 : 502;
        logger.error({ event: 'upstream_error', kind, code: (err as NodeJS.ErrnoException).code, message: err.message, method: req.method, path: req.url }, 'upstream request failed');
        sendJsonError(res, status, { error: kind === 'timeout' ? 'upstream_timeout' : 'upstream_unavailable', reason: kind });
      });
    });
  });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const tlsSocket = req.socket as TLSSocket;
    socket.on('error', () => socket.destroy());
    withVerdict(tlsSocket, (verdict) => {
      if (!verdict.ok) {
        if (options.failureMode === 'http') writeRawJsonError(socket, statusForReason(verdict.reason), { error: REJECTED, reason: verdict.reason });
        else socket.destroy();
        return;
      }
      rewriteForwarded(req.headers, tlsSocket, true);
      applyIdentityHeaders(req.headers, plan, verdict.identity.headers);
      forwarder.ws(req, socket, head, (kind, err) => {
        observer?.upstreamError?.(kind);
        logger.error({ event: 'upstream_error', kind, code: (err as NodeJS.ErrnoException).code, message: err.message, upgrade: true, path: req.url }, 'upstream upgrade failed');
        writeRawJsonError(socket, kind === 'timeout' ? 504 : 502, { error: kind === 'timeout' ? 'upstream_timeout' : 'upstream_unavailable', reason: kind });
      });
    });
  });
}
