/**
 * One plain request's state from arrival to close, and how requests the sidecar answered itself
 * are reported. Split from pipeline.ts, which decides; this file only carries and reports.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { DEFAULT_ROUTE, type Route } from '../policy/index.js';
import type { VerifiedIdentity } from '../verify/index.js';
import type { ForwardHandle, ForwardHooks, UpstreamErrorKind } from './forwarder.js';
import { upstreamFlag, type ResponseFlag } from './response-flags.js';
import { sendJsonError } from './responses.js';
import type { PipelineObserver } from './telemetry.js';
import type { UpstreamHead } from './upstream-headers.js';

/** The status and JSON body the sidecar answers an upstream failure with. */
export interface UpstreamAnswer {
  readonly status: number;
  readonly body: Record<string, string>;
}

/** Starts tracking a request: reported through `observer.requestDone` when its response closes. */
export function startFlight(
  req: IncomingMessage,
  res: ServerResponse,
  observer: PipelineObserver,
  upstreamFailed: (kind: UpstreamErrorKind, err: Error, req: IncomingMessage) => UpstreamAnswer,
): RequestInFlight {
  const flight = new RequestInFlight(req, res, req.socket as TLSSocket, observer, upstreamFailed);
  (res as FlightCarrier)[FLIGHT] = flight;
  res.once('close', onResponseClosed);
  return flight;
}

/** Reports a request answered on a raw socket (a refused upgrade) like a plain one the sidecar answered. */
export function reportRawAnswer(
  observer: PipelineObserver,
  req: IncomingMessage,
  status: number,
  identity: VerifiedIdentity | undefined,
  head: UpstreamHead,
  flags: ResponseFlag,
  route: Route = DEFAULT_ROUTE,
): void {
  observer.requestDone?.({
    route: route.name,
    method: req.method ?? '',
    path: pathOf(req),
    httpVersion: req.httpVersion,
    host: head.host,
    userAgent: head.userAgent,
    requestId: head.requestId,
    traceparent: head.traceparent,
    status,
    bytes: undefined,
    bytesReceived: 0,
    seconds: 0,
    upstreamSeconds: undefined,
    upstream: undefined,
    flags,
    completed: true,
    identity,
    socket: req.socket as TLSSocket,
  });
}

/** The path without the query string: queries may carry tokens, which logs must not. */
export function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

const FLIGHT = Symbol('requestInFlight');
type FlightCarrier = ServerResponse & { [FLIGHT]?: RequestInFlight };

/** Shared by every response (no closure per request): `this` is the response. */
function onResponseClosed(this: FlightCarrier): void {
  this[FLIGHT]?.closed();
}

/**
 * One request's state from arrival to close. Its methods are the forwarder's hooks, so a request
 * costs one object instead of a handful of closures (allocation showed up in the keep-alive profile).
 */
export class RequestInFlight implements ForwardHooks {
  readonly started = performance.now();
  identity: VerifiedIdentity | undefined;
  /** The route rule the request matched (its name is the metric label); DEFAULT_ROUTE until authorized, or without rules. */
  route: Route = DEFAULT_ROUTE;
  /** The request's ids and what the access line says of its head; set once the pipeline read it. */
  head: UpstreamHead | undefined;
  /** Why the request did not get the upstream's complete answer, once known; see response-flags.ts. */
  flags: ResponseFlag | undefined;
  upstreamSeconds: number | undefined;
  bytes: number | undefined;
  handle: ForwardHandle | undefined;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly socket: TLSSocket,
    private readonly observer: PipelineObserver,
    private readonly upstreamFailed: (kind: UpstreamErrorKind, err: Error, req: IncomingMessage) => UpstreamAnswer,
  ) {}

  onResponse(_status: number, contentLength: number | undefined): void {
    this.upstreamSeconds = (performance.now() - this.started) / 1000;
    this.bytes = contentLength;
  }

  onError(kind: UpstreamErrorKind, err: Error): void {
    this.flags = upstreamFlag(kind, err);
    this.bytes = undefined; // an upstream head that could not be relayed: the client gets our answer, not its body
    const answer = this.upstreamFailed(kind, err, this.req);
    this.answer(answer.status, answer.body);
  }

  onCut(kind: UpstreamErrorKind, err: Error): void {
    this.flags = upstreamFlag(kind, err);
  }

  /**
   * Answers with the sidecar's own JSON error, the request id included; `flag` says why, when the
   * sidecar refused; `extra` adds headers of its own (`Retry-After`).
   */
  answer(status: number, body: Record<string, string>, flag?: ResponseFlag, close = false, extra?: Readonly<Record<string, string>>): void {
    if (flag !== undefined) this.flags = flag;
    sendJsonError(this.res, status, body, this.head?.requestId, close, extra);
  }

  /** The response closed: cancel an unfinished upstream request, then report. */
  closed(): void {
    const { req, res, head, handle } = this;
    const completed = res.writableFinished;
    if (!completed) handle?.cancel();
    this.observer.requestDone?.({
      route: this.route.name,
      method: req.method ?? '',
      path: pathOf(req),
      httpVersion: req.httpVersion,
      host: head?.host,
      userAgent: head?.userAgent,
      requestId: head?.requestId,
      traceparent: head?.traceparent,
      status: res.statusCode,
      bytes: this.bytes,
      bytesReceived: handle === undefined ? 0 : handle.bodyBytes,
      seconds: (performance.now() - this.started) / 1000,
      upstreamSeconds: this.upstreamSeconds,
      upstream: handle?.upstream,
      flags: this.flags ?? (completed ? undefined : 'DC'),
      completed,
      identity: this.identity,
      socket: this.socket,
    });
  }
}
