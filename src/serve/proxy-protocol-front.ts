/**
 * Wires the PROXY protocol front (`listen.proxyProtocol`) in front of the data server: its
 * outcomes go to the metrics, and its refusals to a rate-limited log line naming the TCP peer.
 */
import type { Server } from 'node:https';
import type { LogLimiter, Logger } from '../logging.js';
import type { Metrics } from '../metrics.js';
import { createProxyProtocolListener, type ProxyProtocolListener, type ProxyProtocolOptions } from '../tls/index.js';

/** Builds (does not start) the front of `server`. Sync; see `createProxyProtocolListener`. */
export function createProxyProtocolFront(
  server: Server,
  options: ProxyProtocolOptions,
  deps: { readonly logger: Logger; readonly metrics: Metrics; readonly limiter: LogLimiter },
): ProxyProtocolListener {
  const { logger, metrics, limiter } = deps;
  return createProxyProtocolListener(server, options, {
    accepted: (version, source) => metrics.proxyProtocolAccepted.inc({ version: String(version), source }),
    refused(reason, peer, detail) {
      metrics.proxyProtocolRefused.inc({ reason });
      if (limiter.allow('proxy_protocol_refused', reason)) {
        logger.warn({ event: 'proxy_protocol_refused', reason, detail, remote: peer }, 'connection refused before TLS (PROXY protocol)');
      }
    },
  });
}
