/**
 * The composition root: builds every module from the validated config, wires them and listens.
 * Nothing else constructs modules, so the dependency graph is visible here in one place.
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:https';
import { pino, type Logger } from 'pino';
import type { SidecarConfig } from './config/index.js';
import { SidecarError } from './errors.js';
import { compileHeaderPlan } from './identity/index.js';
import { attachPipeline, createForwarder, type PipelineObserver } from './proxy/index.js';
import { createDataServer, loadTlsMaterial } from './tls/index.js';
import { createPeerVerifier, createTrustIndex } from './verify/index.js';

/** A started sidecar. */
export interface RunningSidecar {
  /** `https://host:port` of the data listener (loopback name when bound to all interfaces). */
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  readonly logger: Logger;
  /** Stops accepting, closes idle connections, waits for the rest up to `graceMs`, then cuts them. */
  close(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  readonly logger?: Logger;
  readonly observer?: PipelineObserver;
}

/** Builds and starts the sidecar. Async; rejects with a SidecarError if material or the port fails. */
export async function startSidecar(config: SidecarConfig, options: StartOptions = {}): Promise<RunningSidecar> {
  const logger = options.logger ?? pino({ level: config.log.level, base: { service: 'mtls-sidecar' } });
  const material = loadTlsMaterial({ cert: config.tls.cert, key: config.tls.key, caBundle: config.clientAuth.caBundle });
  const trust = createTrustIndex(material.caCertificates);
  const plan = compileHeaderPlan(config.identity);
  const verifier = createPeerVerifier({
    trust: () => trust,
    maxChainDepth: config.clientAuth.maxChainDepth,
    requireClientAuthEku: config.clientAuth.requireClientAuthEku,
    deviceIdRules: config.identity.deviceId,
    renderHeaders: plan.render,
  });
  const forwarder = createForwarder({ ...config.upstream, caPem: config.upstream.ca ? readUpstreamCa(config.upstream.ca) : undefined });
  const server = createDataServer(material, { ...config.tls, ...config.limits });
  attachPipeline(server, {
    verifier,
    plan,
    forwarder,
    failureMode: config.clientAuth.failureMode,
    forwardedHeaders: config.upstream.forwardedHeaders,
    logger,
    ...(options.observer ? { observer: options.observer } : {}),
  });

  await listen(server, config.listen.port, config.listen.host);
  const port = (server.address() as AddressInfo).port;
  const host = config.listen.host === '0.0.0.0' || config.listen.host === '::' ? 'localhost' : config.listen.host;
  const url = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  logger.info({ event: 'listening', url, upstream: config.upstream.url, failureMode: config.clientAuth.failureMode }, 'mtls-sidecar listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    server,
    logger,
    close(graceMs = 10_000) {
      closing ??= new Promise<void>((resolve) => {
        const deadline = setTimeout(() => server.closeAllConnections(), graceMs);
        deadline.unref();
        server.close(() => {
          clearTimeout(deadline);
          forwarder.close();
          resolve();
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}

function readUpstreamCa(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (cause) {
    throw new SidecarError('ERR_TLS_MATERIAL', 'upstream.ca', `upstream.ca ${file} cannot be read: ${(cause as Error).message}`, { cause });
  }
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (cause: NodeJS.ErrnoException) => {
      const why = cause.code === 'EADDRINUSE' ? 'is already in use' : cause.code === 'EACCES' ? 'needs privileges' : cause.message;
      reject(new SidecarError('ERR_LISTEN', 'listen', `cannot listen on ${host}:${port}: the port ${why}`, { cause }));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
