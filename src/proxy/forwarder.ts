/**
 * The only importer of http-proxy (unmaintained since 2020; kept behind this interface so it can be
 * swapped). It handles the library's traps: an `error` callback on every call (an unhandled one
 * kills the process), a keep-alive agent (without one it sends `connection: close`), no `xfwd`
 * (the pipeline sets X-Forwarded-* itself), and our own connect/response timers so a timeout is
 * told apart from a reset.
 */
import http, { type IncomingMessage, type ServerResponse, type ClientRequest } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import httpProxy from 'http-proxy';

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
  readonly preserveHost: boolean;
}

/** Called once when forwarding fails; `res`/`socket` is still the caller's to answer or close. */
export type UpstreamFailure = (kind: UpstreamErrorKind, err: Error) => void;

/** Per-request callbacks of `web`. */
export interface ForwardHooks {
  readonly onError: UpstreamFailure;
  /** The upstream's response headers arrived (before the body streams). */
  readonly onResponse?: (upstream: IncomingMessage) => void;
}

export interface Forwarder {
  /** Streams the request upstream and the response back. Never throws; failures go to `hooks.onError`. */
  web(req: IncomingMessage, res: ServerResponse, hooks: ForwardHooks): void;
  /** Forwards a WebSocket (or other) upgrade. Never throws; failures go to `onError`. */
  ws(req: IncomingMessage, socket: Duplex, head: Buffer, onError: UpstreamFailure): void;
  /** Closes pooled upstream sockets. */
  close(): void;
}

const TIMED_OUT = Symbol('timedOut');
type Marked = Error & { [TIMED_OUT]?: true };

/** Classifies a Node network/TLS error. Pure. */
export function classifyUpstreamError(err: Marked): UpstreamErrorKind {
  if (err[TIMED_OUT]) return 'timeout';
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED') return 'reset';
  if (code === 'ETIMEDOUT') return 'timeout';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'dns';
  if (code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || /CERT|SELF_SIGNED|UNABLE_TO/.test(code)) return 'tls';
  return 'other';
}

/** Builds the forwarder with its own keep-alive pool. */
export function createForwarder(options: ForwarderOptions): Forwarder {
  const target = new URL(options.url);
  const secure = target.protocol === 'https:';
  const agentOptions = { keepAlive: true, keepAliveMsecs: options.keepAliveMs, maxSockets: options.maxSockets, maxFreeSockets: options.maxSockets, scheduling: 'lifo' as const };
  const agent = secure
    ? new https.Agent({ ...agentOptions, ca: options.caPem, servername: options.serverName, rejectUnauthorized: true })
    : new http.Agent(agentOptions);
  const proxy = httpProxy.createProxyServer({
    target: options.url,
    agent,
    xfwd: false,
    changeOrigin: !options.preserveHost,
    secure: true,
    ws: true,
    ...(secure && options.caPem ? { ca: options.caPem } : {}),
  });
  // Never let an error escape as an 'error' event without a listener (it would crash the process).
  proxy.on('error', () => undefined);
  proxy.on('econnreset', () => undefined);
  const upstreamRequests = new WeakMap<IncomingMessage, ClientRequest>();
  proxy.on('proxyReq', (proxyReq, req) => {
    upstreamRequests.set(req, proxyReq);
    // The client's Connection header is hop-by-hop: the upstream hop is our keep-alive pool.
    proxyReq.removeHeader('connection');
    armTimers(proxyReq, options);
  });
  proxy.on('proxyReqWs', (proxyReq) => armTimers(proxyReq, options));
  // The upstream's hop-by-hop response headers describe the pooled upstream socket, not the
  // client's connection; http-proxy would copy its `connection: keep-alive` over a client's
  // `Connection: close`. Dropped here, http-proxy then answers the client's own wish.
  const responseHooks = new WeakMap<IncomingMessage, (upstream: IncomingMessage) => void>();
  proxy.on('proxyRes', (proxyRes, req) => {
    responseHooks.get(req)?.(proxyRes);
    const listed = String(proxyRes.headers.connection ?? '').split(',');
    for (const name of [...listed, 'connection', 'keep-alive', 'proxy-connection']) {
      const key = name.trim().toLowerCase();
      if (key) delete proxyRes.headers[key];
    }
  });

  return {
    web(req, res, hooks) {
      let reported = false;
      if (hooks.onResponse) responseHooks.set(req, hooks.onResponse);
      // A client that goes away after sending its request (so no 'aborted') must not leave the
      // upstream request running.
      res.once('close', () => {
        if (!res.writableFinished) upstreamRequests.get(req)?.destroy();
      });
      proxy.web(req, res, {}, (err) => {
        if (reported) return;
        reported = true;
        hooks.onError(classifyUpstreamError(err as Marked), err as Error);
      });
    },
    ws(req, socket, head, onError) {
      let reported = false;
      proxy.ws(req, socket, head, {}, (err) => {
        if (reported) return;
        reported = true;
        onError(classifyUpstreamError(err as Marked), err as Error);
      });
    },
    close() {
      agent.destroy();
      proxy.close();
    },
  };
}

/**
 * Connect timeout while the socket is connecting, then an idle timeout for the rest of the exchange
 * (waiting for the response and between body chunks). Either marks the error as a timeout.
 */
function armTimers(proxyReq: ClientRequest, options: ForwarderOptions): void {
  const fire = (what: string) => {
    const err: Marked = new Error(`upstream ${what} timed out`);
    err[TIMED_OUT] = true;
    proxyReq.destroy(err);
  };
  proxyReq.setTimeout(options.responseTimeoutMs, () => fire('response'));
  const onSocket = (socket: Socket) => {
    if (!socket.connecting) return; // a pooled keep-alive socket
    const timer = setTimeout(() => fire('connect'), options.connectTimeoutMs);
    const clear = () => clearTimeout(timer);
    socket.once('connect', clear);
    socket.once('close', clear);
  };
  // For plain requests http-proxy emits 'proxyReq' from inside the 'socket' event.
  if (proxyReq.socket) onSocket(proxyReq.socket);
  else proxyReq.once('socket', onSocket);
}
