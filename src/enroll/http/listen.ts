/**
 * Starts one of the CA's listeners (TLS or plain HTTP) with conservative timeouts, and closes it
 * so in-flight requests finish. The TLS settings are the proxy's defaults: TLS 1.2+, its AEAD
 * suites, no renegotiation.
 */
import { constants } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { DEFAULT_CIPHERS } from '../../config/index.js';
import { SidecarError } from '../../errors.js';

export interface ListenerTls {
  readonly certPem: string;
  readonly keyPem: string;
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  /** When set, a client certificate is requested (never required) and verified against these CAs. */
  readonly clientCaPems?: readonly string[];
}

export interface Listener {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}


/** Binds and starts a listener. Async; rejects with ERR_LISTEN naming `name` if it cannot bind. */
export async function startListener(
  name: string,
  where: { host: string; port: number },
  tls: ListenerTls | undefined,
  handler: http.RequestListener,
  requestTimeoutMs = 15_000,
): Promise<Listener> {
  const server = tls
    ? https.createServer(
        {
          cert: tls.certPem,
          key: tls.keyPem,
          minVersion: tls.minVersion,
          ciphers: DEFAULT_CIPHERS,
          secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
          // Optional: a new device has no certificate yet; routes that need one check `authorized`.
          requestCert: tls.clientCaPems !== undefined,
          rejectUnauthorized: false,
          ...(tls.clientCaPems ? { ca: [...tls.clientCaPems] } : {}),
        },
        handler,
      )
    : http.createServer(handler);
  server.headersTimeout = Math.min(10_000, requestTimeoutMs);
  server.requestTimeout = requestTimeoutMs;
  server.keepAliveTimeout = 5_000;
  server.maxHeadersCount = 100;
  // A bad TLS client (garbage, aborted handshake) is that client's problem, never the process's.
  server.on('tlsClientError', (_err, socket) => socket.destroy());
  server.on('clientError', (_err, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new SidecarError('ERR_LISTEN', name, `cannot listen for ${name} on ${where.host}:${where.port}: ${err.message}`, { cause: err })));
    server.listen(where.port, where.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const host = where.host === '0.0.0.0' || where.host === '::' ? '127.0.0.1' : where.host;
  return {
    url: `${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
