/**
 * Forwarding to the upstream. Requests go through an undici `Pool` (keep-alive, streaming both
 * ways); upgrades (WebSocket) through a plain node:http request. A non-101 answer to an upgrade
 * reaches the client with its status, headers and body, re-framed (see {@link declinedHead}).
 *
 * Why undici and not http-proxy: measured on the same machine and benchmark, http-proxy over
 * Node's http client cost ~170 µs of CPU per forwarded request against ~100 µs for undici, and
 * http-proxy (unmaintained since 2020) needed work-arounds for each of its traps (crashing on an
 * error without a listener, `connection: close` without an agent, copying hop-by-hop headers).
 * This file is the only importer of undici, so the choice can be revisited in one place.
 */
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Pool, type Dispatcher } from 'undici';
import { declinedHead, isHopByHopResponse, isRequestIdName, listedInConnection, statusBlock, withRequestId } from './response-head.js';
import type { UpstreamHead } from './upstream-headers.js';

/** Why the upstream failed; a metric label, so a closed set. */
export type UpstreamErrorKind = 'refused' | 'reset' | 'timeout' | 'tls' | 'dns' | 'other';

/** Where and how to forward. */
export interface ForwarderOptions {
  readonly url: string;
  /** PEM CA bundle for an https upstream (default: Node's root store). */
  readonly caPem?: string | undefined;
  readonly serverName?: string | undefined;
  readonly connectTimeoutMs: number;
  readonly responseTimeoutMs: number;
  readonly maxSockets: number;
  readonly keepAliveMs: number;
}

/** Called at most once when forwarding fails; `res`/`socket` is still the caller's to answer or close. */
export type UpstreamFailure = (kind: UpstreamErrorKind, err: Error) => void;

/** Per-request callbacks of `web`. */
export interface ForwardHooks {
  readonly onError: UpstreamFailure;
  /** The upstream's response headers arrived (before the body streams), with its Content-Length if any. */
  readonly onResponse?: (status: number, contentLength: number | undefined) => void;
  /** The upstream failed after its response head was relayed: the client's response was cut (`res` destroyed). */
  readonly onCut?: UpstreamFailure;
}

/** A request in flight. */
export interface ForwardHandle {
  /** The client went away: stop the upstream request (idempotent; a no-op once it completed). */
  cancel(): void;
  /** Request body bytes sent upstream so far. */
  readonly bodyBytes: number;
  /**
   * `host:port` forwarded to: the configured upstream, not the address undici connected to (a
   * name that resolves to several addresses is not told apart; undici says which only on errors).
   */
  readonly upstream: string;
}

/**
 * Forwards already-rewritten requests: `headers` is the complete upstream header list (flat
 * `[name, value, …]`, see upstream-headers.ts); the forwarder adds nothing to it but framing. The
 * client's response gets `X-Request-Id: head.requestId`, replacing any the upstream sent, so the
 * client always sees the id the sidecar logged.
 */
export interface Forwarder {
  /** `host:port` of the upstream URL, for `preserveHost: false`. */
  readonly upstreamHost: string;
  /** Streams the request upstream and the response back. Never throws; failures go to `hooks.onError`. */
  web(req: IncomingMessage, res: ServerResponse, head: UpstreamHead, hooks: ForwardHooks): ForwardHandle;
  /** Forwards a WebSocket (or other) upgrade. Never throws; failures go to `onError`. */
  ws(req: IncomingMessage, socket: Duplex, head: Buffer, upstreamHead: UpstreamHead, onError: UpstreamFailure): void;
  /** Closes pooled upstream sockets. */
  close(): Promise<void>;
}

/** Classifies a network, TLS or undici error. Pure. */
export function classifyUpstreamError(err: Error): UpstreamErrorKind {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'ETIMEDOUT') return 'timeout';
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED' || code === 'UND_ERR_SOCKET' || code === 'UND_ERR_CLOSED') return 'reset';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'dns';
  if (code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || /CERT|SELF_SIGNED|UNABLE_TO/.test(code)) return 'tls';
  const cause = (err as { cause?: unknown }).cause;
  return cause instanceof Error ? classifyUpstreamError(cause) : 'other';
}

/**
 * One forwarded request, as undici's dispatch handler: the response goes straight from undici's
 * parser to `res` (writeHead with a flat header list, write per chunk, end), with backpressure
 * through the controller's pause/resume.
 *
 * Why `dispatch` and not `pool.request`: `request` wraps every response in a promise, a
 * BodyReadable stream and a pipe into `res`, and parses the headers into an object we then
 * copied; measured on the keep-alive benchmark that was ~70 µs of CPU per request more.
 *
 * undici 8's handler API (`onRequestStart`/`onResponseStart`/…) hands `onResponseStart` the
 * headers parsed into an object, lower-cased and merged; that object is built whether we read it
 * or not. What is relayed comes from `controller.rawHeaders` instead — the header lines as
 * received, names in their original case, duplicates in order — as it did from undici 7's
 * `onHeaders`; only the Content-Length is read from the parsed object. That parse and a controller
 * per request are what undici 8 adds; measured against undici 7 here, the keep-alive CPU per
 * request moved by +4–6 % (medians of alternated rounds), inside this machine's run-to-run noise.
 */
class ForwardedExchange implements Dispatcher.DispatchHandler, ForwardHandle {
  bodyBytes = 0;
  private controller: Dispatcher.DispatchController | undefined;
  private cancelled = false;
  private failed = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly hooks: ForwardHooks,
    private readonly requestId: string,
    readonly upstream: string,
  ) {}

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.controller?.abort(new Error('the client went away'));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.cancelled) controller.abort(new Error('the client went away'));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (statusCode < 200) return; // 1xx (103 Early Hints): not relayed; the final answer follows
    if (this.cancelled) return;
    const cl = headers['content-length'];
    this.hooks.onResponse?.(statusCode, typeof cl === 'string' ? Number(cl) : undefined);
    try {
      this.res.writeHead(statusCode, relayedHeaders(controller.rawHeaders, headers, this.requestId));
    } catch (err) {
      this.fail(err as Error); // a header Node refuses to send (invalid characters)
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.cancelled || this.failed) return;
    if (this.res.write(chunk)) return;
    controller.pause();
    // Only on backpressure: no closure for a response that never fills the client's buffer.
    this.res.once('drain', () => controller.resume());
  }

  onBodySent(chunk: Buffer): void {
    this.bodyBytes += chunk.length;
  }

  onResponseEnd(): void {
    if (!this.cancelled && !this.failed) this.res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (this.cancelled) return; // the client left; nobody to answer
    // Mid-body an error cannot become a status any more: the stream is cut for the client too.
    if (!this.res.headersSent) return this.fail(err);
    this.hooks.onCut?.(classifyUpstreamError(err), err);
    this.res.destroy();
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.controller?.abort(err);
    this.hooks.onError(classifyUpstreamError(err), err);
  }
}

/**
 * The response header lines relayed to the client, flat `[name, value, …]`: hop-by-hop ones and
 * the upstream's X-Request-Id dropped, ours appended. From the raw lines (HTTP/1.1: `Buffer`s,
 * names as the upstream spelled them); from the parsed object only if undici gave no list, which
 * HTTP/1.1 always does. The parsed object says for free whether a name needs looking for at all.
 */
function relayedHeaders(raw: Dispatcher.DispatchController['rawHeaders'], parsed: IncomingHttpHeaders, requestId: string): string[] {
  const out: string[] = [];
  const listed = listedInConnection(parsed.connection);
  const upstreamId = parsed['x-request-id'] !== undefined;
  if (Array.isArray(raw)) {
    for (let i = 0; i < raw.length; i += 2) {
      const n = raw[i]!;
      const name = typeof n === 'string' ? n : n.toString('latin1');
      if (isHopByHopResponse(name) || listed?.has(name.toLowerCase()) || (upstreamId && isRequestIdName(name))) continue;
      const v = raw[i + 1]!;
      out.push(name, typeof v === 'string' ? v : v.toString('latin1'));
    }
  } else {
    for (const name of Object.keys(parsed)) {
      const value = parsed[name];
      if (value === undefined || isHopByHopResponse(name) || listed?.has(name) || name === 'x-request-id') continue;
      if (Array.isArray(value)) for (const v of value) out.push(name, v);
      else out.push(name, value);
    }
  }
  out.push('x-request-id', requestId);
  return out;
}

/** Builds the forwarder with its own keep-alive pool. Sync; never throws for a valid URL. */
export function createForwarder(options: ForwarderOptions): Forwarder {
  const target = new URL(options.url);
  const secure = target.protocol === 'https:';
  const tlsOptions = secure ? { ca: options.caPem, servername: options.serverName ?? (isIp(target.hostname) ? undefined : target.hostname), rejectUnauthorized: true } : {};
  const pool = new Pool(target.origin, {
    connections: options.maxSockets,
    pipelining: 1,
    keepAliveTimeout: Math.max(1_000, options.keepAliveMs),
    // undici 8 speaks HTTP/2 to an https upstream that offers it; the headers built upstream
    // (Host, hop-by-hop handling) and the upgrade path are HTTP/1.1's, so stay on it.
    allowH2: false,
    headersTimeout: options.responseTimeoutMs,
    bodyTimeout: options.responseTimeoutMs,
    connect: { timeout: options.connectTimeoutMs, ...tlsOptions },
  });
  const basePath = target.pathname.replace(/\/$/, '');
  const upstream = `${target.hostname}:${target.port || (secure ? 443 : 80)}`;

  return {
    upstreamHost: target.host,

    web(req, res, { headers, hasBody, requestId }, hooks) {
      const exchange = new ForwardedExchange(res, hooks, requestId, upstream);
      pool.dispatch({ path: basePath + (req.url ?? '/'), method: req.method as Dispatcher.HttpMethod, headers, body: hasBody ? req : null }, exchange);
      return exchange;
    },

    ws(req, socket, head, { headers, requestId }, onError) {
      // Set once the upstream answered: from then on a failure can only cut the stream.
      let answered = false;
      const fail = (err: Error) => {
        if (answered) return void socket.destroy();
        answered = true;
        onError(classifyUpstreamError(err), err);
      };
      const upstreamReq = (secure ? https : http).request({
        protocol: target.protocol,
        hostname: target.hostname,
        port: target.port,
        path: basePath + (req.url ?? '/'),
        method: req.method,
        headers,
        agent: false,
        timeout: options.connectTimeoutMs,
        ...tlsOptions,
      });
      upstreamReq.once('timeout', () => upstreamReq.destroy(Object.assign(new Error('upstream upgrade timed out'), { code: 'ETIMEDOUT' })));
      upstreamReq.on('error', fail);
      upstreamReq.once('response', (upstreamRes) => {
        // The upstream declined the upgrade: relay its answer, then close.
        answered = true;
        upstreamRes.once('error', () => socket.destroy());
        socket.write(declinedHead(upstreamRes, requestId));
        upstreamRes.pipe(socket);
      });
      upstreamReq.once('upgrade', (upstreamRes, upstreamSocket: Socket, upstreamHead: Buffer) => {
        answered = true;
        upstreamSocket.setTimeout(0);
        upstreamSocket.on('error', () => socket.destroy());
        socket.on('error', () => upstreamSocket.destroy());
        socket.once('close', () => upstreamSocket.destroy());
        upstreamSocket.once('close', () => socket.destroy());
        socket.write(statusBlock('HTTP/1.1 101 Switching Protocols', withRequestId(upstreamRes.rawHeaders, requestId)));
        if (upstreamHead.length) socket.write(upstreamHead);
        if (head.length) upstreamSocket.write(head);
        upstreamSocket.pipe(socket).pipe(upstreamSocket);
      });
      socket.once('close', () => upstreamReq.destroy());
      upstreamReq.end();
    },

    close: () => pool.close(),
  };
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

