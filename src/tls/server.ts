/**
 * The mTLS listener: an `https.Server` whose TLS settings are our security defaults. The handshake
 * always completes far enough to classify the client (`rejectUnauthorized: false`); the verdict is
 * applied by the pipeline before any byte of a request can reach the upstream.
 */
import { constants } from 'node:crypto';
import https from 'node:https';
import type { SecureContextOptions } from 'node:tls';
import type { TlsMaterial } from './material.js';

/** The TLS and HTTP limits of the data listener. */
export interface DataListenerOptions {
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  readonly ciphers: string;
  readonly handshakeTimeoutMs: number;
  readonly sessionTimeoutSeconds: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxHeaderBytes: number;
  /** Open TCP connections this listener holds at most; past it Node closes a new one before its handshake ('drop'). */
  readonly maxConnections?: number | undefined;
  /**
   * 48 bytes of session-ticket keys, given to every secure context (the first and each reload's).
   * Required: without them OpenSSL makes new keys per context, and a reload would end every
   * session. The caller keeps them for the process's life (the cluster primary shares them).
   */
  readonly ticketKeys: Buffer;
}

/**
 * Secure-context options from checked material; also what a hot reload passes to
 * `server.setSecureContext`. The session-ticket keys are the caller's and the same in every
 * context, so sessions issued under an old CA bundle do resume under a new one (and on any
 * worker): trust changes are still enforced, the verifier rebuilds every resumed session's path
 * against the current bundle.
 */
export function secureContextOptions(material: TlsMaterial, options: Pick<DataListenerOptions, 'minVersion' | 'ciphers' | 'ticketKeys'>): SecureContextOptions {
  return {
    ticketKeys: options.ticketKeys,
    cert: material.certPem,
    key: material.keyPem,
    ca: [...material.caPems],
    minVersion: options.minVersion,
    maxVersion: 'TLSv1.3',
    ciphers: options.ciphers,
    honorCipherOrder: true,
    // No renegotiation (a client-initiated one is a DoS vector and can change the peer mid-stream).
    secureOptions: constants.SSL_OP_NO_RENEGOTIATION | constants.SSL_OP_CIPHER_SERVER_PREFERENCE,
  };
}

/** Creates (does not start) the data listener. Sync; throws if OpenSSL rejects the material. */
export function createDataServer(material: TlsMaterial, options: DataListenerOptions): https.Server {
  const server = https.createServer({
    ...secureContextOptions(material, options),
    requestCert: true,
    rejectUnauthorized: false,
    handshakeTimeout: options.handshakeTimeoutMs,
    sessionTimeout: options.sessionTimeoutSeconds,
    maxHeaderSize: options.maxHeaderBytes,
    // Bounded so slowloris clients cannot hold sockets forever.
    headersTimeout: options.headersTimeoutMs,
    requestTimeout: options.requestTimeoutMs,
    keepAliveTimeout: options.keepAliveTimeoutMs,
    // Node checks the two timeouts above only this often (default 30 s), which would let a
    // slowloris client hold a socket far past headersTimeout.
    connectionsCheckingInterval: Math.max(250, Math.min(1_000, Math.floor(options.headersTimeoutMs / 4))),
    noDelay: true,
  });
  server.headersTimeout = options.headersTimeoutMs;
  server.requestTimeout = options.requestTimeoutMs;
  server.keepAliveTimeout = options.keepAliveTimeoutMs;
  // Checked in net.Server's accept path, before TLS allocates anything for the connection. In a
  // cluster worker Node would instead hand the connection back to the primary for another worker
  // (which, measured, let every connection through past the sum of the shares); dropMaxConnection
  // (Node >= 23.1) closes it in the worker like in a single process, and 'drop' is emitted alike.
  if (options.maxConnections !== undefined) {
    server.maxConnections = options.maxConnections;
    (server as { dropMaxConnection?: boolean }).dropMaxConnection = true;
  }
  return server;
}
