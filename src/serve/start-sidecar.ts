/**
 * The composition root: builds every module from the validated config, wires them and listens.
 * Nothing else constructs modules, so the dependency graph is visible here in one place.
 */
import { randomBytes, type X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import type { Server } from 'node:https';
import { startAdminServer, type AdminServer, type ReadinessCheck } from '../admin/index.js';
import type { SidecarConfig } from '../config/index.js';
import { SidecarError } from '../errors.js';
import { createRevocationEnforcement } from './enforce-revocation.js';
import { compileHeaderPlan } from '../identity/index.js';
import { createLogger, createLogLimiter, type Logger } from '../logging.js';
import { createMetrics, type Metrics } from '../metrics.js';
import { formatRfc4514 } from '../pki/index.js';
import { attachPipeline, createForwarder, createTelemetry, type Pipeline } from '../proxy/index.js';
import { createDataServer, createMaterialReloader, loadTlsMaterial, secureContextOptions, type TlsMaterial } from '../tls/index.js';
import { createPeerVerifier } from '../verify/index.js';
import { createPathHintStore } from './path-hints.js';
import { closeConnectionsOfRemovedCas, createTrustOwner } from './trust-owner.js';

/** A started sidecar. */
export interface RunningSidecar {
  /** `https://host:port` of the data listener (loopback name when bound to all interfaces). */
  readonly url: string;
  readonly port: number;
  /** `http://host:port` of the admin listener, when enabled. */
  readonly adminUrl: string | undefined;
  readonly server: Server;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** What `/readyz` checks for this process; a worker reports them to the primary, which serves them. */
  readonly readiness: Readonly<Record<string, ReadinessCheck>>;
  /** What works worse than configured now (e.g. `revocationFeed`), for `/readyz`'s `degraded`; never gates. */
  degraded(): Record<string, string>;
  /** Takes another worker's path hint. Never throws; a no-op without `publishPathHint`. */
  receivePathHint(leafFingerprint: string, ders: readonly Buffer[]): void;
  /** Re-reads the TLS material now (SIGHUP). Never throws: a failure keeps the old material. */
  reload(trigger?: string): void;
  /** True once close() has begun. */
  readonly draining: boolean;
  /** Stops accepting, turns readiness false, closes idle connections, waits for the rest up to `graceMs`, then cuts them. */
  close(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  readonly logger?: Logger;
  readonly metrics?: Metrics;
  /** Session-ticket keys shared by all workers (48 bytes). */
  readonly ticketKeys?: Buffer;
  /** Workers serve no admin listener of their own: the primary aggregates. */
  readonly admin?: boolean;
  /** Workers: sends a path hint to the other workers (see path-hints.ts); they answer through `receivePathHint`. */
  readonly publishPathHint?: (leafFingerprint: string, ders: readonly Buffer[]) => void;
}

/** Builds and starts the sidecar. Async; rejects with a SidecarError if material or a port fails. */
export async function startSidecar(config: SidecarConfig, options: StartOptions = {}): Promise<RunningSidecar> {
  const logger = options.logger ?? createLogger(config.log.level);
  const metrics = options.metrics ?? createMetrics();
  const material = loadTlsMaterial({ cert: config.tls.cert, key: config.tls.key, caBundle: config.clientAuth.caBundle });
  recordExpiries(metrics, material);
  const plan = compileHeaderPlan(config.identity);
  const revocation = createRevocationEnforcement(config.revocation, { trustedCas: material.caCertificates, logger, metrics });
  let pipeline: Pipeline | undefined; // attached below; the trust owner only calls back on a reload
  const closeUntrusted = closeConnectionsOfRemovedCas(() => pipeline, logger, metrics);
  const trust = createTrustOwner(material.caCertificates, material.caPems, revocation ? [revocation, closeUntrusted] : [closeUntrusted]);
  let current = material;
  const hints = options.publishPathHint ? createPathHintStore(options.publishPathHint) : undefined;
  const verifier = createPeerVerifier({
    revocation: revocation?.gate,
    hints,
    trust: trust.current,
    maxChainDepth: config.clientAuth.maxChainDepth,
    requireClientAuthEku: config.clientAuth.requireClientAuthEku,
    deviceIdRules: config.identity.deviceId,
    renderHeaders: plan.render,
  });
  const forwarder = createForwarder({ ...config.upstream, caPem: config.upstream.ca ? readUpstreamCa(config.upstream.ca) : undefined });
  const limiter = createLogLimiter({
    ...config.log.rateLimit,
    summaryIntervalMs: config.log.rateLimit.summaryIntervalSeconds * 1000,
    logger,
    onSuppressed: (event) => metrics.logsSuppressed.inc({ event }),
  });
  // Ticket keys live as long as the process (not per secure context), so sessions survive a
  // certificate rotation; the verifier re-anchors resumed sessions against the current CA bundle.
  const listenerOptions = { ...config.tls, ...config.limits, ticketKeys: options.ticketKeys ?? randomBytes(48) };
  const server = createDataServer(material, listenerOptions);
  const reloader = createMaterialReloader({
    paths: { cert: config.tls.cert, key: config.tls.key, caBundle: config.clientAuth.caBundle },
    intervalMs: config.reload.intervalSeconds * 1000,
    apply(next) {
      // All-or-nothing: setSecureContext throws on material OpenSSL rejects, before any swap, and
      // the trust owner puts the old context back if a consumer of the new CAs refuses them.
      const previous = current;
      trust.replace(
        next.caCertificates,
        next.caPems,
        () => server.setSecureContext(secureContextOptions(next, listenerOptions)),
        () => server.setSecureContext(secureContextOptions(previous, listenerOptions)),
      );
      current = next;
      recordExpiries(metrics, next);
    },
    onOutcome(outcome) {
      metrics.reloads.inc({ result: outcome.result });
      if (outcome.result === 'success') {
        metrics.reloadLastSuccess.setToCurrentTime();
        logger.info({ event: 'reload', result: 'success', trigger: outcome.trigger, serverCertNotAfter: outcome.material.serverCertificate.validTo }, 'TLS material reloaded');
      } else {
        const err = outcome.error as Error & { reason?: string };
        logger.error({ event: 'reload', result: 'failure', trigger: outcome.trigger, field: err.reason, error: err.message }, 'TLS material reload failed; keeping the previous material');
      }
    },
  });
  pipeline = attachPipeline(server, {
    verifier,
    plan,
    forwarder,
    failureMode: config.clientAuth.failureMode,
    forwardedHeaders: config.upstream.forwardedHeaders,
    preserveHost: config.upstream.preserveHost,
    logger,
    observer: createTelemetry({ metrics, logger, limiter, accessLog: config.log.accessLog }),
  });
  revocation?.enforceOn(pipeline);

  // Every raw connection, so the drain deadline can also cut upgraded (WebSocket) sockets, which
  // the HTTP server no longer tracks.
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  let draining = false;
  // Configured CRLs are loaded (or have failed, bounded by fetchTimeoutMs) before the first
  // client is accepted, so a restart does not answer a burst of revocation_unknown.
  await revocation?.whenReady();
  await listen(server, config.listen.port, config.listen.host, 'listen');
  const readiness: Readonly<Record<string, ReadinessCheck>> = {
    certificatesLoaded: () => true,
    listening: () => server.listening,
    notDraining: () => !draining,
    ...(revocation ? { revocationSourcesLoaded: () => revocation.ready() } : {}),
  };
  const degraded = (): Record<string, string> => {
    const feed = revocation?.degraded();
    return feed === undefined ? {} : { revocationFeed: feed };
  };
  let admin: AdminServer | undefined;
  if (config.admin.enabled && options.admin !== false) {
    try {
      admin = await startAdminServer({
        host: config.admin.host,
        port: config.admin.port,
        metrics: { contentType: metrics.registry.contentType, collect: () => metrics.registry.metrics() },
        readiness,
        degraded,
      });
    } catch (cause) {
      server.close();
      throw listenError(cause as NodeJS.ErrnoException, config.admin.host, config.admin.port, 'admin');
    }
  }
  metrics.reloadLastSuccess.setToCurrentTime();
  const port = (server.address() as AddressInfo).port;
  const host = config.listen.host === '0.0.0.0' || config.listen.host === '::' ? 'localhost' : config.listen.host;
  const url = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  logger.info({ event: 'listening', url, admin: admin?.url, upstream: config.upstream.url, failureMode: config.clientAuth.failureMode }, 'mtls-sidecar listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    adminUrl: admin?.url,
    server,
    logger,
    metrics,
    readiness,
    degraded,
    receivePathHint: (leafFingerprint, ders) => hints?.receive(leafFingerprint, ders),
    reload: (trigger = 'signal') => reloader.reload(trigger, true),
    get draining() {
      return draining;
    },
    close(graceMs = config.shutdown.timeoutSeconds * 1000) {
      draining = true;
      closing ??= new Promise<void>((resolve) => {
        reloader.stop();
        logger.info({ event: 'draining', graceMs }, 'draining: no new connections; finishing in-flight requests');
        // A keep-alive connection becomes idle the moment its in-flight response ends; closing
        // idle ones on a short tick lets every request finish and no new one start.
        const sweep = setInterval(() => server.closeIdleConnections(), 50);
        const deadline = setTimeout(() => {
          logger.warn({ event: 'drain_deadline', open: sockets.size }, 'drain deadline reached; closing what is left');
          server.closeAllConnections();
          for (const socket of sockets) socket.destroy();
        }, graceMs);
        deadline.unref();
        server.close(() => {
          clearInterval(sweep);
          clearTimeout(deadline);
          forwarder.close();
          limiter.stop();
          void revocation?.close();
          void (admin?.close() ?? Promise.resolve()).then(() => resolve());
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}

/** Expiry gauges: the serving certificate and every CA of the client bundle. */
function recordExpiries(metrics: Metrics, material: TlsMaterial): void {
  metrics.serverCertExpiry.set(Date.parse(material.serverCertificate.validTo) / 1000);
  metrics.caCertExpiry.reset();
  for (const ca of material.caCertificates) metrics.caCertExpiry.set({ ca: caLabel(ca) }, Date.parse(ca.validTo) / 1000);
}

/** A CA's label value: its RFC 4514 subject (bounded: the operator's own bundle). */
function caLabel(ca: X509Certificate): string {
  try {
    return formatRfc4514(ca.subject);
  } catch {
    return ca.fingerprint256;
  }
}

function readUpstreamCa(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (cause) {
    throw new SidecarError('ERR_TLS_MATERIAL', 'upstream.ca', `upstream.ca ${file} cannot be read: ${(cause as Error).message}`, { cause });
  }
}

function listenError(cause: NodeJS.ErrnoException, host: string, port: number, field: string): SidecarError {
  const why = cause.code === 'EADDRINUSE' ? 'is already in use' : cause.code === 'EACCES' ? 'needs privileges' : cause.message;
  return new SidecarError('ERR_LISTEN', field, `cannot listen on ${host}:${port} (${field}): the port ${why}`, { cause });
}

function listen(server: Server, port: number, host: string, field: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (cause: NodeJS.ErrnoException) => reject(listenError(cause, host, port, field));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
