/**
 * One plain request's state from arrival to close, and how requests the sidecar answered itself
 * are reported. Split from pipeline.ts, which decides; this file only carries and reports.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { VerifiedIdentity } from '../verify/index.js';
import type { ForwardHandle, ForwardHooks, UpstreamErrorKind } from './forwarder.js';
import { sendJsonError } from './responses.js';
import type { PipelineObserver } from './telemetry.js';

/** One route until per-route policy exists; the metric label is already in place for it. */
const ROUTE = 'default';

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
export function reportRawAnswer(observer: PipelineObserver, req: IncomingMessage, status: number, identity: VerifiedIdentity | undefined): void {
  observer.requestDone?.({
    route: ROUTE,
    method: req.method ?? '',
    path: pathOf(req),
    status,
    bytes: undefined,
    seconds: 0,
    upstreamSeconds: undefined,
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
    const answer = this.upstreamFailed(kind, err, this.req);
    sendJsonError(this.res, answer.status, answer.body);
  }

  /** The response closed: cancel an unfinished upstream request, then report. */
  closed(): void {
    const { req, res } = this;
    const completed = res.writableFinished;
    if (!completed) this.handle?.cancel();
    this.observer.requestDone?.({
      route: ROUTE,
      method: req.method ?? '',
      path: pathOf(req),
      status: res.statusCode,
      bytes: this.bytes,
      seconds: (performance.now() - this.started) / 1000,
      upstreamSeconds: this.upstreamSeconds,
      completed,
      identity: this.identity,
      socket: this.socket,
    });
  }
}
